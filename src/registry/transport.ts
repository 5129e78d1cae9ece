// The HTTP transport: the only module that imports undici.
//
// One keep-alive connection pool per registry (undici Agent), TLS per registry (verify with system CAs,
// NODE_EXTRA_CA_CERTS and an optional CA file; or plain HTTP; or explicit insecure), a bound on requests
// in flight per host, retries with backoff for transient faults, whole-request deadlines, and redirects
// followed by hand. Credentials are never in a request's headers: they come as `credentials` with the
// origin they belong to, and each hop gets them only when trust.ts's rule says so.

import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Dispatcher, Agent as UndiciAgent } from 'undici';
import {
  AbortedError,
  NetworkError,
  RegistryError,
  RegmirrorError,
  TimeoutError,
  UntrustedError,
} from '../errors.js';
import { registryText } from '../sanitize.js';
import { Signal } from '../signal.js';
import { AdaptiveLimit, type RateAction, type RequestRates, type ThrottleStats } from './adaptive-limit.js';
import { defaultRetryPolicy, parseRetryAfter, type RetryPolicy, retryDelay, sleep } from './retry.js';
import { isRetryableStatus } from './status.js';
import { connectOptions, type TlsMode } from './tls.js';
import { type Credentials, downgrades, isHttpUrl, mayCarry, unparsedUrlText } from './trust.js';

/**
 * undici's index also loads fetch, WebSocket, EventSource and its mocks (~70 ms of every run's start);
 * regmirror needs its Agent and `request` alone (~25 ms). Loaded by their files, with the package's
 * index as the fallback should a future version move them.
 */
const undici = ((): {
  Agent: typeof UndiciAgent;
  request: (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
} => {
  const require = createRequire(import.meta.url);
  try {
    return {
      Agent: require('undici/lib/dispatcher/agent.js'),
      request: require('undici/lib/api/api-request.js'),
    };
  } catch {
    const index = require('undici') as typeof import('undici');
    return {
      Agent: index.Agent,
      request(this: Dispatcher, opts: Dispatcher.RequestOptions) {
        return this.request(opts);
      },
    };
  }
})();

/** undici's `request(url, options)`, on a given dispatcher. */
function undiciRequest(
  url: URL,
  options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return undici.request.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: url.search ? `${url.pathname}${url.search}` : url.pathname,
  });
}

export type Headers = Record<string, string>;
export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface TransportRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Headers;
  /** Request body. Buffers are replayable (retried); streams are sent once. */
  body?: Uint8Array | string | Readable;
  signal?: AbortSignal;
  /** Follow redirects (blob GETs are redirected to storage). Default true for GET/HEAD. */
  followRedirects?: boolean;
  /** Retry transient faults (default true when the body is replayable). */
  retry?: boolean;
  /**
   * Credentials and the one origin they belong to. Attached to a hop only when its URL is on that
   * origin (trust.ts); never put an Authorization header in `headers`.
   */
  credentials?: Credentials;
  /**
   * Whole-request deadline: headers and body, redirects and retries included. `what` names the request
   * and `setting` the config key that sets it, for the error.
   */
  deadline?: Deadline;
  /** Longest silence while waiting for the headers or between body bytes (default 2 min / 5 min). */
  idleMs?: number;
  /** The kind of request, where the registry limits its rate (a manifest PUT). */
  action?: RateAction;
  /**
   * Sees every answer before the transport decides what to do with it, retried ones included (a 429 it
   * waits out): where rate-limit headers are read. May return the wait before a retry for an answer that
   * names none itself (no Retry-After), e.g. until a quota resets.
   */
  onAnswer?: (answer: AnswerHead) => number | undefined;
  /** Told before the transport sleeps `delayMs` to retry `answer`. */
  onRetry?: (answer: AnswerHead, delayMs: number) => void;
}

/** Status and headers of an answer, without its body. */
export interface AnswerHead {
  status: number;
  headers: ResponseHeaders;
}

export interface Deadline {
  ms: number;
  what: string;
  setting: string;
}

export interface TransportResponse {
  status: number;
  headers: ResponseHeaders;
  /** The URL that answered (after redirects): relative Location headers resolve against it. */
  url: URL;
  body: Readable;
}

