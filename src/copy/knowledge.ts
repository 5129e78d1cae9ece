// What this run has learned about blobs on registries: where each digest is known to be present (so a
// blob is handled once per target, and a second repository on the same registry mounts it), and which
// transfers are under way (so two images sharing a layer do not upload it twice at the same time). It also
// knows which manifest writes are under way per repository: a registry that verifies what an index names
// (distribution does) can find a manifest another image of the run is writing at that moment half
// written, so a parent waits for the writes of what it names.
//
// Besides what this run saw, mount sources can come from outside it: repositories named on the command
// line (`copy --mount-from`), tried first, and what earlier runs pushed (MountHints, the CLI's cache on
// disk). Those are only hints: a mount the registry declines goes on as an upload in the session it
// opened, so a stale hint costs nothing; they never make a blob count as present.

import type { Digest } from '../oci/digest.js';

/** Where earlier runs put blobs: mount sources worth trying, kept across runs by the caller. */
export interface MountHints {
  /** Repositories of `registry` that held `digest` when an earlier run last looked, most recent first. */
  candidates(registry: string, digest: Digest): readonly string[];
  /** A blob this run has seen present (pushed, mounted or found) in a repository. */
  record(registry: string, repository: string, digest: Digest): void;
}

export class BlobKnowledge {
  private readonly present = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly refused = new Set<string>();
  private readonly manifestWrites = new Map<string, Promise<unknown>>();
  private readonly hints: MountHints | undefined;
  /** Repositories to try a mount from first, per registry (`copy --mount-from`). */
  private readonly preferred = new Map<string, string[]>();

  constructor(options: { hints?: MountHints; mountFrom?: { registry: string; path: string }[] } = {}) {
    this.hints = options.hints;
    for (const r of options.mountFrom ?? []) {
      const list = this.preferred.get(r.registry) ?? [];
      list.push(r.path);
      this.preferred.set(r.registry, list);
    }
  }

  private static key(registry: string, digest: Digest): string {
    return `${registry} ${digest}`;
  }

  markPresent(registry: string, repository: string, digest: Digest): void {
    const key = BlobKnowledge.key(registry, digest);
    let repos = this.present.get(key);
    if (!repos) {
      repos = new Set();
      this.present.set(key, repos);
    }
    repos.add(repository);
    this.hints?.record(registry, repository, digest);
  }

  isPresent(registry: string, repository: string, digest: Digest): boolean {
    return this.present.get(BlobKnowledge.key(registry, digest))?.has(repository) ?? false;
  }

  /**
   * Another repository on the same registry to mount the digest from: one this run knows holds it, else
   * one named to try first, else one an earlier run left it in. `certain` (a plan's count): only the
   * first. Repositories the registry refused to mount from are not offered again.
   */
  mountSource(
    registry: string,
    repository: string,
    digest: Digest,
    options: { certain?: boolean } = {},
  ): string | undefined {
    const usable = (repo: string) => repo !== repository && !this.mountRefused(registry, repo);
    for (const repo of this.present.get(BlobKnowledge.key(registry, digest)) ?? []) {
      if (usable(repo)) return repo;
    }
    if (options.certain) return undefined;
    for (const repo of this.preferred.get(registry) ?? []) if (usable(repo)) return repo;
    for (const repo of this.hints?.candidates(registry, digest) ?? []) if (usable(repo)) return repo;
    return undefined;
  }

  /** An earlier run left `digest` in this very repository (worth a HEAD even where none seemed needed). */
  hinted(registry: string, repository: string, digest: Digest): boolean {
    return this.hints?.candidates(registry, digest).includes(repository) ?? false;
  }

  /** Manifests this run pushed, by registry, repository and digest. */
  private readonly manifests = new Set<string>();

  /** A manifest this run pushed to a repository: later images find it there without asking. */
  markManifest(registry: string, repository: string, digest: Digest): void {
    this.manifests.add(`${registry}/${repository}@${digest}`);
  }

  hasManifest(registry: string, repository: string, digest: Digest): boolean {
    return this.manifests.has(`${registry}/${repository}@${digest}`);
  }

  /**
   * The registry refused our credentials for a mount from `repository` (Harbor answers 401 when a robot
   * cannot read the `from` project): it will refuse the next one too, so the run stops asking.
   */
  refuseMountsFrom(registry: string, repository: string): void {
    this.refused.add(`${registry} ${repository}`);
  }

  mountRefused(registry: string, repository: string): boolean {
    return this.refused.has(`${registry} ${repository}`);
  }

  /** The transfer of this digest to this registry that is under way, if any. */
  pending(registry: string, digest: Digest): Promise<void> | undefined {
    return this.inflight.get(BlobKnowledge.key(registry, digest));
  }

  /** Register a transfer; it is forgotten when it settles. */
  track(registry: string, digest: Digest, work: Promise<void>): void {
    const key = BlobKnowledge.key(registry, digest);
    const tracked = work.finally(() => {
      if (this.inflight.get(key) === tracked) this.inflight.delete(key);
    });
    tracked.catch(() => {});
    this.inflight.set(key, tracked);
  }

  /** Record a manifest write to a repository; it is forgotten when it settles. */
  writingManifest<T>(registry: string, repository: string, digest: Digest, write: Promise<T>): Promise<T> {
    const key = `${registry}/${repository} ${digest}`;
    const tracked = write.finally(() => {
      if (this.manifestWrites.get(key) === tracked) this.manifestWrites.delete(key);
    });
    tracked.catch(() => {});
    this.manifestWrites.set(key, tracked);
    return write;
  }

  /** Resolves once no write of these manifests to this repository is under way (whatever its outcome). */
  async manifestsSettled(registry: string, repository: string, digests: Iterable<Digest>): Promise<void> {
    const pending: Promise<unknown>[] = [];
    for (const d of digests) {
      const p = this.manifestWrites.get(`${registry}/${repository} ${d}`);
      if (p) pending.push(p.catch(() => {}));
    }
    await Promise.all(pending);
  }
}
