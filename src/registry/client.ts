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
  RegmirrorError,
  TimeoutError,
  UntrustedError,
  UploadInterruptedError,
} from '../errors.js';
import { MAX_GRAPH_MANIFESTS } from '../oci/bounds.js';
import { algorithmOf, type Digest, digestOf, isDigest } from '../oci/digest.js';
import {
  blobsOf,
  childrenOf,
  type Descriptor,
  type Manifest,
  ManifestParseError,
  parseManifest,
} from '../oci/manifest.js';
import { baseMediaType, MANIFEST_ACCEPT, OCI_INDEX } from '../oci/media-types.js';
import { type ReferrersAnswer, referrersOf } from '../oci/referrers.js';
import {
  apiHost,
  describeSelector,
  isValidTag,
  type Reference,
  type Repository,
  referenceSelector,
} from '../reference/reference.js';
import { quoted, registryText } from '../sanitize.js';
import type { ThrottleStats } from './adaptive-limit.js';
import {
  type ApiPath,
  apiUrl,
  blobPath,
  manifestPath,
  referrersPath,
  tagsPath,
  uploadsPath,
} from './api-url.js';
import { Authenticator, repositoryScope } from './auth.js';
import {
  deadlineFor,
  descriptorProblem,
  MAX_CHUNK_MINIMUM,
  type RegistryLimits,
  type RequestKind,
  TAG_PAGE_BODY_LIMIT,
} from './limits.js';
import {
  chunkSizeFor,
  type PullQuotaReport,
  type QuotaNotice,
  type RegistryProfile,
} from './profile/profile.js';
import type { RegistryProfiles } from './profile/profiles.js';
import { readRateLimit } from './rate-limit.js';
import { ReferrersModes } from './referrers-mode.js';
import { defaultRetryPolicy, parseRetryAfter, type RetryPolicy, retryDelay, sleep } from './retry.js';
import { classifyStatus } from './status.js';
import {
  type AnswerHead,
  BodyTooLargeError,
  type Deadline,
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
import {
  checkUploadLocation,
  downgrades,
  isHttpUrl,
  mayAdoptChallenge,
  mayCarry,
  type Origin,
  withoutQuery,
} from './trust.js';

/** Something worth telling the user that is not an error (a tag skipped because its name is invalid). */
export interface ClientWarning {
  context: ErrorContext;
  message: string;
}

/** Pages of one referrers list followed at most (a registry that keeps linking on is not followed forever). */
const REFERRERS_PAGE_LIMIT = 100;

export interface ClientOptions {
  /** One profile per registry: TLS, limits, credentials, upload policy, quirks. */
  profiles: RegistryProfiles;
  retry?: RetryPolicy;
  trace?: TraceFn;
  signal?: AbortSignal;
  /** Where warnings go (the CLI prints them on stderr). */
  onWarning?: (warning: ClientWarning) => void;
  /** Lines for the user as things happen (a registry's pull quota running out). */
  notice?: (notice: QuotaNotice) => void;
}

/** Invalid tags named in one warning; the rest are counted. */
const SKIPPED_TAGS_NAMED = 5;

/** One registry's throttling in a run (the report's `throttling` entries). */
export type ThrottleReport = Omit<ThrottleStats, 'host'> & { registry: string };

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
  /**
   * A path under /v2/<repository>/ built from typed parts (api-url.ts), or a URL the registry gave: an
   * upload Location (checked to be on the registry's origin) or a tag-list Link (followed without
   * credentials when it is elsewhere).
   */
  url: ApiPath | URL;
  /** Which whole-request deadline applies (limits.timeouts). */
  kind: RequestKind;
  /** Bytes a blob request moves: its deadline grows by bytes / limits.minThroughput. */
  bytes?: number;
  /** Instead of the kind's deadline: what is left of a larger one (a blob GET and its resumes). */
  deadline?: Deadline;
  headers?: Headers;
  body?: TransportRequest['body'];
  followRedirects?: boolean;
  retry?: boolean;
  /** Instead of the run's signal: cancelling upload sessions must still work after an abort. */
  signal?: AbortSignal;
  /** The kind of request, where a registry limits its rate (transport paces it). */
  action?: TransportRequest['action'];
  /**
   * A 401 to a request that carried credentials is final: no new token is fetched to try again. For
   * mounts, where the registry refuses the `from` repository (Harbor) and a fresh token would be refused
   * the same way: the caller falls back to an upload.
   */
  noReauth?: boolean;
  /** Passed to the transport: every answer, retried ones included (rate-limit headers). */
  onAnswer?: (answer: AnswerHead) => number | undefined;
  onRetry?: (answer: AnswerHead, delayMs: number) => void;
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
        .map((e) => errorText(e.code, e.message))
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
  return { summary: registryText(plain, 200), codes: [] };
}

