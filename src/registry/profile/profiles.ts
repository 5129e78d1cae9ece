// Builds each registry's profile once, on first use, from what the user said (config and flags, merged by
// the caller into RegistrySettingsInput) and what the vendor knows (src/cloud/). Every command gets its
// profiles from here, through the registry client.

import { apiHost, normaliseRegistry } from '../../reference/reference.js';
import type { CredentialSource } from '../credentials/types.js';
import { DEFAULT_LIMITS, type LimitsInput, mergeLimits } from '../limits.js';
import { type HostSettings, isLoopbackHost } from '../transport.js';
import { firstOf, NO_CREDENTIALS, sourcesProvider } from './credential-provider.js';
import type {
  CredentialProvider,
  RegistryKind,
  RegistryProfile,
  RegistryQuirks,
  RegistrySettingsInput,
  UploadPolicy,
  VendorContext,
  VendorDefinition,
} from './profile.js';

export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
/** Requests in flight to a registry at the start, when nothing says otherwise; the bound adapts. */
export const DEFAULT_HOST_CONCURRENCY = 16;
/** The most requests in flight an unconfigured registry's bound grows to while it answers well. */
export const DEFAULT_MAX_HOST_CONCURRENCY = 64;
/** The largest request body we send anywhere unless a vendor says less. */
export const DEFAULT_MAX_CHUNK_SIZE = 1024 ** 3;

const DISTRIBUTION_QUIRKS: RegistryQuirks = {
  mounts: true,
  tagPageSize: 1000,
  tagImmutability: false,
  deniedMeansExpired: false,
};

export interface ProfileInputs {
  /** The user's settings for a registry (config merged with flags); undefined = none given. */
  settings(registry: string): RegistrySettingsInput | undefined;
  /** Credential sources for a registry, in order (configured ones, then docker's and podman's files). */
  credentialSources(registry: string): CredentialSource[];
  /**
   * Credentials typed on the command line for this registry (copy --src-creds / --dest-creds): asked
   * before anything configured, a vendor's credentials and `anonymous` included.
   */
  givenCredentials?(registry: string): CredentialSource | undefined;
  /**
   * What applies to every registry whose settings do not say: the command line's --chunk-size and
   * --host-concurrency, the config's defaults.limits.
   */
  defaults?: { chunkSize?: number; concurrency?: number; limits?: LimitsInput };
  vendors: readonly VendorDefinition[];
  env: NodeJS.ProcessEnv;
}

export class RegistryProfiles {
  private readonly byRegistry = new Map<string, RegistryProfile>();
  private readonly byHost = new Map<string, RegistryProfile>();

  constructor(private readonly inputs: ProfileInputs) {}

  /** The profile of a registry ("docker.io", "quay.io", "localhost:5000"), built on first use. */
  for(registry: string): RegistryProfile {
    const name = normaliseRegistry(registry);
    let profile = this.byRegistry.get(name);
    if (!profile) {
      profile = this.build(name);
      this.byRegistry.set(name, profile);
      this.byHost.set(profile.host, profile);
    }
    return profile;
  }

  /**
   * The profile whose API is served from `host`, if it is a registry this run knows or configures. Token
   * realms and storage hosts behind redirects have none.
   */
  forHost(host: string): RegistryProfile | undefined {
    return this.byHost.get(host) ?? (this.inputs.settings(host) ? this.for(host) : undefined);
  }

  /**
   * Transport settings for any host: a registry's from its profile; a host that is no registry of this
   * run (a token realm, storage behind a redirect) verified TLS, or plain HTTP on loopback as registries.
   */
  hostSettings(host: string): HostSettings {
    const p = this.forHost(host);
    if (p)
      return { tls: p.tls, concurrency: p.concurrency, maxConcurrency: p.maxConcurrency, rates: p.rates };
    const fixed = this.inputs.defaults?.concurrency;
    return {
      tls: isLoopbackHost(host) ? 'disabled' : 'verify',
      concurrency: fixed ?? DEFAULT_HOST_CONCURRENCY,
      maxConcurrency: fixed ?? DEFAULT_MAX_HOST_CONCURRENCY,
    };
  }

