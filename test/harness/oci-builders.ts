import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { deterministicBytes } from './deterministic-bytes.js';

/**
 * Builders for test content with exact bytes and digests. Written independently of src/oci (this is
 * the test oracle). Manifests are serialised with an unusual 3-space indent on purpose: a client that
 * re-serialises JSON instead of copying bytes changes the digest, and the tests notice.
 */

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  inToto: 'application/vnd.in-toto+json',
} as const;

/** Every manifest media type, as a client's Accept header should list them. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');

/** Fixed so that builders are reproducible. */
const CREATED = '2024-01-01T00:00:00Z';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
  data?: string;
}

/** Exact bytes plus what identifies them. */
export interface Content {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

/** A manifest and everything below it, in the shape needed to push children before parents. */
export interface ManifestNode extends Content {
  /** How a parent index refers to this manifest (with platform and annotations). */
  descriptor: Descriptor;
  /** Config and layers referenced directly by this manifest. */
  blobs: Content[];
  /** Child manifests of an index / manifest list, in index order. */
  children: ManifestNode[];
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function makeContent(bytes: Buffer, mediaType: string): Content {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, bytes };
}

export function descriptorOf(
  content: Content,
  extra: Omit<Descriptor, 'mediaType' | 'digest' | 'size'> = {},
): Descriptor {
  return { mediaType: content.mediaType, digest: content.digest, size: content.size, ...extra };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 3));
}

export interface RandomBlobOptions {
  size?: number;
  /** Same seed, same bytes; omit for truly random content. */
  seed?: string;
  mediaType?: string;
}

export function randomBlob(opts: RandomBlobOptions = {}): Content {
  return makeContent(deterministicBytes(opts.size ?? 2048, opts.seed), opts.mediaType ?? MediaType.ociLayer);
}

function manifestNode(
  bytes: Buffer,
  mediaType: string,
  blobs: Content[],
  children: ManifestNode[],
  descriptorExtra: Omit<Descriptor, 'mediaType' | 'digest' | 'size'> = {},
): ManifestNode {
  const content = makeContent(bytes, mediaType);
  return { ...content, descriptor: descriptorOf(content, descriptorExtra), blobs, children };
}

export interface ImageOptions {
  seed: string;
  platform?: Platform;
  /** Existing layers to reuse (shared between images); own layers are added after them. */
  layers?: Content[];
  /** How many own layers to generate. Default 2 (0 when `layers` is given). */
  layerCount?: number;
  layerSize?: number;
  annotations?: Record<string, string>;
}

/**
 * An OCI image manifest with a config and layers. Layers use the uncompressed tar media type, so
 * the config's diff_ids (= layer digests) are consistent.
 */
export function ociImage(opts: ImageOptions): ManifestNode {
  const platform = opts.platform ?? { architecture: 'amd64', os: 'linux' };
  const own = opts.layerCount ?? (opts.layers ? 0 : 2);
  const layers = [
    ...(opts.layers ?? []),
    ...Array.from({ length: own }, (_, i) =>
      randomBlob({
        size: opts.layerSize ?? 2048 + i * 512,
        seed: `${opts.seed}/layer/${i}`,
        mediaType: MediaType.ociLayer,
      }),
    ),
  ];
  const config = makeContent(
    json({
      created: CREATED,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined && { variant: platform.variant }),
      config: { Env: ['PATH=/usr/bin:/bin'], Labels: { 'org.regmirror.test.seed': opts.seed } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
    MediaType.ociConfig,
  );
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: descriptorOf(config),
    layers: layers.map((l) => descriptorOf(l)),
    ...(opts.annotations && { annotations: opts.annotations }),
  });
  return manifestNode(bytes, MediaType.ociManifest, [config, ...layers], [], { platform });
}

/**
 * A buildx-style attestation manifest for `subject`: an OCI image manifest whose single layer is an
 * in-toto statement; the index refers to it with platform unknown/unknown and the
 * `vnd.docker.reference.*` annotations pointing at the image it describes.
 */
export function attestationManifest(subject: Content, seed: string): ManifestNode {
  const statement = makeContent(
    json({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://spdx.dev/Document',
      subject: [{ name: `pkg:docker/regmirror-test@${seed}`, digest: { sha256: subject.digest.slice(7) } }],
      predicate: { spdxVersion: 'SPDX-2.3', name: seed, packages: [] },
    }),
    MediaType.inToto,
  );
  const config = makeContent(
    json({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [statement.digest] },
    }),
    MediaType.ociConfig,
  );
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: descriptorOf(config),
    layers: [
      descriptorOf(statement, { annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }),
    ],
  });
  return manifestNode(bytes, MediaType.ociManifest, [config, statement], [], {
    platform: { architecture: 'unknown', os: 'unknown' },
    annotations: {
      'vnd.docker.reference.digest': subject.digest,
      'vnd.docker.reference.type': 'attestation-manifest',
    },
  });
}

