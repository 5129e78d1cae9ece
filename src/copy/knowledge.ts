// What this run has learned about blobs on registries: where each digest is known to be present (so a
// blob is handled once per target, and a second repository on the same registry mounts it), and which
// transfers are under way (so two images sharing a layer do not upload it twice at the same time). It also
// knows which manifest writes are under way per repository: a registry that verifies what an index names
// (distribution does) can find a manifest another image of the run is writing at that moment half
// written, so a parent waits for the writes of what it names.

import type { Digest } from '../oci/digest.js';

export class BlobKnowledge {
  private readonly present = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly refused = new Set<string>();
  private readonly manifestWrites = new Map<string, Promise<unknown>>();

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
  }

  isPresent(registry: string, repository: string, digest: Digest): boolean {
    return this.present.get(BlobKnowledge.key(registry, digest))?.has(repository) ?? false;
  }

  /**
   * Another repository on the same registry that holds the digest: a mount source. Repositories the
   * registry refused to mount from are not offered again.
   */
  mountSource(registry: string, repository: string, digest: Digest): string | undefined {
    for (const repo of this.present.get(BlobKnowledge.key(registry, digest)) ?? []) {
      if (repo !== repository && !this.mountRefused(registry, repo)) return repo;
    }
    return undefined;
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
