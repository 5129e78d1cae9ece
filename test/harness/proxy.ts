import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { closeServer, forwardableHeaders, listen } from './http-server.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/**
 * A counting reverse proxy in front of a registry, with fault injection. Tests point the client at
 * the proxy, then assert on what went over the wire (how many HEADs, whether a blob was uploaded
 * twice) and make the "registry" misbehave (429, 503, bodies cut midway, blob GETs redirected to a
 * storage host like ECR → S3).
 */

export type RequestKind = 'ping' | 'manifest' | 'blob' | 'upload' | 'tags' | 'referrers' | 'other';

export interface ProxyRequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
  /** 0 until the response head is known. */
  status: number;
  hasAuthorization: boolean;
  /** When the request arrived (epoch ms). */
  at: number;
  /** Bytes of request body the proxy received (counted as they pass). */
  requestBytes: number;
  /** The response's Location header as the client got it (after any edit). */
  location?: string;
  kind: RequestKind;
  /** Repository name for distribution API paths. */
  repo?: string;
}

export interface FaultRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  kind: RequestKind;
  repo?: string;
  headers: IncomingHttpHeaders;
}

export type FaultAction =
  /** Answer at once with this status; the upstream never sees the request. */
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Forward, but destroy the connection after this many bytes of the upstream's response body. */
  | { cutBodyAfterBytes: number }
  /** Forward; once the upstream has acted and answered, drop the connection instead of answering. */
  | { dropResponse: true }
  /** Forward after a pause (a slow registry). */
  | { delayMs: number }
  /** Forward without these request headers (e.g. "range": a server that ignores Range). */
  | { withoutHeaders: string[] }
  /**
   * Forward, and change the upstream's response headers before the client sees them: add a vendor's
   * headers (Docker Hub's ratelimit-*), or make a Location relative (GHCR).
   */
  | { editResponseHeaders: (headers: OutgoingHttpHeaders, status: number) => OutgoingHttpHeaders };

export type FaultHook = (req: FaultRequest) => FaultAction | undefined;

/** Mutable at any time during a test. */
export interface ProxySettings {
  /** Answer blob GETs with 307 to a storage host on 127.0.0.2 (another host, like S3 behind ECR). */
  redirectBlobGets: boolean;
  fault: FaultHook | undefined;
}

export interface ProxyOptions {
  redirectBlobGets?: boolean;
  fault?: FaultHook;
}

export interface StorageRequestRecord {
  path: string;
  hasAuthorization: boolean;
}

export interface CountFilter {
  method?: string;
  kind?: RequestKind;
  status?: number;
  repo?: string;
  /** Substring of the raw query string, e.g. 'mount=' or 'digest=sha256:'. */
  query?: string;
}

export interface RegistryProxy {
  url: string;
  host: string;
  upstreamUrl: string;
  requests: ProxyRequestRecord[];
  storageRequests: StorageRequestRecord[];
  settings: ProxySettings;
  count(filter?: CountFilter): number;
  /** Forget recorded requests (both lists), keeping settings. */
  reset(): void;
  stop(): Promise<void>;
}

/** The storage host is another loopback address so that "same host" checks by clients really differ. */
const STORAGE_HOST = '127.0.0.2';

const NAME = '(?<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)';
const ROUTES: Array<[RegExp, RequestKind]> = [
  [new RegExp(`^/v2/${NAME}/manifests/[^/]+$`), 'manifest'],
  [new RegExp(`^/v2/${NAME}/blobs/uploads(?:/[^/]*)?$`), 'upload'],
  [new RegExp(`^/v2/${NAME}/blobs/[^/]+$`), 'blob'],
  [new RegExp(`^/v2/${NAME}/tags/list$`), 'tags'],
  [new RegExp(`^/v2/${NAME}/referrers/[^/]+$`), 'referrers'],
];

/** Classifies a distribution API path (without query). */
export function classifyPath(path: string): { kind: RequestKind; repo?: string } {
  if (path === '/v2/' || path === '/v2') return { kind: 'ping' };
  for (const [pattern, kind] of ROUTES) {
    const repo = pattern.exec(path)?.groups?.repo;
    if (repo !== undefined) return { kind, repo };
  }
  return { kind: 'other' };
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) {
      resolve();
      return;
    }
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}

