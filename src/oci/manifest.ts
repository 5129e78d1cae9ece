// Manifest and index parsing. Manifests are external JSON: validated here, at the boundary, by schemas
// that also give the types. The raw bytes are always kept alongside: regmirror pushes the exact source
// bytes so digests (and signatures over them) survive the copy.

import { z } from 'zod';
import { type Digest, digestOf, isDigest } from './digest.js';
import {
  DOCKER_MANIFEST_V1_SIGNED,
  isImageManifestType,
  isIndexType,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
import { type Platform, platformSchema } from './platform.js';

const digestSchema = z
  .string()
  .refine(isDigest, { message: 'not a valid digest (sha256:<64 hex> or sha512:<128 hex>)' });

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platformSchema.optional(),
  artifactType: z.string().optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

interface ManifestBase {
  /** The media type the registry stores it under (from the document or the Content-Type). */
  mediaType: string;
  digest: Digest;
  /** The exact bytes; pushed unchanged. */
  bytes: Uint8Array;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ImageManifest extends ManifestBase {
  kind: 'image';
  config: Descriptor;
  layers: Descriptor[];
}

export interface IndexManifest extends ManifestBase {
  kind: 'index';
  manifests: Descriptor[];
}

export type Manifest = ImageManifest | IndexManifest;

export class ManifestParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestParseError';
  }
}

function issuesText(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/**
 * Parse manifest bytes. `contentType` is the registry's Content-Type, used when the document carries no
 * mediaType of its own (allowed for OCI). The digest is computed from the bytes, with the algorithm the
 * manifest is known by (a child an index names by sha512 is its sha512 digest, not a sha256 one).
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType?: string,
  options: { algorithm?: 'sha256' | 'sha512' } = {},
): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new ManifestParseError(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ManifestParseError('manifest is not a JSON object');
  }
  const declared = (doc as { mediaType?: unknown }).mediaType;
  const hasManifests = Array.isArray((doc as { manifests?: unknown }).manifests);
  let mediaType = typeof declared === 'string' ? declared : contentType;
  if (mediaType === undefined || !(isIndexType(mediaType) || isImageManifestType(mediaType))) {
    // An OCI document may omit mediaType; its shape tells which it is.
    if (declared === undefined && (contentType === undefined || contentType === 'application/json')) {
      mediaType = hasManifests ? OCI_INDEX : OCI_MANIFEST;
    }
  }
  if (mediaType === DOCKER_MANIFEST_V1_SIGNED || (doc as { schemaVersion?: unknown }).schemaVersion === 1) {
    throw new ManifestParseError('Docker schema 1 manifests are not supported (deprecated since 2017)');
  }
  const digest = digestOf(bytes, options.algorithm ?? 'sha256');
  if (isIndexType(mediaType)) {
    const parsed = indexSchema.safeParse(doc);
    if (!parsed.success) throw new ManifestParseError(`invalid index: ${issuesText(parsed.error)}`);
    const m = parsed.data;
    return {
      kind: 'index',
      mediaType: mediaType!,
      digest,
      bytes,
      manifests: m.manifests,
      ...(m.subject ? { subject: m.subject } : {}),
      ...(m.artifactType ? { artifactType: m.artifactType } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    };
  }
  if (isImageManifestType(mediaType)) {
    const parsed = imageManifestSchema.safeParse(doc);
    if (!parsed.success) throw new ManifestParseError(`invalid image manifest: ${issuesText(parsed.error)}`);
    const m = parsed.data;
    return {
      kind: 'image',
      mediaType: mediaType!,
      digest,
      bytes,
      config: m.config,
      layers: m.layers,
      ...(m.subject ? { subject: m.subject } : {}),
      ...(m.artifactType ? { artifactType: m.artifactType } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    };
  }
  throw new ManifestParseError(`unsupported manifest media type "${mediaType ?? '(none)'}"`);
}

/** Blobs a manifest names directly (config and layers; none for an index). */
export function blobsOf(manifest: Manifest): Descriptor[] {
  return manifest.kind === 'image' ? [manifest.config, ...manifest.layers] : [];
}

/** Manifests an index names (none for an image manifest). */
export function childrenOf(manifest: Manifest): Descriptor[] {
  return manifest.kind === 'index' ? manifest.manifests : [];
}

/** The descriptor that points at this manifest. */
export function descriptorOf(manifest: Manifest): Descriptor {
  return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.byteLength };
}

/** A buildx attestation manifest inside an index (platform unknown/unknown, reference annotations). */
export function isAttestation(desc: Descriptor): boolean {
  return desc.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}

/**
 * A new index holding only the children whose platform matches, and the attestations that refer to them.
 * Its digest differs from the source's: callers must say so.
 */
export function filterIndex(
  index: IndexManifest,
  keep: (platform: Platform | undefined) => boolean,
): IndexManifest {
  const kept = index.manifests.filter((d) => !isAttestation(d) && keep(d.platform));
  const keptDigests = new Set(kept.map((d) => d.digest));
  const attestations = index.manifests.filter(
    (d) => isAttestation(d) && keptDigests.has(d.annotations?.['vnd.docker.reference.digest'] ?? ''),
  );
  const keepSet = new Set([...kept, ...attestations]);
  const doc = JSON.parse(Buffer.from(index.bytes).toString('utf8')) as { manifests: unknown[] };
  doc.manifests = index.manifests.filter((d) => keepSet.has(d));
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  return { ...index, manifests: doc.manifests as Descriptor[], bytes, digest: digestOf(bytes) };
}
