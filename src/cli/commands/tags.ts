// regmirror tags REPO: the tags a repository holds (paged tag list followed to the end), oldest version
// first, optionally through the config's tag rules (--filter).

import { parseTagRules } from '../../config/tag-rules.js';
import { compareTags, selectTags } from '../../config/tags.js';
import { formatRepository } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { plural } from '../format.js';
import type { Output } from '../output.js';
import { parseRepo } from '../parse.js';
import { openStores } from '../stores.js';

export interface TagsFlags {
  json?: boolean;
  /** Tag rules as JSON, in the config's `tags` form. */
  filter?: string;
  debug?: boolean;
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
  let all: string[];
  if (repo.layout) {
    // A whole layout lists every image name in it (what oci:PATH:NAME takes); a prefix, its tags.
    const { layouts } = openStores(client, out, flags.debug);
    await layouts.checkSource(repo);
    all = repo.path === '' ? await layouts.names(repo) : await layouts.tagList(repo);
  } else {
    all = await client.tagList(repo);
  }
  // Version order, as `latest: N` sees it: 1.9.0 before 1.10.0, versions after other tags.
  const tags = rules
    ? selectTags(all, rules)
        .filter((s) => !s.missing)
        .map((s) => s.tag)
    : [...all].sort(compareTags);
  if (flags.json) out.result(JSON.stringify({ repository: formatRepository(repo), tags }, null, 2));
  else if (tags.length > 0) out.result(tags.join('\n'));
  const what = repo.layout && repo.path === '' ? 'image name' : 'tag';
  out.info(
    rules
      ? `${plural(tags.length, what)} of ${all.length} selected in ${formatRepository(repo)}`
      : `${plural(tags.length, what)} in ${formatRepository(repo)}`,
  );
  return 0;
}
