// Builds what the commands need from their options: the registry client (transport settings per host,
// credentials), the abort signal, and the output channels.

import { readFileSync } from 'node:fs';
import { UsageError, whyUnreadable } from '../errors.js';
import { apiHost, normaliseRegistry } from '../reference/reference.js';
import { RegistryClient } from '../registry/client.js';
import { defaultCredentialChain, findCredential } from '../registry/credentials/chain.js';
import type { CredentialSource, FoundCredential } from '../registry/credentials/types.js';
import { defaultRetryPolicy, type RetryPolicy } from '../registry/retry.js';
import type { TlsMode } from '../registry/tls.js';
import { type HostSettings, isLoopbackHost, type TraceFn } from '../registry/transport.js';

export interface ClientFlags {
  plainHttp?: string[];
  insecure?: string[];
  caFile?: string[];
  hostConcurrency?: number;
  debug?: boolean;
  /** Retries of a transient fault after the first attempt (--retries). */
  retries?: number;
  /** Stop retrying a request once this much time has passed since its first attempt (--retry-max-time). */
  retryMaxTime?: number;
}

/** The retry policy for the run: the built-in one, with the limits the flags set. */
export function retryPolicyFrom(flags: ClientFlags): RetryPolicy {
  return {
    ...defaultRetryPolicy,
    ...(flags.retries !== undefined ? { attempts: flags.retries + 1 } : {}),
    ...(flags.retryMaxTime !== undefined ? { maxElapsedMs: flags.retryMaxTime } : {}),
  };
}

export interface RegistryOverrides {
  tls?: TlsMode;
  concurrency?: number;
  /** Asked before the default chain. */
  credentials?: CredentialSource[];
  /** Never send credentials to this registry, even when a login exists. */
  anonymous?: boolean;
}

export const DEFAULT_HOST_CONCURRENCY = 8;

/**
 * A CA file given on the command line is read once here, before any request: read only when the first
 * connection opens, a missing file would look like an unreachable registry (and be retried as one).
 */
export function checkCaFile(file: string, given: string): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${given}: ${file} ${whyUnreadable(err)}`, { cause: err });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new UsageError(
      `${given}: ${file} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line); give the CA certificate in PEM form`,
    );
  }
}

/** Settings for one registry host: explicit overrides first, then loopback → plain HTTP, else verified HTTPS. */
export function hostSettingsFrom(
  flags: ClientFlags,
  overrides: (host: string) => RegistryOverrides | undefined,
): (host: string) => HostSettings {
  const byHost = new Map<string, TlsMode>();
  const add = (hosts: string[] | undefined, mode: (value: string) => [string, TlsMode]) => {
    for (const h of hosts ?? []) {
      const [host, tls] = mode(h);
      byHost.set(apiHost(normaliseRegistry(host)), tls);
    }
  };
  add(flags.plainHttp, (h) => [h, 'disabled']);
  add(flags.insecure, (h) => [h, 'insecure']);
  add(flags.caFile, (v) => {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--ca-file takes HOST=FILE, got "${v}"`);
    const file = v.slice(eq + 1);
    checkCaFile(file, `--ca-file ${v}`);
    return [v.slice(0, eq), { caFile: file }];
  });
  return (host: string) => {
    const o = overrides(host);
    const tls = o?.tls ?? byHost.get(host) ?? (isLoopbackHost(host) ? 'disabled' : 'verify');
    return { tls, concurrency: o?.concurrency ?? flags.hostConcurrency ?? DEFAULT_HOST_CONCURRENCY };
  };
}

export function createClient(options: {
  flags: ClientFlags;
  signal: AbortSignal;
  overrides?: (host: string) => RegistryOverrides | undefined;
  env?: NodeJS.ProcessEnv;
  trace?: TraceFn;
}): RegistryClient {
  const overrides = options.overrides ?? (() => undefined);
  const chain = defaultCredentialChain(options.env ?? process.env);
  const cache = new Map<string, Promise<FoundCredential | undefined>>();
  return new RegistryClient({
    hostSettings: hostSettingsFrom(options.flags, overrides),
    credentials: (registry) => {
      const host = apiHost(registry);
      let p = cache.get(host);
      if (!p) {
        const o = overrides(host);
        p = o?.anonymous
          ? Promise.resolve(undefined)
          : findCredential([...(o?.credentials ?? []), chain], host);
        cache.set(host, p);
      }
      return p;
    },
    signal: options.signal,
    trace: options.trace,
    retry: retryPolicyFrom(options.flags),
  });
}
