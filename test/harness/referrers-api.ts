import { createHash } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { pipeline } from 'node:stream/promises';
import { closeServer, forwardableHeaders, listen } from './http-server.js';
import type { Descriptor } from './oci-builders.js';

/**
 * The OCI referrers API in front of a real distribution registry, which has none (2.8): what Harbor
 * ≥ 2.9, zot or ACR do. A scripted fake for what no registry in this test world can show, kept as
 * small as the API: every request goes to the real registry (which stores and authorises everything);
 * this front only
 *
 *  - watches manifest PUTs: a manifest with a `subject` that the registry accepted is recorded as a
 *    referrer of that subject (descriptor with artifactType and annotations, as the spec says), and the
 *    answer gets `OCI-Subject: <subject digest>`;
 *  - answers `GET /v2/<name>/referrers/<digest>` from that record, in pages of `pageSize` linked by
 *    `Link: <...>; rel="next"`, with `?artifactType=` applied and `OCI-Filters-Applied` said; access is
 *    decided by the registry itself (the request's credentials are tried on the repository's tag list:
 *    its 401 or 404 NAME_UNKNOWN goes back to the client as it is);
 *  - forgets a referrer whose manifest is deleted.
 */

export interface ReferrersApi {
  url: string;
  host: string;
  /** repository → subject digest → referrer descriptors, in push order. */
  readonly index: Map<string, Map<string, Descriptor[]>>;
  stop(): Promise<void>;
}

export interface ReferrersApiOptions {
  /** Descriptors per page of a referrers answer (default 2: clients must follow the Link header). */
  pageSize?: number;
  /** Answer a manifest PUT with a subject with `OCI-Subject` (default true; Quay has the API but does not). */
  announceSubject?: boolean;
}

const NAME = '([a-z0-9]+(?:[._/-][a-z0-9]+)*)';
const REFERRERS = new RegExp(`^/v2/${NAME}/referrers/(sha256:[a-f0-9]{64})$`);
const MANIFEST = new RegExp(`^/v2/${NAME}/manifests/([^/]+)$`);
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function startReferrersApi(
  upstreamUrl: string,
  opts: ReferrersApiOptions = {},
): Promise<ReferrersApi> {
  const upstream = new URL(upstreamUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const pageSize = opts.pageSize ?? 2;
  const announceSubject = opts.announceSubject ?? true;
  const index = new Map<string, Map<string, Descriptor[]>>();

  /** Send a request upstream with a buffered body; resolves with the answer, body buffered too. */
  function upstreamCall(
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    body?: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const up = httpRequest(
        { host: upstream.hostname, port: upstream.port, method, path, headers, agent },
        (res) => {
          readBody(res).then(
            (b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }),
            reject,
          );
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }

  function send(
    res: ServerResponse,
    status: number,
    headers: OutgoingHttpHeaders,
    body: Buffer,
    head = false,
  ) {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    res.end(head ? undefined : body);
  }

  function record(repo: string, bytes: Buffer, contentType: string | undefined): string | undefined {
    let doc: {
      mediaType?: string;
      artifactType?: string;
      config?: { mediaType?: string };
      subject?: { digest?: string };
      annotations?: Record<string, string>;
    };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      return undefined;
    }
    const subject = doc.subject?.digest;
    if (typeof subject !== 'string') return undefined;
    const artifactType = doc.artifactType ?? doc.config?.mediaType;
    const descriptor: Descriptor = {
      mediaType: doc.mediaType ?? contentType ?? '',
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      size: bytes.length,
      ...(artifactType ? { artifactType } : {}),
      ...(doc.annotations ? { annotations: doc.annotations } : {}),
    };
    let bySubject = index.get(repo);
    if (!bySubject) {
      bySubject = new Map();
      index.set(repo, bySubject);
    }
    const list = bySubject.get(subject) ?? [];
    if (!list.some((d) => d.digest === descriptor.digest)) list.push(descriptor);
    bySubject.set(subject, list);
    return subject;
  }

  async function referrers(
    req: IncomingMessage,
    res: ServerResponse,
    repo: string,
    digest: string,
    url: URL,
  ) {
    // Let the registry decide access and whether the repository exists.
    const probe = await upstreamCall('GET', `/v2/${repo}/tags/list?n=1`, {
      host: req.headers.host ?? upstream.host,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    if (probe.status !== 200) {
      send(res, probe.status, forwardableHeaders(probe.headers), probe.body);
      return;
    }
    let list = index.get(repo)?.get(digest) ?? [];
    const headers: OutgoingHttpHeaders = { 'content-type': OCI_INDEX };
    const artifactType = url.searchParams.get('artifactType');
    if (artifactType !== null) {
      list = list.filter((d) => d.artifactType === artifactType);
      headers['oci-filters-applied'] = 'artifactType';
    }
    const page = Number(url.searchParams.get('page') ?? '0');
    const slice = list.slice(page * pageSize, (page + 1) * pageSize);
    if ((page + 1) * pageSize < list.length) {
      const next = new URLSearchParams(url.searchParams);
      next.set('page', String(page + 1));
      headers.link = `</v2/${repo}/referrers/${digest}?${next}>; rel="next"`;
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: slice }));
    send(res, 200, headers, body, req.method === 'HEAD');
  }

  async function manifestPut(req: IncomingMessage, res: ServerResponse, repo: string, path: string) {
    const body = await readBody(req);
    const answer = await upstreamCall('PUT', path, forwardableHeaders(req.headers), body);
    const headers = forwardableHeaders(answer.headers);
    if (answer.status === 201) {
      const contentType = req.headers['content-type'];
      const subject = record(repo, body, Array.isArray(contentType) ? contentType[0] : contentType);
      if (subject && announceSubject) headers['oci-subject'] = subject;
    }
    send(res, answer.status, headers, answer.body);
  }

  async function manifestDelete(
    req: IncomingMessage,
    res: ServerResponse,
    repo: string,
    path: string,
    ref: string,
  ) {
    const answer = await upstreamCall('DELETE', path, forwardableHeaders(req.headers));
    if (answer.status === 202) {
      for (const [subject, list] of index.get(repo) ?? []) {
        index.get(repo)!.set(
          subject,
          list.filter((d) => d.digest !== ref),
        );
      }
    }
    send(res, answer.status, forwardableHeaders(answer.headers), answer.body);
  }

  function forward(req: IncomingMessage, res: ServerResponse) {
    const up = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: forwardableHeaders(req.headers),
      agent,
    });
    up.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, forwardableHeaders(upRes.headers));
      pipeline(upRes, res).catch(() => {});
    });
    up.on('error', () => res.destroy());
    pipeline(req, up).catch(() => {});
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const fail = () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    };
    const r = REFERRERS.exec(url.pathname);
    if (r && (req.method === 'GET' || req.method === 'HEAD')) {
      referrers(req, res, r[1]!, r[2]!, url).catch(fail);
      return;
    }
    const m = MANIFEST.exec(url.pathname);
    if (m && req.method === 'PUT') {
      manifestPut(req, res, m[1]!, req.url ?? url.pathname).catch(fail);
      return;
    }
    if (m && req.method === 'DELETE') {
      manifestDelete(req, res, m[1]!, req.url ?? url.pathname, m[2]!).catch(fail);
      return;
    }
    forward(req, res);
  });

  const port = await listen(server, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    index,
    async stop() {
      await closeServer(server);
      agent.destroy();
    },
  };
}
