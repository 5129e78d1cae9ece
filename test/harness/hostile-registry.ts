import { createHash, randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Credentials } from './fixture.js';
import { closeServer, listen } from './http-server.js';
import type { ManifestNode } from './oci-builders.js';

/**
 * An attacker's registry: a small scripted distribution-API server that plays the tricks a hostile or
 * broken registry can play on a client — and, around it, the other hosts such a registry points its
 * client at, each on its own loopback origin:
 *
 * - `registry` (127.0.0.1): the registry itself, Basic or Bearer auth, optionally HTTPS;
 * - `realm` (127.0.0.1, another port): its own token server, the only other origin that may see its
 *   credentials;
 * - `storage` (127.0.0.2): a storage host behind blob redirects (refuses requests carrying credentials,
 *   like S3) — or one that plays its own tricks;
 * - `third` (127.0.0.3): another attacker host, plain HTTP: named as a realm by storage, as a tag-list
 *   Link, as an upload Location, as an HTTPS registry's plain-HTTP realm;
 * - `sibling` (127.0.0.1, a third port): the registry's host on another port (another origin).
 *
 * Every request to every origin is recorded with the credentials it carried (an Authorization header,
 * or a refresh token in a form body), so that tests can count what reached which host. Tricks are set
 * per repository (`serve(repo, scenario)`), so that one server can play many at once.
 */

export const HOSTILE_USER: Credentials = { username: 'mallory-user', password: 'hostile-registry-pw' };
/** The identity (refresh) token the realm accepts in the OAuth2 form. */
export const HOSTILE_REFRESH_TOKEN = 'hostile-refresh-token-secret';

export type OriginName = 'registry' | 'realm' | 'storage' | 'third' | 'sibling';

export interface HostileRecord {
  /** Which listener answered. */
  at: OriginName;
  origin: string;
  method: string;
  path: string;
  query: string;
  /** The Authorization header, when one was sent. */
  authorization?: string;
  /** A form body with a refresh token or password. */
  bodyCredential: boolean;
  /** Repository of a /v2/<repo>/... path. */
  repo?: string;
}

export type RedirectTrick =
  /** 302 to the storage host, which serves the bytes (without credentials, or it refuses, like S3). */
  | 'storage'
  /** 302 to storage, which answers 401 with a Bearer challenge whose realm is on the third host. */
  | 'storage-401'
  /** registry → storage → back to the same registry URL: a loop. */
  | 'loop'
  /** Always to a new URL on the registry: more redirects than any client follows. */
  | 'too-many'
  | 'file'
  | 'data'
  /** From an HTTPS registry to plain HTTP (the third host). */
  | 'downgrade'
  /** To the registry's host on another port (another origin): no credentials may follow. */
  | 'sibling';

export interface Scenario {
  /** The tag list, one page. */
  tags?: string[];
  /** A tag list without end: every page full, and a Link to the next. */
  endlessTags?: { pageSize: number };
  /** The first page's Link points at the third host, which answers with these tags. */
  linkElsewhere?: string[];
  /** Tag lists: answer with this status and a registry error whose message is this text. */
  tagsError?: { status: number; message: string };
  /** Manifest GETs: drip the body at this many bytes per second. */
  dripManifest?: number;
  /** Manifest GETs and HEADs: redirect. */
  redirectManifest?: RedirectTrick;
  /** Manifest GETs: answer with this status and a registry error whose message is this text. */
  manifestError?: { status: number; message: string };
  /** Blob GETs: redirect (see RedirectTrick). */
  redirectBlob?: RedirectTrick;
  /** GETs of the blob with this digest: send bytes without end. */
  endlessBlob?: string;
  /** Blob GETs: send this many bytes, then nothing (the connection stays open). */
  stallBlobAfter?: number;
  /** Token requests for this repository: drip the answer at this many bytes per second. */
  dripToken?: number;
  /** As a target: where upload sessions are said to be. */
  uploadLocation?: 'same' | 'storage' | 'third';
  /** Accept manifests PUT under sha512 digests (as a target). */
  acceptSha512?: boolean;
  /** As a target: the OCI-Chunk-Min-Length announced with every upload session. */
  chunkMinLength?: number;
  /** The referrers API answers every subject with this many (made-up) referrers. */
  referrersCount?: number;
}

