// Credential providers: where a profile's credentials come from, cached until they expire and fetched
// again when the registry says they have. This is the only cache of credentials in a run: the auth layer
// asks the provider every time (cheap: it answers from its cache) instead of keeping its own copy.

import { SharedFetch } from '../../shared-fetch.js';
import { findCredential } from '../credentials/chain.js';
import type { Credential, CredentialSource, FoundCredential } from '../credentials/types.js';
import type { CredentialProvider } from './profile.js';

/** Anonymous: no credentials, ever (the config said "anonymous", or nothing is known). */
export const NO_CREDENTIALS: CredentialProvider = {
  get: async () => undefined,
  renew: () => false,
  renewable: false,
};

/**
 * Credential sources asked in order for `host` (config env variables, docker config.json, podman's
 * auth.json...), the answer kept for the run. Passwords in files do not expire: renew() reads the sources
 * again (a credential helper may hand out a fresh token) but says it cannot promise anything new.
 */
export function sourcesProvider(sources: readonly CredentialSource[], host: string): CredentialProvider {
  let cached: Promise<FoundCredential | undefined> | undefined;
  return {
    get() {
      cached ??= findCredential(sources, host);
      // A failed lookup (a broken helper) is not kept: the next request asks again.
      cached.catch(() => {
        cached = undefined;
      });
      return cached;
    },
    renew() {
      cached = undefined;
      return false;
    },
    renewable: false,
  };
}

/** A credential with its expiry, as an API hands it out (ECR's GetAuthorizationToken: 12 hours). */
export interface ExpiringCredential {
  credential: Credential;
  /** Where it came from, for messages; never the secret. */
  source: string;
  /** Epoch milliseconds; undefined = does not expire by itself. */
  expiresAt?: number;
}

/** Renew this long before the expiry the issuer gave, so that no request leaves with a dying credential. */
export function renewalMargin(lifetimeMs: number): number {
  return Math.min(5 * 60_000, Math.max(1000, lifetimeMs / 10));
}

/**
 * A credential fetched from an issuer (an API), kept until shortly before it expires and fetched again
 * then, or as soon as the registry refuses it. Concurrent callers share one fetch.
 */
export function expiringProvider(
  fetch: (signal?: AbortSignal) => Promise<ExpiringCredential | undefined>,
  now: () => number = Date.now,
): CredentialProvider {
  interface Entry {
    value: SharedFetch<ExpiringCredential | undefined>;
    renewAt: number;
  }
  let cached: Entry | undefined;
  return {
    async get(signal) {
      // The fetch is aborted only when every caller waiting on it has aborted, not by the first one's signal.
      if (!cached || now() >= cached.renewAt || cached.value.abandoned) {
        const fetchedAt = now();
        const entry: Entry = {
          value: new SharedFetch((fetchSignal) =>
            fetch(fetchSignal).then(
              (got) => {
                if (got?.expiresAt !== undefined) {
                  const lifetime = got.expiresAt - fetchedAt;
                  entry.renewAt = got.expiresAt - renewalMargin(lifetime);
                }
                return got;
              },
              (err: unknown) => {
                if (cached === entry) cached = undefined;
                throw err;
              },
            ),
          ),
          renewAt: Number.POSITIVE_INFINITY,
        };
        cached = entry;
      }
      const got = await cached.value.join(signal);
      if (!got) return undefined;
      return {
        credential: got.credential,
        source: got.source,
        ...(got.expiresAt !== undefined ? { expiresAt: got.expiresAt } : {}),
      };
    },
    renew() {
      cached = undefined;
      return true;
    },
    renewable: true,
  };
}

/**
 * Providers asked in order; the first with a credential answers. renew() goes to the one that answered
 * last, so an expired ECR token is fetched again rather than a docker password being re-read.
 */
export function firstOf(providers: readonly CredentialProvider[]): CredentialProvider {
  if (providers.length === 1) return providers[0]!;
  let answered: CredentialProvider | undefined;
  return {
    async get(signal) {
      for (const p of providers) {
        const found = await p.get(signal);
        if (found) {
          answered = p;
          return found;
        }
      }
      answered = undefined;
      return undefined;
    },
    renew() {
      return answered?.renew() ?? false;
    },
    get renewable() {
      return answered?.renewable ?? false;
    },
    missing() {
      for (const p of providers) {
        const why = p.missing?.();
        if (why) return why;
      }
      return undefined;
    },
  };
}
