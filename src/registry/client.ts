// The registry client: resource-first operations of the distribution API (ManifestHead, BlobGet,
// UploadStart...), authenticated per host, with HTTP statuses sorted into typed errors in one place.

import type { Readable } from 'node:stream';
import { z } from 'zod';
import {
  AuthError,
  DigestMismatchError,
  type ErrorContext,
  NotFoundError,
  PermissionError,
  RegistryError,
} from '../errors.js';
import { algorithmOf, type Digest, digestOf, isDigest } from '../oci/digest.js';
import { type Manifest, ManifestParseError, parseManifest } from '../oci/manifest.js';
import { baseMediaType, MANIFEST_ACCEPT } from '../oci/media-types.js';
import {
  apiHost,
  describeSelector,
  type Reference,
  type Repository,
  referenceSelector,
} from '../reference/reference.js';
import { Authenticator, repositoryScope } from './auth.js';
import type { FoundCredential } from './credentials/types.js';
import type { RetryPolicy } from './retry.js';
import {
  drain,
  type Headers,
  type HostSettings,
  header,
  readAll,
  readCapped,
  type TraceFn,
  Transport,
  type TransportRequest,
  type TransportResponse,
} from './transport.js';

/** Manifests larger than this are refused on read (the spec's must-accept size is 4 MiB). */
const MANIFEST_READ_LIMIT = 16 * 1024 * 1024;
const TAG_PAGE_SIZE = 1000;

export interface ClientOptions {
  /** Transport settings per API host (TLS mode, requests in flight). */
  hostSettings: (host: string) => HostSettings;
  /** Credentials for a registry (as written by the user, e.g. "docker.io"). */
  credentials: (registry: string) => Promise<FoundCredential | undefined>;
  retry?: RetryPolicy;
  trace?: TraceFn;
  signal?: AbortSignal;
}

export interface ManifestInfo {
  digest: Digest;
  mediaType: string | undefined;
  size: number | undefined;
}

interface CallOptions {
  repo: Repository;
  scopes: string[];
  step: string;
  method: TransportRequest['method'];
  /** Path under /v2/, or a full URL (upload locations). */
  url: string | URL;
  headers?: Headers;
  body?: TransportRequest['body'];
  followRedirects?: boolean;
  retry?: boolean;
}

const registryErrorsSchema = z.object({
  errors: z.array(z.looseObject({ code: z.string().optional(), message: z.string().optional() })),
});

/** Turn a registry error body into "CODE: message; CODE: message" (size-capped, never raw HTML pages). */
function summariseErrorBody(text: string): { summary: string; codes: string[] } {
  try {
    const parsed = registryErrorsSchema.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.errors.length > 0) {
      const codes = parsed.data.errors.map((e) => e.code ?? '').filter(Boolean);
      const summary = parsed.data.errors
        .slice(0, 3)
        .map((e) => [e.code, e.message].filter(Boolean).join(': '))
        .join('; ');
      return { summary, codes };
    }
  } catch {
    // Not JSON: fall through.
  }
  const plain = text
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return { summary: plain.slice(0, 200), codes: [] };
}

export class RegistryClient {
  readonly transport: Transport;
  private readonly auths = new Map<string, Authenticator>();
  private readonly options: ClientOptions;

