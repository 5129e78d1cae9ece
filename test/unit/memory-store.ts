// An in-memory RegistryStore for the copy engine's unit tests. It behaves like a small registry (a
// manifest PUT is refused while a blob or child it names is missing; a finished upload is refused when
// its bytes do not match the digest) and counts every call per operation and per registry, so tests can
// assert exact request numbers the way oras-go's tests do.

import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import type { ManifestInfo, ReferrersAnswer, RegistryStore, UploadSink } from '../../src/copy/store.js';
import { ImmutableTagError, NotFoundError } from '../../src/errors.js';
import { type Digest, digestOf, isDigest } from '../../src/oci/digest.js';
import { type Manifest, parseManifest } from '../../src/oci/manifest.js';
import { referrerDescriptor } from '../../src/oci/referrers.js';
import type { Reference, Repository } from '../../src/reference/reference.js';
import { ReferrersModes } from '../../src/registry/referrers-mode.js';

/**
 * `uploadStart` with a mount request is counted as 'mount' (whatever the answer), without one as
 * 'uploadStart'. 'patch', 'finish' and 'cancel' are calls on upload sessions.
 */
export type Op =
  | 'tagList'
  | 'manifestHead'
  | 'manifestGet'
  | 'manifestPut'
  | 'blobHead'
  | 'blobGet'
  | 'uploadStart'
  | 'mount'
  | 'patch'
  | 'finish'
  | 'cancel'
  | 'referrers';

export interface Call {
  op: Op;
  registry: string;
  repository: string;
  /** Digest, tag or Content-Range, depending on the operation. */
  detail: string;
}

interface StoredManifest {
  bytes: Uint8Array;
  mediaType: string;
}

class Repo {
  readonly manifests = new Map<Digest, StoredManifest>();
  readonly tags = new Map<string, Digest>();
  readonly blobs = new Map<Digest, Uint8Array>();
}

export class MemoryStore implements RegistryStore {
  /** Every call, in the order it was made. */
  readonly calls: Call[] = [];
  /** Bytes per PATCH a registry wants (what a profile's upload policy says for a real registry). */
  chunkSize: (registry: string) => number = () => 1 << 20;
  /** Registries that answer no mount (their profile says mounts are off). */
  readonly noMounts = new Set<string>();
  /** Registries that need a repository created before a push (ECR); the created ones are recorded. */
  readonly createsRepositories = new Set<string>();
  readonly createdRepositories: string[] = [];
  /** Registries whose tags are immutable (ECR): moving a tag is refused, re-pushing its digest is fine. */
  readonly immutableTags = new Set<string>();
  /** Tags to refuse as immutable even though the store does not hold them ("registry/path:tag"): a race. */
  readonly refuseTags = new Set<string>();
  /** blobGet streams are served in pieces of this many bytes (Infinity: one piece). */
  blobPieceSize = Number.POSITIVE_INFINITY;
  /** Fault injection: return an error to make that call fail (after it is counted). */
  fault: ((call: Call) => unknown) | undefined;
  /** blobGet streams currently open, and the most that were open at once. */
  openStreams = 0;
  maxOpenStreams = 0;
  /** Every session opened, for inspecting PATCH ranges. */
  readonly sessions: MemorySession[] = [];
  /**
   * Registries with the referrers API (listing every manifest whose subject is the digest, and saying so
   * on a manifest PUT, like OCI-Subject). The others answer a referrers request as distribution 2.8 does:
   * not found, so the fallback tag schema applies.
   */
  readonly referrersApiRegistries = new Set<string>();
  /** Registries whose sessions take a whole blob in one streamed PATCH (their profile allows it). */
  readonly streaming = new Set<string>();
  /** Registries throttling us now (what the transport learns from 429s), and a way to wait for a change. */
  private readonly congestedNow = new Set<string>();
  private congestionWaiters: (() => void)[] = [];
  /** Hold a call (after it is counted, before it is answered) until the returned promise settles. */
  hold: ((call: Call) => Promise<void> | undefined) | undefined;
  /** What was learned, kept as the registry client keeps it (one probe per registry at a time). */
  private modes = new ReferrersModes();
  private readonly repos = new Map<string, Repo>();

  // ---- seeding and inspection -------------------------------------------------------------------

  repo(r: Repository): Repo {
    const key = `${r.registry}/${r.path}`;
    let repo = this.repos.get(key);
    if (!repo) {
      repo = new Repo();
      this.repos.set(key, repo);
    }
    return repo;
  }

  /** Store a blob under its digest. */
  putBlob(r: Repository, bytes: Uint8Array): Digest {
    const digest = digestOf(bytes);
    this.repo(r).blobs.set(digest, bytes);
    return digest;
  }

