// The HTTP transport: the only module that imports undici.
//
// One keep-alive connection pool per registry (undici Agent), TLS per registry (verify with system CAs,
// NODE_EXTRA_CA_CERTS and an optional CA file; or plain HTTP; or explicit insecure), a bound on requests
// in flight per host, retries with backoff for transient faults, and redirects followed by hand so that
// Authorization is never sent to a host other than the one it was issued for.

import { Readable } from 'node:stream';
import { Agent, type Dispatcher, request as undiciRequest } from 'undici';
import { AbortedError, NetworkError, RegistryError } from '../errors.js';
import { createLimiter, type Limiter } from './limiter.js';
import { defaultRetryPolicy, type RetryPolicy, retryDelay, sleep } from './retry.js';
import { isRetryableStatus } from './status.js';
import { connectOptions, type TlsMode } from './tls.js';

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
  /** Requests in flight to this host at once. */
  concurrency: number;
}

const MAX_REDIRECTS = 5;
const ERROR_BODY_CAP = 64 * 1024;

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

export async function readAll(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.byteLength;
    if (size > limit) {
      body.destroy();
      throw new RangeError(`response larger than ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export function drain(body: Readable): void {
  body.resume();
  body.on('error', () => {});
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
  private readonly agents = new Map<string, Agent>();
  private readonly limiters = new Map<string, Limiter>();
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

  private agentFor(url: URL): Agent {
    const key = url.host;
    let agent = this.agents.get(key);
    if (!agent) {
      const settings = this.settingsFor(url.host);
      agent = new Agent({
        keepAliveTimeout: 30_000,
        connections: Math.max(settings.concurrency, 1) * 2,
        connect: url.protocol === 'https:' ? connectOptions(settings.tls) : {},
        headersTimeout: 120_000,
        bodyTimeout: 300_000,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private limiterFor(host: string): Limiter {
    let limiter = this.limiters.get(host);
    if (!limiter) {
      limiter = createLimiter(this.settingsFor(host).concurrency);
      this.limiters.set(host, limiter);
    }
    return limiter;
  }

  /**
   * Send a request; follows redirects (GET/HEAD) and retries transient faults. The host's concurrency slot
   * is held until the response headers arrive, not while the caller consumes the body: a streamed blob
   * GET feeding uploads to the same host must not starve those uploads of slots.
   */
  async send(req: TransportRequest): Promise<TransportResponse> {
    const replayable = !(req.body instanceof Readable);
    const mayRetry = (req.retry ?? true) && replayable;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (req.signal?.aborted) throw new AbortedError();
      let res: TransportResponse;
      try {
        res = await this.sendFollowing(req);
      } catch (err) {
        if (req.signal?.aborted) throw new AbortedError();
        const canRetry =
          mayRetry && !isTlsError(err) && !isUnresolvable(err) && attempt < this.retryPolicy.attempts;
        if (canRetry && Date.now() - started < this.retryPolicy.maxElapsedMs) {
          this.stats.retries++;
          await sleep(retryDelay(this.retryPolicy, attempt, undefined), req.signal);
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
      if (mayRetry && isRetryableStatus(res.status) && attempt < this.retryPolicy.attempts) {
        const delay = retryDelay(this.retryPolicy, attempt, header(res.headers, 'retry-after'));
        if (Date.now() - started + delay < this.retryPolicy.maxElapsedMs) {
          drain(res.body);
          this.stats.retries++;
          await sleep(delay, req.signal);
          continue;
        }
      }
      return res;
    }
  }

  private async sendFollowing(req: TransportRequest): Promise<TransportResponse> {
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    let url = req.url;
    let headers = { ...req.headers };
    const originHost = req.url.host;
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(req, url, headers);
      if (!follow || !isRedirect(res.status)) return res;
      const location = header(res.headers, 'location');
      if (!location) return res;
      drain(res.body);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError(`too many redirects from ${req.url.host}`, {
          context: { registry: originHost },
        });
      }
      const next = new URL(location, url);
      if (next.host !== originHost || next.protocol !== req.url.protocol) {
        // Credentials belong to the registry that issued them. Storage backends (S3, GCS) sign the URL itself.
        const { authorization: _dropped, Authorization: _dropped2, ...rest } = headers;
        headers = rest;
      }
      if (url.protocol === 'https:' && next.protocol === 'http:') {
        throw new RegistryError(`refusing to follow a redirect from HTTPS to plain HTTP (${next.host})`, {
          context: { registry: originHost },
        });
      }
      url = next;
    }
  }

  private async sendOnce(req: TransportRequest, url: URL, headers: Headers): Promise<TransportResponse> {
    const limiter = this.limiterFor(url.host);
    return limiter(async () => {
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
          signal: req.signal ?? null,
          dispatcher: this.agentFor(url),
        });
        this.trace?.({
          method: req.method,
          url: redactUrl(url),
          status: res.statusCode,
          ms: Date.now() - started,
        });
        return { status: res.statusCode, headers: res.headers, url, body: res.body as unknown as Readable };
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

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close().catch(() => {})));
    this.agents.clear();
  }
}

/** Storage redirects carry signatures in the query string: never print them. */
export function redactUrl(url: URL): string {
  const u = new URL(url.href);
  for (const key of [...u.searchParams.keys()]) {
    if (/sig|signature|token|credential|key|auth|secret|policy/i.test(key))
      u.searchParams.set(key, 'REDACTED');
  }
  u.username = '';
  u.password = '';
  return u.href;
}