export interface MultiPlatformOptions {
  seed: string;
  /** Layers every platform image starts with (e.g. to share them with another image). */
  sharedLayers?: Content[];
  layerSize?: number;
}

const PLATFORMS: Platform[] = [
  { architecture: 'amd64', os: 'linux' },
  { architecture: 'arm64', os: 'linux', variant: 'v8' },
];

/** What `docker buildx build --platform linux/amd64,linux/arm64 --push` produces with provenance. */
export function ociIndexWithAttestations(opts: MultiPlatformOptions): ManifestNode {
  const images = PLATFORMS.map((platform) =>
    ociImage({
      seed: `${opts.seed}/${platform.architecture}`,
      platform,
      ...(opts.sharedLayers && { layers: opts.sharedLayers }),
      layerCount: 1,
      ...(opts.layerSize !== undefined && { layerSize: opts.layerSize }),
    }),
  );
  const attestations = images.map((image) =>
    attestationManifest(image, `${opts.seed}/${image.descriptor.platform?.architecture}/attestation`),
  );
  const children = [...images, ...attestations];
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: children.map((c) => c.descriptor),
  });
  return manifestNode(bytes, MediaType.ociIndex, [], children);
}

/** A Docker schema2 image; layers are gzip-compressed (diff_ids are of the uncompressed bytes). */
export function dockerImage(opts: ImageOptions): ManifestNode {
  const platform = opts.platform ?? { architecture: 'amd64', os: 'linux' };
  const own = opts.layerCount ?? (opts.layers ? 0 : 2);
  const raw = Array.from({ length: own }, (_, i) =>
    deterministicBytes(opts.layerSize ?? 2048 + i * 512, `${opts.seed}/layer/${i}`),
  );
  const ownLayers = raw.map((bytes) => makeContent(gzipSync(bytes), MediaType.dockerLayer));
  const layers = [...(opts.layers ?? []), ...ownLayers];
  const config = makeContent(
    json({
      created: CREATED,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined && { variant: platform.variant }),
      config: { Env: ['PATH=/usr/bin:/bin'], Labels: { 'org.regmirror.test.seed': opts.seed } },
      rootfs: {
        type: 'layers',
        // Shared layers' uncompressed digests are unknown here; registries do not check diff_ids.
        diff_ids: [...(opts.layers ?? []).map((l) => l.digest), ...raw.map((b) => sha256Digest(b))],
      },
    }),
    MediaType.dockerConfig,
  );
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: descriptorOf(config),
    layers: layers.map((l) => descriptorOf(l)),
  });
  return manifestNode(bytes, MediaType.dockerManifest, [config, ...layers], [], { platform });
}

/** A Docker manifest list of linux/amd64 and linux/arm64 schema2 images (older `docker buildx`). */
export function dockerManifestList(opts: MultiPlatformOptions): ManifestNode {
  const children = PLATFORMS.map((platform) =>
    dockerImage({
      seed: `${opts.seed}/${platform.architecture}`,
      platform,
      ...(opts.sharedLayers && { layers: opts.sharedLayers }),
      layerCount: 1,
      ...(opts.layerSize !== undefined && { layerSize: opts.layerSize }),
    }),
  );
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifestList,
    manifests: children.map((c) => c.descriptor),
  });
  return manifestNode(bytes, MediaType.dockerManifestList, [], children);
}

export interface ArtifactOptions {
  seed: string;
  subject: Descriptor;
  artifactType?: string;
  payloadMediaType?: string;
  annotations?: Record<string, string>;
}

/** The OCI empty descriptor's blob, `{}`, as OCI 1.1 artifacts use it for their config. */
export const EMPTY_CONFIG = makeContent(Buffer.from('{}'), MediaType.ociEmpty);

/**
 * An OCI 1.1 artifact (signature, SBOM, ...): an image manifest with `artifactType`, the empty
 * config and a `subject`. (The short-lived `application/vnd.oci.artifact.manifest.v1+json` type was
 * dropped from OCI 1.1 final; this is the form cosign, oras and notation push.)
 */
export function ociArtifact(opts: ArtifactOptions): ManifestNode {
  const artifactType = opts.artifactType ?? 'application/vnd.example.sbom.v1+json';
  const payload = makeContent(
    json({ seed: opts.seed, describes: opts.subject.digest }),
    opts.payloadMediaType ?? 'application/vnd.example.sbom.payload.v1+json',
  );
  const annotations = { 'org.opencontainers.image.created': CREATED, ...opts.annotations };
  const bytes = json({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType,
    config: descriptorOf(EMPTY_CONFIG, { data: EMPTY_CONFIG.bytes.toString('base64') }),
    layers: [descriptorOf(payload)],
    subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size },
    annotations,
  });
  return manifestNode(bytes, MediaType.ociManifest, [EMPTY_CONFIG, payload], [], {
    artifactType,
    annotations,
  });
}
