import { createPrivateKey, type KeyObject, randomBytes, randomUUID, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { closeServer, listen } from './http-server.js';
import { runCommand } from './run-command.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/**
 * A Docker-style token server (the protocol of Docker Hub, Quay, ECR Public, GHCR): the registry
 * answers 401 with `WWW-Authenticate: Bearer realm=...`, the client fetches a JWT here, and the
 * registry verifies it against `rootcertbundle`.
 */

export type UserAccess = 'pull' | 'push';

export interface TokenUser {
  password: string;
  /** 'push' implies pull, push and delete on every repository; 'pull' only pull. */
  access: UserAccess;
}

export interface TokenServerOptions {
  users: Record<string, TokenUser>;
  /** Anonymous clients get pull on every repository (like a public Docker Hub repo). Default false. */
  anonymousPull?: boolean;
  /** Default 300. */
  lifetimeSeconds?: number;
  /**
   * Clock-skew leeway the registry grants on `exp` (distribution: 60 s). Tokens are minted that much
   * earlier, so that the registry really refuses them once `lifetimeSeconds` have passed. Default 0.
   */
  registryLeewaySeconds?: number;
  /** Quay quirk: no `expires_in` in token responses (clients must assume 60 s). */
  omitExpiresIn?: boolean;
  /**
   * Passwords accepted whatever the user name, with their access (GHCR takes a GITHUB_TOKEN with any
   * name). The name sent is recorded as the user.
   */
  anyUserPasswords?: Record<string, UserAccess>;
  /** Refresh (identity) tokens accepted by the OAuth2 POST form: token -> user name. */
  refreshTokens?: Record<string, string>;
  service?: string;
  issuer?: string;
}

export interface TokenRequestRecord {
  method: string;
  scopes: string[];
  /** The authenticated user; absent for anonymous requests and failed logins. */
  user?: string;
  grantType?: string;
  /** Whether a token was issued. */
  ok: boolean;
}

export interface TokenServer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  /** The self-signed certificate whose key signs tokens; the registry's `rootcertbundle`. */
  certPath: string;
  requests: TokenRequestRecord[];
  /** Every secret this server handed out (access and refresh tokens), for leak tests. */
  issued: string[];
  /** Mint a token directly (for tests that need one without going through HTTP). */
  issueToken(user: string | undefined, scopes: string[]): string;
  stop(): Promise<void>;
}

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

const PUSH_ACTIONS = new Set(['pull', 'push', 'delete', '*']);
const PULL_ACTIONS = new Set(['pull']);
const MAX_FORM_BYTES = 64 * 1024;

