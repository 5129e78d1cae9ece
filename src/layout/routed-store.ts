// One store for the copy engine that sends each repository where it lives: a layout's (`oci:` /
// `oci-archive:`) to the layout store, everything else to the registry client. The engine never learns
// which it talks to; and since a layout's "registry" is its own key (reference.ts), what the engine
// learns about blobs on one (presence, mount sources) never applies to the other.

import type { Readable } from 'node:stream';
import type { ManifestInfo, ReferrersAnswer, RegistryStore, UploadSink } from '../copy/store.js';
import type { Digest } from '../oci/digest.js';
import type { Manifest } from '../oci/manifest.js';
import { isLayoutKey, type Reference, type Repository } from '../reference/reference.js';
import type { LayoutStore } from './layout-store.js';

export class RoutedStore implements RegistryStore {
  constructor(
    readonly registries: RegistryStore,
    readonly layouts: LayoutStore,
  ) {}

  private of(repo: Repository): RegistryStore {
    return repo.layout ? this.layouts : this.registries;
  }

  tagList(repo: Repository): Promise<string[]> {
    return this.of(repo).tagList(repo);
  }

  manifestHead(ref: Reference): Promise<ManifestInfo | undefined> {
    return this.of(ref).manifestHead(ref);
  }

  manifestGet(ref: Reference): Promise<Manifest> {
    return this.of(ref).manifestGet(ref);
  }

  manifestPut(repo: Repository, selector: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    return this.of(repo).manifestPut(repo, selector, bytes, mediaType);
  }

  blobHead(repo: Repository, digest: Digest): Promise<number | undefined> {
    return this.of(repo).blobHead(repo, digest);
  }

  blobGet(repo: Repository, digest: Digest, size?: number): Promise<Readable> {
    return this.of(repo).blobGet(repo, digest, size);
  }

  uploadStart(
    repo: Repository,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSink }> {
    return this.of(repo).uploadStart(repo, mount);
  }

  /** A layout is never throttled; a registry is when the client says so. */
  congested(registry: string): boolean {
    return !isLayoutKey(registry) && (this.registries.congested?.(registry) ?? false);
  }

  congestionChanged(): Promise<void> {
    return this.registries.congestionChanged?.() ?? new Promise(() => {});
  }

  /** Within one layout every blob is shared, so a "mount" (finding it there) always can succeed. */
  supportsMounts(registry: string): boolean {
    if (isLayoutKey(registry)) return true;
    return this.registries.supportsMounts?.(registry) ?? true;
  }

  /**
   * A layout has no referrers API: its referrers are in fallback tags (`sha256-<hex>`), which it reads and
   * writes like any tag. A registry answers for itself.
   */
  referrers(repo: Repository, subject: Digest, artifactType?: string): Promise<ReferrersAnswer> {
    if (repo.layout || !this.registries.referrers) return Promise.resolve({ api: false });
    return this.registries.referrers(repo, subject, artifactType);
  }

  referrersApi(registry: string): boolean | undefined {
    if (isLayoutKey(registry) || !this.registries.referrers) return false;
    return this.registries.referrersApi?.(registry);
  }

  /** A layout is created by its first write; registries that need repositories first get them. */
  async ensureRepository(repo: Repository): Promise<'exists' | 'created' | 'unmanaged'> {
    if (repo.layout) return 'unmanaged';
    return (await this.registries.ensureRepository?.(repo)) ?? 'unmanaged';
  }

  async repositoryState(repo: Repository): Promise<'exists' | 'missing' | 'unmanaged'> {
    if (repo.layout) return 'unmanaged';
    return (await this.registries.repositoryState?.(repo)) ?? 'unmanaged';
  }

  repositorySettings(repo: Repository): string | undefined {
    return repo.layout ? undefined : this.registries.repositorySettings?.(repo);
  }
}
