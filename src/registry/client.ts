// The registry client: resource-first operations of the distribution API (ManifestHead, BlobGet,
// UploadStart...), authenticated per host, with HTTP statuses sorted into typed errors in one place.

import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  AbortedError,
  AuthError,
  DigestMismatchError,
  type ErrorContext,
  formatError,
  ImmutableTagError,
  isAbort,
  isTransient,
  NetworkError,
  NotFoundError,
  PermissionError,
  RegistryError,
  UploadInterruptedError,
} from '../errors.js';
import { algorithmOf, type Digest, digestOf, isDigest } from '../oci/digest.js';
import { type Descriptor, type Manifest, ManifestParseError, parseManifest } from '../oci/manifest.js';
import { baseMediaType, MANIFEST_ACCEPT, OCI_INDEX } from '../oci/media-types.js';
import { type ReferrersAnswer, referrersOf } from '../oci/referrers.js';
import {
  apiHost,
  describeSelector,
  type Reference,
  type Repository,
  referenceSelector,
} from '../reference/reference.js';
import { Authenticator, repositoryScope } from './auth.js';
import { chunkSizeFor, type RegistryProfile } from './profile/profile.js';
import type { RegistryProfiles } from './profile/profiles.js';
import { ReferrersModes } from './referrers-mode.js';
import { defaultRetryPolicy, type RetryPolicy, retryDelay, sleep } from './retry.js';
import { classifyStatus } from './status.js';
import {
  drain,
  type Headers,
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
/** Pages of one referrers list followed at most (a registry that keeps linking on is not followed forever). */
const REFERRERS_PAGE_LIMIT = 100;

export interface ClientOptions {
  /** One profile per registry: TLS, limits, credentials, upload policy, quirks. */
  profiles: RegistryProfiles;
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
  /** Instead of the run's signal: cancelling upload sessions must still work after an abort. */
  signal?: AbortSignal;
  /**
   * A 401 to a request that carried credentials is final: no new token is fetched to try again. For
   * mounts, where the registry refuses the `from` repository (Harbor) and a fresh token would be refused
   * the same way: the caller falls back to an upload.
   */
  noReauth?: boolean;
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
  readonly profiles: RegistryProfiles;
  private readonly auths = new Map<string, Authenticator>();
  private readonly repositories = new Map<string, Promise<'exists' | 'created'>>();
  private readonly repositoryStates = new Map<string, Promise<'exists' | 'missing'>>();
  private readonly options: ClientOptions;
  readonly retryPolicy: RetryPolicy;
  /** Which registries have the referrers API, learned once each and kept in their profiles. */
  readonly referrersModes: ReferrersModes;

  constructor(options: ClientOptions) {
    this.options = options;
    this.profiles = options.profiles;
    this.referrersModes = new ReferrersModes((registry) => this.profiles.for(registry));
    this.retryPolicy = options.retry ?? defaultRetryPolicy;
    this.transport = new Transport({
      settings: (host) => this.profiles.hostSettings(host),
      retry: this.retryPolicy,
      trace: options.trace,
    });
  }

  /** The profile of a registry ("docker.io", "quay.io", "localhost:5000"). */
  profile(registry: string): RegistryProfile {
    return this.profiles.for(registry);
  }

  get signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  authenticator(registry: string): Authenticator {
    let a = this.auths.get(registry);
    if (!a) {
      a = new Authenticator(apiHost(registry), this.transport, this.profile(registry).credentials);
      this.auths.set(registry, a);
    }
    return a;
  }

  private urlFor(repo: Repository, path: string | URL): URL {
    if (path instanceof URL) return path;
    return new URL(`/v2/${repo.path}/${path}`, this.transport.baseUrl(apiHost(repo.registry)));
  }

  /**
   * Send one authenticated request. A 401 teaches the challenge (or says a cached token is no longer
   * good): authorize again and resend, at most twice. A credential the registry refuses as expired (a
   * 401 after it was sent, or a vendor's 403 that means "expired") is fetched again once, when its
   * provider can renew it (ECR tokens).
   */
  private async call(o: CallOptions): Promise<TransportResponse> {
    const auth = this.authenticator(o.repo.registry);
    const quirks = this.profile(o.repo.registry).quirks;
    const url = this.urlFor(o.repo, o.url);
    const replayable = o.body === undefined || typeof o.body === 'string' || o.body instanceof Uint8Array;
    const signal = o.signal ?? this.signal;
    let reauths = 0;
    let renewed = false;
    for (;;) {
      const firstContact = await auth.firstContact();
      let res: TransportResponse;
      let authorization: string | undefined;
      let changed = false;
      try {
        authorization = await auth.authorize(o.scopes, signal);
        const headers: Headers = { ...o.headers };
        if (authorization) headers.authorization = authorization;
        res = await this.transport.send({
          method: o.method,
          url,
          headers,
          body: o.body,
          signal,
          followRedirects: o.followRedirects,
          retry: o.retry,
        });
        // Learn the challenge before letting requests that waited for this first answer go.
        if (res.status === 401)
          changed = auth.unauthorized(header(res.headers, 'www-authenticate'), authorization);
      } finally {
        firstContact?.();
      }
      const verdict = classifyStatus(res.status, { quirks, renewable: auth.renewable });
      if (verdict !== 'reauth') return res;
      const www = header(res.headers, 'www-authenticate');
      if (res.status !== 401) {
        // A vendor's "expired" 403: renew the credential once, then it is a plain refusal.
        if (replayable && !renewed) {
          drain(res.body);
          renewed = true;
          auth.renew();
          continue;
        }
        return res;
      }
      await readCapped(res.body, 4096);
      if (replayable) {
        if (authorization === undefined && changed) continue;
        if (!o.noReauth) {
          if (changed && reauths++ < 2) continue;
          if (authorization !== undefined && !renewed && auth.renew()) {
            renewed = true;
            continue;
          }
        }
      }
      throw await this.unauthorizedError(o, auth, authorization, www);
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
      const why = auth.whyNoCredential();
      return new AuthError(`authentication required: ${o.repo.registry} gives no anonymous access here`, {
        context: ctx,
        hint: why
          ? `${why}; give AWS credentials, log in with docker login, or configure credentials for this registry`
          : 'log in with docker login, or configure credentials for this registry',
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

  /** Turn a non-success answer into a typed error (the sorting is status.ts's). Consumes the body. */
  private async errorFor(res: TransportResponse, o: Pick<CallOptions, 'repo' | 'step'>, what?: string) {
    return this.errorFromText(res.status, await readCapped(res.body), o, what);
  }

  private errorFromText(
    status: number,
    text: string,
    o: Pick<CallOptions, 'repo' | 'step'>,
    what?: string,
  ): RegistryError | NotFoundError | PermissionError {
    const { summary, codes } = summariseErrorBody(text);
    const context: ErrorContext = { registry: o.repo.registry, repository: o.repo.path, step: o.step };
    const detail = summary ? `: ${summary}` : '';
    switch (classifyStatus(status, { codes })) {
      case 'not-found': {
        // Registries that need a repository before the first push (ECR) say how to get one.
        const hint = codes.includes('NAME_UNKNOWN')
          ? this.profile(o.repo.registry).quirks.missingRepositoryHint
          : undefined;
        return new NotFoundError(`${what ?? 'not found'} (HTTP 404${detail})`, {
          context,
          ...(hint ? { hint } : {}),
        });
      }
      case 'denied': {
        // Refused to anonymous access: say why there were no credentials, when the provider knows.
        const why = this.authenticator(o.repo.registry).whyNoCredential();
        return new PermissionError(`access denied (HTTP ${status}${detail})`, {
          context,
          hint: why
            ? `${why}; give AWS credentials, or log in with docker login`
            : 'check that this account may pull/push this repository',
        });
      }
      default:
        return new RegistryError(`registry answered HTTP ${status}${detail}`, {
          context,
          status: status,
          codes,
        });
    }
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
    const computed = digestOf(bytes);
    if (res.status !== 201 && res.status !== 200) {
      const err = await this.errorFor(res, o);
      if (
        err instanceof RegistryError &&
        err.codes.includes('TAG_INVALID') &&
        !isDigest(selector) &&
        this.profile(repo.registry).quirks.tagImmutability
      ) {
        // An immutable tag (ECR) is refused even for the digest it already has: that is success. Any
        // other digest means the tag would move, which the repository forbids.
        const current = await this.manifestHead({ registry: repo.registry, path: repo.path, tag: selector });
        if (current?.digest === computed) return computed;
        throw new ImmutableTagError(selector, computed, current?.digest, {
          context: { registry: repo.registry, repository: repo.path, step: o.step },
          cause: err,
          // The registry's own words ("TAG_INVALID: The image tag ... is immutable"), not a generic status.
          detail: err.message.replace(/^registry answered HTTP \d+: /, ''),
        });
      }
      throw err;
    }
    drain(res.body);
    // A registry with the referrers API says so when it indexed the manifest's subject.
    if (header(res.headers, 'oci-subject')) this.referrersModes.learn(repo.registry, 'api');
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

  // ---- referrers ---------------------------------------------------------------------------------

  referrersApi(registry: string): boolean | undefined {
    const mode = this.referrersModes.get(registry);
    return mode === undefined ? undefined : mode === 'api';
  }

  /**
   * The referrers API for `subject`, every page followed. The first answer teaches the registry's mode:
   * 200 → the API; 404 (what a registry without the route says) or another "not supported" answer → the
   * fallback tag schema, and the registry is not asked again. A 404 NAME_UNKNOWN only says the repository
   * does not exist yet, which decides nothing.
   */
  async referrers(repo: Repository, subject: Digest, artifactType?: string): Promise<ReferrersAnswer> {
    return this.referrersModes.once(repo.registry, async () => {
      if (this.referrersModes.get(repo.registry) === 'tag-schema') return { api: false };
      return this.referrersRequest(repo, subject, artifactType);
    });
  }

  private async referrersRequest(
    repo: Repository,
    subject: Digest,
    artifactType: string | undefined,
  ): Promise<ReferrersAnswer> {
    const step = `referrers GET ${subject}`;
    const query = artifactType !== undefined ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    let url: string | URL = `referrers/${subject}${query}`;
    const descriptors: Descriptor[] = [];
    let filtered = artifactType !== undefined;
    const seen = new Set<string>();
    for (let page = 0; ; page++) {
      const o = {
        repo,
        scopes: [repositoryScope(repo.path, 'pull')],
        step,
        method: 'GET' as const,
        url,
        headers: { accept: OCI_INDEX },
      };
      const res = await this.call(o);
      if (res.status !== 200) {
        const text = await readCapped(res.body);
        if (page === 0) {
          const { codes } = summariseErrorBody(text);
          if (res.status === 404 && codes.includes('NAME_UNKNOWN')) return { api: undefined };
          const unsupported =
            res.status === 404 ||
            res.status === 405 ||
            res.status === 501 ||
            (res.status === 400 && codes.includes('UNSUPPORTED'));
          if (unsupported) {
            this.referrersModes.learn(repo.registry, 'tag-schema');
            return { api: false };
          }
        }
        throw this.errorFromText(res.status, text, o);
      }
      const context: ErrorContext = { registry: repo.registry, repository: repo.path, step };
      let list: Descriptor[];
      try {
        const bytes = await readAll(res.body, MANIFEST_READ_LIMIT);
        list = referrersOf(parseManifest(bytes, OCI_INDEX));
      } catch (err) {
        if (err instanceof ManifestParseError || err instanceof RangeError) {
          throw new RegistryError(`unreadable referrers list: ${err.message}`, { context });
        }
        throw err;
      }
      this.referrersModes.learn(repo.registry, 'api');
      descriptors.push(...list);
      const applied = (header(res.headers, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
      filtered &&= applied.includes('artifactType');
      const next = nextLink(header(res.headers, 'link'), res.url);
      if (!next || seen.has(next.href)) break;
      if (next.origin !== res.url.origin) {
        // Our credentials belong to this registry: a page elsewhere is not fetched with them.
        throw new RegistryError(`the referrers list links to another host (${next.host})`, { context });
      }
      if (page + 1 >= REFERRERS_PAGE_LIMIT) {
        throw new RegistryError(`the referrers list goes on past ${REFERRERS_PAGE_LIMIT} pages`, { context });
      }
      seen.add(next.href);
      url = next;
    }
    return { api: true, descriptors, filtered };
  }

  // ---- tags --------------------------------------------------------------------------------------

  /** Every tag of a repository, following Link pagination. */
  async tagList(repo: Repository): Promise<string[]> {
    const tags: string[] = [];
    const seen = new Set<string>();
    let url: string | URL = `tags/list?n=${this.profile(repo.registry).quirks.tagPageSize}`;
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

  /**
   * Streamed blob GET (redirects to storage followed without Authorization). Given the blob's size, a
   * body cut midway is resumed: a `Range` request from the last byte received when the registry answers
   * 206 with a matching `Content-Range`, else a fresh GET whose first bytes are skipped. The caller still
   * verifies the digest of what it read.
   */
  async blobGet(
    repo: Repository,
    digest: Digest,
    size?: number,
    scopeActions: 'pull' | 'pull,push' = 'pull',
  ): Promise<Readable> {
    const body = await this.blobRequest(repo, digest, scopeActions, 0);
    if (size === undefined) return body;
    return Readable.from(this.resumingBody(repo, digest, size, scopeActions, body), { objectMode: false });
  }

  private async blobRequest(
    repo: Repository,
    digest: Digest,
    scopeActions: 'pull' | 'pull,push',
    from: number,
  ): Promise<Readable> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, scopeActions)],
      step: from > 0 ? `blob GET ${digest} (resuming at byte ${from})` : `blob GET ${digest}`,
      method: 'GET' as const,
      url: `blobs/${digest}`,
      ...(from > 0 ? { headers: { range: `bytes=${from}-` } } : {}),
    };
    const res = await this.call(o);
    // 200 to a Range request: the server ignores Range (S3-style storage may); read past what we have.
    if (res.status === 200) return from > 0 ? skipBytes(res.body, from) : res.body;
    if (from > 0 && res.status === 206) {
      const range = parseContentRange(header(res.headers, 'content-range'));
      if (range?.start === from) return res.body;
      // A range we did not ask for: read it all again instead.
      drain(res.body);
      return this.blobRequest(repo, digest, scopeActions, 0).then((body) => skipBytes(body, from));
    }
    if (from > 0 && res.status === 416) {
      // The registry has no bytes past `from`: the blob is shorter than its descriptor says. End here and
      // let the caller's size check name the problem.
      drain(res.body);
      return Readable.from([]);
    }
    throw await this.errorFor(res, o, `blob ${digest} not found`);
  }

  private async *resumingBody(
    repo: Repository,
    digest: Digest,
    size: number,
    scopeActions: 'pull' | 'pull,push',
    first: Readable,
  ): AsyncGenerator<Buffer> {
    let body = first;
    let received = 0;
    let resumes = 0;
    for (;;) {
      let cause: unknown;
      const before = received;
      try {
        for await (const chunk of body) {
          received += (chunk as Buffer).byteLength;
          yield chunk as Buffer;
        }
      } catch (err) {
        if (this.signal?.aborted) throw new AbortedError();
        cause = err;
      }
      // A body that ends short without an error is resumed too: some proxies close cleanly mid-body.
      if (received >= size) return;
      // A clean end that brought nothing new: the registry has no more (the size check will say so).
      if (cause === undefined && received === before) return;
      if (++resumes > this.retryPolicy.attempts) {
        throw new NetworkError(
          `blob ${digest}: the body was cut ${resumes - 1} times (last at byte ${received} of ${size})`,
          { context: { registry: repo.registry, repository: repo.path, step: 'blob GET', digest }, cause },
        );
      }
      this.transport.stats.retries++;
      await sleep(retryDelay(this.retryPolicy, resumes, undefined), this.signal);
      body = await this.blobRequest(repo, digest, scopeActions, received);
    }
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
      // A mount refused for the `from` repository (Harbor: 401) is a declined mount, not a login problem.
      ...(mount ? { noReauth: true } : {}),
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
    const policy = this.profile(repo.registry).upload;
    const registryMinimum = Number(header(res.headers, 'oci-chunk-min-length') ?? 0) || 0;
    return {
      mounted: false,
      session: new UploadSession(this, repo, new URL(location, res.url), {
        chunkSize: chunkSizeFor(policy, registryMinimum),
        monolithicMaxSize: policy.monolithicMaxSize,
      }),
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
    signal?: AbortSignal,
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
      ...(signal ? { signal, retry: false } : {}),
    });
  }

  async uploadError(res: TransportResponse, repo: Repository, step: string): Promise<Error> {
    return this.errorFor(res, { repo, step });
  }

  /** Whether cross-repository mounts are worth asking this registry for (its profile says). */
  supportsMounts(registry: string): boolean {
    return this.profile(registry).quirks.mounts;
  }

  /**
   * Make sure a target repository exists before the first write, on registries whose profile creates
   * repositories (ECR with createRepositories). Once per repository per run: "created" is answered to the
   * first caller only (the one that reports and logs it), "exists" to the others; "unmanaged" elsewhere.
   */
  ensureRepository(repo: Repository): Promise<'exists' | 'created' | 'unmanaged'> {
    const manager = this.profile(repo.registry).repositories;
    if (!manager?.manages(repo.path)) return Promise.resolve('unmanaged');
    const key = `${repo.registry}/${repo.path}`;
    const known = this.repositories.get(key);
    if (known) return known.then((r) => (r === 'created' ? 'exists' : r));
    const p = manager.ensure(repo.path, this.signal);
    // A failure is not remembered: the next image tries again (the permission may have been granted).
    p.catch(() => this.repositories.delete(key));
    this.repositories.set(key, p);
    return p;
  }

  /**
   * Whether a target repository that this run would create exists, without creating it (plan, auth
   * check); "unmanaged" where the profile creates no repositories. Asked once per repository per run.
   */
  repositoryState(repo: Repository): Promise<'exists' | 'missing' | 'unmanaged'> {
    const manager = this.profile(repo.registry).repositories;
    if (!manager?.manages(repo.path)) return Promise.resolve('unmanaged');
    const key = `${repo.registry}/${repo.path}`;
    let p = this.repositoryStates.get(key);
    if (!p) {
      p = manager.exists(repo.path, this.signal).then((yes) => (yes ? 'exists' : 'missing'));
      p.catch(() => this.repositoryStates.delete(key));
      this.repositoryStates.set(key, p);
    }
    return p;
  }

  /** What a repository this run would create is created with, in words; undefined when it creates none. */
  repositorySettings(repo: Repository): string | undefined {
    const manager = this.profile(repo.registry).repositories;
    return manager?.manages(repo.path) ? manager.describeSettings(repo.path) : undefined;
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

/**
 * Whether a failed PATCH or commit is worth asking the registry about: not for an abort or a credential
 * problem (those are answers), yes for faults and for protocol errors such as 416 or a lost session.
 */
function resumable(err: unknown): boolean {
  if (isAbort(err) || err instanceof AuthError || err instanceof PermissionError) return false;
  return isTransient(err) || err instanceof RegistryError || err instanceof NotFoundError;
}

/** How long abandoning an upload session may take: it runs after an abort, on the way out. */
const CANCEL_TIMEOUT_MS = 1000;

/**
 * An open blob upload. Tracks its own offset (some registries, ECR, answer PATCH oddly). A chunk whose
 * PATCH failed is resumed from the offset the registry reports for the session (GET on its location);
 * when the registry cannot say, or has lost bytes this client no longer holds, the session is over and
 * an UploadInterruptedError tells the caller to start the blob again.
 */
export class UploadSession {
  offset = 0;
  /** Bytes per PATCH: the registry's upload policy, raised to its OCI-Chunk-Min-Length. */
  readonly chunkSize: number;
  /** Blobs up to this size go in one PUT. */
  readonly monolithicMaxSize: number;
  constructor(
    private readonly client: RegistryClient,
    readonly repo: Repository,
    private location: URL,
    policy: { chunkSize: number; monolithicMaxSize: number },
  ) {
    this.chunkSize = policy.chunkSize;
    this.monolithicMaxSize = policy.monolithicMaxSize;
  }

  /** Send one chunk (Content-Range start-end inclusive, no "bytes " prefix). */
  async patch(chunk: Uint8Array): Promise<void> {
    try {
      await this.sendChunk(chunk, this.offset);
    } catch (err) {
      if (!resumable(err)) throw err;
      await this.resume(chunk, err);
    }
    this.offset += chunk.byteLength;
  }

  private async sendChunk(chunk: Uint8Array, start: number): Promise<void> {
    const res = await this.client.uploadCall(
      this.repo,
      'PATCH',
      this.location,
      'blob upload (chunk)',
      {
        'content-type': 'application/octet-stream',
        'content-range': `${start}-${start + chunk.byteLength - 1}`,
        'content-length': String(chunk.byteLength),
      },
      chunk,
    );
    if (res.status !== 202 && res.status !== 201 && res.status !== 204) {
      throw await this.client.uploadError(res, this.repo, 'blob upload (chunk)');
    }
    drain(res.body);
    this.follow(res);
  }

  /** After a failed PATCH of `chunk` (at this.offset): ask where the registry is, and go on from there. */
  private async resume(chunk: Uint8Array, cause: unknown): Promise<void> {
    const end = this.offset + chunk.byteLength;
    const at = await this.registryOffset().catch((err) => {
      if (isAbort(err)) throw err;
      return undefined;
    });
    if (at === end) return; // The chunk arrived; only the answer was lost.
    if (at !== undefined && at >= this.offset && at < end) {
      this.client.transport.stats.retries++;
      try {
        await this.sendChunk(chunk.subarray(at - this.offset), at);
        return;
      } catch (err) {
        if (isAbort(err)) throw err;
        cause = err;
      }
    }
    const where =
      at === undefined
        ? 'the registry no longer knows the session'
        : `the registry has ${at} bytes, this chunk covers ${this.offset}-${end - 1}`;
    throw new UploadInterruptedError(`upload interrupted (${where}): ${formatError(cause)}`, {
      context: { registry: this.repo.registry, repository: this.repo.path, step: 'blob upload (chunk)' },
      cause,
    });
  }

  /** The offset the registry reports for this session (GET → 204 + `Range: 0-<last>`), or undefined. */
  async registryOffset(): Promise<number | undefined> {
    const res = await this.client.uploadCall(this.repo, 'GET', this.location, 'upload status');
    drain(res.body);
    if (res.status !== 204 && res.status !== 200) return undefined;
    this.follow(res);
    const m = /^(?:bytes=)?(\d+)-(\d+)$/.exec(header(res.headers, 'range')?.trim() ?? '');
    if (!m) return undefined;
    const last = Number(m[2]);
    // "0-0" is what distribution says for an empty session as well as for one byte.
    return last === 0 && this.offset === 0 ? 0 : last + 1;
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
    try {
      const res = await this.client.uploadCall(this.repo, 'PUT', url, 'blob upload (commit)', headers, body);
      if (res.status !== 201 && res.status !== 204 && res.status !== 200) {
        throw await this.client.uploadError(res, this.repo, 'blob upload (commit)');
      }
      drain(res.body);
    } catch (err) {
      if (!resumable(err)) throw err;
      // The commit may have landed with its answer lost (a retried PUT then finds no session). Whoever
      // starts this blob again HEADs it first.
      throw new UploadInterruptedError(`upload commit failed: ${formatError(err)}`, {
        context: { registry: this.repo.registry, repository: this.repo.path, step: 'blob upload (commit)' },
        cause: err,
      });
    }
    this.offset += body.byteLength;
  }

  /**
   * Abandon the session (best effort: not every registry supports DELETE). Runs with its own short
   * timeout, not the run's signal, so that an interrupted run still cleans up on its way out.
   */
  async cancel(): Promise<void> {
    try {
      const res = await this.client.uploadCall(
        this.repo,
        'DELETE',
        this.location,
        'upload cancel',
        {},
        undefined,
        AbortSignal.timeout(CANCEL_TIMEOUT_MS),
      );
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

/** `bytes <start>-<end>/<size or *>` → the numbers; undefined when malformed. */
export function parseContentRange(
  value: string | undefined,
): { start: number; end: number; size: number | undefined } | undefined {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), size: m[3] === '*' ? undefined : Number(m[3]) };
}

/** The body without its first `count` bytes (a restarted GET after bytes already consumed). */
function skipBytes(body: Readable, count: number): Readable {
  let left = count;
  async function* rest(): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (left >= buf.byteLength) {
        left -= buf.byteLength;
        continue;
      }
      yield left > 0 ? buf.subarray(left) : buf;
      left = 0;
    }
  }
  return Readable.from(rest(), { objectMode: false });
}