export interface TransportStats {
  requests: number;
  retries: number;
}

/** Trace hook for --debug: receives method, URL (query redacted by the caller if needed) and status. */
export type TraceFn = (line: {
  method: string;
  url: string;
  status?: number;
  error?: string;
  ms: number;
}) => void;

export interface HostSettings {
  tls: TlsMode;
  /** Requests in flight to this host at the start (it adapts: see adaptive-limit.ts). */
  concurrency: number;
  /** The most requests in flight it may grow to (default: `concurrency`, a fixed bound). */
  maxConcurrency?: number;
  /** Requests per second allowed for some kinds of request. */
  rates?: RequestRates;
}

const MAX_REDIRECTS = 5;
const ERROR_BODY_CAP = 64 * 1024;
/** A body we do not want is read this far (to keep the connection) and then cut off. */
const DRAIN_CAP = 64 * 1024;
/**
 * ...and for this long at most: no deadline watches it (a redirect's, a retried answer's), and one that
 * drips would hold its connection, and Transport.close(), for as long as the server likes.
 */
const DRAIN_MS = 5_000;
/** How long Transport.close() lets requests still in flight finish before it cuts them. */
const CLOSE_GRACE_MS = 5_000;

export function header(headers: ResponseHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** Read at most `cap` bytes of a body (error bodies can be anything, of any size), then discard the rest. */
export async function readCapped(body: Readable, cap = ERROR_BODY_CAP): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (size < cap) chunks.push(buf.subarray(0, cap - size));
      size += buf.byteLength;
      if (size >= cap) break;
    }
  } catch {
    // A broken error body still leaves us with the status; keep what we read.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A body larger than the reader's limit: the caller names the registry and the setting. */
export class BodyTooLargeError extends RangeError {
  constructor(readonly limit: number) {
    super(`response larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.byteLength;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/**
 * Discard a body we do not need. A small one is read to its end so the connection can be reused; one
 * that goes on (a hostile registry's endless error page) or takes its time (one that drips) is cut off.
 */
export function drain(body: Readable): void {
  body.on('error', () => {});
  if (body.destroyed) return;
  const timer = setTimeout(() => body.destroy(), DRAIN_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  body.once('end', done);
  body.once('close', done);
  let read = 0;
  body.on('data', (chunk: Buffer) => {
    read += chunk.byteLength;
    if (read > DRAIN_CAP) body.destroy();
  });
  body.resume();
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timed out';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS certificate not trusted (${code}: ${message})`;
    default:
      return code ? `${code}: ${message}` : message;
  }
}

/**
 * The host name has no address (DNS says NXDOMAIN): a typo or a wrong host, which no retry will change.
 * EAI_AGAIN (the resolver could not answer) may pass, and is retried like any network fault.
 */
function isUnresolvable(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return (e.code ?? e.cause?.code) === 'ENOTFOUND';
}

/** What to say to someone whose loopback registry serves HTTPS while we speak plain HTTP to it. */
export function plainHttpHint(host: string): string {
  return (
    `${host} is spoken to in plain HTTP (the default for loopback hosts); if it serves HTTPS, give ` +
    `--tls-verify ${host} (or --ca-file ${host}=FILE for a private CA), or "tls": "verify" for it in the config`
  );
}

/**
 * A TLS server that received plain HTTP: Go's (distribution, zot, Harbor) answers "400 Bad Request" with
 * no headers at all and the body "Client sent an HTTP request to an HTTPS server."; a registry's own 400s
 * carry a content type and a JSON error body.
 */
async function isHttpsAnsweringHttp(
  req: TransportRequest,
  url: URL,
  res: TransportResponse,
): Promise<boolean> {
  if (url.protocol !== 'http:' || res.status !== 400) return false;
  if (header(res.headers, 'content-type') !== undefined) return false;
  if (req.method === 'HEAD') return true;
  const text = await readCapped(res.body, 4096);
  // The body is read: hand the caller a fresh stream with the same bytes.
  res.body = Readable.from([Buffer.from(text)]);
  return /HTTP request to an HTTPS server/i.test(text);
}

/** The server closed the connection without an HTTP answer: what a TLS server does with plain HTTP. */
function isClosedBeforeAnswer(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET';
}

function isTlsError(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  return /CERT|SSL|TLS/.test(code);
}

export class Transport {
  readonly stats: TransportStats = { requests: 0, retries: 0 };
  private readonly congestion = new Signal();
  private readonly agents = new Map<string, UndiciAgent>();
  private readonly limiters = new Map<string, AdaptiveLimit>();
  /**
   * Bodies not yet closed: what close() cuts if they hold it up. Weak: a body nobody consumed must stay
   * collectable (undici then releases its request), not be kept alive by this list.
   */
  private readonly bodies = new Set<WeakRef<Readable>>();
  private readonly settingsFor: (host: string) => HostSettings;
  private readonly retryPolicy: RetryPolicy;
  private readonly trace: TraceFn | undefined;

  constructor(options: { settings: (host: string) => HostSettings; retry?: RetryPolicy; trace?: TraceFn }) {
    this.settingsFor = options.settings;
    this.retryPolicy = options.retry ?? defaultRetryPolicy;
    this.trace = options.trace;
  }

  /** "https://host" or "http://host" for a registry host, by its TLS setting. */
  baseUrl(host: string): URL {
    const tls = this.settingsFor(host).tls;
    return new URL(`${tls === 'disabled' ? 'http' : 'https'}://${host}`);
  }

  private agentFor(url: URL): UndiciAgent {
    const key = url.host;
    let agent = this.agents.get(key);
    if (!agent) {
      const settings = this.settingsFor(url.host);
      agent = new undici.Agent({
        keepAliveTimeout: 30_000,
        connections: Math.max(settings.maxConcurrency ?? settings.concurrency, 1) * 2,
        connect: url.protocol === 'https:' ? connectOptions(settings.tls) : {},
        headersTimeout: 120_000,
        bodyTimeout: 300_000,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private limiterFor(host: string): AdaptiveLimit {
    let limiter = this.limiters.get(host);
    if (!limiter) {
      const settings = this.settingsFor(host);
      limiter = new AdaptiveLimit(
        host,
        {
          initial: settings.concurrency,
          max: settings.maxConcurrency ?? settings.concurrency,
          ...(settings.rates ? { rates: settings.rates } : {}),
        },
        () => this.congestion.fire(),
      );
      this.limiters.set(host, limiter);
    }
    return limiter;
  }

  /** Whether `host` refused a request with 429/503 a moment ago (it is slowing us down on purpose). */
  congested(host: string): boolean {
    return this.limiters.get(host)?.congested ?? false;
  }

  /** Settles at the next change of any host's congestion. */
  congestionChanged(): Promise<void> {
    return this.congestion.wait();
  }

  /** Requests in flight each host allows now (hosts asked so far). */
  concurrencyOf(host: string): number | undefined {
    return this.limiters.get(host)?.current;
  }

  /** Hosts that throttled the run (429/503 answers, or paced requests), with what it cost. */
  throttling(): ThrottleStats[] {
    return [...this.limiters.values()].filter((l) => l.eventful).map((l) => structuredClone(l.stats));
  }

  /**
   * Send a request; follows redirects (GET/HEAD) and retries transient faults. The host's concurrency slot
   * is held until the response headers arrive, not while the caller consumes the body: a streamed blob
   * GET feeding uploads to the same host must not starve those uploads of slots.
   */
  async send(req: TransportRequest): Promise<TransportResponse> {
    for (const name of Object.keys(req.headers ?? {})) {
      // One path for credentials, so that the rule in trust.ts cannot be bypassed by accident.
      if (name.toLowerCase() === 'authorization') {
        throw new Error('internal: pass credentials as TransportRequest.credentials, not as a header');
      }
    }
    if (!isHttpUrl(req.url)) {
      throw new UntrustedError(
        `refusing to request a ${registryText(req.url.protocol)} URL; only http and https are used`,
        {
          context: { registry: req.url.host },
        },
      );
    }
    const timer = req.deadline ? new DeadlineTimer(req.deadline, req.url, req.signal) : undefined;
    const signal = timer ? timer.signal : req.signal;
    try {
      const res = await this.sendRetrying(req, signal, timer);
      timer?.watch(res.body);
      return res;
    } catch (err) {
      timer?.clear();
      if (timer?.expired && !req.signal?.aborted) throw timer.error();
      throw err;
    }
  }

  private async sendRetrying(
    req: TransportRequest,
    signal: AbortSignal | undefined,
    timer: DeadlineTimer | undefined,
  ): Promise<TransportResponse> {
    const replayable = !(req.body instanceof Readable);
    const mayRetry = (req.retry ?? true) && replayable;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw new AbortedError();
      if (timer?.expired) throw timer.error();
      let res: TransportResponse;
      try {
        res = await this.sendFollowing(req, signal);
      } catch (err) {
        if (req.signal?.aborted) throw new AbortedError();
        if (timer?.expired) throw timer.error();
        // Our own verdicts (a redirect loop, a refused scheme) are answers of the registry, not faults.
        if (err instanceof RegmirrorError) throw err;
        const canRetry =
          mayRetry && !isTlsError(err) && !isUnresolvable(err) && attempt < this.retryPolicy.attempts;
        if (canRetry && Date.now() - started < this.retryPolicy.maxElapsedMs) {
          this.stats.retries++;
          await this.pause(retryDelay(this.retryPolicy, attempt, undefined), signal, req, timer);
          continue;
        }
        if (isUnresolvable(err)) {
          throw new NetworkError(`cannot reach ${req.url.host}: DNS has no address for ${req.url.hostname}`, {
            context: { registry: req.url.host },
            cause: err,
            hint: 'check the registry host name for a typo; not retried',
          });
        }
        throw new NetworkError(`cannot reach ${req.url.host}: ${describeNetworkError(err)}`, {
          context: { registry: req.url.host },
          cause: err,
          hint: isTlsError(err)
            ? 'trust its CA: --ca-file HOST=FILE, or "tls": { "caFile": ... } for the registry in the config, or NODE_EXTRA_CA_CERTS'
            : req.url.protocol === 'http:' && isClosedBeforeAnswer(err)
              ? plainHttpHint(req.url.host)
              : 'check the host name, port, and that the registry is running',
        });
      }
      if (await isHttpsAnsweringHttp(req, res.url, res)) {
        drain(res.body);
        throw new NetworkError(
          `cannot talk to ${res.url.host}: it answered plain HTTP with "400 Bad Request", as an HTTPS server does`,
          { context: { registry: res.url.host }, hint: plainHttpHint(res.url.host) },
        );
      }
      const hinted = req.onAnswer?.({ status: res.status, headers: res.headers });
      if (mayRetry && isRetryableStatus(res.status) && attempt < this.retryPolicy.attempts) {
        const retryAfter = header(res.headers, 'retry-after');
        const delay =
          hinted !== undefined && parseRetryAfter(retryAfter) === undefined
            ? Math.min(hinted, this.retryPolicy.maxDelayMs)
            : retryDelay(this.retryPolicy, attempt, retryAfter);
        if (Date.now() - started + delay < this.retryPolicy.maxElapsedMs) {
          drain(res.body);
          this.stats.retries++;
          if (res.status === 429 || res.status === 503) this.limiterFor(res.url.host).waited(delay);
          req.onRetry?.({ status: res.status, headers: res.headers }, delay);
          await this.pause(delay, signal, req, timer);
          continue;
        }
      }
      return res;
    }
  }

  /** Back off before a retry; the run's interrupt and the request's deadline both end the wait. */
  private async pause(
    ms: number,
    signal: AbortSignal | undefined,
    req: TransportRequest,
    timer: DeadlineTimer | undefined,
  ): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (err) {
      if (timer?.expired && !req.signal?.aborted) throw timer.error();
      throw err;
    }
  }

  private async sendFollowing(
    req: TransportRequest,
    signal: AbortSignal | undefined,
  ): Promise<TransportResponse> {
    // A credential in the body (the OAuth2 form) is never carried anywhere by a redirect.
    const follow =
      !req.credentials?.inBody && (req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD'));
    let url = req.url;
    const originHost = req.url.host;
    const visited = new Set<string>([url.href]);
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(req, url, signal);
      if (!follow || !isRedirect(res.status)) return res;
      const location = header(res.headers, 'location');
      if (!location) return res;
      drain(res.body);
      const context = { registry: originHost };
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RegistryError(
          `${url.host} redirected to something that is not a URL (${unparsedUrlText(location)})`,
          {
            context,
          },
        );
      }
      if (!isHttpUrl(next)) {
        throw new RegistryError(
          `${url.host} redirected to a ${registryText(next.protocol)} URL (${registryText(redactUrl(next), 200)}); only http and https are followed`,
          { context },
        );
      }
      if (downgrades(url, next)) {
        throw new RegistryError(
          `refusing to follow a redirect from HTTPS to plain HTTP (${registryText(redactUrl(next), 200)})`,
          { context },
        );
      }
      if (visited.has(next.href)) {
        throw new RegistryError(
          `redirect loop: ${url.host} redirected back to ${registryText(redactUrl(next), 200)}`,
          {
            context,
          },
        );
      }
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError(
          `too many redirects (more than ${MAX_REDIRECTS}) from ${originHost}, the last to ${registryText(redactUrl(next), 200)}`,
          { context },
        );
      }
      visited.add(next.href);
      url = next;
    }
  }

  private async sendOnce(
    req: TransportRequest,
    url: URL,
    signal: AbortSignal | undefined,
  ): Promise<TransportResponse> {
    const headers: Headers = { ...req.headers };
    const credentials = req.credentials;
    if (credentials) {
      // The rule (trust.ts), asked for every hop: credentials only on their own origin.
      const allowed = mayCarry(url, credentials.origin);
      if (credentials.inBody && !allowed) {
        throw new Error(
          `internal: a request whose body holds credentials for ${credentials.origin} was sent to ${url.origin}`,
        );
      }
      if (credentials.authorization !== undefined && allowed)
        headers.authorization = credentials.authorization;
    }
    const limiter = this.limiterFor(url.host);
    // A per-second rate for this kind of request (ECR Public's manifest PUTs) is waited for holding no slot.
    await limiter.pace(req.action, signal);
    return limiter.run(async () => {
      const started = Date.now();
      this.stats.requests++;
      let body: Dispatcher.DispatchOptions['body'] = null;
      if (req.body !== undefined)
        body = typeof req.body === 'string' ? req.body : (req.body as Buffer | Readable);
      try {
        const res = await undiciRequest(url, {
          method: req.method,
          headers,
          body,
          signal: signal ?? null,
          dispatcher: this.agentFor(url),
          // undici closes the connection after every HEAD unless told not to (for servers that send a
          // body anyway): a new TCP (and TLS) handshake per HEAD, i.e. per tag and side of a no-op sync.
          // Registries answer HEAD without a body; one that sends one garbles the next answer on that
          // connection, which then fails as a network fault and is retried on a new connection.
          ...(req.method === 'HEAD' ? { reset: false } : {}),
          ...(req.idleMs !== undefined ? { headersTimeout: req.idleMs, bodyTimeout: req.idleMs } : {}),
        });
        limiter.answered(res.statusCode);
        const resBody = res.body as unknown as Readable;
        const ref = new WeakRef(resBody);
        this.bodies.add(ref);
        resBody.once('close', () => this.bodies.delete(ref));
        this.trace?.({
          method: req.method,
          url: redactUrl(url),
          status: res.statusCode,
          ms: Date.now() - started,
        });
        return { status: res.statusCode, headers: res.headers, url, body: resBody };
      } catch (err) {
        this.trace?.({
          method: req.method,
          url: redactUrl(url),
          error: describeNetworkError(err),
          ms: Date.now() - started,
        });
        throw err;
      }
    });
  }

  /**
   * Close the connections. undici's close waits for the requests in flight, bodies included: one still
   * dripping (a body nobody reads) would keep the CLI from exiting, so after a grace time it is cut.
   */
  async close(): Promise<void> {
    for (const l of this.limiters.values()) l.close();
    const closed = Promise.all([...this.agents.values()].map((a) => a.close().catch(() => {})));
    this.agents.clear();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), CLOSE_GRACE_MS);
    });
    if ((await Promise.race([closed, grace])) === 'late') {
      for (const ref of this.bodies) {
        const body = ref.deref();
        body?.on('error', () => {});
        body?.destroy();
      }
      await closed;
    }
    clearTimeout(timer);
  }
}