/** `a=b&c=d` without percent-encoding, so filters can be written as the values read. */
function decodedQuery(query: URLSearchParams): string {
  return [...query].map(([k, v]) => `${k}=${v}`).join('&');
}

function errorBody(status: number, message: string): string {
  const code = status === 429 ? 'TOOMANYREQUESTS' : status >= 500 ? 'UNAVAILABLE' : 'DENIED';
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

export async function startProxy(upstreamUrl: string, opts: ProxyOptions = {}): Promise<RegistryProxy> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const storeDir = await makeTempDir('proxy-storage');
  const requests: ProxyRequestRecord[] = [];
  const storageRequests: StorageRequestRecord[] = [];
  const settings: ProxySettings = { redirectBlobGets: opts.redirectBlobGets ?? false, fault: opts.fault };
  let storagePort = 0;

  function upstreamRequest(req: IncomingMessage, without: string[] = []): ReturnType<typeof httpRequest> {
    const headers = forwardableHeaders(req.headers);
    for (const name of without) delete headers[name.toLowerCase()];
    return httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      // The client's Host header is kept: the registry builds absolute Location URLs from it, and
      // they must point back at the proxy, not around it.
      headers,
      agent,
    });
  }

  function sendFault(
    req: IncomingMessage,
    res: ServerResponse,
    fault: { status: number; headers?: Record<string, string>; body?: string },
    record: ProxyRequestRecord,
  ): void {
    req.on('data', (chunk: Buffer) => {
      record.requestBytes += chunk.length;
    });
    // Read the client's body first so it is not left half-sent on a keep-alive connection.
    void drain(req).then(() => {
      const body = Buffer.from(fault.body ?? errorBody(fault.status, 'injected fault'));
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        'content-length': String(body.length),
        ...fault.headers,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }

  /** Plain forwarding, optionally cutting the response body after N bytes. */
  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: ProxyRequestRecord,
    cutAfter?: number,
    opts: {
      dropResponse?: boolean;
      without?: string[];
      editHeaders?: (headers: OutgoingHttpHeaders, status: number) => OutgoingHttpHeaders;
    } = {},
  ): void {
    const up = upstreamRequest(req, opts.without);
    up.on('response', (upRes) => {
      if (opts.dropResponse) {
        // The upstream did the work; the client never hears of it.
        record.status = -1;
        upRes.resume();
        upRes.on('end', () => res.destroy());
        return;
      }
      record.status = upRes.statusCode ?? 502;
      let headers = forwardableHeaders(upRes.headers);
      if (opts.editHeaders) headers = opts.editHeaders(headers, record.status);
      if (typeof headers.location === 'string') record.location = headers.location;
      res.writeHead(record.status, headers);
      if (cutAfter === undefined) {
        pipeline(upRes, res).catch(() => {
          // Client or upstream went away; both sides are destroyed by pipeline.
        });
        return;
      }
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        const room = cutAfter - sent;
        if (chunk.length < room) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            upRes.pause();
            res.once('drain', () => upRes.resume());
          }
          return;
        }
        upRes.destroy();
        const last = chunk.subarray(0, Math.max(room, 0));
        // Let the partial bytes reach the client, then drop the connection mid-body.
        res.write(last, () => res.destroy());
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => {
      if (!res.headersSent) {
        record.status = 502;
        const body = errorBody(502, 'upstream unreachable');
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': String(body.length) });
        res.end(body);
      } else {
        res.destroy();
      }
    });
    req.on('data', (chunk: Buffer) => {
      record.requestBytes += chunk.length;
    });
    pipeline(req, up).catch(() => {
      // Client aborted its upload; pipeline already destroyed the upstream request.
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
  }

  /**
   * ECR/Quay style: fetch the blob from upstream with the client's own credentials (so auth is
   * still enforced), park the bytes on the storage host, and answer 307 pointing there.
   * Non-200 answers (401 challenge, 404) are passed through unchanged.
   */
  function redirectBlob(req: IncomingMessage, res: ServerResponse, record: ProxyRequestRecord): void {
    const up = upstreamRequest(req);
    up.on('response', (upRes) => {
      if (upRes.statusCode !== 200) {
        record.status = upRes.statusCode ?? 502;
        res.writeHead(record.status, forwardableHeaders(upRes.headers));
        pipeline(upRes, res).catch(() => {});
        return;
      }
      const key = randomUUID();
      pipeline(upRes, createWriteStream(join(storeDir, key))).then(
        () => {
          record.status = 307;
          res.writeHead(307, {
            location: `http://${STORAGE_HOST}:${storagePort}/blob/${key}`,
            'content-length': '0',
          });
          res.end();
        },
        () => {
          record.status = 502;
          res.destroy();
        },
      );
    });
    up.on('error', () => {
      record.status = 502;
      res.destroy();
    });
    up.end();
    req.resume();
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const method = req.method ?? 'GET';
    const { kind, repo } = classifyPath(url.pathname);
    const record: ProxyRequestRecord = {
      method,
      path: url.pathname,
      query: url.searchParams,
      status: 0,
      hasAuthorization: req.headers.authorization !== undefined,
      at: Date.now(),
      requestBytes: 0,
      kind,
      ...(repo !== undefined && { repo }),
    };
    requests.push(record);

    const fault = settings.fault?.({
      method,
      path: url.pathname,
      query: url.searchParams,
      kind,
      ...(repo !== undefined && { repo }),
      headers: req.headers,
    });
    if (fault && 'status' in fault) {
      record.status = fault.status;
      sendFault(req, res, fault, record);
    } else if (fault && 'cutBodyAfterBytes' in fault) {
      forward(req, res, record, fault.cutBodyAfterBytes);
    } else if (fault && 'dropResponse' in fault) {
      forward(req, res, record, undefined, { dropResponse: true });
    } else if (fault && 'editResponseHeaders' in fault) {
      forward(req, res, record, undefined, { editHeaders: fault.editResponseHeaders });
    } else if (fault && 'withoutHeaders' in fault) {
      forward(req, res, record, undefined, { without: fault.withoutHeaders });
    } else if (fault && 'delayMs' in fault) {
      req.pause();
      setTimeout(() => {
        req.resume();
        if (settings.redirectBlobGets && method === 'GET' && kind === 'blob') redirectBlob(req, res, record);
        else forward(req, res, record);
      }, fault.delayMs);
    } else if (settings.redirectBlobGets && method === 'GET' && kind === 'blob') {
      redirectBlob(req, res, record);
    } else {
      forward(req, res, record);
    }
  });

  /** The "S3" side: serves parked blobs, refuses requests that carry registry credentials. */
  const storage = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://storage.invalid').pathname;
    const hasAuthorization = req.headers.authorization !== undefined;
    storageRequests.push({ path, hasAuthorization });
    const fail = (status: number, message: string): void => {
      res.writeHead(status, {
        'content-type': 'text/plain',
        'content-length': String(Buffer.byteLength(message)),
      });
      res.end(message);
    };
    // S3 rejects a presigned URL combined with an Authorization header; so do we.
    if (hasAuthorization) return fail(400, 'Only one auth mechanism allowed');
    const match = /^\/blob\/([0-9a-f-]{36})$/.exec(path);
    if (!match?.[1] || (req.method !== 'GET' && req.method !== 'HEAD')) return fail(404, 'NoSuchKey');
    const file = join(storeDir, match[1]);
    stat(file).then(
      (info) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(info.size),
        });
        if (req.method === 'HEAD') res.end();
        else pipeline(createReadStream(file), res).catch(() => {});
      },
      () => fail(404, 'NoSuchKey'),
    );
  });

  try {
    const port = await listen(server, '127.0.0.1');
    storagePort = await listen(storage, STORAGE_HOST);
    return {
      url: `http://127.0.0.1:${port}`,
      host: `127.0.0.1:${port}`,
      upstreamUrl,
      requests,
      storageRequests,
      settings,
      count(filter: CountFilter = {}) {
        return requests.filter(
          (r) =>
            (filter.method === undefined || r.method === filter.method) &&
            (filter.kind === undefined || r.kind === filter.kind) &&
            (filter.status === undefined || r.status === filter.status) &&
            (filter.repo === undefined || r.repo === filter.repo) &&
            (filter.query === undefined || decodedQuery(r.query).includes(filter.query)),
        ).length;
      },
      reset() {
        requests.length = 0;
        storageRequests.length = 0;
      },
      async stop() {
        await Promise.all([closeServer(server), closeServer(storage)]);
        agent.destroy();
        await removeDir(storeDir);
      },
    };
  } catch (err) {
    await Promise.all([closeServer(server), closeServer(storage)]);
    agent.destroy();
    await removeDir(storeDir);
    throw err;
  }
}
