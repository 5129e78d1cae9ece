import { createHash } from 'node:crypto';
import { deterministicChunks } from './deterministic-bytes.js';
import {
  type Content,
  descriptorOf,
  dockerManifestList,
  type ManifestNode,
  MediaType,
  makeContent,
  ociImage,
  ociIndexWithAttestations,
} from './oci-builders.js';
import { RegistryClient, type SeedTarget } from './raw-client.js';

/**
 * Seeding test content into registries, independently of regmirror's code (a test oracle).
 * The builders and the raw client are re-exported so tests need one import.
 */

export * from './oci-builders.js';
export * from './raw-client.js';

export type SeedKind = 'oci-index-with-attestations' | 'docker-manifest-list' | 'oci-image';

export interface SeedOptions {
  /** Content seed; default `${repo}:${tag}:${kind}` so every test run pushes the same bytes. */
  seed?: string;
  /** Layers to put into every image too, e.g. those of another seeded image. */
  sharedLayers?: Content[];
  layerSize?: number;
}

export interface SeededImage {
  repo: string;
  tag: string;
  /** The top manifest: index, manifest list or image manifest. */
  root: ManifestNode;
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** Direct children of an index / list, in index order (images, then attestations); [] for an image. */
  children: ManifestNode[];
  /** Every manifest pushed, in push order (children before parents). */
  manifests: ManifestNode[];
  /** Every distinct blob pushed. */
  blobs: Content[];
}

function clientFor(registry: SeedTarget | RegistryClient): RegistryClient {
  return registry instanceof RegistryClient ? registry : new RegistryClient(registry);
}

/**
 * Pushes a manifest tree children-before-parents: blobs, then child manifests (by digest), then the
 * manifest itself, by `tag` if given, else by digest. Returns the manifests in push order.
 */
export async function pushManifestTree(
  registry: SeedTarget | RegistryClient,
  repo: string,
  node: ManifestNode,
  tag?: string,
): Promise<ManifestNode[]> {
  const client = clientFor(registry);
  const pushed: ManifestNode[] = [];
  for (const blob of node.blobs) await client.pushBlob(repo, blob);
  for (const child of node.children) pushed.push(...(await pushManifestTree(client, repo, child)));
  await client.pushManifest(repo, tag ?? node.digest, node);
  pushed.push(node);
  return pushed;
}

function build(kind: SeedKind, opts: SeedOptions & { seed: string }): ManifestNode {
  const shared = {
    seed: opts.seed,
    ...(opts.sharedLayers && { sharedLayers: opts.sharedLayers }),
    ...(opts.layerSize !== undefined && { layerSize: opts.layerSize }),
  };
  switch (kind) {
    case 'oci-index-with-attestations':
      return ociIndexWithAttestations(shared);
    case 'docker-manifest-list':
      return dockerManifestList(shared);
    case 'oci-image':
      return ociImage({
        seed: opts.seed,
        ...(opts.sharedLayers && { layers: opts.sharedLayers, layerCount: 1 }),
        ...(opts.layerSize !== undefined && { layerSize: opts.layerSize }),
      });
  }
}

function distinctBlobs(manifests: ManifestNode[]): Content[] {
  const byDigest = new Map<string, Content>();
  for (const m of manifests) for (const b of m.blobs) byDigest.set(b.digest, b);
  return [...byDigest.values()];
}

export async function seedImage(
  registry: SeedTarget | RegistryClient,
  repo: string,
  tag: string,
  kind: SeedKind,
  opts: SeedOptions = {},
): Promise<SeededImage> {
  const root = build(kind, { ...opts, seed: opts.seed ?? `${repo}:${tag}:${kind}` });
  const manifests = await pushManifestTree(registry, repo, root, tag);
  return {
    repo,
    tag,
    root,
    digest: root.digest,
    mediaType: root.mediaType,
    bytes: root.bytes,
    children: root.children,
    manifests,
    blobs: distinctBlobs(manifests),
  };
}

export interface LargeBlobImage {
  repo: string;
  tag: string;
  digest: string;
  manifest: Content;
  config: Content;
  layer: { mediaType: string; digest: string; size: number; seed: string };
}

const LARGE_CHUNK = 8 * 1024 * 1024;

/**
 * An OCI image with one large layer (the 256 MiB benchmark), generated from a seed and pushed in
 * chunked PATCHes: a first pass computes the digest, a second streams the same bytes, so the layer
 * is never in memory whole.
 */
export async function seedLargeBlobImage(
  registry: SeedTarget | RegistryClient,
  repo: string,
  tag: string,
  sizeBytes: number,
  seed = `${repo}:${tag}:large`,
): Promise<LargeBlobImage> {
  const client = clientFor(registry);
  const hash = createHash('sha256');
  for (const chunk of deterministicChunks(sizeBytes, seed, LARGE_CHUNK)) hash.update(chunk);
  const layer = {
    mediaType: MediaType.ociLayer,
    digest: `sha256:${hash.digest('hex')}`,
    size: sizeBytes,
    seed,
  };
  await client.pushBlobChunked(repo, layer.digest, () => deterministicChunks(sizeBytes, seed, LARGE_CHUNK));

  const config = makeContent(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
    MediaType.ociConfig,
  );
  await client.pushBlob(repo, config);
  const manifest = makeContent(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(config),
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
      }),
    ),
    MediaType.ociManifest,
  );
  await client.pushManifest(repo, tag, manifest);
  return { repo, tag, digest: manifest.digest, manifest, config, layer };
}
