// From the validated config to what the commands work with: parsed repositories, targets expanded,
// every policy decided (mirror > defaults > built-in), registry settings keyed the way references name
// registries ("docker.io", never "index.docker.io").

import { resolve as resolvePath } from 'node:path';
import { ConfigError } from '../errors.js';
import { type Platform, parsePlatform } from '../oci/platform.js';
import type { ReferrerFilter } from '../oci/referrers.js';
import { splitRefName } from '../reference/ref-name.js';
import {
  formatRepository,
  isLayoutInput,
  layoutRepository,
  normaliseRegistry,
  parseRepository,
  type Repository,
} from '../reference/reference.js';
import { envCredentialSource } from '../registry/credentials/env-source.js';
import type { Env } from '../registry/credentials/helper.js';
import type { CredentialSource } from '../registry/credentials/types.js';
import type { LimitsInput } from '../registry/limits.js';
import type { RegistryKind } from '../registry/profile/profile.js';
import type { TlsMode } from '../registry/tls.js';
import { formatPath } from './issues.js';
import {
  type Config,
  type CredentialsConfig,
  type EcrCredentials,
  type EcrPublicCredentials,
  mirrorName,
  type Overwrite,
  type ReferrersConfig,
  type RegistryConfig,
  type RepositorySettings,
} from './schema.js';
import type { TagRules } from './tags.js';
import { isTemplate, resolveTarget } from './template.js';

export interface MirrorPolicy {
  /** "all": the source index byte-exact; a list: an index of those platforms only (its digest differs). */
  platforms: 'all' | Platform[];
  overwrite: Overwrite;
  /**
   * Images in flight at once. In `defaults`: the run's bound (`-c` replaces it). A mirror's own value is a
   * further cap for that mirror; a mirror that sets none shares the run's bound with the others.
   */
  concurrency: number;
  /** Copy referrers (those the filter keeps), or not at all. */
  referrers: ReferrerFilter | false;
  /** With referrers on: cosign's sha256-<hex>.sig / .att / .sbom tags too. */
  cosignTags: boolean;
}

export const BUILTIN_DEFAULTS: Readonly<MirrorPolicy> = Object.freeze({
  platforms: 'all',
  overwrite: 'changed',
  // Each image spends most of its time waiting for round trips (about ten one after the other): 16 in
  // flight keep a registry across a network busy without flooding it (docs/benchmarks.md).
  concurrency: 16,
  referrers: {},
  cosignTags: true,
});

/** `true` is every referrer: an empty filter. */
function referrersOf(value: ReferrersConfig): ReferrerFilter | false {
  if (value === false) return false;
  if (value === true) return {};
  return {
    ...(value.artifactTypes ? { artifactTypes: value.artifactTypes } : {}),
    ...(value.exclude ? { exclude: value.exclude } : {}),
  };
}

export interface ResolvedMirror extends Omit<MirrorPolicy, 'concurrency'> {
  /** Images in flight for this mirror, when it sets its own cap; undefined: only the run's bound. */
  concurrency?: number;
  /** The mirror's own name, else the normalised source ("quay.io/org/app"). Unique in a config. */
  name: string;
  source: Repository;
  /**
   * Templates expanded; never the source, never twice the same. Empty for a whole layout as the source
   * ("oci:bundle"), whose targets are expanded per name prefix found in it (expandLayoutMirror).
   */
  targets: Repository[];
  /** The targets as written (templates unexpanded), layout paths made absolute (set by resolveConfig). */
  targetTemplates?: string[];
  /** undefined: every tag of the source. */
  tags: TagRules | undefined;
}

/** Repository creation as one place in the config asks for it (settings, or false: do not create). */
export interface RepositoryCreationRule {
  settings: RepositorySettings | false;
  /** Where in the config it was said, for messages: registries["public.ecr.aws"].createRepositories. */
  at: string;
}

/**
 * Settings only a vendor understands (src/cloud/), handed to it as they are through the registry profile:
 * the ECR credential forms and repository creation (the registry's, and per target repository the
 * mirrors' own).
 */
export type VendorSettings = {
  ecr?: EcrCredentials;
  ecrPublic?: EcrPublicCredentials;
  createRepositories?: RepositoryCreationRule;
  /** Target repository path → a mirror's createRepositories, which wins over the registry's. */
  repositoryCreation?: Record<string, RepositoryCreationRule>;
};

export interface RegistrySettings {
  /** Normalised as in references: "docker.io", "quay.io", "localhost:5000". */
  registry: string;
  /** The kind the config names; undefined: inferred from the host name. */
  type?: RegistryKind;
  /** "docker" (the default chain) unless configured. */
  credentials: CredentialsConfig;
  /** undefined: not configured; the client decides (loopback hosts plain HTTP, others verified HTTPS). */
  tls?: TlsMode;
  /** Requests in flight to this registry; undefined: the client's default. */
  concurrency?: number;
  /** Upload chunk size in bytes; undefined: the client's choice for that registry. */
  chunkSize?: number;
  /** Cross-repository mounts on or off; undefined: the vendor's default. */
  mounts?: boolean;
  /** Settings only a vendor understands (ECR credentials, repository creation), handed to it as they are. */
  vendor?: VendorSettings;
  /** Bounds on what this registry may send (over `defaults.limits`). */
  limits?: LimitsInput;
}

