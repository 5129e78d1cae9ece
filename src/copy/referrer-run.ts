// What a whole run shares about referrers, across images: each repository's referrer tags (fallback
// indexes and cosign tags, from one tag list per repository per run), the referrers already looked up
// at a source (two tags of one image are not asked about twice), and one lock per fallback tag, so that
// two images writing the same target's `sha256-<hex>` index in this run take turns instead of each
// overwriting what the other added.

import { errorKind } from '../errors.js';
import { isReferrerTag } from '../oci/referrers.js';
import { formatRepository, type Repository } from '../reference/reference.js';
import type { RegistryStore } from './store.js';

export class ReferrerRun {
  private readonly tagSets = new Map<string, Promise<Set<string>>>();
  private readonly lookups = new Map<string, Promise<unknown>>();
  private readonly locks = new Map<string, Promise<void>>();

  /**
   * The referrer tags of a repository (`sha256-<hex>`, `sha256-<hex>.sig|.att|.sbom`), from one tag list
   * per repository per run. A repository that does not exist has none.
   */
  referrerTags(store: RegistryStore, repo: Repository): Promise<Set<string>> {
    const key = formatRepository(repo);
    let tags = this.tagSets.get(key);
    if (!tags) {
      tags = store.tagList(repo).then(
        (list) => new Set(list.filter(isReferrerTag)),
        (err) => {
          if (errorKind(err) === 'not-found') return new Set<string>();
          throw err;
        },
      );
      // A failed listing is not remembered: the next image asks again.
      tags.catch(() => this.tagSets.delete(key));
      this.tagSets.set(key, tags);
    }
    return tags;
  }

  /** A tag list read for another reason (sync's tag selection, check's extras): no need to read it again. */
  seedTags(repo: Repository, tags: readonly string[]): void {
    const key = formatRepository(repo);
    if (!this.tagSets.has(key)) this.tagSets.set(key, Promise.resolve(new Set(tags.filter(isReferrerTag))));
  }

  /** A referrer tag this run has just pushed. */
  async noteTag(repo: Repository, tag: string): Promise<void> {
    const tags = await this.tagSets.get(formatRepository(repo))?.catch(() => undefined);
    tags?.add(tag);
  }

  /** The answer of `look` for `key`, computed once per run (source lookups only: targets change as we write). */
  memo<T>(key: string, look: () => Promise<T>): Promise<T> {
    let p = this.lookups.get(key) as Promise<T> | undefined;
    if (!p) {
      p = look();
      p.catch(() => this.lookups.delete(key));
      this.lookups.set(key, p);
    }
    return p;
  }

  /** Run `fn` when no other holder of `key` runs; holders go in the order they asked. */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = before.then(() => mine);
    this.locks.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
