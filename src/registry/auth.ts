// Registry authentication: WWW-Authenticate challenges, Bearer tokens (GET with Basic credentials, or
// the OAuth2 POST form with an identity/refresh token), Basic, and anonymous access. Tokens are cached
// per scope set and renewed before they expire. Which origin may receive what is trust.ts's rule: the
// registry's credentials go to the registry's own origin and to the realm its own challenge named.

import { z } from 'zod';
import { AuthError, type ErrorContext, RegmirrorError } from '../errors.js';
import { redactSecrets, registryText } from '../sanitize.js';
import { SharedFetch } from '../shared-fetch.js';
import type { FoundCredential } from './credentials/types.js';
import { deadlineFor, type RegistryLimits, TOKEN_BODY_LIMIT } from './limits.js';
import type { CredentialProvider } from './profile/profile.js';
import { BodyTooLargeError, readAll, readCapped, type Transport } from './transport.js';
import { checkRealm } from './trust.js';

/** The token realm refused the credentials (401/403). */
class RealmRefusedError extends AuthError {}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse `Bearer realm="...",service="...",scope="..."` (and several challenges in one header). */
export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  // A token followed by "=" is a parameter of the current challenge; a bare token starts a new challenge.
  const re = /([A-Za-z][\w-]*)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?/g;
  let current: Challenge | undefined;
  for (const m of header.matchAll(re)) {
    const name = m[1]!;
    const value = m[2];
    if (value === undefined) {
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
    } else if (current) {
      current.params[name.toLowerCase()] = value.startsWith('"')
        ? value.slice(1, -1).replace(/\\(.)/g, '$1')
        : value;
    }
  }
  return out;
}

const tokenResponseSchema = z.looseObject({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
  issued_at: z.string().optional(),
  refresh_token: z.string().optional(),
});

/** What of a token server's error answer is read for its message (the hint shows 200 characters). */
const ERROR_TEXT_BYTES = 512;

/** Docker's default when a token response omits expires_in (Quay does). */
const DEFAULT_TOKEN_LIFETIME_S = 60;

interface CachedToken {
  scopes: Set<string>;
  token: string;
  /** Renew at this time (ms), a margin before the real expiry. */
  renewAt: number;
}

/** Repository scopes asked in one token request at most (the URL stays a few KiB). */
export const MAX_SCOPES_PER_TOKEN = 16;

export function repositoryScope(path: string, actions: 'pull' | 'pull,push'): string {
  return `repository:${path}:${actions}`;
}

/** `type:name:actions` → the resource (`type:name`; a name may hold `host:port`) and its actions. */
function splitScope(scope: string): { resource: string; actions: Set<string> } {
  const last = scope.lastIndexOf(':');
  return { resource: scope.slice(0, last), actions: new Set(scope.slice(last + 1).split(',')) };
}

/** Whether a token issued for `held` scopes serves a request that needs `wanted` (pull,push serves pull). */
export function scopesCover(held: Iterable<string>, wanted: string): boolean {
  const want = splitScope(wanted);
  for (const h of held) {
    if (h === wanted) return true;
    const have = splitScope(h);
    if (have.resource === want.resource && [...want.actions].every((a) => have.actions.has(a))) return true;
  }
  return false;
}

