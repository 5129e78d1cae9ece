// regmirror tags REPO: the tags a repository holds (paged tag list followed to the end), oldest version
// first, optionally through the config's tag rules (--filter).

import { parseTagRules } from '../../config/tag-rules.js';
import { compareTags, selectTags } from '../../config/tags.js';
import { formatRepository } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { plural } from '../format.js';
import type { Output } from '../output.js';
import { parseRepo } from '../parse.js';

export interface TagsFlags {
  json?: boolean;
  /** Tag rules as JSON, in the config's `tags` form. */
  filter?: string;
}

export async function runTags(
  repoText: string,
  flags: TagsFlags,
  client: RegistryClient,
  out: Output,
): Promise<number> {
  // Rules are checked before the registry is asked: a typo should not cost a tag list.
  const rules = flags.filter !== undefined ? parseTagRules(flags.filter, '--filter') : undefined;
  const repo = parseRepo(repoText, 'repository', (line) => out.info(line));
  const all = await client.tagList(repo);
  // Version order, as `latest: N` sees it: 1.9.0 before 1.10.0, versions after other tags.
  const tags = rules
    ? selectTags(all, rules)
        .filter((s) => !s.missing)
        .map((s) => s.tag)
    : [...all].sort(compareTags);
  if (flags.json) out.result(JSON.stringify({ repository: formatRepository(repo), tags }, null, 2));
  else if (tags.length > 0) out.result(tags.join('\n'));
  out.info(
    rules
      ? `${plural(tags.length, 'tag')} of ${all.length} selected in ${formatRepository(repo)}`
      : `${plural(tags.length, 'tag')} in ${formatRepository(repo)}`,
  );
  return 0;
}