export interface HostileOptions {
  auth: 'basic' | 'bearer' | 'none';
  /** Serve the registry, its realm and its sibling over HTTPS with this certificate (for 127.0.0.1). */
  tls?: { key: Buffer; cert: Buffer };
  /** Where the Bearer challenge says the token server is (default: its own realm). */
  realm?: 'own' | 'third';
}

export interface HostileRegistry {
  /** host:port of the registry, for references and configs. */
  host: string;
  url: string;
  origins: Record<OriginName, string>;
  records: HostileRecord[];
  /** Bytes of blob bodies each origin served, by digest. */
  blobBytesServed: Map<string, number>;
  /** Play `scenario` for `repo` (replacing what was there). */
  serve(repo: string, scenario: Scenario): void;
  /** Serve a manifest tree under `tag` in `repo` (its manifests and blobs by digest anywhere). */
  addImage(repo: string, tag: string, node: ManifestNode): void;
  /** Serve raw content by digest in `repo` (a manifest with hand-made descriptors, a sha512-named child). */
  addContent(repo: string, digest: string, bytes: Buffer, mediaType: string): void;
  /** Tag `tag` in `repo` → digest. */
  tag(repo: string, tag: string, digest: string): void;
  /** Records of requests that carried credentials of any kind (from record number `from` on). */
  credentialed(filter?: { at?: OriginName; repo?: string; from?: number }): HostileRecord[];
  /** Requests per origin, and how many carried credentials. */
  perOrigin(): Record<OriginName, { requests: number; withCredentials: number }>;
  /** What was stored by uploads and manifest PUTs (as a target). */
  stored: Map<string, Buffer>;
  storedTags: Map<string, string>;
  reset(): void;
  stop(): Promise<void>;
}

const NAME = '(?<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)';
const MANIFEST_RE = new RegExp(`^/v2/${NAME}/manifests/(?<ref>[^/]+)$`);
const BLOB_RE = new RegExp(`^/v2/${NAME}/blobs/(?<digest>[a-z0-9]+:[a-f0-9]+)$`);
const UPLOADS_RE = new RegExp(`^/v2/${NAME}/blobs/uploads/(?<id>[^/]*)$`);
const TAGS_RE = new RegExp(`^/v2/${NAME}/tags/list$`);
const REFERRERS_RE = new RegExp(`^/v2/${NAME}/referrers/(?<digest>[a-z0-9]+:[a-f0-9]+)$`);

function digestOf(bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

function readBody(req: IncomingMessage, cap = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= cap) parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', () => resolve(Buffer.concat(parts)));
    req.on('close', () => resolve(Buffer.concat(parts)));
  });
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: Buffer | string) {
  const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  res.writeHead(status, { 'content-length': String(bytes.length), ...headers });
  res.end(bytes);
}

function registryError(res: ServerResponse, status: number, code: string, message: string, extra = {}) {
  send(
    res,
    status,
    { 'content-type': 'application/json', ...extra },
    JSON.stringify({ errors: [{ code, message }] }),
  );
}

