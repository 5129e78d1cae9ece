// The bundle file beside index.json (regmirror-bundle.json): which source reference each image in the
// layout came from, under which name, with which digest — what the receiving side reads to know what it
// got, and checks against. Written at the end of every run that put images into the layout, merged with
// what earlier runs recorded (an image up to date in this run keeps its entry).

import { z } from 'zod';
import type { ImageResult } from '../copy/result.js';
import { LayoutError } from '../errors.js';
import { parseReference, type Reference, refNameOf } from '../reference/reference.js';
import { registryText } from '../sanitize.js';
import { BUNDLE_FILE } from './layout.js';
import type { LayoutStore } from './layout-store.js';

const bundleReferrerSchema = z.strictObject({
  digest: z.string(),
  /** The manifest it refers to (the image or one of its children, or another referrer). */
  subject: z.string(),
  artifactType: z.string().optional(),
  /** The cosign tag it travels under (`sha256-<hex>.sig`), when it is one. */
  tag: z.string().optional(),
});

const bundleImageSchema = z.strictObject({
  /** The image's name in the layout (its ref.name): "quay.io/acme/app:1.4.2". */
  name: z.string(),
  /** Where it was copied from: "quay.io/acme/app:1.4.2". */
  source: z.string(),
  digest: z.string(),
  mediaType: z.string().optional(),
  /** Signatures, SBOMs, attestations that came with it (in the layout's fallback and cosign tags). */
  referrers: z.array(bundleReferrerSchema).optional(),
});

export const bundleFileSchema = z.strictObject({
  bundleVersion: z.literal(1),
  createdBy: z.string(),
  updatedAt: z.string(),
  images: z.array(bundleImageSchema),
});

export type BundleImage = z.infer<typeof bundleImageSchema>;
export type BundleReferrer = z.infer<typeof bundleReferrerSchema>;
export type BundleFile = z.infer<typeof bundleFileSchema>;

/** Record the images of these results that are now in a layout (copied or up to date). */
export async function recordBundle(
  layouts: LayoutStore,
  images: ImageResult[],
  createdBy: string,
): Promise<void> {
  const byLayout = new Map<string, { ref: Reference; entries: BundleImage[] }>();
  for (const image of images) {
    for (const t of image.targets) {
      if ((t.status !== 'copied' && t.status !== 'up-to-date') || t.digest === undefined) continue;
      if (!t.target.startsWith('oci')) continue;
      let ref: Reference;
      try {
        ref = parseReference(t.target, { defaultTag: null });
      } catch {
        continue;
      }
      const name = refNameOf(ref);
      if (!ref.layout || name === undefined) continue;
      let group = byLayout.get(ref.registry);
      if (!group) {
        group = { ref, entries: [] };
        byLayout.set(ref.registry, group);
      }
      group.entries.push({
        name,
        source: image.source,
        digest: t.digest,
        ...(image.mediaType !== undefined && image.filteredDigest === undefined
          ? { mediaType: image.mediaType }
          : {}),
      });
    }
  }
  for (const { ref, entries } of byLayout.values()) {
    const layout = layouts.layout(ref);
    const before = await readBundle(layouts, ref);
    const merged = new Map((before?.images ?? []).map((i) => [i.name, i]));
    let changed = before === undefined;
    for (const e of entries) {
      const old = merged.get(e.name);
      // A run that finds the image up to date reports no referrers: those recorded before still hold.
      const referrers = unionReferrers(old?.digest === e.digest ? old.referrers : [], e.referrers);
      const { referrers: _, ...rest } = e;
      const entry: BundleImage = { ...rest, ...(referrers.length > 0 ? { referrers } : {}) };
      if (JSON.stringify(old) !== JSON.stringify(entry)) changed = true;
      merged.set(e.name, entry);
    }
    if (!changed) continue;
    const file: BundleFile = {
      bundleVersion: 1,
      createdBy,
      updatedAt: new Date().toISOString(),
      images: [...merged.values()].sort((a, b) => a.name.localeCompare(b.name)),
    };
    await layout.writeExtra(BUNDLE_FILE, Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
  }
}

function unionReferrers(a: BundleReferrer[] = [], b: BundleReferrer[] = []): BundleReferrer[] {
  const byDigest = new Map(a.map((r) => [r.digest, r]));
  for (const r of b) byDigest.set(r.digest, r);
  return [...byDigest.values()].sort((x, y) => x.digest.localeCompare(y.digest));
}

/** The bundle file of a layout; undefined when it has none. */
export async function readBundle(layouts: LayoutStore, ref: Reference): Promise<BundleFile | undefined> {
  const layout = layouts.layout(ref);
  const bytes = await layout.readExtra(BUNDLE_FILE);
  if (bytes === undefined) return undefined;
  try {
    return bundleFileSchema.parse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    throw new LayoutError(
      `${layout.where}: ${BUNDLE_FILE} is not a regmirror bundle file (${registryText((err as Error).message, 200)})`,
    );
  }
}