  /** Every profile built so far. */
  all(): RegistryProfile[] {
    return [...this.byRegistry.values()];
  }

  private vendorOf(host: string, settings: RegistrySettingsInput | undefined) {
    const { vendors } = this.inputs;
    if (settings?.type) {
      return {
        vendor: vendors.find((v) => v.kind === settings.type),
        kind: settings.type,
        from: 'config' as const,
      };
    }
    const matched = vendors.find((v) => v.matchesHost?.(host));
    if (matched) return { vendor: matched, kind: matched.kind, from: 'host' as const };
    return {
      vendor: vendors.find((v) => v.kind === 'distribution'),
      kind: 'distribution' as RegistryKind,
      from: 'default' as const,
    };
  }

  private build(registry: string): RegistryProfile {
    const host = apiHost(registry);
    const given = this.inputs.settings(registry);
    const settings: RegistrySettingsInput = given ?? { registry };
    const { vendor, kind, from } = this.vendorOf(host, given);
    const ctx: VendorContext = { registry, host, settings, env: this.inputs.env };

    const quirks: RegistryQuirks = { ...DISTRIBUTION_QUIRKS, ...vendor?.quirks };
    if (settings.mounts !== undefined) quirks.mounts = settings.mounts;

    const maxChunkSize = vendor?.upload?.maxChunkSize ?? DEFAULT_MAX_CHUNK_SIZE;
    const defaults = this.inputs.defaults ?? {};
    const chunkSize =
      settings.chunkSize ?? defaults.chunkSize ?? vendor?.upload?.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const minChunkSize = vendor?.upload?.minChunkSize ?? 0;
    const chosen = settings.chunkSize !== undefined || defaults.chunkSize !== undefined;
    const upload: UploadPolicy = {
      chunkSize,
      minChunkSize,
      maxChunkSize,
      // A blob that fits in one chunk goes in one PUT, unless the vendor limits request bodies further.
      monolithicMaxSize: Math.min(vendor?.upload?.monolithicMaxSize ?? chunkSize, maxChunkSize),
      // One streamed request per blob where nothing bounds a part: no vendor part sizes, no chunk size
      // the user asked for (a proxy in between may need it).
      streamed:
        vendor?.upload?.streamed ??
        (!chosen && minChunkSize === 0 && maxChunkSize === DEFAULT_MAX_CHUNK_SIZE),
    };

    const fixedConcurrency = settings.concurrency ?? defaults.concurrency ?? vendor?.concurrency;
    let credentials: CredentialProvider;
    const typed = this.inputs.givenCredentials?.(registry);
    if (typed) credentials = sourcesProvider([typed], host);
    else if (settings.anonymous) credentials = NO_CREDENTIALS;
    else {
      const providers: CredentialProvider[] = [];
      const configured = vendor?.configuredCredentials?.(ctx);
      if (configured) providers.push(configured);
      providers.push(sourcesProvider(this.inputs.credentialSources(registry), host));
      const platform = configured ? undefined : vendor?.platformCredentials?.(ctx);
      if (platform) providers.push(platform);
      credentials = firstOf(providers);
    }

    return {
      registry,
      host,
      kind,
      kindFrom: from,
      tls: settings.tls ?? (isLoopbackHost(host) ? 'disabled' : 'verify'),
      concurrency: fixedConcurrency ?? DEFAULT_HOST_CONCURRENCY,
      // A concurrency someone chose (config, --host-concurrency, the vendor) is the ceiling.
      maxConcurrency: fixedConcurrency ?? DEFAULT_MAX_HOST_CONCURRENCY,
      rates: { ...vendor?.rates },
      credentials,
      upload,
      quirks,
      repositories: vendor?.repositories?.(ctx),
      pullQuota: vendor?.pullQuota?.(ctx),
      hints: vendor?.hints ?? {},
      limits: mergeLimits(mergeLimits(DEFAULT_LIMITS, defaults.limits), settings.limits),
      referrers: 'unknown',
    };
  }
}
