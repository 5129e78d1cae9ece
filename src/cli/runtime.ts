// Builds what the commands need from their options: the registry profiles (from the config, the flags and
// the vendors' defaults) and the registry client that reads them.

import { readFileSync } from 'node:fs';
import { VENDORS } from '../cloud/index.js';
import {
  credentialSourcesFor,
  isAnonymous,
  type ResolvedConfig,
  type VendorSettings,
} from '../config/resolve.js';
import { ConfigError, describeContext, UsageError, whyUnreadable } from '../errors.js';
import { normaliseRegistry } from '../reference/reference.js';
import { type ClientWarning, RegistryClient } from '../registry/client.js';
import { defaultCredentialChain } from '../registry/credentials/chain.js';
import type { CredentialSource } from '../registry/credentials/types.js';
import type { QuotaNotice, RegistrySettingsInput } from '../registry/profile/profile.js';
import { RegistryProfiles } from '../registry/profile/profiles.js';
import { defaultRetryPolicy, type RetryPolicy } from '../registry/retry.js';
import type { TlsMode } from '../registry/tls.js';
import type { TraceFn } from '../registry/transport.js';

export interface ClientFlags {
  plainHttp?: string[];
  insecure?: string[];
  caFile?: string[];
  hostConcurrency?: number;
  /** Upload chunk size for registries whose config sets none (--chunk-size). */
  chunkSize?: number;
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

/**
 * A CA file is read once here, before any request: read only when the first connection opens, a missing
 * file would look like an unreachable registry (and be retried as one).
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

/** TLS modes the command line sets per registry (--plain-http, --insecure, --ca-file HOST=FILE). */
export function tlsFromFlags(flags: ClientFlags): Map<string, TlsMode> {
  const byRegistry = new Map<string, TlsMode>();
  const add = (hosts: string[] | undefined, mode: (value: string) => [string, TlsMode]) => {
    for (const h of hosts ?? []) {
      const [host, tls] = mode(h);
      byRegistry.set(normaliseRegistry(host), tls);
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
  return byRegistry;
}

/**
 * What the config says about each registry, as profile settings (plus its credential sources). The
 * config's CA files are checked now, before any request.
 */
export function configRegistries(
  config: ResolvedConfig | undefined,
  env: NodeJS.ProcessEnv,
): Map<string, { settings: RegistrySettingsInput; sources: CredentialSource[] }> {
  const out = new Map<string, { settings: RegistrySettingsInput; sources: CredentialSource[] }>();
  for (const r of config?.registries.values() ?? []) {
    if (typeof r.tls === 'object') {
      checkCaFile(r.tls.caFile, `config registries["${r.registry}"].tls.caFile`);
    }
    const settings: RegistrySettingsInput = { registry: r.registry };
    if (r.type !== undefined) settings.type = r.type;
    if (r.tls !== undefined) settings.tls = r.tls;
    if (r.concurrency !== undefined) settings.concurrency = r.concurrency;
    if (r.chunkSize !== undefined) settings.chunkSize = r.chunkSize;
    if (r.mounts !== undefined) settings.mounts = r.mounts;
    if (r.limits !== undefined) settings.limits = r.limits;
    if (isAnonymous(r)) settings.anonymous = true;
    if (r.vendor !== undefined) settings.vendor = r.vendor;
    out.set(r.registry, { settings, sources: isAnonymous(r) ? [] : credentialSourcesFor(r, env) });
  }
  return out;
}

/**
 * Every registry's profile for this run, from one place: the config's registry settings first, then the
 * command line's, then (inside RegistryProfiles) the vendor's defaults.
 */
export function buildProfiles(options: {
  flags: ClientFlags;
  config?: ResolvedConfig;
  env?: NodeJS.ProcessEnv;
}): RegistryProfiles {
  const env = options.env ?? process.env;
  const { flags } = options;
  const tls = tlsFromFlags(flags);
  const configured = configRegistries(options.config, env);
  const chain = defaultCredentialChain(env);
  const profiles = new RegistryProfiles({
    vendors: VENDORS,
    env,
    settings(registry) {
      const name = normaliseRegistry(registry);
      const fromConfig = configured.get(name)?.settings;
      const fromFlags = tls.get(name);
      if (!fromConfig && fromFlags === undefined) return undefined;
      const settings: RegistrySettingsInput = { ...fromConfig, registry: name };
      if (settings.tls === undefined && fromFlags !== undefined) settings.tls = fromFlags;
      return settings;
    },
    defaults: {
      ...(flags.chunkSize !== undefined ? { chunkSize: flags.chunkSize } : {}),
      ...(flags.hostConcurrency !== undefined ? { concurrency: flags.hostConcurrency } : {}),
      ...(options.config?.limits ? { limits: options.config.limits } : {}),
    },
    credentialSources(registry) {
      return [...(configured.get(normaliseRegistry(registry))?.sources ?? []), chain];
    },
  });
  // Every configured registry's profile now, before any request: the vendors check their settings as
  // they build (a setting the registry cannot honour is a config error, exit 2, nothing sent).
  for (const { settings } of configured.values()) {
    const profile = profiles.for(settings.registry);
    const asked = settings.vendor as VendorSettings | undefined;
    const rules = [
      ...(asked?.createRepositories ? [asked.createRepositories] : []),
      ...Object.values(asked?.repositoryCreation ?? {}),
    ].filter((rule) => rule.settings !== false);
    if (rules.length > 0 && !profile.repositories) {
      throw new ConfigError(
        `config ${rules[0]!.at}: ${settings.registry} is a ${profile.kind} registry, which creates ` +
          'repositories itself on first push (or not at all); regmirror creates repositories on ECR and ' +
          'ECR Public only. Remove it, or set "type" if this host is one of those',
      );
    }
  }
  return profiles;
}

export function createClient(options: {
  flags: ClientFlags;
  signal: AbortSignal;
  config?: ResolvedConfig;
  env?: NodeJS.ProcessEnv;
  trace?: TraceFn;
  /** Where the client's warnings go (a skipped invalid tag); the output sanitises them. */
  warn?: (line: string) => void;
  /** Where the client's notices go as they happen (a pull quota running low or out). */
  notice?: (notice: QuotaNotice) => void;
}): RegistryClient {
  const warn = options.warn;
  return new RegistryClient({
    profiles: buildProfiles(options),
    signal: options.signal,
    trace: options.trace,
    retry: retryPolicyFrom(options.flags),
    ...(warn ? { onWarning: (w: ClientWarning) => warn(formatWarning(w)) } : {}),
    ...(options.notice ? { notice: options.notice } : {}),
  });
}

/** "warning: registry quay.io, repository org/app, tag list: skipped 2 tags ..." */
export function formatWarning(w: ClientWarning): string {
  const where = describeContext(w.context);
  return `warning: ${where ? `${where}: ` : ''}${w.message}`;
}
