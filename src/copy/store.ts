// The small interface the copy engine works against. The registry client satisfies it; tests may use
// in-memory stores. Nothing here knows about HTTP.

import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { Manifest } from '../oci/manifest.js';
import type { ReferrersAnswer } from '../oci/referrers.js';
import type { Reference, Repository } from '../reference/reference.js';

export type { ReferrersAnswer };

export interface ManifestInfo {
  digest: Digest;
  mediaType: string | undefined;
  size: number | undefined;
}

export interface UploadSink {
  /** Bytes the registry has accepted so far. */
  readonly offset: number;
  /** Bytes per PATCH this registry wants (its profile's policy, raised to its OCI-Chunk-Min-Length). */
  readonly chunkSize: number;
  /** A blob up to this size goes in one PUT. */
  readonly monolithicMaxSize: number;
  patch(chunk: Uint8Array): Promise<void>;
  /**
   * The registry takes a whole blob in one request (its profile says so): `stream` sends `size` bytes of
   * `body` as a single PATCH, then `finish` closes with the digest. Absent or false: chunks by `patch`.
   */
  readonly streamable?: boolean;
  stream?(body: Readable, size: number): Promise<void>;
  finish(digest: Digest, last?: Uint8Array): Promise<void>;
  cancel(): Promise<void>;
}

export interface RegistryStore {
  tagList(repo: Repository): Promise<string[]>;
  manifestHead(ref: Reference): Promise<ManifestInfo | undefined>;
  manifestGet(ref: Reference): Promise<Manifest>;
  manifestPut(repo: Repository, selector: string, bytes: Uint8Array, mediaType: string): Promise<Digest>;
  blobHead(repo: Repository, digest: Digest): Promise<number | undefined>;
  /** With `size`, a store may resume a body cut midway; the caller verifies what it reads either way. */
  blobGet(repo: Repository, digest: Digest, size?: number): Promise<Readable>;
  uploadStart(
    repo: Repository,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSink }>;
  /** Whether asking this registry for a cross-repository mount can succeed (default: yes). */
  supportsMounts?(registry: string): boolean;
  /**
   * Make sure a target repository exists before anything is written to it (registries that need
   * repositories created first). Resolves once it exists; "unmanaged" where the store does not create.
   */
  ensureRepository?(repo: Repository): Promise<'exists' | 'created' | 'unmanaged'>;
  /** Plans: whether a repository this store would create exists, without creating it. */
  repositoryState?(repo: Repository): Promise<'exists' | 'missing' | 'unmanaged'>;
  /** What a repository this store would create is created with, in words (for reports and the audit log). */
  repositorySettings?(repo: Repository): string | undefined;
  /**
   * The referrers of `subject` through the registry's referrers API (every page). A registry found to
   * have no such API is not asked again: later calls answer `{ api: false }` at once. A store without
   * this operation (an OCI layout) is taken to have no such API: its referrers are in fallback tags.
   */
  referrers?(repo: Repository, subject: Digest, artifactType?: string): Promise<ReferrersAnswer>;
  /**
   * Whether `registry` has the referrers API, as far as this run has learned without asking (a referrers
   * request, or a manifest PUT answered with OCI-Subject); undefined when not known yet.
   */
  referrersApi?(registry: string): boolean | undefined;
  /**
   * Whether `registry` is throttling us now (it answered 429 or 503 a moment ago): work for its targets
   * is then not waited for by the others. Absent: never.
   */
  congested?(registry: string): boolean;
  /** Settles at the next change of any registry's congestion (for waits that depend on it). */
  congestionChanged?(): Promise<void>;
}
