import { createHash } from 'node:crypto';
import { type Content, MANIFEST_ACCEPT, sha256Digest } from './oci-builders.js';

/**
 * A deliberately tiny registry client on Node's global fetch, independent of src/registry: it
 * seeds and reads back test content, so it must not share bugs with the code under test.
 */

export interface SeedTarget {
  /** Base URL, e.g. a proxy's url. */
  url: string;
  username?: string;
  password?: string;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one `WWW-Authenticate` challenge (registries send exactly one). */
export function parseChallenge(header: string): Challenge {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) {
    if (m[1] !== undefined && m[2] !== undefined) params[m[1]] = m[2];
  }
  return { scheme, params };
}

export class RegistryHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${message}: HTTP ${status} ${body.slice(0, 500)}`);
  }
}

async function fail(res: Response, what: string): Promise<never> {
  throw new RegistryHttpError(what, res.status, await res.text());
}

interface RequestOptions {
  /** Repository the request is about, for the per-repository token cache. */
  repo: string;
  headers?: Record<string, string>;
  /** Only replayable bodies: a 401 retry sends it again. */
  body?: Buffer;
}

const MONOLITHIC_LIMIT = 16 * 1024 * 1024;

export class RegistryClient {
  readonly baseUrl: string;
  private readonly target: SeedTarget;
  /** Authorization header last obtained per repository ('' = registry level). */
  private readonly authByRepo = new Map<string, string>();

  constructor(target: SeedTarget) {
    this.target = target;
    this.baseUrl = target.url.replace(/\/+$/, '');
  }

  private basicHeader(): string | undefined {
    if (this.target.username === undefined) return undefined;
    const pair = `${this.target.username}:${this.target.password ?? ''}`;
    return `Basic ${Buffer.from(pair).toString('base64')}`;
  }

  /** Answers a challenge: Basic with our credentials, or a token from the realm. */
  private async authorize(header: string): Promise<string | undefined> {
    const { scheme, params } = parseChallenge(header);
    if (scheme === 'basic') return this.basicHeader();
    if (scheme !== 'bearer' || params.realm === undefined) return undefined;
    const url = new URL(params.realm);
    if (params.service !== undefined) url.searchParams.set('service', params.service);
    if (params.scope !== undefined)
      for (const scope of params.scope.split(' ')) url.searchParams.append('scope', scope);
    const basic = this.basicHeader();
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {} });
    if (!res.ok) await fail(res, `token request to ${url.origin}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error(`token server ${url.origin} answered without a token`);
    return `Bearer ${token}`;
  }

  /** One request with auth: on 401, answer the challenge and retry once. */
  async request(method: string, pathOrUrl: string, opts: RequestOptions): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.baseUrl}${pathOrUrl}`;
    const send = (authorization: string | undefined): Promise<Response> =>
      fetch(url, {
        method,
        headers: { ...opts.headers, ...(authorization && { authorization }) },
        ...(opts.body && { body: opts.body }),
        redirect: 'manual',
      });
    const res = await send(this.authByRepo.get(opts.repo));
    const challenge = res.headers.get('www-authenticate');
    if (res.status !== 401 || challenge === null) return res;
    await res.arrayBuffer();
    const authorization = await this.authorize(challenge);
    if (authorization === undefined) return send(undefined);
    this.authByRepo.set(opts.repo, authorization);
    return send(authorization);
  }

  async ping(): Promise<Response> {
    const res = await this.request('GET', '/v2/', { repo: '' });
    await res.arrayBuffer();
    return res;
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { repo });
    await res.arrayBuffer();
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    return fail(res, `HEAD blob ${digest}`);
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.request('POST', `/v2/${repo}/blobs/uploads/`, {
      repo,
    });
    if (res.status !== 202) await fail(res, `start upload in ${repo}`);
    await res.arrayBuffer();
    return this.location(res);
  }

  /** Upload locations may be relative; resolve against the response URL and keep the query. */
  private location(res: Response): string {
    const location = res.headers.get('location');
    if (location === null) throw new Error(`${res.status} from ${res.url} without Location`);
    return new URL(location, res.url).toString();
  }

  private async finishUpload(repo: string, location: string, digest: string, body: Buffer): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.request('PUT', url.toString(), {
      repo,
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    if (res.status !== 201) await fail(res, `finish upload of ${digest}`);
    await res.arrayBuffer();
  }

  /** Monolithic upload (POST, then PUT with the bytes); skips blobs already present. */
  async pushBlob(repo: string, blob: Content): Promise<void> {
    if (blob.bytes.length > MONOLITHIC_LIMIT) {
      await this.pushBlobChunked(repo, blob.digest, () => [blob.bytes]);
      return;
    }
    if (await this.blobExists(repo, blob.digest)) return;
    const location = await this.startUpload(repo);
    await this.finishUpload(repo, location, blob.digest, blob.bytes);
  }

  /**
   * Chunked upload: PATCH each chunk with Content-Range/Content-Length, following the Location of
   * every answer (distribution's `_state` changes with each chunk), then PUT with the digest.
   */
  async pushBlobChunked(repo: string, digest: string, chunks: () => Iterable<Buffer>): Promise<void> {
    if (await this.blobExists(repo, digest)) return;
    let location = await this.startUpload(repo);
    let offset = 0;
    for (const chunk of chunks()) {
      const res = await this.request('PATCH', location, {
        repo,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
      });
      if (res.status !== 202) await fail(res, `upload chunk at ${offset} of ${digest}`);
      await res.arrayBuffer();
      location = this.location(res);
      offset += chunk.length;
    }
    await this.finishUpload(repo, location, digest, Buffer.alloc(0));
  }

  /** PUT the exact bytes with their media type; verifies the registry's Docker-Content-Digest. */
  async pushManifest(repo: string, reference: string, manifest: Content): Promise<void> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      repo,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
    });
    if (res.status !== 201) await fail(res, `PUT manifest ${repo}:${reference}`);
    await res.arrayBuffer();
    const digest = res.headers.get('docker-content-digest');
    if (digest !== null && digest !== manifest.digest) {
      throw new Error(`registry stored ${repo}:${reference} as ${digest}, expected ${manifest.digest}`);
    }
  }

  async getManifest(repo: string, reference: string, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      repo,
      headers: { accept },
    });
    if (res.status !== 200) await fail(res, `GET manifest ${repo}:${reference}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    return {
      bytes,
      mediaType: res.headers.get('content-type') ?? '',
      digest: res.headers.get('docker-content-digest') ?? sha256Digest(bytes),
    };
  }

  /**
   * GET a blob, following redirects by hand the way a careful client must: Authorization goes only
   * to the registry's own origin, never to the storage host it redirects to. Verifies the digest.
   */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    let res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { repo });
    const origin = new URL(this.baseUrl).origin;
    for (let hops = 0; hops < 5 && res.status >= 300 && res.status < 400; hops++) {
      await res.arrayBuffer();
      const next = new URL(this.location(res));
      const authorization = next.origin === origin ? this.authByRepo.get(repo) : undefined;
      res = await fetch(next, { redirect: 'manual', headers: authorization ? { authorization } : {} });
    }
    if (res.status !== 200) await fail(res, `GET blob ${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (actual !== digest) throw new Error(`blob ${digest} arrived with digest ${actual}`);
    return bytes;
  }

  async listTags(repo: string): Promise<string[]> {
    const res = await this.request('GET', `/v2/${repo}/tags/list`, { repo });
    if (res.status !== 200) await fail(res, `list tags of ${repo}`);
    const body = (await res.json()) as { tags?: string[] | null };
    return body.tags ?? [];
  }
}