export interface ResolvedConfig {
  /** The policies of a mirror that sets none; `defaults.concurrency` is the run's images in flight. */
  defaults: MirrorPolicy;
  /** Limits for every registry (`defaults.limits`); a registry's own `limits` win, key by key. */
  limits?: LimitsInput;
  registries: Map<string, RegistrySettings>;
  mirrors: ResolvedMirror[];
}

function platformsOf(value: 'all' | string[]): 'all' | Platform[] {
  // The schema checked the syntax, so parsePlatform always answers here.
  return value === 'all' ? 'all' : value.map((text) => parsePlatform(text)!);
}

function registrySettingsOf(key: string, config: RegistryConfig, baseDir: string): RegistrySettings {
  const settings: RegistrySettings = {
    registry: normaliseRegistry(key),
    credentials: config.credentials ?? 'docker',
  };
  if (config.tls !== undefined) {
    // A CA file is relative to the config file, not to wherever regmirror happens to run.
    settings.tls =
      typeof config.tls === 'object' ? { caFile: resolvePath(baseDir, config.tls.caFile) } : config.tls;
  }
  if (config.concurrency !== undefined) settings.concurrency = config.concurrency;
  if (config.chunkSize !== undefined) settings.chunkSize = config.chunkSize;
  if (config.type !== undefined) settings.type = config.type;
  if (config.mounts !== undefined) settings.mounts = config.mounts;
  const vendor: VendorSettings = {};
  const credentials = config.credentials;
  // The ECR credential forms say what kind of registry this is (the schema refused a contradicting type).
  if (typeof credentials === 'object' && 'ecr' in credentials) {
    vendor.ecr = credentials.ecr;
    settings.type ??= 'ecr';
  }
  if (typeof credentials === 'object' && 'ecrPublic' in credentials) {
    vendor.ecrPublic = credentials.ecrPublic;
    settings.type ??= 'ecr-public';
  }
  if (config.createRepositories !== undefined) {
    vendor.createRepositories = {
      settings: config.createRepositories,
      at: formatPath(['registries', key, 'createRepositories']),
    };
  }
  if (Object.keys(vendor).length > 0) settings.vendor = vendor;
  if (config.limits !== undefined) settings.limits = config.limits;
  return settings;
}

/**
 * A mirror's own createRepositories applies to its targets: recorded per target repository in the
 * settings of the target's registry (created when the config names no such registry). Two mirrors that
 * ask for different settings for the same repository are a config error.
 */
function addRepositoryCreation(
  registries: Map<string, RegistrySettings>,
  mirror: ResolvedMirror,
  rule: RepositoryCreationRule,
): void {
  for (const target of mirror.targets) {
    // An OCI layout target is files: there is no repository to create.
    if (target.layout) continue;
    let settings = registries.get(target.registry);
    if (!settings) {
      settings = { registry: target.registry, credentials: 'docker' };
      registries.set(target.registry, settings);
    }
    settings.vendor ??= {};
    settings.vendor.repositoryCreation ??= {};
    const byPath = settings.vendor.repositoryCreation;
    const earlier = byPath[target.path];
    if (earlier && JSON.stringify(earlier.settings) !== JSON.stringify(rule.settings)) {
      throw new ConfigError(
        `config ${rule.at}: asks to create ${target.registry}/${target.path} with other settings than ` +
          `${earlier.at}; give both mirrors the same createRepositories`,
      );
    }
    byPath[target.path] ??= rule;
  }
}

/**
 * `config` must come from configSchema (loadConfig does that): its references and templates are known
 * to parse. `baseDir` is the config file's directory, for relative paths in it.
 */
