// Where a blob lives in a layout: blobs/<algorithm>/<hex>. Digests come from files nobody here wrote
// (index.json, manifests): only a digest that parses — a known algorithm and exactly its number of
// lower-case hex digits — becomes a path, so no digest can name anything outside blobs/.

import { LayoutError } from '../errors.js';
import { type Digest, parseDigest } from '../oci/digest.js';

/** "blobs/sha256/<hex>", relative to the layout root, with "/" separators (also a tar entry name). */
export function blobEntry(digest: Digest): string {
  const parsed = parseDigest(digest);
  if (!parsed) {
    throw new LayoutError(
      `"${digest}" is not a digest this layout can hold (sha256 or sha512, lower-case hex)`,
    );
  }
  return `blobs/${parsed.algorithm}/${parsed.hex}`;
}

/** The digest a tar entry or file name stands for, when it is a well-formed blob entry; else undefined. */
export function digestOfEntry(entry: string): Digest | undefined {
  const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(entry);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  return parseDigest(digest) ? digest : undefined;
}