/**
 * Query keys whose values are known to be harmless, and kept: the registry API's own (tag-list and
 * referrers pages, mounts, upload digests, the token request's service and scope), and the algorithm,
 * date and expiry of S3, GCS, CloudFront and Azure signed URLs (an expired one is worth seeing). Every
 * other value is a secret until known otherwise: signatures and tokens come under any name (`hdnts`,
 * `jwt`, `verify`, `_state`, ...).
 */
const HARMLESS_QUERY_KEYS = new Set([
  'n',
  'last',
  'digest',
  'mount',
  'from',
  'artifactType',
  'scope',
  'service',
  'X-Amz-Algorithm',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Goog-Algorithm',
  'X-Goog-Date',
  'X-Goog-Expires',
  'Expires',
  'se',
  'st',
  'sv',
]);

/** A key printed with its value redacted; anything else (a bare token, an encoded name) is redacted whole. */
const PLAIN_QUERY_KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,39}$/;

/**
 * Storage redirects and upload locations carry signatures and capabilities in the query string: never
 * print them. A URL for a message or the --debug trace: no user info, no fragment, and in the query
 * (parameters split at "&" and ";") only the values of HARMLESS_QUERY_KEYS.
 */
export function redactUrl(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  u.hash = '';
  const query = u.search.slice(1);
  if (!query) return u.href;
  u.search = '';
  const redacted = query
    .split(/([&;])/)
    .map((part, i) => {
      if (i % 2 === 1 || part === '') return part; // a separator, or nothing between two
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      if (HARMLESS_QUERY_KEYS.has(key)) return part;
      return eq >= 0 && PLAIN_QUERY_KEY.test(key) ? `${key}=REDACTED` : 'REDACTED';
    })
    .join('');
  return `${u.href}?${redacted}`;
}

