// regmirror tags REPO: the tags a repository holds (paged tag list followed to the end).

import { formatRepository } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import type { Output } from '../output.js';
import { parseRepo } from '../parse.js';
import { openStores } from '../stores.js';

export async function runTags(
  repoText: string,
  flags: { json?: boolean; debug?: boolean },
  client: RegistryClient,
  out: Output,
): Promise<number> {
  const repo = parseRepo(repoText, 'repository');
  let tags: string[];
  if (repo.layout) {
    // A whole layout lists every image name in it (what oci:PATH:NAME takes); a prefix, its tags.
    const { layouts } = openStores(client, out, flags.debug);
    await layouts.checkSource(repo);
    tags = repo.path === '' ? await layouts.names(repo) : await layouts.tagList(repo);
  } else {
    tags = await client.tagList(repo);
  }
  if (flags.json) out.result(JSON.stringify({ repository: formatRepository(repo), tags }, null, 2));
  else if (tags.length > 0) out.result(tags.join('\n'));
  const what = repo.layout && repo.path === '' ? 'image name' : 'tag';
  out.info(`${tags.length} ${what}${tags.length === 1 ? '' : 's'} in ${formatRepository(repo)}`);
  return 0;
}