/** Write `bytes` at `perSecond` bytes a second until done or the client goes away. */
function drip(res: ServerResponse, bytes: Buffer, perSecond: number): void {
  let at = 0;
  const step = Math.max(1, Math.round(perSecond / 10));
  const timer = setInterval(() => {
    if (res.destroyed || at >= bytes.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(bytes.subarray(at, at + step));
    at += step;
  }, 100);
  res.on('close', () => clearInterval(timer));
}

/** Bytes without end, as fast as the client takes them, until it goes away. */
function endless(res: ServerResponse, onBytes: (n: number) => void): void {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const pump = () => {
    while (!res.destroyed) {
      onBytes(chunk.length);
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

export async function startHostileRegistry(options: HostileOptions): Promise<HostileRegistry> {
  const records: HostileRecord[] = [];
  const scenarios = new Map<string, Scenario>();
  const content = new Map<string, { bytes: Buffer; mediaType: string }>();
  /** Which digests each repository holds: a target repository starts empty. */
  const members = new Map<string, Set<string>>();
  const hold = (repo: string, digest: string) => {
    if (!members.has(repo)) members.set(repo, new Set());
    members.get(repo)!.add(digest);
  };
  const tags = new Map<string, Map<string, string>>();
  const stored = new Map<string, Buffer>();
  const storedTags = new Map<string, string>();
  const sessions = new Map<string, Buffer[]>();
  const issuedTokens = new Set<string>();
  const blobBytesServed = new Map<string, number>();
  const parked = new Map<string, Buffer>();
  const origins = {} as Record<OriginName, string>;
  const secure = options.tls !== undefined;
  const basic = `Basic ${Buffer.from(`${HOSTILE_USER.username}:${HOSTILE_USER.password}`).toString('base64')}`;

  const scenarioOf = (repo: string | undefined): Scenario => (repo ? (scenarios.get(repo) ?? {}) : {});
  const served = (digest: string, n: number) =>
    blobBytesServed.set(digest, (blobBytesServed.get(digest) ?? 0) + n);

  function record(at: OriginName, req: IncomingMessage, body?: Buffer): { url: URL; rec: HostileRecord } {
    const url = new URL(req.url ?? '/', 'http://x.invalid');
    const repo =
      MANIFEST_RE.exec(url.pathname)?.groups?.repo ??
      BLOB_RE.exec(url.pathname)?.groups?.repo ??
      UPLOADS_RE.exec(url.pathname)?.groups?.repo ??
      TAGS_RE.exec(url.pathname)?.groups?.repo;
    const text = body?.toString('utf8') ?? '';
    const rec: HostileRecord = {
      at,
      origin: origins[at],
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      bodyCredential: /refresh_token=|password=/.test(text),
      ...(repo !== undefined ? { repo } : {}),
    };
    records.push(rec);
    return { url, rec };
  }

  function authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization;
    if (options.auth === 'none') return true;
    if (options.auth === 'basic') return h === basic;
    return h?.startsWith('Bearer ') === true && issuedTokens.has(h.slice(7));
  }

  function challenge(res: ServerResponse, scope?: string): void {
    const realm = options.realm === 'third' ? `${origins.third}/token` : `${origins.realm}/token`;
    const header =
      options.auth === 'basic'
        ? 'Basic realm="hostile"'
        : `Bearer realm="${realm}",service="hostile"${scope ? `,scope="${scope}"` : ''}`;
    registryError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': header });
  }

  function redirect(res: ServerResponse, trick: RedirectTrick, url: URL, digest?: string): void {
    const here = `${origins.registry}${url.pathname}${url.search}`;
    let location: string;
    switch (trick) {
      case 'storage':
      case 'storage-401': {
        const key = randomUUID();
        if (digest) parked.set(key, content.get(digest)?.bytes ?? Buffer.alloc(0));
        // Docker Hub's storage URLs carry verify= and ticket= capabilities; --debug must not print them.
        location = `${origins.storage}/${trick === 'storage' ? 'blob' : 'auth'}/${key}?verify=VERIFY-SECRET-${key}&ticket=TICKET-SECRET&X-Amz-Signature=sig-${key}`;
        break;
      }
      case 'loop':
        location = `${origins.storage}/bounce?to=${encodeURIComponent(here)}`;
        break;
      case 'too-many': {
        const hop = Number(url.searchParams.get('hop') ?? 0) + 1;
        const next = new URL(here);
        next.searchParams.set('hop', String(hop));
        location = next.href;
        break;
      }
      case 'file':
        location = 'file:///etc/passwd';
        break;
      case 'data':
        location = 'data:text/plain;base64,aGVsbG8=';
        break;
      case 'downgrade':
        location = `${origins.third}/downgraded${url.pathname}`;
        break;
      case 'sibling':
        location = `${origins.sibling}${url.pathname}${url.search}`;
        break;
    }
    send(res, 302, { location });
  }

  function serveContent(
    req: IncomingMessage,
    res: ServerResponse,
    repo: string,
    digest: string,
    scenario: Scenario,
    kind: 'manifest' | 'blob',
  ): void {
    const found = members.get(repo)?.has(digest) ? content.get(digest) : undefined;
    if (kind === 'blob' && scenario.endlessBlob === digest && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      endless(res, (n) => served(digest, n));
      return;
    }
    if (!found) {
      registryError(res, 404, kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', 'not here');
      return;
    }
    const headers: Record<string, string> = {
      'content-type': kind === 'manifest' ? found.mediaType : 'application/octet-stream',
      'docker-content-digest': digest,
    };
    if (req.method === 'HEAD') {
      send(res, 200, { ...headers, 'content-length': String(found.bytes.length) });
      return;
    }
    if (kind === 'manifest' && scenario.dripManifest) {
      res.writeHead(200, { ...headers, 'content-length': String(found.bytes.length) });
      drip(res, found.bytes, scenario.dripManifest);
      return;
    }
    if (kind === 'blob' && scenario.stallBlobAfter !== undefined) {
      const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
      const from = range ? Number(range[1]) : 0;
      const part = found.bytes.subarray(from, from + scenario.stallBlobAfter);
      res.writeHead(range ? 206 : 200, {
        ...headers,
        'content-length': String(found.bytes.length - from),
        ...(range
          ? { 'content-range': `bytes ${from}-${found.bytes.length - 1}/${found.bytes.length}` }
          : {}),
      });
      res.write(part);
      served(digest, part.length);
      // ...and then nothing: the connection stays open until the client gives up.
      return;
    }
    if (kind === 'blob') served(digest, found.bytes.length);
    send(res, 200, headers, found.bytes);
  }

  async function handleRegistry(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const { url } = record('registry', req, body);
    const method = req.method ?? 'GET';
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (!authorized(req)) return challenge(res);
      return send(res, 200, { 'content-type': 'application/json' }, '{}');
    }
    const m = MANIFEST_RE.exec(url.pathname)?.groups;
    const b = BLOB_RE.exec(url.pathname)?.groups;
    const u = UPLOADS_RE.exec(url.pathname)?.groups;
    const t = TAGS_RE.exec(url.pathname)?.groups;
    const r = REFERRERS_RE.exec(url.pathname)?.groups;
    const repo = m?.repo ?? b?.repo ?? u?.repo ?? t?.repo ?? r?.repo;
    const scenario = scenarioOf(repo);
    if (!authorized(req)) {
      const push = method !== 'GET' && method !== 'HEAD';
      return challenge(res, repo ? `repository:${repo}:${push ? 'pull,push' : 'pull'}` : undefined);
    }
    if (t && method === 'GET') {
      if (scenario.tagsError) {
        return registryError(res, scenario.tagsError.status, 'DENIED', scenario.tagsError.message);
      }
      if (scenario.endlessTags) {
        const size = scenario.endlessTags.pageSize;
        const page = Number(url.searchParams.get('last')?.split('-')[1] ?? 0) + 1;
        const list = Array.from({ length: size }, (_, i) => `t-${page}-${i}`);
        const next = `/v2/${t.repo}/tags/list?n=${size}&last=t-${page}-x`;
        return send(
          res,
          200,
          { 'content-type': 'application/json', link: `<${next}>; rel="next"` },
          JSON.stringify({ name: t.repo, tags: list }),
        );
      }
      const list = scenario.tags ?? [...(tags.get(t.repo!)?.keys() ?? [])];
      const link: Record<string, string> = scenario.linkElsewhere
        ? { link: `<${origins.third}/v2/${t.repo}/tags/list?last=x>; rel="next"` }
        : {};
      return send(
        res,
        200,
        { 'content-type': 'application/json', ...link },
        JSON.stringify({ name: t.repo, tags: list }),
      );
    }
    if (r && method === 'GET' && scenario.referrersCount !== undefined) {
      const manifests = Array.from({ length: scenario.referrersCount }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: digestOf(Buffer.from(`referrer ${i}`)),
        size: 100,
        artifactType: 'application/vnd.example.signature',
      }));
      return send(
        res,
        200,
        { 'content-type': 'application/vnd.oci.image.index.v1+json' },
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
      );
    }
    if (m && (method === 'GET' || method === 'HEAD')) {
      if (scenario.redirectManifest) return redirect(res, scenario.redirectManifest, url);
      if (scenario.manifestError && method === 'GET') {
        return registryError(res, scenario.manifestError.status, 'DENIED', scenario.manifestError.message);
      }
      const ref = decodeURIComponent(m.ref!);
      const digest = ref.includes(':') ? ref : tags.get(m.repo!)?.get(ref);
      if (!digest) return registryError(res, 404, 'MANIFEST_UNKNOWN', 'no such manifest');
      return serveContent(req, res, m.repo!, digest, scenario, 'manifest');
    }
    if (m && method === 'PUT') {
      const ref = decodeURIComponent(m.ref!);
      const algorithm = ref.startsWith('sha512:') ? 'sha512' : 'sha256';
      if (algorithm === 'sha512' && !scenario.acceptSha512) {
        return registryError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
      }
      const digest = digestOf(body, algorithm);
      if (ref.includes(':') && ref !== digest) {
        return registryError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
      }
      stored.set(digest, body);
      content.set(digest, { bytes: body, mediaType: String(req.headers['content-type']) });
      hold(m.repo!, digest);
      if (!ref.includes(':')) {
        storedTags.set(`${m.repo}:${ref}`, digest);
        if (!tags.has(m.repo!)) tags.set(m.repo!, new Map());
        tags.get(m.repo!)!.set(ref, digest);
      }
      return send(res, 201, { 'docker-content-digest': digest, location: url.pathname });
    }
    if (b && (method === 'GET' || method === 'HEAD')) {
      if (scenario.redirectBlob && method === 'GET')
        return redirect(res, scenario.redirectBlob, url, b.digest);
      return serveContent(req, res, b.repo!, b.digest!, scenario, 'blob');
    }
    if (u) {
      if (method === 'POST') {
        const id = randomUUID();
        sessions.set(id, []);
        const where =
          scenario.uploadLocation === 'storage'
            ? `${origins.storage}/upload/${id}`
            : scenario.uploadLocation === 'third'
              ? `${origins.third}/upload/${id}`
              : `/v2/${u.repo}/blobs/uploads/${id}?_state=state-${id}`;
        return send(res, 202, {
          location: where,
          range: '0-0',
          'docker-upload-uuid': id,
          ...(scenario.chunkMinLength ? { 'oci-chunk-min-length': String(scenario.chunkMinLength) } : {}),
        });
      }
      const session = sessions.get(u.id!);
      if (!session) return registryError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'no such upload');
      if (method === 'PATCH') {
        session.push(body);
        const size = session.reduce((n, p) => n + p.length, 0);
        return send(res, 202, { location: url.pathname, range: `0-${Math.max(0, size - 1)}` });
      }
      if (method === 'PUT') {
        session.push(body);
        const bytes = Buffer.concat(session);
        const want = url.searchParams.get('digest') ?? '';
        const got = digestOf(bytes, want.startsWith('sha512:') ? 'sha512' : 'sha256');
        if (got !== want) return registryError(res, 400, 'DIGEST_INVALID', 'digest did not match');
        sessions.delete(u.id!);
        stored.set(want, bytes);
        content.set(want, { bytes, mediaType: 'application/octet-stream' });
        hold(u.repo!, want);
        return send(res, 201, { 'docker-content-digest': want, location: `/v2/${u.repo}/blobs/${want}` });
      }
      if (method === 'DELETE') {
        sessions.delete(u.id!);
        return send(res, 204, {});
      }
    }
    registryError(res, 404, 'NOT_FOUND', 'nothing here');
  }

  async function handleRealm(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const { url } = record('realm', req, body);
    if (url.pathname !== '/token') return send(res, 404, {}, 'not a token endpoint');
    const form = new URLSearchParams(body.toString('utf8'));
    const ok =
      req.headers.authorization === basic ||
      (req.method === 'POST' && form.get('refresh_token') === HOSTILE_REFRESH_TOKEN);
    if (!ok) return send(res, 401, { 'content-type': 'text/plain' }, 'bad credentials');
    const token = `tok-${randomUUID()}`;
    issuedTokens.add(token);
    const answer = Buffer.from(JSON.stringify({ token, access_token: token, expires_in: 300 }));
    const scopes = [...url.searchParams.getAll('scope'), ...(form.get('scope')?.split(' ') ?? [])];
    const repo = scopes.map((s) => /^repository:([^:]+):/.exec(s)?.[1]).find((r) => r !== undefined);
    const dripRate = scenarioOf(repo).dripToken;
    if (dripRate) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(answer.length) });
      drip(res, answer, dripRate);
      return;
    }
    send(res, 200, { 'content-type': 'application/json' }, answer);
  }

  async function handleStorage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await readBody(req);
    const { url } = record('storage', req);
    if (url.pathname === '/bounce') return send(res, 302, { location: url.searchParams.get('to') ?? '/' });
    const blob = /^\/blob\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (blob) {
      // S3 refuses a signed URL combined with an Authorization header; so does this storage.
      if (req.headers.authorization !== undefined)
        return send(res, 400, {}, 'Only one auth mechanism allowed');
      const bytes = parked.get(blob[1]!);
      if (!bytes) return send(res, 404, {}, 'NoSuchKey');
      return send(res, 200, { 'content-type': 'application/octet-stream' }, bytes);
    }
    if (/^\/auth\//.test(url.pathname)) {
      // A storage host that wants credentials of its own, from a realm on yet another host.
      return send(
        res,
        401,
        { 'www-authenticate': `Bearer realm="${origins.third}/token",service="storage"` },
        'who are you?',
      );
    }
    send(res, 404, {}, 'NoSuchKey');
  }

  async function handleThird(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const { url } = record('third', req, body);
    if (url.pathname === '/token') {
      const token = 'stolen-token';
      return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify({ token }));
    }
    const t = TAGS_RE.exec(url.pathname)?.groups;
    if (t) {
      const extra = scenarioOf(t.repo).linkElsewhere ?? [];
      return send(
        res,
        200,
        { 'content-type': 'application/json' },
        JSON.stringify({ name: t.repo, tags: extra }),
      );
    }
    send(res, 404, {}, 'nothing');
  }

  async function handleSibling(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await readBody(req);
    record('sibling', req);
    send(res, 404, {}, 'nothing');
  }

  const wrap =
    (handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) =>
    (req: IncomingMessage, res: ServerResponse) => {
      handler(req, res).catch(() => res.destroy());
    };
  const make = (
    handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
    tls: boolean,
  ): Server =>
    tls && options.tls
      ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, wrap(handler))
      : createHttpServer(wrap(handler));

  const servers: Array<[OriginName, Server, string, boolean]> = [
    ['registry', make(handleRegistry, secure), '127.0.0.1', secure],
    ['realm', make(handleRealm, secure), '127.0.0.1', secure],
    ['sibling', make(handleSibling, secure), '127.0.0.1', secure],
    ['storage', make(handleStorage, false), '127.0.0.2', false],
    ['third', make(handleThird, false), '127.0.0.3', false],
  ];
  try {
    for (const [name, server, host, tls] of servers) {
      const port = await listen(server, host);
      origins[name] = `${tls ? 'https' : 'http'}://${host}:${port}`;
    }
  } catch (err) {
    await Promise.all(servers.map(([, s]) => closeServer(s)));
    throw err;
  }

  const hasCredential = (r: HostileRecord) => r.authorization !== undefined || r.bodyCredential;
  const registryUrl = new URL(origins.registry);
  const tagIn = (repo: string, tag: string, digest: string) => {
    if (!tags.has(repo)) tags.set(repo, new Map());
    tags.get(repo)!.set(tag, digest);
    hold(repo, digest);
  };
  return {
    host: registryUrl.host,
    url: origins.registry,
    origins,
    records,
    blobBytesServed,
    stored,
    storedTags,
    serve(repo, scenario) {
      scenarios.set(repo, scenario);
    },
    addImage(repo, tag, node) {
      const add = (n: ManifestNode) => {
        content.set(n.digest, { bytes: n.bytes, mediaType: n.mediaType });
        hold(repo, n.digest);
        for (const blob of n.blobs) {
          content.set(blob.digest, { bytes: blob.bytes, mediaType: blob.mediaType });
          hold(repo, blob.digest);
        }
        for (const child of n.children) add(child);
      };
      add(node);
      tagIn(repo, tag, node.digest);
    },
    addContent(repo, digest, bytes, mediaType) {
      content.set(digest, { bytes, mediaType });
      hold(repo, digest);
    },
    tag: tagIn,
    credentialed(filter = {}) {
      return records
        .slice(filter.from ?? 0)
        .filter(
          (r) =>
            hasCredential(r) &&
            (filter.at === undefined || r.at === filter.at) &&
            (filter.repo === undefined || r.repo === filter.repo),
        );
    },
    perOrigin() {
      const out = {} as Record<OriginName, { requests: number; withCredentials: number }>;
      for (const name of Object.keys(origins) as OriginName[]) {
        const here = records.filter((r) => r.at === name);
        out[name] = { requests: here.length, withCredentials: here.filter(hasCredential).length };
      }
      return out;
    },
    reset() {
      records.length = 0;
      blobBytesServed.clear();
    },
    async stop() {
      await Promise.all(servers.map(([, s]) => closeServer(s)));
    },
  };
}
