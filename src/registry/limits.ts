// Bounds on everything a registry sends: how many tags and tag-list pages, how large a manifest or a
// blob may claim to be, how long each kind of request may take. A registry we do not control (a public
// source, a storage host behind a redirect) must not be able to exhaust memory or hang the run. Built
// per registry into its profile from the config (`defaults.limits`, `registries.<host>.limits`) over the
// defaults below; README "Security" lists them.

import { DOCKER_CONFIG, isManifestType, OCI_CONFIG, OCI_EMPTY } from '../oci/media-types.js';
import type { Deadline } from './transport.js';

/** The kinds of request, each with its own whole-request deadline. */
export type RequestKind = 'token' | 'manifest' | 'tags' | 'blob' | 'request';

export interface RegistryLimits {
  /** Tags in one repository's tag list, all pages together. */
  maxTags: number;
  /** Pages of one tag list. */
  maxTagPages: number;
  /** The largest manifest read, and the largest image config a descriptor may claim (JSON, small by nature). */
  maxManifestSize: number;
  /** The largest blob a descriptor may claim: refused before any byte is read. */
  maxBlobSize: number;
  /** Referrers of one manifest. */
  maxReferrers: number;
  /** Whole-request deadlines in milliseconds (headers and body), and the longest silence (`idle`). */
  timeouts: Record<RequestKind | 'idle', number>;
  /** Bytes per second a blob transfer must average: a blob may take timeouts.blob + size / minThroughput. */
  minThroughput: number;
}

/** What a config may set: any part of the limits. */
export type LimitsInput = Partial<Omit<RegistryLimits, 'timeouts'>> & {
  timeouts?: Partial<RegistryLimits['timeouts']>;
};

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const DEFAULT_LIMITS: Readonly<RegistryLimits> = Object.freeze({
  maxTags: 100_000,
  maxTagPages: 1_000,
  maxManifestSize: 16 * MiB,
  maxBlobSize: 100 * GiB,
  maxReferrers: 1_000,
  timeouts: Object.freeze({
    token: 30_000,
    manifest: 60_000,
    tags: 60_000,
    blob: 60_000,
    request: 60_000,
    idle: 60_000,
  }),
  minThroughput: 256 * KiB,
});

/** The body of one tag-list page (100,000 tags of 128 characters fit; a page is never larger). */
export const TAG_PAGE_BODY_LIMIT = 16 * MiB;
/** A token server's answer. */
export const TOKEN_BODY_LIMIT = 1 * MiB;
/** The largest OCI-Chunk-Min-Length honoured: chunks are buffered in memory, two per chunk size. */
export const MAX_CHUNK_MINIMUM = 64 * MiB;

/** `base` with the parts `input` sets. */
export function mergeLimits(base: RegistryLimits, input: LimitsInput | undefined): RegistryLimits {
  if (!input) return base;
  const { timeouts, ...rest } = input;
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    ...base,
    ...defined(rest),
    timeouts: { ...base.timeouts, ...defined(timeouts ?? {}) },
  };
}

/** The config key that sets a request kind's deadline, for messages. */
export function timeoutSetting(kind: RequestKind): string {
  return `limits.timeouts.${kind}`;
}

/** The deadline of one request of `kind`; `bytes` (a blob or a chunk) adds bytes / minThroughput. */
export function deadlineFor(limits: RegistryLimits, kind: RequestKind, what: string, bytes = 0): Deadline {
  const ms = limits.timeouts[kind] + (bytes > 0 ? (bytes / limits.minThroughput) * 1000 : 0);
  return {
    ms: Math.round(ms),
    what,
    setting: bytes > 0 ? `${timeoutSetting(kind)} or limits.minThroughput` : timeoutSetting(kind),
  };
}

/** Config blobs whose JSON is small by nature: a descriptor claiming more than maxManifestSize is absurd. */
const CONFIG_TYPES = new Set([OCI_CONFIG, DOCKER_CONFIG, OCI_EMPTY]);

/**
 * Why a descriptor's claimed size is refused, or undefined. Checked where descriptors enter (a manifest
 * read from a registry), before a byte of the blob is read: a config or manifest claiming gigabytes, or
 * any blob above the ceiling, would otherwise be streamed for as long as the registry sends.
 */
export function descriptorProblem(
  desc: { mediaType: string; size: number },
  limits: RegistryLimits,
): string | undefined {
  const small = isManifestType(desc.mediaType) || CONFIG_TYPES.has(desc.mediaType);
  if (small && desc.size > limits.maxManifestSize) {
    return `claims ${desc.size} bytes, more than limits.maxManifestSize (${limits.maxManifestSize}) allows for a ${isManifestType(desc.mediaType) ? 'manifest' : 'config'}`;
  }
  if (desc.size > limits.maxBlobSize) {
    return `claims ${desc.size} bytes, more than limits.maxBlobSize (${limits.maxBlobSize})`;
  }
  return undefined;
}