/**
 * Runs the whole-request deadline: aborts a request still waiting for its headers, and cuts a body still
 * being read when the time is up, with a TimeoutError that names the request and the setting.
 */
class DeadlineTimer {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private body: Readable | undefined;
  private readonly onParentAbort: () => void;
  expired = false;

  constructor(
    private readonly deadline: Deadline,
    private readonly url: URL,
    private readonly parent: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(
      () => {
        this.expired = true;
        this.body?.destroy(this.error());
        this.controller.abort(this.error());
        this.parent?.removeEventListener('abort', this.onParentAbort);
      },
      Math.max(0, deadline.ms),
    );
    // A pending deadline must not keep a finished CLI alive.
    this.timer.unref();
    // The run's interrupt aborts the request too. (By hand, not AbortSignal.any: that one keeps its
    // listeners on the long-lived run signal until garbage collection, one per request.)
    this.onParentAbort = () => this.controller.abort(parent?.reason);
    if (parent?.aborted) this.controller.abort(parent.reason);
    else parent?.addEventListener('abort', this.onParentAbort, { once: true });
  }

  /** Aborted when the deadline passes or the run is interrupted. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The body is part of the request: the deadline runs until it has been read (or dropped). */
  watch(body: Readable): void {
    this.body = body;
    if (body.destroyed || body.readableEnded) this.clear();
    else body.once('close', () => this.clear());
  }

  clear(): void {
    clearTimeout(this.timer);
    this.parent?.removeEventListener('abort', this.onParentAbort);
  }

  error(): TimeoutError {
    const seconds = this.deadline.ms / 1000;
    const took = Number.isInteger(seconds) ? `${seconds} s` : `${seconds.toFixed(1)} s`;
    return new TimeoutError(`${this.deadline.what} did not finish within ${took}`, {
      context: { registry: this.url.host },
      hint: `the registry is too slow, stalls, or drips its answer; if it is only slow, raise ${this.deadline.setting} for it in the config`,
    });
  }
}
