// What a run knows about its target repositories' tags before it copies anything: one tag list per target
// repository (a page per 1,000 tags or so), read by sync while it reads the sources' tag lists. A tag the
// list does not show needs no HEAD — the copy creates it — and a repository that had no tag at all holds
// nothing this run needs to ask about below a size (its blobs are uploaded without a HEAD first).
//
// Only what was read at the start is known; a listing that failed (pull not granted, a fault) leaves
// the repository unknown and every tag is HEADed as before. Tags this run pushes are added, so a later
// image of the same tag (two mirrors into one repository) is compared, not blindly created.

import { errorKind, isAbort } from '../errors.js';
import { formatRepository, type Repository } from '../reference/reference.js';
import type { RegistryStore } from './store.js';

interface Listing {
  tags: Set<string>;
  /** No tag at all when the run started (new or emptied): nothing there is referenced by a manifest. */
  emptyAtStart: boolean;
}

export class TargetTags {
  private readonly lists = new Map<string, Listing | 'unknown'>();
  private readonly loading = new Map<string, Promise<readonly string[] | undefined>>();

  /**
   * List `repo`'s tags, once per run; resolves with them (undefined when unknown). A repository that
   * does not exist has none; any other failure leaves it unknown (never an error: the per-tag HEAD is
   * the fallback).
   */
  load(store: RegistryStore, repo: Repository): Promise<readonly string[] | undefined> {
    const key = formatRepository(repo);
    let p = this.loading.get(key);
    if (!p) {
      p = store.tagList(repo).then(
        (tags) => {
          this.lists.set(key, { tags: new Set(tags), emptyAtStart: tags.length === 0 });
          return tags;
        },
        (err) => {
          if (isAbort(err)) throw err;
          const missing = errorKind(err) === 'not-found';
          this.lists.set(key, missing ? { tags: new Set(), emptyAtStart: true } : 'unknown');
          return missing ? [] : undefined;
        },
      );
      this.loading.set(key, p);
    }
    return p;
  }

  private listing(repo: Repository): Listing | undefined {
    const list = this.lists.get(formatRepository(repo));
    return list === 'unknown' ? undefined : list;
  }

  /** True when the run's listing showed `repo` without `tag`; false when it has it or cannot say. */
  lacks(repo: Repository, tag: string): boolean {
    const list = this.listing(repo);
    return list !== undefined && !list.tags.has(tag);
  }

  /** True when `repo` had no tag at all when the run started (what this run pushed is in BlobKnowledge). */
  wasEmpty(repo: Repository): boolean {
    return this.listing(repo)?.emptyAtStart ?? false;
  }

  /** A tag this run pushed: from now on it is compared (HEAD) like any tag that was there. */
  noteTag(repo: Repository, tag: string): void {
    this.listing(repo)?.tags.add(tag);
  }
}