  /** Store bytes under a digest of your choice: a corrupt source. */
  putCorruptBlob(r: Repository, digest: Digest, bytes: Uint8Array): void {
    this.repo(r).blobs.set(digest, bytes);
  }

  /** Store a manifest (no checks) and optionally tag it. */
  putManifest(r: Repository, bytes: Uint8Array, mediaType: string, tag?: string): Digest {
    const digest = digestOf(bytes);
    const repo = this.repo(r);
    repo.manifests.set(digest, { bytes, mediaType });
    if (tag !== undefined) repo.tags.set(tag, digest);
    return digest;
  }

  blob(r: Repository, digest: Digest): Uint8Array | undefined {
    return this.repos.get(`${r.registry}/${r.path}`)?.blobs.get(digest);
  }

  manifestBytes(r: Repository, selector: string): Uint8Array | undefined {
    const repo = this.repos.get(`${r.registry}/${r.path}`);
    const digest = isDigest(selector) ? selector : repo?.tags.get(selector);
    return digest === undefined ? undefined : repo?.manifests.get(digest)?.bytes;
  }

  /** Calls of one operation, optionally on one registry only. */
  count(op: Op, registry?: string): number {
    return this.calls.filter((c) => c.op === op && (registry === undefined || c.registry === registry))
      .length;
  }

  /** The calls of some operations, in order, optionally on one registry only. */
  log(ops: Op[], registry?: string): Call[] {
    return this.calls.filter(
      (c) => ops.includes(c.op) && (registry === undefined || c.registry === registry),
    );
  }

  /** Forget which registries were found to have the referrers API: what a new run (process) knows. */
  forgetReferrersModes(): void {
    this.modes = new ReferrersModes();
  }

  resetCalls(): void {
    this.calls.length = 0;
    this.sessions.length = 0;
  }

  /** Count a call; yield once so concurrent callers interleave as they would over a network. */
  async record(op: Op, r: Repository, detail: string): Promise<void> {
    const call: Call = { op, registry: r.registry, repository: r.path, detail };
    this.calls.push(call);
    await tick();
    const held = this.hold?.(call);
    if (held) await held;
    const err = this.fault?.(call);
    if (err !== undefined) throw err;
  }

  // ---- RegistryStore ----------------------------------------------------------------------------

  async tagList(r: Repository): Promise<string[]> {
    await this.record('tagList', r, '');
    return [...this.repo(r).tags.keys()].sort();
  }

  async manifestHead(ref: Reference): Promise<ManifestInfo | undefined> {
    const selector = ref.digest ?? ref.tag ?? '';
    await this.record('manifestHead', ref, selector);
    const repo = this.repo(ref);
    const digest = ref.digest ?? repo.tags.get(selector);
    const m = digest === undefined ? undefined : repo.manifests.get(digest);
    if (!m || digest === undefined) return undefined;
    return { digest, mediaType: m.mediaType, size: m.bytes.byteLength };
  }

  async manifestGet(ref: Reference): Promise<Manifest> {
    const selector = ref.digest ?? ref.tag ?? '';
    await this.record('manifestGet', ref, selector);
    const repo = this.repo(ref);
    const digest = ref.digest ?? repo.tags.get(selector);
    const m = digest === undefined ? undefined : repo.manifests.get(digest);
    if (!m) {
      throw new NotFoundError(`manifest ${selector} not found`, {
        context: { registry: ref.registry, repository: ref.path, step: 'manifest GET' },
      });
    }
    return parseManifest(m.bytes, m.mediaType);
  }

  async manifestPut(r: Repository, selector: string, bytes: Uint8Array, mediaType: string): Promise<Digest> {
    await this.record('manifestPut', r, selector);
    const repo = this.repo(r);
    const digest = digestOf(bytes);
    if (isDigest(selector) && selector !== digest) throw new Error(`DIGEST_INVALID: ${selector} ≠ ${digest}`);
    // Like a registry: everything the manifest names must already be in the repository.
    const m = parseManifest(bytes, mediaType);
    const blobs = m.kind === 'image' ? [m.config, ...m.layers] : [];
    for (const b of blobs) {
      if (!repo.blobs.has(b.digest)) throw new Error(`MANIFEST_BLOB_UNKNOWN: ${b.digest} in ${r.path}`);
    }
    const children = m.kind === 'index' ? m.manifests : [];
    for (const c of children) {
      if (!repo.manifests.has(c.digest)) throw new Error(`MANIFEST_UNKNOWN: child ${c.digest} in ${r.path}`);
    }
    if (!isDigest(selector)) {
      const current = repo.tags.get(selector);
      const refused = this.refuseTags.has(`${r.registry}/${r.path}:${selector}`);
      if (refused || (this.immutableTags.has(r.registry) && current !== undefined && current !== digest)) {
        throw new ImmutableTagError(selector, digest, current, {
          context: { registry: r.registry, repository: r.path, step: `manifest PUT ${selector}` },
        });
      }
    }
    repo.manifests.set(digest, { bytes: Uint8Array.from(bytes), mediaType });
    if (!isDigest(selector)) repo.tags.set(selector, digest);
    if (m.subject && this.referrersApiRegistries.has(r.registry)) this.modes.learn(r.registry, 'api');
    return digest;
  }

