// A registry profile: everything particular to one registry, built once per host from the config, the
// command line and the vendor's defaults, and asked by everyone (transport, auth, uploads, the copy
// engine, the commands). Vendors (src/cloud/<vendor>.ts) fill it through the VendorDefinition interface
// below; the generic registry client reads it and knows no vendor by name.

import type { RequestRates } from '../adaptive-limit.js';
import type { FoundCredential } from '../credentials/types.js';
import type { LimitsInput, RegistryLimits } from '../limits.js';
import type { QuotaAnswer } from '../rate-limit.js';
import type { StatusQuirks } from '../status.js';
import type { TlsMode } from '../tls.js';

export const REGISTRY_KINDS = [
  'distribution',
  'ecr',
  'ecr-public',
  'dockerhub',
  'quay',
  'ghcr',
  'harbor',
  'artifactory',
  'zot',
] as const;

export type RegistryKind = (typeof REGISTRY_KINDS)[number];

/** How blobs are uploaded to this registry. */
export interface UploadPolicy {
  /** Bytes per PATCH when nothing else is asked. */
  chunkSize: number;
  /** The smallest part the registry accepts for every part but the last (ECR: 5 MiB). */
  minChunkSize: number;
  /** The largest request body the registry accepts (GHCR: about 4 MiB). */
  maxChunkSize: number;
  /** Blobs up to this size go in one PUT (monolithic); larger ones in chunks. */
  monolithicMaxSize: number;
  /**
   * A larger blob goes in one streamed PATCH fed as the source delivers (as `docker push` does), not in
   * chunks. Off where parts have a size to keep (ECR ≥ 5 MiB, GHCR ≤ 4 MiB) and where the user chose a
   * chunk size; chunks also stay what an interrupted session resumes from.
   */
  streamed: boolean;
}

/** What a registry does differently from the distribution spec, as data the generic code consults. */
export interface RegistryQuirks extends StatusQuirks {
  /**
   * Cross-repository mounts work. ECR answers every mount with 202 (an upload session) unless the account
   * enabled blob mounting: asking costs a request and gains nothing.
   */
  mounts: boolean;
  /** Largest `n` the tag list accepts (ECR refuses more than 1000). */
  tagPageSize: number;
  /**
   * Tags can be made immutable on the server (ECR private): a moving tag is refused with TAG_INVALID, which
   * the client then reports as an immutable tag (or, for the digest already there, as success).
   */
  tagImmutability: boolean;
  /**
   * The registry does not create a repository on first push (ECR answers NAME_UNKNOWN): what to tell the
   * user when a write meets a missing repository.
   */
  missingRepositoryHint?: string;
}

/** Credentials that may expire and be fetched again (ECR tokens last 12 h). */
export interface CredentialProvider {
  /** The credential to use now; cached until it expires. Undefined: none (anonymous). */
  get(signal?: AbortSignal): Promise<FoundCredential | undefined>;
  /**
   * The registry refused the credential as expired or invalid: forget it, so the next get() fetches a
   * fresh one. Returns false when a fresh fetch cannot give anything new (a static password).
   */
  renew(): boolean;
  /** Whether renew() can bring a different credential (tokens from an API, credential helpers). */
  readonly renewable: boolean;
  /**
   * Why get() found nothing, when the provider can tell (no AWS credentials anywhere in the SDK's chain):
   * said to the user when a registry then refuses anonymous access.
   */
  missing?(): string | undefined;
}

/** A line for the person running regmirror, printed as it happens (a quota running out). */
export interface QuotaNotice {
  level: 'info' | 'warn';
  text: string;
}

/** What a run saw of a registry's pull quota: the `rateLimits` entries of the reports. */
export interface PullQuotaReport {
  registry: string;
  /** What the quota is called: "Docker Hub pull quota". */
  quota: string;
  limit?: number;
  remaining?: number;
  windowSeconds?: number;
  /** ISO time of the last answer that reported the quota. */
  observedAt?: string;
  /** ISO time the registry said the quota resets (ratelimit-reset, or a 429's Retry-After). */
  resetAt?: string;
  /** Answers 429 (quota exhausted) to manifest requests, retried ones included. */
  throttled: number;
  /** Manifest GETs that were held back to keep a reserve, and how long they waited in all. */
  pacedRequests: number;
  pacedMs: number;
}

/**
 * A quota on pulls (manifest GETs) that the registry reports in rate-limit headers (Docker Hub). The
 * generic client hands it every answer to a manifest HEAD or GET and asks it before each GET; what the
 * numbers mean and how the run slows down is the quota's business.
 */
export interface PullQuota {
  /**
   * Note an answer (429s the transport is about to retry included). Returns how long to wait before
   * retrying a 429 that names no Retry-After, when the quota knows its reset time.
   */
  observe(answer: QuotaAnswer): number | undefined;
  /** A 429 is about to be retried after `delayMs`: the notice to print, once per spell of 429s. */
  retrying(delayMs: number, reason: 'retry-after' | 'reset' | 'backoff'): QuotaNotice | undefined;
  /**
   * Before a manifest GET: how long to wait first (0 while the quota is comfortable); the time is
   * reserved, so concurrent GETs are spaced out. A wait longer than `maxWaitMs` is not reserved:
   * `exceeded` is set and the caller fails the GET with `exhausted()`.
   */
  beforeGet(maxWaitMs: number): { waitMs: number; exceeded?: boolean; notice?: QuotaNotice };
  /**
   * The quota is gone (a 429 that outlived the retries), or nearly (`waitMs`: the wait a GET would have
   * needed): what to say, naming the reset time when known.
   */
  exhausted(waitMs?: number): { message: string; hint: string };
  /** What was seen, for reports; undefined when the registry never reported the quota. */
  report(): PullQuotaReport | undefined;
}

