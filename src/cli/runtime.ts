// Builds what the commands need from their options: the registry client (transport settings per host,
// credentials), the abort signal, and the output channels.

import { UsageError } from '../errors.js';
import { apiHost, normaliseRegistry } from '../reference/reference.js';
import { RegistryClient } from '../registry/client.js';
import { defaultCredentialChain, findCredential } from '../registry/credentials/chain.js';
import type { CredentialSource, FoundCredential } from '../registry/credentials/types.js';
import type { TlsMode } from '../registry/tls.js';
import { type HostSettings, isLoopbackHost, type TraceFn } from '../registry/transport.js';

export interface ClientFlags {
  plainHttp?: string[];
  insecure?: string[];
  caFile?: string[];
  hostConcurrency?: number;
  debug?: boolean;
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
    return [v.slice(0, eq), { caFile: v.slice(eq + 1) }];
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
  });
}
