// The source side of a copy: a manifest and everything below it, fetched once per image, ordered
// children before parents.

import { RegistryError, RegmirrorError } from '../errors.js';
import { MAX_GRAPH_MANIFESTS, MAX_INDEX_DEPTH } from '../oci/bounds.js';
import type { Digest } from '../oci/digest.js';
import { blobsOf, childrenOf, type Descriptor, filterIndex, type Manifest } from '../oci/manifest.js';
import { isIndexType } from '../oci/media-types.js';
import { formatPlatform, type Platform, platformMatches } from '../oci/platform.js';
import { type Reference, withDigest } from '../reference/reference.js';
import type { RegistryStore } from './store.js';

export interface ManifestGraph {
  root: Manifest;
  /** Every manifest by digest. */
  manifests: Map<Digest, Manifest>;
  /** Manifests in push order: every child before the index that names it; the root last. */
  order: Manifest[];
}

/** The index a platform filter makes of `root`: only those platforms and their attestations. */
export function filterRoot(root: Manifest, platforms: Platform[], ref: Reference): Manifest {
  if (root.kind !== 'index') return root;
  const filtered = filterIndex(root, (p) => platforms.some((want) => platformMatches(p, want)));
  if (filtered.manifests.length === 0) {
    throw new RegmirrorError(
      `none of the platforms ${platforms.map(formatPlatform).join(', ')} is in ${root.digest}`,
      {
        context: { registry: ref.registry, repository: ref.path, step: 'platform filter' },
      },
    );
  }
  return filtered;
}

/**
 * Fetch a manifest and, for an index, every child manifest below it (by digest, verified). `root`, when
 * given, is the top manifest already in hand (e.g. a platform-filtered index) and is not fetched again.
 */
export async function loadGraph(
  store: RegistryStore,
  ref: Reference,
  root?: Manifest,
): Promise<ManifestGraph> {
  const manifests = new Map<Digest, Manifest>();
  const order: Manifest[] = [];
  const loading = new Map<Digest, Promise<Manifest>>();

  const context = { registry: ref.registry, repository: ref.path, step: 'manifest graph' };
  const visit = async (at: Reference, depth: number, given?: Manifest): Promise<Manifest> => {
    // A hostile registry could nest indexes without end, or fan out to more manifests than any image has.
    if (depth > MAX_INDEX_DEPTH) {
      throw new RegistryError(
        `indexes nested deeper than ${MAX_INDEX_DEPTH} levels (at ${at.digest}); refused`,
        {
          context,
        },
      );
    }
    if (loading.size > MAX_GRAPH_MANIFESTS) {
      throw new RegistryError(`the image names more than ${MAX_GRAPH_MANIFESTS} manifests; refused`, {
        context,
      });
    }
    const m = given ?? (await store.manifestGet(at));
    manifests.set(m.digest, m);
    await Promise.all(
      childrenOf(m).map((child) => {
        let p = loading.get(child.digest);
        if (!p) {
          p = visit(withDigest(at, child.digest), depth + 1);
          loading.set(child.digest, p);
        }
        return p;
      }),
    );
    return m;
  };
  const rootManifest = await visit(ref, 0, root);

  // Post-order walk from the root gives children first, with each digest once.
  const placed = new Set<Digest>();
  const place = (m: Manifest): void => {
    if (placed.has(m.digest)) return;
    placed.add(m.digest);
    for (const child of childrenOf(m)) place(manifests.get(child.digest)!);
    order.push(m);
  };
  place(rootManifest);
  return { root: rootManifest, manifests, order };
}

/**
 * The digests of a manifest and of every manifest below it, reading as little as possible: the root (one
 * GET, unless given) and nested indexes; an image manifest's digest is in its parent's descriptor. What
 * an up-to-date target needs to compare referrers, without fetching every child.
 */
export async function manifestDigests(
  store: RegistryStore,
  ref: Reference,
  root?: Manifest,
): Promise<Digest[]> {
  const out: Digest[] = [];
  const seen = new Set<Digest>();
  const visit = async (m: Manifest, depth: number): Promise<void> => {
    if (depth > 8) throw new Error(`index nesting deeper than 8 levels at ${m.digest}`);
    const nested: Descriptor[] = [];
    for (const child of childrenOf(m)) {
      if (seen.has(child.digest)) continue;
      seen.add(child.digest);
      out.push(child.digest);
      if (isIndexType(child.mediaType)) nested.push(child);
    }
    for (const child of nested)
      await visit(await store.manifestGet(withDigest(ref, child.digest)), depth + 1);
  };
  const top = root ?? (await store.manifestGet(ref));
  seen.add(top.digest);
  out.push(top.digest);
  await visit(top, 1);
  return out;
}

/** Blobs below a set of manifests, each digest once. */
export function blobsBelow(manifests: Iterable<Manifest>): Map<Digest, Descriptor> {
  const out = new Map<Digest, Descriptor>();
  for (const m of manifests) for (const b of blobsOf(m)) if (!out.has(b.digest)) out.set(b.digest, b);
  return out;
}

/** Total bytes of a set of blobs. */
export function totalSize(blobs: Iterable<Descriptor>): number {
  let n = 0;
  for (const b of blobs) n += b.size;
  return n;
}