  async referrers(r: Repository, subject: Digest, artifactType?: string): Promise<ReferrersAnswer> {
    return this.modes.once(r.registry, () => this.referrersCall(r, subject, artifactType));
  }

  private async referrersCall(
    r: Repository,
    subject: Digest,
    artifactType?: string,
  ): Promise<ReferrersAnswer> {
    if (this.modes.get(r.registry) === 'tag-schema') return { api: false };
    await this.record('referrers', r, subject);
    if (!this.referrersApiRegistries.has(r.registry)) {
      this.modes.learn(r.registry, 'tag-schema');
      return { api: false };
    }
    this.modes.learn(r.registry, 'api');
    const repo = this.repos.get(`${r.registry}/${r.path}`);
    if (!repo) return { api: undefined };
    const descriptors = [...repo.manifests.values()]
      .map((m) => parseManifest(m.bytes, m.mediaType))
      .filter((m) => m.subject?.digest === subject)
      .map(referrerDescriptor)
      .filter((d) => artifactType === undefined || d.artifactType === artifactType);
    return { api: true, descriptors, filtered: artifactType !== undefined };
  }

  referrersApi(registry: string): boolean | undefined {
    const mode = this.modes.get(registry);
    return mode === undefined ? undefined : mode === 'api';
  }

  async blobHead(r: Repository, digest: Digest): Promise<number | undefined> {
    await this.record('blobHead', r, digest);
    return this.repo(r).blobs.get(digest)?.byteLength;
  }

  async blobGet(r: Repository, digest: Digest, _size?: number): Promise<Readable> {
    await this.record('blobGet', r, digest);
    const bytes = this.repo(r).blobs.get(digest);
    if (!bytes) {
      throw new NotFoundError(`blob ${digest} not found`, {
        context: { registry: r.registry, repository: r.path, step: 'blob GET' },
      });
    }
    const pieces: Buffer[] = [];
    const step = Math.max(1, Math.min(this.blobPieceSize, bytes.byteLength));
    for (let i = 0; i < bytes.byteLength; i += step) pieces.push(Buffer.from(bytes.subarray(i, i + step)));
    const stream = Readable.from(pieces, { objectMode: false });
    this.openStreams++;
    this.maxOpenStreams = Math.max(this.maxOpenStreams, this.openStreams);
    stream.once('close', () => this.openStreams--);
    return stream;
  }

  async uploadStart(
    r: Repository,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSink }> {
    await this.record(mount ? 'mount' : 'uploadStart', r, mount ? `${mount.digest} from ${mount.from}` : '');
    if (mount) {
      const bytes = this.repo({ registry: r.registry, path: mount.from }).blobs.get(mount.digest);
      if (bytes) {
        this.repo(r).blobs.set(mount.digest, bytes);
        return { mounted: true };
      }
    }
    const session = new MemorySession(this, r, this.chunkSize(r.registry));
    this.sessions.push(session);
    return { mounted: false, session };
  }

  setCongested(registry: string, congested: boolean): void {
    if (congested) this.congestedNow.add(registry);
    else this.congestedNow.delete(registry);
    const waiters = this.congestionWaiters;
    this.congestionWaiters = [];
    for (const w of waiters) w();
  }

  congested(registry: string): boolean {
    return this.congestedNow.has(registry);
  }

  congestionChanged(): Promise<void> {
    return new Promise((resolve) => this.congestionWaiters.push(resolve));
  }

  supportsMounts(registry: string): boolean {
    return !this.noMounts.has(registry);
  }

  async ensureRepository(r: Repository): Promise<'exists' | 'created' | 'unmanaged'> {
    if (!this.createsRepositories.has(r.registry)) return 'unmanaged';
    const key = `${r.registry}/${r.path}`;
    const held = this.repos.get(key);
    const hasContent = held !== undefined && (held.blobs.size > 0 || held.manifests.size > 0);
    if (this.createdRepositories.includes(key) || hasContent) return 'exists';
    this.createdRepositories.push(key);
    return 'created';
  }