  constructor(options: ClientOptions) {
    this.options = options;
    this.transport = new Transport({
      settings: options.hostSettings,
      retry: options.retry,
      trace: options.trace,
    });
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  authenticator(registry: string): Authenticator {
    let a = this.auths.get(registry);
    if (!a) {
      a = new Authenticator(apiHost(registry), this.transport, () => this.options.credentials(registry));
      this.auths.set(registry, a);
    }
    return a;
  }

  private urlFor(repo: Repository, path: string | URL): URL {
    if (path instanceof URL) return path;
    return new URL(`/v2/${repo.path}/${path}`, this.transport.baseUrl(apiHost(repo.registry)));
  }

  /** Send one authenticated request: learn the challenge from a 401, authorize, retry once. */
  private async call(o: CallOptions): Promise<TransportResponse> {
    const auth = this.authenticator(o.repo.registry);
    const url = this.urlFor(o.repo, o.url);
    const replayable = o.body === undefined || typeof o.body === 'string' || o.body instanceof Uint8Array;
    for (let attempt = 0; ; attempt++) {
      const firstContact = await auth.firstContact();
      let res: TransportResponse;
      let authorization: string | undefined;
      let retryable = false;
      try {
        authorization = await auth.authorize(o.scopes, this.signal);
        const headers: Headers = { ...o.headers };
        if (authorization) headers.authorization = authorization;
        res = await this.transport.send({
          method: o.method,
          url,
          headers,
          body: o.body,
          signal: this.signal,
          followRedirects: o.followRedirects,
          retry: o.retry,
        });
        // Learn the challenge before letting requests that waited for this first answer go.
        if (res.status === 401)
          retryable = auth.unauthorized(header(res.headers, 'www-authenticate'), authorization);
      } finally {
        firstContact?.();
      }
      if (res.status !== 401) return res;
      await readCapped(res.body, 4096);
      if (attempt < 2 && replayable && retryable) continue;
      throw await this.unauthorizedError(o, auth, authorization, header(res.headers, 'www-authenticate'));
    }
  }

  private async unauthorizedError(
    o: CallOptions,
    auth: Authenticator,
    sent: string | undefined,
    www: string | undefined,
  ): Promise<Error> {
    const ctx: ErrorContext = { registry: o.repo.registry, repository: o.repo.path, step: o.step };
    const hasCredential = await auth.hasCredential();
    const source = await auth.describeCredentialSource();
    const insufficient = /insufficient_scope/.test(www ?? '');
    if (!hasCredential) {
      return new AuthError(`authentication required: ${o.repo.registry} gives no anonymous access here`, {
        context: ctx,
        hint: 'log in with docker login, or configure credentials for this registry',
      });
    }
    if (insufficient || sent?.startsWith('Bearer ')) {
      const wanted = o.scopes.map((s) => s.replace(/^repository:/, '')).join(' and ');
      return new PermissionError(`access denied: the credentials from ${source} were not granted ${wanted}`, {
        context: ctx,
        hint: 'check that this account may pull/push this repository',
      });
    }
    return new AuthError(
      `authentication failed: ${o.repo.registry} rejected the credentials from ${source}`,
      {
        context: ctx,
        hint: 'check the username and password',
      },
    );
  }

  /** Sort a non-success status into a typed error. Consumes the body. */
  private async errorFor(res: TransportResponse, o: Pick<CallOptions, 'repo' | 'step'>, what?: string) {
    const text = await readCapped(res.body);
    const { summary, codes } = summariseErrorBody(text);
    const context: ErrorContext = { registry: o.repo.registry, repository: o.repo.path, step: o.step };
    const detail = summary ? `: ${summary}` : '';
    if (res.status === 404) {
      return new NotFoundError(`${what ?? 'not found'} (HTTP 404${detail})`, { context });
    }
    if (res.status === 403 || codes.includes('DENIED')) {
      return new PermissionError(`access denied (HTTP ${res.status}${detail})`, {
        context,
        hint: 'check that this account may pull/push this repository',
      });
    }
    return new RegistryError(`registry answered HTTP ${res.status}${detail}`, {
      context,
      status: res.status,
      codes,
    });
  }

  // ---- manifests ---------------------------------------------------------------------------------

  /** HEAD a manifest: its digest without downloading it. Undefined when it does not exist. */
  async manifestHead(ref: Reference): Promise<ManifestInfo | undefined> {
    const o = {
      repo: ref,
      scopes: [repositoryScope(ref.path, 'pull')],
      step: 'manifest HEAD',
      method: 'HEAD' as const,
      url: `manifests/${referenceSelector(ref)}`,
      headers: { accept: MANIFEST_ACCEPT },
    };
    const res = await this.call(o);
    drain(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.errorFor(res, o);
    const digest = header(res.headers, 'docker-content-digest');
    if (!digest || !isDigest(digest)) {
      // Some registries leave the digest out of HEAD answers: fall back to reading the manifest.
      const m = await this.manifestGet(ref);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength };
    }
    if (ref.digest && digest !== ref.digest)
      throw new DigestMismatchError(ref.digest, digest, { context: o });
    const length = header(res.headers, 'content-length');
    return {
      digest,
      mediaType: baseMediaType(header(res.headers, 'content-type')),
      size: length ? Number(length) : undefined,
    };
  }

  /** GET a manifest's exact bytes; the digest is verified against the reference and the registry's header. */
  async manifestGet(ref: Reference): Promise<Manifest> {
    const o = {
      repo: ref,
      scopes: [repositoryScope(ref.path, 'pull')],
      step: 'manifest GET',
      method: 'GET' as const,
      url: `manifests/${referenceSelector(ref)}`,
      headers: { accept: MANIFEST_ACCEPT },
    };
    const res = await this.call(o);
    if (res.status !== 200) throw await this.errorFor(res, o, `${describeSelector(ref)} not found`);
    const bytes = await readAll(res.body, MANIFEST_READ_LIMIT);
    const context: ErrorContext = { registry: ref.registry, repository: ref.path, step: 'manifest GET' };
    const expected = ref.digest ?? header(res.headers, 'docker-content-digest');
    if (expected && isDigest(expected)) {
      const actual = digestOf(bytes, algorithmOf(expected));
      if (actual !== expected) throw new DigestMismatchError(expected, actual, { context });
    }
    try {
      return parseManifest(bytes, baseMediaType(header(res.headers, 'content-type')));
    } catch (err) {
      if (err instanceof ManifestParseError) {
        throw new RegistryError(`unreadable manifest ${referenceSelector(ref)}: ${err.message}`, { context });
      }
      throw err;
    }
  }

  /** PUT manifest bytes under a tag or digest. Returns the digest the registry reports (verified). */
  async manifestPut(
    repo: Repository,
    selector: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<Digest> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, 'pull,push')],
      step: `manifest PUT ${selector}`,
      method: 'PUT' as const,
      url: `manifests/${selector}`,
      headers: { 'content-type': mediaType },
      body: bytes,
    };
    const res = await this.call(o);
    if (res.status !== 201 && res.status !== 200) throw await this.errorFor(res, o);
    drain(res.body);
    const computed = digestOf(bytes);
    const reported = header(res.headers, 'docker-content-digest');
    if (reported && isDigest(reported) && algorithmOf(reported) === 'sha256' && reported !== computed) {
      throw new DigestMismatchError(computed, reported, {
        context: { registry: repo.registry, repository: repo.path, step: o.step },
      });
    }
    return computed;
  }

  async manifestDelete(ref: Reference): Promise<void> {
    const o = {
      repo: ref,
      scopes: [repositoryScope(ref.path, 'pull,push')],
      step: 'manifest DELETE',
      method: 'DELETE' as const,
      url: `manifests/${referenceSelector(ref)}`,
    };
    const res = await this.call(o);
    if (res.status !== 202 && res.status !== 200) throw await this.errorFor(res, o);
    drain(res.body);
  }

  // ---- tags --------------------------------------------------------------------------------------

  /** Every tag of a repository, following Link pagination. */
  async tagList(repo: Repository): Promise<string[]> {
    const tags: string[] = [];
    const seen = new Set<string>();
    let url: string | URL = `tags/list?n=${TAG_PAGE_SIZE}`;
    const step = 'tag list';
    for (;;) {
      const o = { repo, scopes: [repositoryScope(repo.path, 'pull')], step, method: 'GET' as const, url };
      const res = await this.call(o);
      if (res.status !== 200) throw await this.errorFor(res, o, `repository ${repo.path} not found`);
      const text = (await readAll(res.body, 64 * 1024 * 1024)).toString('utf8');
      const parsed = z.object({ tags: z.array(z.string()).nullable().optional() }).safeParse(
        (() => {
          try {
            return JSON.parse(text);
          } catch {
            return undefined;
          }
        })(),
      );
      if (!parsed.success) {
        throw new RegistryError('unreadable tag list', {
          context: { registry: repo.registry, repository: repo.path, step },
        });
      }
      tags.push(...(parsed.data.tags ?? []));
      const next = nextLink(header(res.headers, 'link'), res.url);
      if (!next || seen.has(next.href)) break;
      seen.add(next.href);
      url = next;
    }
    return tags;
  }

  // ---- blobs -------------------------------------------------------------------------------------

  /** HEAD a blob: its size when present, undefined when not. */
  async blobHead(repo: Repository, digest: Digest): Promise<number | undefined> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, 'pull')],
      step: 'blob HEAD',
      method: 'HEAD' as const,
      url: `blobs/${digest}`,
    };
    const res = await this.call(o);
    drain(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.errorFor(res, o);
    const length = header(res.headers, 'content-length');
    return length ? Number(length) : 0;
  }

  /** Streamed blob GET (redirects to storage followed without Authorization). */
  async blobGet(
    repo: Repository,
    digest: Digest,
    scopeActions: 'pull' | 'pull,push' = 'pull',
  ): Promise<Readable> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, scopeActions)],
      step: `blob GET ${digest}`,
      method: 'GET' as const,
      url: `blobs/${digest}`,
    };
    const res = await this.call(o);
    if (res.status !== 200) throw await this.errorFor(res, o, `blob ${digest} not found`);
    return res.body;
  }

  /**
   * Open an upload session, or mount: with `mountFrom`, ask the registry to link the blob from another
   * repository. 201 = mounted; 202 = declined, and the session it opened is the one to use.
   */
  async uploadStart(
    repo: Repository,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
    const scopes = [repositoryScope(repo.path, 'pull,push')];
    let url = 'blobs/uploads/';
    if (mount) {
      scopes.push(repositoryScope(mount.from, 'pull'));
      url += `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}`;
    }
    const o = {
      repo,
      scopes,
      step: mount ? 'blob mount' : 'upload start',
      method: 'POST' as const,
      url,
      headers: { 'content-length': '0' },
    };
    const res = await this.call(o);
    if (mount && res.status === 201) {
      drain(res.body);
      return { mounted: true };
    }
    if (res.status !== 202) throw await this.errorFor(res, o);
    drain(res.body);
    const location = header(res.headers, 'location');
    if (!location) {
      throw new RegistryError('upload session opened without a Location header', {
        context: { registry: repo.registry, repository: repo.path, step: o.step },
      });
    }
    const minChunk = Number(header(res.headers, 'oci-chunk-min-length') ?? 0) || 0;
    return {
      mounted: false,
      session: new UploadSession(this, repo, new URL(location, res.url), minChunk),
    };
  }

  /** Internal: a request against an upload location, authenticated for push. */
  async uploadCall(
    repo: Repository,
    method: 'PATCH' | 'PUT' | 'DELETE' | 'GET',
    url: URL,
    step: string,
    headers: Headers = {},
    body?: Uint8Array,
  ): Promise<TransportResponse> {
    return this.call({
      repo,
      scopes: [repositoryScope(repo.path, 'pull,push')],
      step,
      method,
      url,
      headers,
      body,
      followRedirects: false,
    });
  }

  async uploadError(res: TransportResponse, repo: Repository, step: string): Promise<Error> {
    return this.errorFor(res, { repo, step });
  }

  /** Whether pull is granted: the first page of the tag list (reads nothing else). */
  async checkPull(repo: Repository): Promise<void> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, 'pull')],
      step: 'pull check',
      method: 'GET' as const,
      url: 'tags/list?n=1',
    };
    const res = await this.call(o);
    if (res.status !== 200) throw await this.errorFor(res, o, `repository ${repo.path} not found`);
    drain(res.body);
  }

  /** Whether push is granted: opens an upload session and cancels it at once; nothing is stored. */
  async checkPush(repo: Repository): Promise<void> {
    const opened = await this.uploadStart(repo);
    if (!opened.mounted) await opened.session.cancel();
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** An open blob upload. Tracks its own offset: some registries (ECR) answer PATCH oddly. */
export class UploadSession {
  offset = 0;
  constructor(
    private readonly client: RegistryClient,
    readonly repo: Repository,
    private location: URL,
    /** OCI-Chunk-Min-Length the registry asked for (0 = none). */
    readonly minChunkLength: number,
  ) {}

  /** Send one chunk (Content-Range start-end inclusive, no "bytes " prefix). */
  async patch(chunk: Uint8Array): Promise<void> {
    const end = this.offset + chunk.byteLength - 1;
    const res = await this.client.uploadCall(
      this.repo,
      'PATCH',
      this.location,
      'blob upload (chunk)',
      {
        'content-type': 'application/octet-stream',
        'content-range': `${this.offset}-${end}`,
        'content-length': String(chunk.byteLength),
      },
      chunk,
    );
    if (res.status !== 202 && res.status !== 201 && res.status !== 204) {
      throw await this.client.uploadError(res, this.repo, 'blob upload (chunk)');
    }
    drain(res.body);
    this.follow(res);
    this.offset = end + 1;
  }

  /** Close the session with the blob's digest, sending `last` bytes with it (monolithic when offset is 0). */
  async finish(digest: Digest, last?: Uint8Array): Promise<void> {
    const url = new URL(this.location);
    url.searchParams.set('digest', digest);
    const body = last ?? new Uint8Array(0);
    const headers: Headers = {
      'content-type': 'application/octet-stream',
      'content-length': String(body.byteLength),
    };
    if (body.byteLength > 0 && this.offset > 0) {
      headers['content-range'] = `${this.offset}-${this.offset + body.byteLength - 1}`;
    }
    const res = await this.client.uploadCall(this.repo, 'PUT', url, 'blob upload (commit)', headers, body);
    if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
      throw await this.client.uploadError(res, this.repo, 'blob upload (commit)');
    }
    drain(res.body);
    this.offset += body.byteLength;
  }

  /** Abandon the session (best effort: not every registry supports DELETE). */
  async cancel(): Promise<void> {
    try {
      const res = await this.client.uploadCall(this.repo, 'DELETE', this.location, 'upload cancel');
      drain(res.body);
    } catch {
      // Abandoned sessions expire on the registry side anyway.
    }
  }

  private follow(res: TransportResponse): void {
    const next = header(res.headers, 'location');
    if (next) this.location = new URL(next, res.url);
  }
}

/** The `Link: <...>; rel="next"` target, resolved against the response URL (RFC 8288: rel is a token list). */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]*)>(.*)/.exec(part.trim());
    if (!m) continue;
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;]+))/i.exec(m[2]!);
    const tokens = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (tokens.includes('next')) return new URL(m[1]!, base);
  }
  return undefined;
}