/**
 * Creates repositories before the first push, on registries that need it (ECR, ECR Public), for the
 * repositories the config asks to create (createRepositories on the registry, or on a mirror for its
 * targets).
 */
export interface RepositoryManager {
  /** Whether this run creates `path` when it is missing. */
  manages(path: string): boolean;
  /** Whether the repository exists (plan, auth check). */
  exists(path: string, signal?: AbortSignal): Promise<boolean>;
  /** Make sure it exists: describe, then create with the configured settings. */
  ensure(path: string, signal?: AbortSignal): Promise<'exists' | 'created'>;
  /** What `path` would be created with, in words, for plan, auth check and the audit log. */
  describeSettings(path: string): string;
}

/** Settings of one registry as the user gave them (config `registries.<host>`, command-line flags). */
export interface RegistrySettingsInput {
  /** Normalised registry name: "docker.io", "quay.io", "localhost:5000". */
  registry: string;
  type?: RegistryKind;
  tls?: TlsMode;
  /** Requests in flight to this registry. */
  concurrency?: number;
  /** Upload chunk size chosen by the user (config, else --chunk-size). */
  chunkSize?: number;
  /** Mounts on or off, overriding the vendor's default (ECR accounts with blob mounting enabled). */
  mounts?: boolean;
  /** Never send credentials here. */
  anonymous?: boolean;
  /** Bounds on what this registry may send (config `registries.<host>.limits`). */
  limits?: LimitsInput;
  /** Vendor-specific settings (credentials { ecr: ... }, createRepositories), passed to the vendor as is. */
  vendor?: Record<string, unknown>;
}

/** What a vendor needs to build its part of a profile. */
export interface VendorContext {
  registry: string;
  host: string;
  settings: RegistrySettingsInput;
  env: NodeJS.ProcessEnv;
}

/** One vendor's knowledge: data plus small hooks. Lives in src/cloud/<vendor>.ts. */
export interface VendorDefinition {
  kind: RegistryKind;
  /** Recognises the vendor's well-known host names ("quay.io"); self-hosted ones need `type` in the config. */
  matchesHost?(host: string): boolean;
  upload?: Partial<UploadPolicy>;
  quirks?: Partial<RegistryQuirks>;
  /** Requests in flight by default (a fixed bound; without one, the bound adapts from 16 up to 64). */
  concurrency?: number;
  /** Requests per second the registry accepts for some kinds of request (API rate limits). */
  rates?: RequestRates;
  /**
   * Credentials the platform provides, asked after the configured sources and docker's config found
   * nothing (an ECR token from the AWS SDK's default chain, GITHUB_TOKEN for GHCR).
   */
  platformCredentials?(ctx: VendorContext): CredentialProvider | undefined;
  /**
   * Credentials a config names in the vendor's own form (`{ "ecr": { ... } }`): asked first. Undefined
   * when the settings name none of this vendor's forms.
   */
  configuredCredentials?(ctx: VendorContext): CredentialProvider | undefined;
  /** Repository creation, when the settings ask for it. */
  repositories?(ctx: VendorContext): RepositoryManager | undefined;
  /** A pull quota the registry reports in rate-limit headers (Docker Hub): tracked, paced, named. */
  pullQuota?(ctx: VendorContext): PullQuota | undefined;
  /** What to tell the user, in the vendor's terms, when an error needs it. */
  hints?: VendorHints;
}

/** Vendor-specific advice in error messages (the generic wording is used where a vendor gives none). */
export interface VendorHints {
  /** The registry refused an authenticated pull or push (403, or a token without the scope). */
  denied?: string;
  /** The registry wants credentials and none were found. */
  noCredentials?: string;
}

/** The referrers scheme a registry speaks, learned on first use and never probed again. */
export type ReferrersMode = 'unknown' | 'api' | 'tag-schema';

export interface RegistryProfile {
  /** Normalised registry name, as references name it: "docker.io". */
  readonly registry: string;
  /** The host the HTTP API is served from: "registry-1.docker.io". */
  readonly host: string;
  readonly kind: RegistryKind;
  /** Where the kind came from: the config's `type`, the host name, or the default. */
  readonly kindFrom: 'config' | 'host' | 'default';
  readonly tls: TlsMode;
  /**
   * Requests in flight to this host at the start; the bound adapts (adaptive-limit.ts): it grows up to
   * `maxConcurrency` while the registry answers well and halves on 429/503.
   */
  readonly concurrency: number;
  /** The most requests in flight: the configured concurrency, else DEFAULT_MAX_HOST_CONCURRENCY. */
  readonly maxConcurrency: number;
  /** Requests per second allowed for some kinds of request (ECR Public: manifest PUTs). */
  readonly rates: RequestRates;
  readonly credentials: CredentialProvider;
  readonly upload: UploadPolicy;
  readonly quirks: RegistryQuirks;
  /** Set when repositories must (and may) be created before a push. */
  readonly repositories: RepositoryManager | undefined;
  /** Set when the registry has a pull quota worth tracking (Docker Hub). */
  readonly pullQuota: PullQuota | undefined;
  readonly hints: VendorHints;
  /** Bounds on what this registry may send: tags, sizes, deadlines (registry/limits.ts). */
  readonly limits: RegistryLimits;
  /** Learned per registry at run time. */
  referrers: ReferrersMode;
}

/** Bytes per PATCH for an upload session: the policy's size, raised to what the registry asked for. */
export function chunkSizeFor(policy: UploadPolicy, registryMinimum = 0): number {
  const floor = Math.max(policy.minChunkSize, registryMinimum);
  return Math.min(Math.max(policy.chunkSize, floor), Math.max(policy.maxChunkSize, floor));
}