  async repositoryState(r: Repository): Promise<'exists' | 'missing' | 'unmanaged'> {
    if (!this.createsRepositories.has(r.registry)) return 'unmanaged';
    const key = `${r.registry}/${r.path}`;
    const held = this.repos.get(key);
    const hasContent = held !== undefined && (held.blobs.size > 0 || held.manifests.size > 0);
    return this.createdRepositories.includes(key) || hasContent ? 'exists' : 'missing';
  }

  repositorySettings(r: Repository): string | undefined {
    return this.createsRepositories.has(r.registry) ? 'immutable tags' : undefined;
  }
}

/** An upload session: PATCHes append (one at a time, contiguous); finish verifies and commits. */
export class MemorySession implements UploadSink {
  offset = 0;
  /** Content-Range of every PATCH, "start-end" inclusive, in arrival order. */
  readonly ranges: string[] = [];
  /** Bytes sent with the closing PUT. */
  lastBytes = 0;
  state: 'open' | 'committed' | 'cancelled' = 'open';
  /** The digest the session was committed under. */
  committed: Digest | undefined;
  private readonly parts: Uint8Array[] = [];
  private busy = false;

  readonly monolithicMaxSize: number;
  readonly streamable: boolean;

  constructor(
    private readonly store: MemoryStore,
    readonly repository: Repository,
    readonly chunkSize: number,
  ) {
    this.monolithicMaxSize = chunkSize;
    this.streamable = store.streaming.has(repository.registry);
  }

  /** One PATCH whose body is streamed: counted as a 'patch' of the whole range once it has been read. */
  async stream(body: Readable, size: number): Promise<void> {
    if (!this.streamable) throw new Error('stream on a session whose registry takes chunks');
    if (this.busy) throw new Error('416: streamed PATCH sent while another PATCH is in flight');
    if (this.state !== 'open') throw new Error(`PATCH on a ${this.state} session`);
    const start = this.offset;
    const range = `${start}-${start + size - 1}`;
    this.busy = true;
    const parts: Buffer[] = [];
    try {
      await this.store.record('patch', this.repository, range);
      for await (const chunk of body) parts.push(Buffer.from(chunk as Buffer));
    } finally {
      this.busy = false;
    }
    const bytes = Buffer.concat(parts);
    // Content-Length: a body of another length is refused like an HTTP server would.
    if (bytes.byteLength !== size) throw new Error(`400: streamed ${bytes.byteLength} bytes, said ${size}`);
    this.parts.push(bytes);
    this.ranges.push(range);
    this.offset += size;
    this.streamedBytes += size;
  }

  /** Bytes that came in streamed PATCHes. */
  streamedBytes = 0;

  async patch(chunk: Uint8Array): Promise<void> {
    const start = this.offset;
    const range = `${start}-${start + chunk.byteLength - 1}`;
    // A second PATCH before the first is answered would reach a registry out of order (416).
    if (this.busy) throw new Error(`416: PATCH ${range} sent while another PATCH is in flight`);
    if (this.state !== 'open') throw new Error(`PATCH on a ${this.state} session`);
    if (chunk.byteLength === 0) throw new Error('empty PATCH');
    this.busy = true;
    try {
      await this.store.record('patch', this.repository, range);
    } finally {
      this.busy = false;
    }
    if (this.offset !== start) throw new Error(`416: range ${range} does not start at ${this.offset}`);
    this.parts.push(Uint8Array.from(chunk));
    this.ranges.push(range);
    this.offset += chunk.byteLength;
  }

  async finish(digest: Digest, last?: Uint8Array): Promise<void> {
    if (this.busy) throw new Error('PUT sent while a PATCH is in flight');
    if (this.state !== 'open') throw new Error(`PUT on a ${this.state} session`);
    await this.store.record('finish', this.repository, digest);
    if (last) this.parts.push(Uint8Array.from(last));
    this.lastBytes = last?.byteLength ?? 0;
    const bytes = Buffer.concat(this.parts);
    const actual = digestOf(bytes);
    if (actual !== digest) throw new Error(`DIGEST_INVALID: uploaded ${actual}, PUT says ${digest}`);
    this.offset = bytes.byteLength;
    this.state = 'committed';
    this.committed = digest;
    this.store.repo(this.repository).blobs.set(digest, bytes);
  }

  async cancel(): Promise<void> {
    await this.store.record('cancel', this.repository, '');
    if (this.state === 'open') this.state = 'cancelled';
  }
}