export function resolveConfig(config: Config, options: { baseDir: string }): ResolvedConfig {
  const given = config.defaults ?? {};
  const defaults: MirrorPolicy = {
    platforms: given.platforms === undefined ? BUILTIN_DEFAULTS.platforms : platformsOf(given.platforms),
    overwrite: given.overwrite ?? BUILTIN_DEFAULTS.overwrite,
    concurrency: given.concurrency ?? BUILTIN_DEFAULTS.concurrency,
    referrers: given.referrers === undefined ? BUILTIN_DEFAULTS.referrers : referrersOf(given.referrers),
    cosignTags: given.cosignTags ?? BUILTIN_DEFAULTS.cosignTags,
  };
  const registries = new Map<string, RegistrySettings>();
  for (const [key, value] of Object.entries(config.registries ?? {})) {
    const settings = registrySettingsOf(key, value, options.baseDir);
    registries.set(settings.registry, settings);
  }
  const mirrors = config.mirrors.map((mirror, index): ResolvedMirror => {
    const source = fromConfigDir(parseRepository(mirror.source), options.baseDir);
    const targetTemplates = mirror.targets.map((t) => absoluteLayoutPath(t, options.baseDir));
    const wholeLayout = source.layout !== undefined && source.path === '';
    const resolved: ResolvedMirror = {
      name: mirrorName(mirror),
      source,
      targets: wholeLayout ? [] : targetTemplates.map((target) => resolveTarget(target, source)),
      targetTemplates,
      tags: mirror.tags,
      platforms: mirror.platforms === undefined ? defaults.platforms : platformsOf(mirror.platforms),
      overwrite: mirror.overwrite ?? defaults.overwrite,
      ...(mirror.concurrency !== undefined ? { concurrency: mirror.concurrency } : {}),
      // A mirror's own "referrers" replaces the defaults' as a whole (filters are not merged).
      referrers: mirror.referrers === undefined ? defaults.referrers : referrersOf(mirror.referrers),
      cosignTags: mirror.cosignTags ?? defaults.cosignTags,
    };
    if (mirror.createRepositories !== undefined) {
      addRepositoryCreation(registries, resolved, {
        settings: mirror.createRepositories,
        at: formatPath(['mirrors', index, 'createRepositories']),
      });
    }
    return resolved;
  });
  return { defaults, registries, mirrors, ...(given.limits ? { limits: given.limits } : {}) };
}

/** A layout's path in a config is relative to the config file, like a CA file. */
function fromConfigDir(repo: Repository, baseDir: string): Repository {
  if (!repo.layout) return repo;
  return layoutRepository(
    { kind: repo.layout.kind, path: resolvePath(baseDir, repo.layout.path) },
    repo.path,
  );
}

/** "oci:out:{path}" → "oci:/config/dir/out:{path}": the same template, its layout path absolute. */
function absoluteLayoutPath(template: string, baseDir: string): string {
  const m = /^(oci|oci-archive):([^:@]*)(.*)$/s.exec(template.trim());
  if (!m || m[2] === '') return template;
  return `${m[1]}:${resolvePath(baseDir, m[2]!)}${m[3]}`;
}

/**
 * The mirrors a whole layout as the source stands for: one per name prefix among its image names
 * (`names`, as in its index.json), each with its targets expanded for that prefix. A literal target
 * (no template) takes a layout of one prefix only: several repositories cannot go into one.
 */
export function expandLayoutMirror(mirror: ResolvedMirror, names: string[]): ResolvedMirror[] {
  const templates = mirror.targetTemplates ?? [];
  const prefixes = [...new Set(names.map((n) => splitRefName(n).prefix))].sort();
  // A layout target without a prefix names each image after its source: as good as a template.
  const literal = templates.find(
    (t) => !isTemplate(t) && !(isLayoutInput(t) && parseRepository(t).path === ''),
  );
  if (prefixes.length > 1 && literal !== undefined) {
    throw new ConfigError(
      `mirror ${mirror.name}: ${formatRepository(mirror.source)} holds the images of ${prefixes.length} repositories ` +
        `(${prefixes.map((p) => p || '(unprefixed names)').join(', ')}), and "${literal}" is one repository; ` +
        'use {path} or {name} in the targets, or name one prefix in the source, e.g. ' +
        `"${formatRepository(mirror.source)}:${prefixes.find((p) => p !== '') ?? 'quay.io/org/app'}"`,
    );
  }
  return prefixes.map((prefix) => {
    const source = layoutRepository(mirror.source.layout!, prefix);
    let targets: Repository[];
    try {
      targets = templates.map((t) => resolveTarget(t, source));
    } catch (err) {
      throw new ConfigError(`mirror ${mirror.name}: ${(err as Error).message}`);
    }
    const name =
      mirror.name === formatRepository(mirror.source) ? formatRepository(source) : `${mirror.name}:${prefix}`;
    return { ...mirror, name, source, targets };
  });
}

/** The settings for `registry` (any alias: "index.docker.io" finds "docker.io"); defaults when not configured. */
export function registrySettings(config: ResolvedConfig, registry: string): RegistrySettings {
  const name = normaliseRegistry(registry);
  return config.registries.get(name) ?? { registry: name, credentials: 'docker' };
}

/** Whether requests to this registry go without credentials, even when a login exists for it. */
export function isAnonymous(settings: RegistrySettings): boolean {
  return settings.credentials === 'anonymous';
}

/**
 * The credential sources the config names for this registry, to be asked before the default chain.
 * [] means the config names none: use the default chain ("docker") — or, when isAnonymous, nothing at all.
 */
export function credentialSourcesFor(settings: RegistrySettings, env: Env = process.env): CredentialSource[] {
  const credentials = settings.credentials;
  // The ECR forms are the vendor's (src/cloud/): its profile asks them before these sources.
  if (typeof credentials === 'string' || !('env' in credentials)) return [];
  return [envCredentialSource(settings.registry, credentials.env.username, credentials.env.password, env)];
}
