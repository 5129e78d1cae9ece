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
import { parseDockerConfig } from '../registry/credentials/docker-config.js';
import { configFileSource } from '../registry/credentials/docker-config-source.js';
import type { CredentialSource } from '../registry/credentials/types.js';
import type { QuotaNotice, RegistrySettingsInput } from '../registry/profile/profile.js';
import { RegistryProfiles } from '../registry/profile/profiles.js';
import { defaultRetryPolicy, type RetryPolicy } from '../registry/retry.js';
import type { TlsMode } from '../registry/tls.js';
import type { TraceFn } from '../registry/transport.js';

export interface ClientFlags {
  plainHttp?: string[];
  /** Verified HTTPS for these hosts, loopback ones included (which default to plain HTTP). */
  tlsVerify?: string[];
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
  /** Credentials from this docker/podman auth file instead of the default ones (--authfile). */
  authfile?: string;
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

/**
 * TLS modes the command line sets per registry (--plain-http, --tls-verify, --insecure, --ca-file
 * HOST=FILE). One host given two modes is a usage error: which one was meant cannot be guessed.
 */
export function tlsFromFlags(flags: ClientFlags): Map<string, TlsMode> {
  const byRegistry = new Map<string, TlsMode>();
  const given = new Map<string, string>();
  const add = (flag: string, hosts: string[] | undefined, mode: (value: string) => [string, TlsMode]) => {
    for (const h of hosts ?? []) {
      const [host, tls] = mode(h);
      const name = normaliseRegistry(host);
      const before = given.get(name);
      // A CA file is verified HTTPS with one more trusted CA: it goes with --tls-verify, and wins.
      const verified = new Set([before, flag]);
      const compatible = verified.has('--tls-verify') && verified.has('--ca-file');
      if (before !== undefined && before !== flag && !compatible) {
        throw new UsageError(`${before} ${host} and ${flag} ${host} contradict each other; give one`);
      }
      if (compatible && before === '--ca-file') continue;
      given.set(name, flag);
      byRegistry.set(name, tls);
    }
  };
  add('--plain-http', flags.plainHttp, (h) => [h, 'disabled']);
  add('--tls-verify', flags.tlsVerify, (h) => [h, 'verify']);
  add('--insecure', flags.insecure, (h) => [h, 'insecure']);
  add('--ca-file', flags.caFile, (v) => {
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
 * --authfile FILE (skopeo's and podman's habit): this file, in docker's config.json or podman's auth.json
 * form, instead of DOCKER_AUTH_CONFIG, docker's config and podman's files. Read and checked now: a missing
 * or malformed file is a usage error before any request, not a 401 later.
 */
export function authfileSource(path: string, env: NodeJS.ProcessEnv): CredentialSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--authfile ${path}: ${path} ${whyUnreadable(err)}`, { cause: err });
  }
  try {
    parseDockerConfig(text, path);
  } catch (err) {
    throw new UsageError(`--authfile ${path}: ${(err as Error).message}`, { cause: err });
  }
  return configFileSource(`auth file ${path}`, path, { env });
}

/**
 * Every registry's profile for this run, from one place: the config's registry settings first, then the
 * command line's, then (inside RegistryProfiles) the vendor's defaults.
 */
export function buildProfiles(options: {
  flags: ClientFlags;
  config?: ResolvedConfig;
  env?: NodeJS.ProcessEnv;
  /** Credentials given on the command line per registry (copy --src-creds / --dest-creds): asked first. */
  credentials?: Map<string, CredentialSource>;
}): RegistryProfiles {
  const env = options.env ?? process.env;
  const { flags } = options;
  const tls = tlsFromFlags(flags);
  const configured = configRegistries(options.config, env);
  const chain =
    flags.authfile !== undefined ? authfileSource(flags.authfile, env) : defaultCredentialChain(env);
  const given = options.credentials ?? new Map<string, CredentialSource>();
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
    givenCredentials: (registry) => given.get(normaliseRegistry(registry)),
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
  credentials?: Map<string, CredentialSource>;
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
