// The content the workloads copy, seeded into the source registry with the test harness's own client
// (independent of regmirror's code), straight to the registry so that seeding is not counted.

import {
  type Content,
  type ManifestNode,
  ociImage,
  pushManifestTree,
  RegistryClient,
  randomBlob,
  type SeedKind,
  seedImage,
  seedLargeBlobImage,
} from '../../test/harness/seed.js';
import type { Side } from './lab.js';

export const MiB = 1024 * 1024;

export interface CorpusRepo {
  repo: string;
  tags: string[];
}

/** What was seeded: repositories and tags, and every blob's size (to count the bytes the source served). */
export interface Corpus {
  repos: CorpusRepo[];
  blobSizes: Map<string, number>;
}

export function tagCount(c: Corpus): number {
  return c.repos.reduce((n, r) => n + r.tags.length, 0);
}

export function distinctBlobBytes(c: Corpus): number {
  let n = 0;
  for (const size of c.blobSizes.values()) n += size;
  return n;
}

export function mergeCorpora(...parts: Corpus[]): Corpus {
  const blobSizes = new Map<string, number>();
  for (const p of parts) for (const [d, s] of p.blobSizes) blobSizes.set(d, s);
  return { repos: parts.flatMap((p) => p.repos), blobSizes };
}

/** Run `fn` over `items` with at most `width` at once. */
export async function pool<T>(
  items: T[],
  width: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

function addBlobs(sizes: Map<string, number>, blobs: Iterable<Content>): void {
  for (const b of blobs) sizes.set(b.digest, b.size);
}

function collectBlobs(node: ManifestNode, into: Map<string, number>): void {
  addBlobs(into, node.blobs);
  for (const c of node.children) collectBlobs(c, into);
}

const SEED_WIDTH = 12;

/**
 * mixed: three multi-platform repositories of four tags each (OCI index with buildx attestations,
 * Docker manifest list, OCI index again; 1 MiB layer per platform), plus one image with a 256 MiB
 * layer under four tags (1, 1.2, 1.2.3, latest: one digest, as releases are usually tagged).
 */
export async function seedMixed(source: Side, bigLayer = 256 * MiB): Promise<Corpus> {
  const client = new RegistryClient(source.seedTarget);
  const blobSizes = new Map<string, number>();
  const kinds: Array<[string, SeedKind]> = [
    ['bench/multi-a', 'oci-index-with-attestations'],
    ['bench/multi-b', 'docker-manifest-list'],
    ['bench/multi-c', 'oci-index-with-attestations'],
  ];
  const tags = ['1.0.0', '1.0.1', '1.1.0', '2.0.0'];
  const jobs = kinds.flatMap(([repo, kind]) => tags.map((tag) => ({ repo, kind, tag })));
  await pool(jobs, SEED_WIDTH, async ({ repo, kind, tag }) => {
    const img = await seedImage(client, repo, tag, kind, { layerSize: MiB });
    addBlobs(blobSizes, img.blobs);
  });
  const big = await seedLargeBlobImage(client, 'bench/big', '1.2.3', bigLayer);
  const bigTags = ['1.2.3', '1.2', '1', 'latest'];
  for (const tag of bigTags.slice(1)) await client.pushManifest('bench/big', tag, big.manifest);
  blobSizes.set(big.layer.digest, big.layer.size);
  blobSizes.set(big.config.digest, big.config.size);
  return {
    repos: [...kinds.map(([repo]) => ({ repo, tags: [...tags] })), { repo: 'bench/big', tags: bigTags }],
    blobSizes,
  };
}

/**
 * many small: one repository, `count` single-platform tags; every image has a 1 MiB base layer shared
 * by all tags (as releases of one project share their base image), its own 16 KiB layer and config.
 */
export async function seedSmall(source: Side, count = 60): Promise<Corpus> {
  const client = new RegistryClient(source.seedTarget);
  const repo = 'bench/small';
  const base = randomBlob({ size: MiB, seed: 'bench/small/base' });
  const blobSizes = new Map<string, number>([[base.digest, base.size]]);
  await client.pushBlob(repo, base);
  const tags = Array.from({ length: count }, (_, i) => `v1.${Math.floor(i / 10)}.${i % 10}`);
  await pool(tags, SEED_WIDTH, async (tag) => {
    const img = await seedImage(client, repo, tag, 'oci-image', {
      sharedLayers: [base],
      layerSize: 16 * 1024,
    });
    addBlobs(blobSizes, img.blobs);
  });
  return { repos: [{ repo, tags }], blobSizes };
}

/** migration scale: one repository, `count` tags, each image a config and one 1 KiB layer of its own. */
export async function seedMigration(source: Side, count = 2000): Promise<Corpus> {
  const client = new RegistryClient(source.seedTarget);
  const repo = 'bench/migrate';
  const blobSizes = new Map<string, number>();
  const tags = Array.from({ length: count }, (_, i) => `r${String(i + 1).padStart(4, '0')}`);
  await pool(tags, SEED_WIDTH * 2, async (tag) => {
    const node = ociImage({ seed: `${repo}:${tag}`, layerCount: 1, layerSize: 1024 });
    await pushManifestTree(client, repo, node, tag);
    collectBlobs(node, blobSizes);
  });
  return { repos: [{ repo, tags }], blobSizes };
}

export interface HugeImage extends Corpus {
  layerDigest: string;
  layerSize: number;
  layerSeed: string;
}

/** One image with one layer of `size` bytes (incompressible, generated from a seed). */
export async function seedHuge(source: Side, size: number): Promise<HugeImage> {
  const client = new RegistryClient(source.seedTarget);
  const img = await seedLargeBlobImage(client, 'bench/huge', 'v1', size);
  return {
    repos: [{ repo: 'bench/huge', tags: ['v1'] }],
    blobSizes: new Map([
      [img.layer.digest, img.layer.size],
      [img.config.digest, img.config.size],
    ]),
    layerDigest: img.layer.digest,
    layerSize: img.layer.size,
    layerSeed: img.layer.seed,
  };
}