/** Registry text in an error body: escaped and cut (see sanitize.ts). */
function errorText(code: string | undefined, message: string | undefined): string {
  return [code, message]
    .filter(Boolean)
    .map((t) => registryText(t!, 200))
    .join(': ');
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
      const profile = this.profile(registry);
      a = new Authenticator(apiHost(registry), this.transport, profile.credentials, {
        base: this.transport.baseUrl(apiHost(registry)),
        limits: profile.limits,
      });
      this.auths.set(registry, a);
    }
    return a;
  }

  /** "https://quay.io": the origin the registry's credentials belong to (trust.ts). */
  registryOrigin(registry: string): Origin {
    return this.transport.baseUrl(apiHost(registry)).origin;
  }

  limits(registry: string): RegistryLimits {
    return this.profile(registry).limits;
  }

  private warn(warning: ClientWarning): void {
    this.options.onWarning?.(warning);
  }

  private urlFor(repo: Repository, path: ApiPath | URL): URL {
    if (path instanceof URL) return path;
    return apiUrl(this.transport.baseUrl(apiHost(repo.registry)), repo, path);
  }

  /**
   * Send one authenticated request. A 401 teaches the challenge (or says a cached token is no longer
   * good): authorize again and resend, at most twice. A credential the registry refuses as expired (a
   * 401 after it was sent, or a vendor's 403 that means "expired") is fetched again once, when its
   * provider can renew it (ECR tokens).
   */
  private async call(o: CallOptions): Promise<TransportResponse> {
    try {
      return await this.callOnce(o);
    } catch (err) {
      // Say where: the transport knows the host, not the repository or the step. (Only for the verdicts
      // on what a registry did — a refused redirect, a spent deadline; "cannot reach" is about the host.)
      if (err instanceof RegistryError || err instanceof TimeoutError) {
        err.context.registry ??= o.repo.registry;
        err.context.repository ??= o.repo.path;
        err.context.step ??= o.step;
      }
      throw err;
    }
  }

  private async callOnce(o: CallOptions): Promise<TransportResponse> {
    const auth = this.authenticator(o.repo.registry);
    const profile = this.profile(o.repo.registry);
    const quirks = profile.quirks;
    const context: ErrorContext = { registry: o.repo.registry, repository: o.repo.path, step: o.step };
    const url = this.urlFor(o.repo, o.url);
    const origin = this.registryOrigin(o.repo.registry);
    // A URL elsewhere (a tag-list Link to another host) is followed without credentials: none is asked for.
    const ours = mayCarry(url, origin);
    const replayable = o.body === undefined || typeof o.body === 'string' || o.body instanceof Uint8Array;
    const signal = o.signal ?? this.signal;
    const deadline = o.deadline ?? deadlineFor(profile.limits, o.kind, 'the request', o.bytes);
    let reauths = 0;
    let renewed = false;
    for (;;) {
      const firstContact = ours ? await auth.firstContact() : undefined;
      let res: TransportResponse;
      let authorization: string | undefined;
      let changed = false;
      let foreign = false;
      try {
        authorization = ours ? await auth.authorize(o.scopes, signal) : undefined;
        res = await this.transport.send({
          method: o.method,
          url,
          headers: { ...o.headers },
          body: o.body,
          signal,
          followRedirects: o.followRedirects,
          retry: o.retry,
          ...(authorization ? { credentials: { authorization, origin } } : {}),
          deadline,
          idleMs: profile.limits.timeouts.idle,
          ...(o.action ? { action: o.action } : {}),
          onAnswer: o.onAnswer,
          onRetry: o.onRetry,
        });
        // An answer from anywhere but the registry itself (a storage host behind a redirect, a Link
        // target) says nothing about the registry's credentials: its 401 is not the registry's challenge
        // (never adopted, never answered with them), its 403 does not mean they expired.
        foreign = !mayAdoptChallenge(res.url, origin);
        // Learn the challenge before letting requests that waited for this first answer go.
        if (res.status === 401 && !foreign)
          changed = auth.unauthorized(header(res.headers, 'www-authenticate'), authorization, {
            keepToken: o.noReauth === true,
          });
      } finally {
        firstContact?.();
      }
      if (foreign && (res.status === 401 || res.status === 403)) {
        throw await this.foreignRefusal(res, url, origin, o.repo.registry, context);
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
        // Bounded like every re-authentication: a Basic registry asked without credentials answers 401
        // each time, and "changed" stays true when nothing was sent.
        if (authorization === undefined && changed && reauths++ < 2) continue;
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

  /**
   * A 401 or 403 from a host that is not the registry (a storage host behind a redirect, a Link target):
   * the 401 is not the registry's challenge, the 403 not its word that the credential expired. An error
   * naming that host (without the URL's query: signatures), and the registry's credentials untouched.
   */
  private async foreignRefusal(
    res: TransportResponse,
    url: URL,
    origin: Origin,
    registry: string,
    context: ErrorContext,
  ): Promise<RegistryError> {
    const where = `${registryText(res.url.origin)} (not the registry: ${url.origin === res.url.origin ? 'a link it gave' : 'reached by a redirect'})`;
    if (res.status === 401) {
      drain(res.body);
      return new UntrustedError(
        `${where} answered 401 and asked for credentials; ${registry}'s credentials go only to ${origin} and its own token realm`,
        {
          context,
          status: 401,
          hint: 'the registry sent this request to a host that wants credentials of its own; report it to the registry operator',
        },
      );
    }
    // A plain failure of this request (an expired presigned link, a clock off): never a reason to drop
    // the registry's tokens and fetch its credential again.
    const { summary } = summariseErrorBody(await readCapped(res.body, 4096));
    return new RegistryError(
      `${where} refused ${registryText(withoutQuery(res.url), 200)} with HTTP ${res.status}${summary ? `: ${summary}` : ''}`,
      {
        context,
        status: res.status,
        hint: "the registry sent this request to another host, which refused it: an expired storage link, or this machine's clock is off; if it persists, report it to the registry operator",
      },
    );
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
          ? `${why}; ${this.noCredentialsHint(o.repo.registry)}`
          : this.noCredentialsHint(o.repo.registry),
      });
    }
    if (insufficient || sent?.startsWith('Bearer ')) {
      const wanted = o.scopes.map((s) => s.replace(/^repository:/, '')).join(' and ');
      return new PermissionError(`access denied: the credentials from ${source} were not granted ${wanted}`, {
        context: ctx,
        hint: this.deniedHint(o.repo.registry),
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

  /** What to do when credentials are needed and none were found: the vendor's words when it has them. */
  private noCredentialsHint(registry: string): string {
    return (
      this.profile(registry).hints.noCredentials ??
      'log in with docker login, or configure credentials for this registry'
    );
  }

  /** What to do about a refused pull or push: the vendor's words when its profile has them. */
  private deniedHint(registry: string): string {
    return this.profile(registry).hints.denied ?? 'check that this account may pull/push this repository';
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
          // Refused while anonymous because no credentials could be found: what to do about that.
          hint: why ? `${why}; ${this.noCredentialsHint(o.repo.registry)}` : this.deniedHint(o.repo.registry),
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

  // ---- pull quotas (Docker Hub) ------------------------------------------------------------------

  /**
   * A manifest request: on a registry with a pull quota, the quota sees every answer (429s the transport
   * waits out included), and a spell of 429s that outlasts the request's deadline is named as the quota's
   * doing, not as a slow registry.
   */
  private async manifestCall(o: CallOptions): Promise<TransportResponse> {
    const quota = this.profile(o.repo.registry).pullQuota;
    if (!quota) return this.call(o);
    let lastStatus = 0;
    let hinted = false;
    const hooks: Pick<CallOptions, 'onAnswer' | 'onRetry'> = {
      onAnswer: (a) => {
        lastStatus = a.status;
        const wait = quota.observe({
          status: a.status,
          rateLimit: readRateLimit((name) => header(a.headers, name)),
          retryAfterMs: parseRetryAfter(header(a.headers, 'retry-after')),
        });
        hinted = wait !== undefined;
        return wait;
      },
      onRetry: (a, delayMs) => {
        if (a.status !== 429) return;
        const reason =
          parseRetryAfter(header(a.headers, 'retry-after')) !== undefined
            ? 'retry-after'
            : hinted
              ? 'reset'
              : 'backoff';
        const notice = quota.retrying(delayMs, reason);
        if (notice) this.options.notice?.(notice);
      },
    };
    try {
      return await this.call({ ...o, ...hooks });
    } catch (err) {
      if (!(err instanceof TimeoutError) || lastStatus !== 429) throw err;
      const { message, hint } = quota.exhausted();
      throw new RegistryError(`${message}; the waits outlasted the request's deadline`, {
        context: { registry: o.repo.registry, repository: o.repo.path, step: o.step },
        hint: `${hint}; limits.timeouts.manifest bounds how long one manifest request may wait`,
        status: 429,
        cause: err,
      });
    }
  }

  /**
   * Before a manifest GET to a registry with a pull quota: wait for its turn (holding no slot) when the
   * quota is low, or fail at once when that wait would outlast --retry-max-time.
   */
  private async paceGet(o: Pick<CallOptions, 'repo' | 'step'>): Promise<void> {
    const quota = this.profile(o.repo.registry).pullQuota;
    if (!quota) return;
    const { waitMs, exceeded, notice } = quota.beforeGet(this.retryPolicy.maxElapsedMs);
    if (notice) this.options.notice?.(notice);
    if (exceeded) {
      const { message, hint } = quota.exhausted(waitMs);
      throw new RegistryError(message, {
        context: { registry: o.repo.registry, repository: o.repo.path, step: o.step },
        hint,
        status: 429,
      });
    }
    if (waitMs > 0) await sleep(waitMs, this.signal);
  }

  /** A 429 to a manifest request on a registry with a pull quota: an error naming the quota and its reset. */
  private quotaRefusal(res: TransportResponse, o: Pick<CallOptions, 'repo' | 'step'>): Error | undefined {
    const quota = this.profile(o.repo.registry).pullQuota;
    if (res.status !== 429 || !quota) return undefined;
    drain(res.body);
    const { message, hint } = quota.exhausted();
    return new RegistryError(message, {
      context: { registry: o.repo.registry, repository: o.repo.path, step: o.step },
      hint,
      status: 429,
    });
  }

  /** What each registry with a pull quota reported during the run (for the reports). */
  rateLimits(): PullQuotaReport[] {
    return this.profiles.all().flatMap((p) => p.pullQuota?.report() ?? []);
  }

  // ---- manifests ---------------------------------------------------------------------------------

  /** HEAD a manifest: its digest without downloading it. Undefined when it does not exist. */
  async manifestHead(ref: Reference): Promise<ManifestInfo | undefined> {
    const o = {
      repo: ref,
      scopes: [repositoryScope(ref.path, 'pull')],
      step: 'manifest HEAD',
      method: 'HEAD' as const,
      url: manifestPath(referenceSelector(ref)),
      kind: 'manifest' as const,
      headers: { accept: MANIFEST_ACCEPT },
    };
    // HEADs do not count against a pull quota, but their answers report it.
    const res = await this.manifestCall(o);
    drain(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.quotaRefusal(res, o) ?? (await this.errorFor(res, o));
    const digest = header(res.headers, 'docker-content-digest');
    if (!digest || !isDigest(digest)) {
      // Some registries leave the digest out of HEAD answers: fall back to reading the manifest.
      const m = await this.manifestGet(ref);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.byteLength };
    }
    // A registry may name the manifest by another algorithm than the reference did (distribution
    // answers sha256 for a manifest asked for by sha512): only the same algorithm can disagree.
    if (ref.digest && algorithmOf(digest) === algorithmOf(ref.digest) && digest !== ref.digest)
      throw new DigestMismatchError(ref.digest, digest, { context: o });
    const length = header(res.headers, 'content-length');
    return {
      digest: ref.digest ?? digest,
      mediaType: baseMediaType(header(res.headers, 'content-type')),
      size: length ? Number(length) : undefined,
    };
  }

  /**
   * GET a manifest's exact bytes; the digest is verified against the reference and the registry's header
   * (with the algorithm they name: sha256 or sha512). Bounded by limits.maxManifestSize, and every
   * descriptor in it is checked against the limits before anything it names is read.
   */
  async manifestGet(ref: Reference): Promise<Manifest> {
    const o = {
      repo: ref,
      scopes: [repositoryScope(ref.path, 'pull')],
      step: 'manifest GET',
      method: 'GET' as const,
      url: manifestPath(referenceSelector(ref)),
      kind: 'manifest' as const,
      headers: { accept: MANIFEST_ACCEPT },
    };
    const limits = this.limits(ref.registry);
    await this.paceGet(o);
    const res = await this.manifestCall(o);
    if (res.status !== 200)
      throw this.quotaRefusal(res, o) ?? (await this.errorFor(res, o, `${describeSelector(ref)} not found`));
    const context: ErrorContext = { registry: ref.registry, repository: ref.path, step: 'manifest GET' };
    const bytes = await this.readBody(res, limits.maxManifestSize, context, 'limits.maxManifestSize');
    const headerDigest = header(res.headers, 'docker-content-digest');
    const expected = ref.digest ?? (headerDigest && isDigest(headerDigest) ? headerDigest : undefined);
    if (expected) {
      const actual = digestOf(bytes, algorithmOf(expected));
      if (actual !== expected) throw new DigestMismatchError(expected, actual, { context });
    }
    let manifest: Manifest;
    try {
      // The digest the manifest is known by keeps its algorithm: a sha512 child stays sha512.
      manifest = parseManifest(bytes, baseMediaType(header(res.headers, 'content-type')), {
        algorithm: expected ? algorithmOf(expected) : 'sha256',
      });
    } catch (err) {
      if (err instanceof ManifestParseError) {
        throw new RegistryError(
          `unreadable manifest ${referenceSelector(ref)}: ${registryText(err.message)}`,
          {
            context,
          },
        );
      }
      throw err;
    }
    this.checkDescriptors(manifest, limits, context);
    return manifest;
  }

  /** Refuse a manifest that names something absurd, before a byte of it is read (registry/limits.ts). */
  private checkDescriptors(manifest: Manifest, limits: RegistryLimits, context: ErrorContext): void {
    const children = childrenOf(manifest);
    if (children.length > MAX_GRAPH_MANIFESTS) {
      throw new RegistryError(
        `index ${manifest.digest} names ${children.length} manifests, more than the ${MAX_GRAPH_MANIFESTS} regmirror follows`,
        { context },
      );
    }
    for (const desc of [...children, ...blobsOf(manifest)]) {
      const problem = descriptorProblem(desc, limits);
      if (problem) {
        throw new RegistryError(
          `manifest ${manifest.digest} names ${quoted(desc.mediaType, 80)} ${desc.digest}, which ${problem}; refused before reading any of it`,
          {
            context,
            hint: 'a registry serving this is broken or hostile; if the content is real, raise the limit for this registry in the config',
          },
        );
      }
    }
  }

  /**
   * A whole body, bounded by `limit`: too large is an error naming the registry and the setting, a cut or
   * stalled body a network error saying where.
   */
  private async readBody(
    res: TransportResponse,
    limit: number,
    context: ErrorContext,
    setting: string,
  ): Promise<Buffer> {
    const length = Number(header(res.headers, 'content-length') ?? Number.NaN);
    try {
      // A declared length over the limit is refused before reading.
      if (length > limit) {
        res.body.destroy();
        throw new BodyTooLargeError(limit);
      }
      return await readAll(res.body, limit);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new RegistryError(`the answer is larger than ${limit} bytes (${setting}); refused`, {
          context,
          hint: `if the registry really serves content this large, raise ${setting} for it in the config`,
        });
      }
      if (err instanceof RegmirrorError) {
        err.context.registry ??= context.registry;
        err.context.repository ??= context.repository;
        err.context.step ??= context.step;
        throw err;
      }
      if (this.signal?.aborted || isAbort(err)) throw new AbortedError();
      throw new NetworkError(`the answer was cut off: ${(err as Error).message}`, { context, cause: err });
    }
  }

  /**
   * PUT manifest bytes under a tag or digest. Returns the digest of the bytes, in the algorithm of
   * `digest` when given (sha512 content keeps its sha512 name), verified against the registry's.
   */
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
      url: manifestPath(selector),
      kind: 'manifest' as const,
      headers: { 'content-type': mediaType },
      body: bytes,
      action: 'manifestPut' as const,
    };
    const res = await this.call(o);
    const algorithm = isDigest(selector) ? algorithmOf(selector) : 'sha256';
    const computed = digestOf(bytes, algorithm);
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
      if (isDigest(selector) && algorithmOf(selector) !== 'sha256' && err instanceof RegistryError) {
        // distribution computes sha256 for every manifest and refuses any other name with DIGEST_INVALID.
        throw new RegistryError(
          `${err.message}; this registry does not store manifests under ${algorithmOf(selector)} digests`,
          {
            context: err.context,
            ...(err.status !== undefined ? { status: err.status } : {}),
            codes: err.codes,
            hint: `the source names this manifest by ${algorithmOf(selector)}; copy it to a registry that accepts ${algorithmOf(selector)} digests`,
          },
        );
      }
      throw err;
    }
    drain(res.body);
    // A registry with the referrers API says so when it indexed the manifest's subject.
    if (header(res.headers, 'oci-subject')) this.referrersModes.learn(repo.registry, 'api');
    const reported = header(res.headers, 'docker-content-digest');
    if (reported && isDigest(reported) && algorithmOf(reported) === algorithm && reported !== computed) {
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
      url: manifestPath(referenceSelector(ref)),
      kind: 'manifest' as const,
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
    const limits = this.limits(repo.registry);
    let url: ApiPath | URL = referrersPath(subject, artifactType);
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
        kind: 'manifest' as const,
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
        const bytes = await this.readBody(res, limits.maxManifestSize, context, 'limits.maxManifestSize');
        list = referrersOf(parseManifest(bytes, OCI_INDEX));
      } catch (err) {
        if (err instanceof ManifestParseError) {
          throw new RegistryError(`unreadable referrers list: ${registryText(err.message)}`, { context });
        }
        throw err;
      }
      this.referrersModes.learn(repo.registry, 'api');
      descriptors.push(...list);
      if (descriptors.length > limits.maxReferrers) {
        throw new RegistryError(
          `the referrers list of ${subject} names more than ${limits.maxReferrers} referrers (limits.maxReferrers); refused`,
          {
            context,
            hint: 'if the manifest really has that many signatures and attestations, raise limits.maxReferrers for this registry in the config',
          },
        );
      }
      const applied = (header(res.headers, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
      filtered &&= applied.includes('artifactType');
      const next = nextLink(header(res.headers, 'link'), res.url);
      if (!next || seen.has(next.href)) break;
      // Compared with the registry's origin, not the URL that answered: a referrers GET redirected to a
      // storage host does not make that host's Links the registry's.
      if (next.origin !== this.registryOrigin(repo.registry)) {
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

  /**
   * Every tag of a repository, following Link pagination, bounded by limits.maxTagPages and
   * limits.maxTags. A tag that is not a valid tag name is skipped with a warning and never used.
   */
  async tagList(repo: Repository): Promise<string[]> {
    const limits = this.limits(repo.registry);
    const tags = new Set<string>();
    const skipped: string[] = [];
    let skippedCount = 0;
    const seen = new Set<string>();
    let url: ApiPath | URL = tagsPath(this.profile(repo.registry).quirks.tagPageSize);
    const step = 'tag list';
    const context: ErrorContext = { registry: repo.registry, repository: repo.path, step };
    const tooMany = (message: string, setting: string) =>
      new RegistryError(message, {
        context,
        hint: `a registry that pages without end is broken or hostile; if the repository really is that large, raise ${setting} for it in the config`,
      });
    for (let page = 1; ; page++) {
      if (page > limits.maxTagPages) {
        throw tooMany(
          `the tag list goes on for more than ${limits.maxTagPages} pages (limits.maxTagPages); stopped after ${tags.size} tags`,
          'limits.maxTagPages',
        );
      }
      const o = {
        repo,
        scopes: [repositoryScope(repo.path, 'pull')],
        step,
        method: 'GET' as const,
        url,
        kind: 'tags' as const,
      };
      const res = await this.call(o);
      if (res.status !== 200) throw await this.errorFor(res, o, `repository ${repo.path} not found`);
      const text = (
        await this.readBody(res, TAG_PAGE_BODY_LIMIT, context, 'the tag-list page limit')
      ).toString('utf8');
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
        throw new RegistryError('unreadable tag list', { context });
      }
      for (const tag of parsed.data.tags ?? []) {
        if (!isValidTag(tag)) {
          // Never used: as a path segment such a "tag" could name another repository ("x/../../victim").
          if (skippedCount++ < SKIPPED_TAGS_NAMED) skipped.push(tag);
          continue;
        }
        tags.add(tag);
        if (tags.size > limits.maxTags) {
          throw tooMany(
            `the tag list holds more than ${limits.maxTags} tags (limits.maxTags); stopped at page ${page}`,
            'limits.maxTags',
          );
        }
      }
      const next = nextLink(header(res.headers, 'link'), res.url);
      if (!next || seen.has(next.href)) break;
      if (!isHttpUrl(next)) {
        throw new RegistryError(
          `the tag list's next-page Link is a ${registryText(next.protocol)} URL; only http and https are followed`,
          {
            context,
          },
        );
      }
      // The page that answered came over HTTPS whenever the registry is HTTPS (redirects and Links never
      // leave it): a next page on plain HTTP would cross the network in clear text, where anyone on the
      // way could add or hide tags.
      if (downgrades(res.url, next)) {
        throw new UntrustedError(
          `the tag list's next-page Link leads from HTTPS to plain HTTP (${registryText(withoutQuery(next), 200)}); refused: the page would travel in clear text`,
          {
            context,
            hint: 'the registry is misconfigured (or not the registry you think): its tag-list Links must stay on HTTPS',
          },
        );
      }
      seen.add(next.href);
      url = next;
    }
    if (skippedCount > 0) {
      const more = skippedCount > skipped.length ? ` and ${skippedCount - skipped.length} more` : '';
      this.warn({
        context,
        message: `skipped ${skippedCount} tag${skippedCount === 1 ? '' : 's'} that ${skippedCount === 1 ? 'is not a valid tag name' : 'are not valid tag names'}: ${skipped.map((t) => quoted(t, 80)).join(', ')}${more}`,
      });
    }
    return [...tags];
  }

  // ---- blobs -------------------------------------------------------------------------------------

  /** HEAD a blob: its size when present, undefined when not. */
  async blobHead(repo: Repository, digest: Digest): Promise<number | undefined> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, 'pull')],
      step: 'blob HEAD',
      method: 'HEAD' as const,
      url: blobPath(digest),
      kind: 'request' as const,
    };
    const res = await this.call(o);
    drain(res.body);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw await this.errorFor(res, o);
    const length = header(res.headers, 'content-length');
    return length ? Number(length) : 0;
  }

  /**
   * Streamed blob GET (redirects to storage followed without credentials). Given the blob's size, a body
   * cut midway is resumed: a `Range` request from the last byte received when the registry answers 206
   * with a matching `Content-Range`, else a fresh GET whose first bytes are skipped. The whole transfer,
   * resumes included, has one deadline: limits.timeouts.blob + size / limits.minThroughput. A size above
   * limits.maxBlobSize is refused before any request. The caller still verifies the digest of what it read.
   */
  async blobGet(
    repo: Repository,
    digest: Digest,
    size?: number,
    scopeActions: 'pull' | 'pull,push' = 'pull',
  ): Promise<Readable> {
    const limits = this.limits(repo.registry);
    const context: ErrorContext = {
      registry: repo.registry,
      repository: repo.path,
      step: `blob GET ${digest}`,
    };
    if (size !== undefined && size > limits.maxBlobSize) {
      throw new RegistryError(
        `blob ${digest} claims ${size} bytes, more than limits.maxBlobSize (${limits.maxBlobSize}); refused before reading any of it`,
        { context, hint: 'if the blob is real, raise limits.maxBlobSize for this registry in the config' },
      );
    }
    const deadline = deadlineFor(limits, 'blob', 'the blob transfer', size ?? 0);
    const endsAt = Date.now() + deadline.ms;
    const body = await this.blobRequest(repo, digest, scopeActions, 0, deadline, endsAt);
    if (size === undefined) return body;
    return Readable.from(this.resumingBody(repo, digest, size, scopeActions, body, deadline, endsAt), {
      objectMode: false,
    });
  }

  private async blobRequest(
    repo: Repository,
    digest: Digest,
    scopeActions: 'pull' | 'pull,push',
    from: number,
    deadline: Deadline,
    endsAt: number,
  ): Promise<Readable> {
    const o = {
      repo,
      scopes: [repositoryScope(repo.path, scopeActions)],
      step: from > 0 ? `blob GET ${digest} (resuming at byte ${from})` : `blob GET ${digest}`,
      method: 'GET' as const,
      url: blobPath(digest),
      kind: 'blob' as const,
      // What is left of the transfer's deadline: resumes do not start the clock again.
      deadline: { ...deadline, ms: Math.max(0, endsAt - Date.now()) },
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
      return this.blobRequest(repo, digest, scopeActions, 0, deadline, endsAt).then((body) =>
        skipBytes(body, from),
      );
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
    deadline: Deadline,
    endsAt: number,
  ): AsyncGenerator<Buffer> {
    const context: ErrorContext = {
      registry: repo.registry,
      repository: repo.path,
      step: 'blob GET',
      digest,
    };
    let body = first;
    let received = 0;
    let resumes = 0;
    let stalls = 0;
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
        // The deadline is the budget of the whole transfer: when it is spent, nothing is resumed.
        if (err instanceof TimeoutError) {
          err.context.repository ??= repo.path;
          err.context.step ??= 'blob GET';
          err.context.digest ??= digest;
          throw err;
        }
        cause = err;
      }
      // A body that ends short without an error is resumed too: some proxies close cleanly mid-body.
      if (received >= size) return;
      // A clean end that brought nothing new: the registry has no more (the size check will say so).
      if (cause === undefined && received === before) return;
      // A stalled body (no new byte before it failed) is not worth more than one more try.
      stalls = received === before ? stalls + 1 : 0;
      if (++resumes > this.retryPolicy.attempts || stalls >= 2) {
        throw new NetworkError(
          `blob ${digest}: the body was cut ${resumes - 1 + (stalls >= 2 ? 1 : 0)} times (last at byte ${received} of ${size}${stalls >= 2 ? ', twice without a new byte' : ''})`,
          { context, cause },
        );
      }
      this.transport.stats.retries++;
      const delay = retryDelay(this.retryPolicy, resumes, undefined);
      if (Date.now() + delay >= endsAt) {
        throw new TimeoutError(
          `the blob transfer did not finish within ${Math.round(deadline.ms / 1000)} s (at byte ${received} of ${size})`,
          {
            context,
            cause,
            hint: `the registry is too slow or stalls; if it is only slow, raise ${deadline.setting} for it in the config`,
          },
        );
      }
      await sleep(delay, this.signal);
      body = await this.blobRequest(repo, digest, scopeActions, received, deadline, endsAt);
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
    if (mount) scopes.push(repositoryScope(mount.from, 'pull'));
    const o = {
      repo,
      scopes,
      step: mount ? 'blob mount' : 'upload start',
      method: 'POST' as const,
      url: uploadsPath(mount),
      kind: 'request' as const,
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
    const context: ErrorContext = { registry: repo.registry, repository: repo.path, step: o.step };
    if (!location) {
      throw new RegistryError('upload session opened without a Location header', { context });
    }
    const url = checkUploadLocation(location, res.url, this.registryOrigin(repo.registry), context);
    const policy = this.profile(repo.registry).upload;
    const registryMinimum = Number(header(res.headers, 'oci-chunk-min-length') ?? 0) || 0;
    if (registryMinimum > MAX_CHUNK_MINIMUM) {
      // Chunks are buffered in memory (one per target in flight): a registry cannot make us hold gigabytes.
      const session = new UploadSession(this, repo, url, { chunkSize: 0, monolithicMaxSize: 0 });
      await session.cancel();
      throw new RegistryError(
        `the registry asks for upload chunks of at least ${registryMinimum} bytes (OCI-Chunk-Min-Length), more than the ${MAX_CHUNK_MINIMUM} regmirror buffers; refused`,
        { context },
      );
    }
    return {
      mounted: false,
      session: new UploadSession(this, repo, url, {
        chunkSize: chunkSizeFor(policy, registryMinimum),
        monolithicMaxSize: policy.monolithicMaxSize,
        // A registry that announces a minimum chunk wants chunks of it.
        streamable: policy.streamed && registryMinimum === 0,
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
    body?: Uint8Array | { stream: Readable; size: number },
    signal?: AbortSignal,
  ): Promise<TransportResponse> {
    // A chunk, a streamed blob or the closing PUT moves bytes: its deadline grows with them.
    const bytes = body === undefined ? 0 : body instanceof Uint8Array ? body.byteLength : body.size;
    return this.call({
      repo,
      scopes: [repositoryScope(repo.path, 'pull,push')],
      step,
      method,
      url,
      kind: bytes > 0 ? 'blob' : 'request',
      bytes,
      headers,
      body: body instanceof Uint8Array || body === undefined ? body : body.stream,
      followRedirects: false,
      ...(signal ? { signal, retry: false } : {}),
    });
  }

  async uploadError(res: TransportResponse, repo: Repository, step: string): Promise<Error> {
    return this.errorFor(res, { repo, step });
  }

  /**
   * This run writes to `repo`: its token (on a Bearer registry) covers pull and push from the first
   * request, so reading before writing costs no token of its own; and it is asked together with the
   * run's other repositories on that registry.
   */
  willPush(repo: Repository): void {
    this.authenticator(repo.registry).willPush(repo.path);
  }

  /** This run reads `repo`: a token for it may be asked together with the run's other repositories. */
  willPull(repo: Repository): void {
    this.authenticator(repo.registry).willPull(repo.path);
  }

  /** Whether `registry` refused a request with 429/503 a moment ago (copy/store.ts). */
  congested(registry: string): boolean {
    return this.transport.congested(apiHost(registry));
  }

  congestionChanged(): Promise<void> {
    return this.transport.congestionChanged();
  }

  /**
   * Registries that throttled the run — 429/503 answers, waits before retrying them, requests paced to a
   * rate, the requests-in-flight bound lowered — by registry name where the host is a registry's.
   */
  throttling(): ThrottleReport[] {
    return this.transport.throttling().map(({ host, ...rest }) => ({
      registry: this.profiles.forHost(host)?.registry ?? host,
      ...rest,
    }));
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
      url: tagsPath(1),
      kind: 'tags' as const,
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
  // A refusal of the trust rules (a session moved to another origin) and a spent deadline are final.
  if (err instanceof UntrustedError || err instanceof TimeoutError) return false;
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
  /** A larger blob may go in one streamed PATCH (the profile allows it). */
  readonly streamable: boolean;
  constructor(
    private readonly client: RegistryClient,
    readonly repo: Repository,
    private location: URL,
    policy: { chunkSize: number; monolithicMaxSize: number; streamable?: boolean },
  ) {
    this.chunkSize = policy.chunkSize;
    this.monolithicMaxSize = policy.monolithicMaxSize;
    this.streamable = policy.streamable ?? false;
  }

  /**
   * Send `size` bytes of `body` in one PATCH (Content-Length, and the Content-Range the spec gives
   * chunks). The body is a stream, sent once: a failure part-way is an interrupted upload, which the
   * engine starts again from a new session.
   */
  async stream(body: Readable, size: number): Promise<void> {
    const start = this.offset;
    let res: TransportResponse;
    try {
      res = await this.client.uploadCall(
        this.repo,
        'PATCH',
        this.location,
        'blob upload (stream)',
        {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${start + size - 1}`,
          'content-length': String(size),
        },
        { stream: body, size },
      );
    } catch (err) {
      if (!resumable(err)) throw err;
      throw new UploadInterruptedError(`upload interrupted: ${formatError(err)}`, {
        context: { registry: this.repo.registry, repository: this.repo.path, step: 'blob upload (stream)' },
        cause: err,
      });
    }
    if (res.status !== 202 && res.status !== 201 && res.status !== 204) {
      throw await this.client.uploadError(res, this.repo, 'blob upload (stream)');
    }
    drain(res.body);
    this.follow(res);
    this.offset = start + size;
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

  /** A PATCH or status answer may move the session: only ever within the registry's origin (trust.ts). */
  private follow(res: TransportResponse): void {
    const next = header(res.headers, 'location');
    if (!next) return;
    this.location = checkUploadLocation(next, res.url, this.client.registryOrigin(this.repo.registry), {
      registry: this.repo.registry,
      repository: this.repo.path,
      step: 'blob upload',
    });
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