/**
 * Parses `type:name:actions`. Names may contain colons (`repository:localhost:5000/app:pull` is what
 * some clients send for host-qualified names), so the type ends at the first colon and the actions
 * start after the last one.
 */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (name === '') return undefined;
  return { type, name, actions };
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(bytes.length),
    ...headers,
  });
  res.end(bytes);
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        reject(new Error('form body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Creates an EC P-256 key and a self-signed certificate with openssl (fast, and what Go verifies). */
async function makeSigningMaterial(
  dir: string,
): Promise<{ key: KeyObject; certDer: Buffer; certPath: string }> {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  await runCommand('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPath]);
  await runCommand('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    keyPath,
    '-out',
    certPath,
    '-days',
    '7',
    '-subj',
    '/CN=regmirror-test-token-issuer',
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certPem = await readFile(certPath, 'utf8');
  const certBase64 = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { key, certDer: Buffer.from(certBase64, 'base64'), certPath };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const dir = await makeTempDir('token');
  try {
    return await startInDir(dir, opts);
  } catch (err) {
    await removeDir(dir);
    throw err;
  }
}

async function startInDir(dir: string, opts: TokenServerOptions): Promise<TokenServer> {
  const { key, certDer, certPath } = await makeSigningMaterial(dir);
  const service = opts.service ?? 'regmirror-test-registry';
  const issuer = opts.issuer ?? 'regmirror-test-token-issuer';
  const lifetime = opts.lifetimeSeconds ?? 300;
  const leeway = opts.registryLeewaySeconds ?? 0;
  const refreshTokens = new Map(Object.entries(opts.refreshTokens ?? {}));
  const requests: TokenRequestRecord[] = [];
  const issued: string[] = [];
  /** Users let in by an anyUserPasswords password, with the access it gave. */
  const byPassword = new Map<string, UserAccess>();

  function allowedActions(user: string | undefined): Set<string> {
    if (user === undefined) return opts.anonymousPull ? PULL_ACTIONS : new Set();
    const access = opts.users[user]?.access ?? byPassword.get(user);
    return access === 'push' ? PUSH_ACTIONS : PULL_ACTIONS;
  }

  /** granted = requested ∩ allowed, per scope; entries with nothing granted are left out. */
  function grant(user: string | undefined, scopes: string[]): AccessEntry[] {
    const allowed = allowedActions(user);
    const access: AccessEntry[] = [];
    for (const scope of scopes) {
      const entry = parseScope(scope);
      if (!entry) continue;
      let actions: string[] = [];
      if (entry.type === 'repository') actions = entry.actions.filter((a) => allowed.has(a));
      // The catalog is the only registry-level resource distribution knows; give it to pushers.
      else if (entry.type === 'registry' && entry.name === 'catalog' && allowed.has('push'))
        actions = entry.actions.filter((a) => a === '*');
      if (actions.length > 0) access.push({ type: entry.type, name: entry.name, actions });
    }
    return access;
  }

  function issueToken(user: string | undefined, scopes: string[]): string {
    const now = Math.floor(Date.now() / 1000);
    // distribution 2.8 verifies the x5c chain against rootcertbundle, so the cert travels in the header.
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      exp: now + lifetime - leeway,
      // A little slack for clock granularity between us and the registry.
      nbf: Math.min(now - 5, now + lifetime - leeway - 1),
      iat: now,
      jti: randomUUID(),
      access: grant(user, scopes),
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // JWS wants the raw r||s signature, not DER.
    const signature = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
    const token = `${signingInput}.${base64url(signature)}`;
    issued.push(token);
    return token;
  }

  function mintRefreshToken(user: string): string {
    const token = randomBytes(24).toString('hex');
    refreshTokens.set(token, user);
    issued.push(token);
    return token;
  }

  function expiry(): { expires_in?: number } {
    return opts.omitExpiresIn ? {} : { expires_in: lifetime };
  }

  function checkPassword(user: string, password: string): boolean {
    if (opts.users[user]?.password === password) return true;
    const access = opts.anyUserPasswords?.[password];
    if (access === undefined || user === '') return false;
    byPassword.set(user, access);
    return true;
  }

  function handleGet(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''));
    const requestedService = url.searchParams.get('service');
    if (requestedService !== null && requestedService !== service) {
      requests.push({ method: 'GET', scopes, ok: false });
      sendJson(res, 400, { errors: [{ code: 'DENIED', message: `unknown service ${requestedService}` }] });
      return;
    }
    let user: string | undefined;
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const basic = parseBasic(authorization);
      if (!basic || !checkPassword(basic.user, basic.password)) {
        requests.push({ method: 'GET', scopes, ok: false });
        // Like Docker Hub / Quay: a wrong password is an error, not a silent anonymous token.
        sendJson(
          res,
          401,
          { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] },
          { 'www-authenticate': `Basic realm="${service}"` },
        );
        return;
      }
      user = basic.user;
    }
    requests.push({ method: 'GET', scopes, ok: true, ...(user !== undefined && { user }) });
    const token = issueToken(user, scopes);
    const refresh =
      user !== undefined && url.searchParams.get('offline_token') === 'true'
        ? { refresh_token: mintRefreshToken(user) }
        : {};
    sendJson(res, 200, {
      token,
      access_token: token,
      ...expiry(),
      issued_at: new Date().toISOString(),
      ...refresh,
    });
  }

  async function handlePost(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const grantType = form.get('grant_type') ?? '';
    const scopes = form.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''));
    const fail = (status: number, error: string, description: string): void => {
      requests.push({ method: 'POST', scopes, grantType, ok: false });
      sendJson(res, status, { error, error_description: description });
    };
    const requestedService = form.get('service');
    if (requestedService !== null && requestedService !== service) {
      fail(400, 'invalid_request', `unknown service ${requestedService}`);
      return;
    }
    let user: string;
    let refreshToken: string | undefined;
    if (grantType === 'password') {
      const name = form.get('username') ?? '';
      if (!checkPassword(name, form.get('password') ?? '')) {
        fail(401, 'invalid_grant', 'incorrect username or password');
        return;
      }
      user = name;
      if (form.get('access_type') === 'offline') refreshToken = mintRefreshToken(user);
    } else if (grantType === 'refresh_token') {
      const owner = refreshTokens.get(form.get('refresh_token') ?? '');
      if (owner === undefined) {
        fail(400, 'invalid_grant', 'unknown refresh token');
        return;
      }
      user = owner;
    } else {
      fail(400, 'unsupported_grant_type', `grant_type ${grantType} is not supported`);
      return;
    }
    requests.push({ method: 'POST', scopes, user, grantType, ok: true });
    sendJson(res, 200, {
      access_token: issueToken(user, scopes),
      ...expiry(),
      scope: scopes.join(' '),
      issued_at: new Date().toISOString(),
      ...(refreshToken !== undefined && { refresh_token: refreshToken }),
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token') {
      sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
      return;
    }
    if (req.method === 'GET') handleGet(req, res, url);
    else if (req.method === 'POST')
      handlePost(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          sendJson(res, 400, { error: 'invalid_request', error_description: String(err) });
      });
    else sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
  });

  const port = await listen(server, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    requests,
    issued,
    issueToken,
    async stop() {
      await closeServer(server);
      await removeDir(dir);
    },
  };
}
