// Referrers (distribution-spec 1.1): the manifests that point at another one through their `subject`
// (signatures, SBOMs, attestations), as the referrers API lists them or, on a registry without that API,
// as an image index pushed under the fallback tag `sha256-<hex>`; and cosign's own tag scheme
// (`sha256-<hex>.sig`, `.att`, `.sbom`). Pure: names, descriptors, merging and filtering, no I/O.

import { type Digest, parseDigest, referrersTagFor } from './digest.js';
import { type Descriptor, type Manifest, ManifestParseError } from './manifest.js';
import { isManifestType, OCI_INDEX } from './media-types.js';

export { referrersTagFor };

/**
 * What a registry answered about the referrers of a manifest. `api: true`: it has the referrers API and
 * these are the referrers (`filtered`: the registry applied the artifactType filter asked for). `api: false`:
 * it has no such API; referrers are in the index under the fallback tag (sha256-<hex>), if anywhere.
 * `api: undefined`: it could not tell (the repository does not exist yet, so nothing refers to anything).
 */
export type ReferrersAnswer =
  | { api: true; descriptors: Descriptor[]; filtered: boolean }
  | { api: false }
  | { api: undefined };

export const COSIGN_SUFFIXES = ['sig', 'att', 'sbom'] as const;
export type CosignSuffix = (typeof COSIGN_SUFFIXES)[number];

const COSIGN_TAG = /^(sha256|sha512)-([a-f0-9]{64}|[a-f0-9]{128})\.(sig|att|sbom)$/;
const FALLBACK_TAG = /^(sha256|sha512)-[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * cosign's tag for a signature (`sig`), attestation (`att`) or SBOM (`sbom`) of `digest`:
 * "sha256-<hex>.sig". Undefined where the name would not be a valid tag (a sha512 digest is too long:
 * cosign does not sign those by tag either).
 */
export function cosignTag(digest: Digest, suffix: CosignSuffix): string | undefined {
  const p = parseDigest(digest);
  if (!p) return undefined;
  const tag = `${p.algorithm}-${p.hex}.${suffix}`;
  return TAG.test(tag) ? tag : undefined;
}

/** The subject digest and kind of a cosign tag; undefined for any other tag. */
export function parseCosignTag(tag: string): { digest: Digest; suffix: CosignSuffix } | undefined {
  const m = COSIGN_TAG.exec(tag);
  if (!m || !TAG.test(tag)) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  if (!parseDigest(digest)) return undefined;
  return { digest, suffix: m[3] as CosignSuffix };
}

/** Whether a tag is a fallback referrers tag ("sha256-<64 hex>"). */
export function isFallbackTag(tag: string): boolean {
  return FALLBACK_TAG.test(tag);
}

/**
 * Tags that belong to another manifest rather than name an image: fallback referrers indexes and cosign
 * tags. With referrers on they travel with their subjects, so tag selection leaves them out.
 */
export function isReferrerTag(tag: string): boolean {
  return isFallbackTag(tag) || parseCosignTag(tag) !== undefined;
}

/**
 * The descriptor a referrers list holds for a manifest, as the spec says: its `artifactType`, else (for
 * an image manifest) its config's media type; and every annotation of the manifest.
 */
export function referrerDescriptor(m: Manifest): Descriptor {
  const artifactType = m.artifactType || (m.kind === 'image' ? m.config.mediaType : undefined);
  return {
    mediaType: m.mediaType,
    digest: m.digest,
    size: m.bytes.byteLength,
    ...(artifactType ? { artifactType } : {}),
    ...(m.annotations && Object.keys(m.annotations).length > 0 ? { annotations: m.annotations } : {}),
  };
}

/**
 * The descriptors a referrers index lists (a fallback tag's content, or one page of the API). Throws
 * ManifestParseError when the manifest is not an image index: a fallback tag holding something else is
 * not ours to merge into.
 */
export function referrersOf(index: Manifest): Descriptor[] {
  if (index.kind !== 'index') {
    throw new ManifestParseError(`a referrers list must be an image index, this is ${index.mediaType}`);
  }
  return index.manifests;
}

/** Referrers regmirror can copy: manifests and indexes it can walk (not, e.g., the withdrawn artifact manifest). */
export function isCopyableReferrer(desc: Descriptor): boolean {
  return isManifestType(desc.mediaType);
}

/** The bytes of a referrers index listing `descriptors` (as given: artifactType and annotations kept). */
export function buildReferrersIndex(descriptors: readonly Descriptor[]): Uint8Array {
  const doc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors };
  return new TextEncoder().encode(JSON.stringify(doc));
}

/**
 * `existing` with every descriptor of `wanted` it lacks appended, each digest once (the first entry for
 * a digest wins, keeping what another writer put there). `added` is what was not there before.
 */
export function mergeReferrers(
  existing: readonly Descriptor[],
  wanted: readonly Descriptor[],
): { merged: Descriptor[]; added: Descriptor[] } {
  const seen = new Set<Digest>();
  const merged: Descriptor[] = [];
  for (const d of existing) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    merged.push(d);
  }
  const added: Descriptor[] = [];
  for (const d of wanted) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    merged.push(d);
    added.push(d);
  }
  return { merged, added };
}

/** Which referrers to copy, by artifactType. Patterns are exact media types; `*` matches any run of characters. */
export interface ReferrerFilter {
  /** Only these artifact types (absent: every type). */
  artifactTypes?: readonly string[];
  /** Never these. */
  exclude?: readonly string[];
}

const PATTERN_CHARS = /^[A-Za-z0-9*][A-Za-z0-9!#$&^_.+*-]*\/[A-Za-z0-9*][A-Za-z0-9!#$&^_.+*-]*$/;

const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;

/**
 * An artifact type as it may be shown or logged: a registry sends any string, so anything that is not a
 * plain media type has its control characters escaped and its length bounded.
 */
export function printableArtifactType(type: string): string {
  if (type.length <= 255 && MEDIA_TYPE.test(type)) return type;
  return JSON.stringify(type.slice(0, 255)).slice(1, -1);
}

/** Whether `pattern` is a media type, or one with `*` wildcards ("application/vnd.in-toto*", "*\/*"). */
export function isArtifactTypePattern(pattern: string): boolean {
  return pattern === '*' || PATTERN_CHARS.test(pattern);
}

export function artifactTypeMatches(pattern: string, artifactType: string): boolean {
  if (!pattern.includes('*')) return pattern === artifactType;
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return re.test(artifactType);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Whether the filter keeps a referrer. One without an artifactType passes only a filter with no `artifactTypes`. */
export function keepsReferrer(filter: ReferrerFilter, desc: Descriptor): boolean {
  const type = desc.artifactType ?? '';
  if (
    filter.artifactTypes &&
    !filter.artifactTypes.some((p) => type !== '' && artifactTypeMatches(p, type))
  ) {
    return false;
  }
  return !(filter.exclude ?? []).some((p) => type !== '' && artifactTypeMatches(p, type));
}

/**
 * The `artifactType` query a referrers request can carry for this filter: only one exact type can be
 * asked of the registry; anything else is filtered here, after the answer.
 */
export function serverFilterFor(filter: ReferrerFilter): string | undefined {
  const types = filter.artifactTypes;
  if (types?.length !== 1 || types[0]!.includes('*')) return undefined;
  return types[0];
}