/**
 * Authentication state for one registry host: the challenge it taught, and the tokens it issued. The
 * credentials themselves stay with the profile's provider (renewed there when they expire).
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  private tokens: CachedToken[] = [];
  private readonly pending = new Map<string, SharedFetch<CachedToken>>();

  /** The registry's base URL ("https://quay.io"): its origin owns the credentials. */
  private readonly base: URL;
  private readonly limits: RegistryLimits | undefined;

  constructor(
    readonly host: string,
    private readonly transport: Transport,
    private readonly credentials: CredentialProvider,
    options: { base?: URL; limits?: RegistryLimits } = {},
  ) {
    this.base = options.base ?? transport.baseUrl(host);
    this.limits = options.limits;
  }

  private probe: Promise<void> | undefined;
  private contacted = false;

  /**
   * Until this registry has answered once, requests wait for the first one: its 401 teaches the
   * challenge to all of them, instead of a burst of parallel requests each collecting its own 401.
   * Returns a function the first request calls when its answer is in; undefined for the others.
   */
  async firstContact(): Promise<(() => void) | undefined> {
    if (this.contacted) return undefined;
    if (this.probe) {
      await this.probe;
      return undefined;
    }
    let done!: () => void;
    this.probe = new Promise<void>((resolve) => {
      done = resolve;
    });
    return () => {
      this.contacted = true;
      done();
    };
  }

  private found(signal?: AbortSignal): Promise<FoundCredential | undefined> {
    return this.credentials.get(signal);
  }

  /** Whether the credential in use can be fetched again (an API token, not a password in a file). */
  get renewable(): boolean {
    return this.credentials.renewable;
  }

  /**
   * The registry refused the credential as expired: forget it and every token made with it, so the next
   * request fetches fresh ones. False when nothing new can come (a static password).
   */
  renew(): boolean {
    this.tokens = [];
    return this.credentials.renew();
  }

  /** The identity used (username), for the audit log; never a secret. */
  async identity(): Promise<string | undefined> {
    const c = (await this.found())?.credential;
    if (!c) return undefined;
    return c.username;
  }

  /** Authorization header value for a request needing `scopes`, or undefined when no challenge is known yet. */
  async authorize(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const found = await this.found(signal);
      if (found?.credential.kind === 'basic') {
        const { username, password } = found.credential;
        return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      }
      return undefined;
    }
    if (ch.scheme === 'bearer') {
      const token = await this.token(scopes, signal);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /**
   * Learn from a 401 of the registry itself (the caller checks the origin: a challenge from anywhere
   * else is never adopted, trust.ts). Returns true when a retry with fresh authorization may succeed (a
   * new or changed challenge, or a cached token the registry no longer accepts), false when retrying is
   * pointless.
   */
  unauthorized(
    wwwAuthenticate: string | undefined,
    sentAuthorization: string | undefined,
    options: { keepToken?: boolean } = {},
  ): boolean {
    const challenges = parseChallenges(wwwAuthenticate);
    const next =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!next) return false;
    const changed = !this.challenge || JSON.stringify(this.challenge) !== JSON.stringify(next);
    this.challenge = next;
    // A refusal that says nothing about the token itself (a mount's `from` the login may not read): the
    // token, which may serve the run's other repositories too, stays.
    if (options.keepToken) return changed;
    if (sentAuthorization?.startsWith('Bearer ')) {
      // The token it carried is refused: gone from the cache, whether this answer removes it or a
      // concurrent request's 401 already did (several requests leave with one token, which may expire on
      // the way). Either way the retry asks for a fresh one; the caller bounds the retries.
      const sent = sentAuthorization.slice(7);
      this.tokens = this.tokens.filter((t) => t.token !== sent);
      return true;
    }
    return changed || sentAuthorization === undefined;
  }

  async describeCredentialSource(): Promise<string> {
    const found = await this.found();
    return found ? found.source : 'no credentials found';
  }

  async hasCredential(): Promise<boolean> {
    return (await this.found()) !== undefined;
  }

  /**
   * Why there is no credential, when its provider found none and can say why (no AWS credentials for an
   * ECR token); undefined otherwise, including before the provider was asked.
   */
  whyNoCredential(): string | undefined {
    return this.credentials.missing?.();
  }

  /**
   * The repositories this run will use on this registry, with the actions it needs on each: a token is
   * asked for several at once (up to MAX_SCOPES_PER_TOKEN), so that a run over many repositories does
   * not fetch one token per repository, and a repository it writes to gets pull,push from its first
   * request (its HEADs and tag list then need no pull token of their own).
   */
  private readonly planned = new Map<string, 'pull' | 'pull,push'>();
  /** The realm refused a token for the planned scopes: from then on, each request's own. */
  private bundling = true;

  /** This run will read `path` (a source repository). */
  willPull(path: string): void {
    if (!this.planned.has(path)) this.planned.set(path, 'pull');
  }

  /** This run will push to `path`: its token covers push from the first request. */
  willPush(path: string): void {
    this.planned.set(path, 'pull,push');
  }

  /** What to ask the realm for `asked`: each widened to what the run will do there, with others planned. */
  private bundle(asked: string[]): string[] {
    const out = new Set<string>();
    for (const s of asked) {
      const m = /^repository:(.+):pull$/.exec(s);
      const actions = m ? this.planned.get(m[1]!) : undefined;
      out.add(actions ? repositoryScope(m![1]!, actions) : s);
    }
    for (const [path, actions] of this.planned) {
      if (out.size >= MAX_SCOPES_PER_TOKEN) break;
      const scope = repositoryScope(path, actions);
      if (![...out].some((o) => scopesCover([o], scope))) out.add(scope);
    }
    return [...out];
  }

  private async token(asked: string[], signal?: AbortSignal): Promise<CachedToken> {
    const now = Date.now();
    this.tokens = this.tokens.filter((t) => t.renewAt > now);
    const hit = this.tokens.find((t) => asked.every((s) => scopesCover(t.scopes, s)));
    if (hit) return hit;
    if (this.bundling && this.planned.size > 0) {
      const scopes = this.bundle(asked);
      if (scopes.length !== asked.length || scopes.some((s, i) => s !== asked[i])) {
        try {
          return await this.tokenFor(scopes, signal);
        } catch (err) {
          if (!(err instanceof RealmRefusedError)) throw err;
          // The realm will not grant them together (a read-only login asked for push, a repository it
          // refuses outright): ask for what each request needs from now on.
          this.bundling = false;
        }
      }
    }
    return this.tokenFor(asked, signal);
  }

  private async tokenFor(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const key = [...scopes].sort().join(' ');
    let shared = this.pending.get(key);
    // Callers of one scope set share one fetch, aborted only when all of them have aborted: the first
    // caller's short timeout (an upload's cancel) must not fail every request waiting for the token.
    if (!shared || shared.abandoned) {
      const created: SharedFetch<CachedToken> = new SharedFetch((fetchSignal) =>
        this.fetchRenewing(scopes, fetchSignal)
          .catch((err: unknown) => {
            // A fault on the way to the token server (a deadline, a refused redirect) is about this
            // registry's token request, whatever host the transport was talking to.
            if (err instanceof RegmirrorError && !(err instanceof AuthError)) {
              err.context.registry = this.host;
              err.context.step = 'token request';
            }
            throw err;
          })
          .finally(() => {
            if (this.pending.get(key) === created) this.pending.delete(key);
          }),
      );
      shared = created;
      this.pending.set(key, shared);
    }
    return shared.join(signal);
  }

  /** A token; when the realm refuses a renewable credential (an expired API token), once more with a fresh one. */
  private async fetchRenewing(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    try {
      return await this.fetchToken(scopes, signal);
    } catch (err) {
      if (!(err instanceof RealmRefusedError) || !this.credentials.renewable) throw err;
      this.credentials.renew();
      return this.fetchToken(scopes, signal);
    }
  }

  private async fetchToken(scopes: string[], signal?: AbortSignal): Promise<CachedToken> {
    const ch = this.challenge!;
    const context: ErrorContext = { registry: this.host, step: 'token request' };
    // The realm the registry's own challenge named: the only other origin its credentials may go to.
    const realmUrl = checkRealm(ch.params.realm, this.base, context);
    const realmOrigin = realmUrl.origin;
    const found = await this.found(signal);
    const cred = found?.credential;
    const service = ch.params.service;
    const bounds = this.limits
      ? {
          deadline: deadlineFor(this.limits, 'token', 'the token request'),
          idleMs: this.limits.timeouts.idle,
        }
      : {};
    let res: Awaited<ReturnType<Transport['send']>>;
    if (cred?.kind === 'identity-token') {
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', cred.token);
      form.set('client_id', 'regmirror');
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      res = await this.transport.send({
        method: 'POST',
        url: realmUrl,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        signal,
        followRedirects: false,
        // The refresh token is in the body: the transport sends it to the realm's origin only.
        credentials: { origin: realmOrigin, inBody: true },
        ...bounds,
      });
    } else {
      const url = new URL(realmUrl);
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      // Not followed: a redirect would carry the Basic credentials to a host that did not ask for them.
      res = await this.transport.send({
        method: 'GET',
        url,
        signal,
        followRedirects: false,
        ...(cred?.kind === 'basic'
          ? {
              credentials: {
                authorization: `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`,
                origin: realmOrigin,
              },
            }
          : {}),
        ...bounds,
      });
    }
    if (res.status === 401 || res.status === 403) {
      await readCapped(res.body);
      throw new RealmRefusedError(
        found
          ? `authentication failed: the token server ${realmUrl.host} rejected the credentials for ${this.host}`
          : `authentication required: ${this.host} gives no anonymous access`,
        {
          context: { registry: this.host, step: 'token request' },
          hint: found
            ? `check the username and password from ${found.source}`
            : 'log in with docker login, or configure credentials for this registry',
        },
      );
    }
    if (res.status !== 200) {
      const text = await readCapped(res.body, ERROR_TEXT_BYTES);
      // A realm may echo what it was sent (`invalid_grant: refresh_token=...`): never into a message.
      const secrets =
        cred?.kind === 'basic'
          ? [cred.password, Buffer.from(`${cred.username}:${cred.password}`).toString('base64')]
          : cred?.kind === 'identity-token'
            ? [cred.token]
            : [];
      const shown = redactSecrets(text, secrets, Buffer.byteLength(text) >= ERROR_TEXT_BYTES);
      throw new AuthError(`token server ${realmUrl.host} answered HTTP ${res.status}`, {
        context,
        hint: registryText(shown.trim(), 200) || undefined,
      });
    }
    let body: z.infer<typeof tokenResponseSchema>;
    try {
      body = tokenResponseSchema.parse(
        JSON.parse((await readAll(res.body, TOKEN_BODY_LIMIT)).toString('utf8')),
      );
    } catch (err) {
      // A deadline or a cut connection says so; a body that is too large or not a token says that.
      if (err instanceof RegmirrorError) {
        err.context.registry = this.host;
        err.context.step = 'token request';
        throw err;
      }
      throw new AuthError(
        err instanceof BodyTooLargeError
          ? `token server ${realmUrl.host} sent a token response larger than ${TOKEN_BODY_LIMIT} bytes; refused`
          : `token server ${realmUrl.host} sent an unreadable token response`,
        { context },
      );
    }
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new AuthError(`token server ${realmUrl.host} sent no token`, { context });
    }
    const lifetimeMs =
      (body.expires_in && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S) * 1000;
    // Renew a little early so a request never leaves with a token that expires on the way.
    const margin = Math.min(10_000, lifetimeMs / 5);
    const cached: CachedToken = { scopes: new Set(scopes), token, renewAt: Date.now() + lifetimeMs - margin };
    this.tokens.push(cached);
    return cached;
  }
}
