// index.json of an OCI image layout: the descriptors of the images it holds, each named (or not) by an
// org.opencontainers.image.ref.name annotation. The file comes from outside (another tool, another
// machine, a hand edit): it is validated here, names included, before anything is looked up in it.

import { z } from 'zod';
import { LayoutError } from '../errors.js';
import { type Descriptor, descriptorSchema } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/media-types.js';
import { isValidRefName, REF_NAME_ANNOTATION } from '../reference/ref-name.js';
import { registryText } from '../sanitize.js';

/** index.json larger than this is refused (a layout of a whole estate stays far below it). */
export const INDEX_READ_LIMIT = 64 * 1024 * 1024;

const indexFileSchema = z.looseObject({
  schemaVersion: z.literal(2, { error: 'schemaVersion must be 2' }),
  mediaType: z.string().optional(),
  manifests: z.array(descriptorSchema),
});

export interface LayoutIndex {
  /** Top-level fields other than manifests (annotations, mediaType...), kept when the file is rewritten. */
  readonly extra: Record<string, unknown>;
  readonly manifests: readonly Descriptor[];
}

export const EMPTY_INDEX: LayoutIndex = { extra: { schemaVersion: 2, mediaType: OCI_INDEX }, manifests: [] };

/** Parse index.json; `where` names the file in errors ("/media/bundle/index.json", "bundle.tar:index.json"). */
export function parseIndexFile(bytes: Uint8Array, where: string): LayoutIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    // The parser quotes the file's text: not ours, so escaped.
    throw new LayoutError(`${where} is not valid JSON (${registryText((err as Error).message, 160)})`, {
      hint: 'the layout is damaged; copy it again from where it came from',
    });
  }
  const parsed = indexFileSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new LayoutError(
      `${where} is not an OCI image index (${registryText(`${at}${issue.message}`, 200)})`,
      {
        hint: 'the layout is damaged; copy it again from where it came from',
      },
    );
  }
  const { manifests, ...extra } = parsed.data;
  return { extra, manifests };
}

export function serializeIndex(index: LayoutIndex): Buffer {
  return Buffer.from(`${JSON.stringify({ ...index.extra, manifests: index.manifests })}\n`);
}

/** The descriptor's name, when it has one that regmirror can use (invalid names are never used). */
export function nameOf(desc: Descriptor): string | undefined {
  const name = desc.annotations?.[REF_NAME_ANNOTATION];
  return name !== undefined && isValidRefName(name) ? name : undefined;
}

/** Every usable name, in index order. */
export function refNames(index: LayoutIndex): string[] {
  return index.manifests.map(nameOf).filter((n): n is string => n !== undefined);
}

/**
 * The descriptor named `name`. Two descriptors with one name and different digests make the name
 * ambiguous: refused rather than guessed.
 */
export function findByName(index: LayoutIndex, name: string, where: string): Descriptor | undefined {
  const found = index.manifests.filter((d) => nameOf(d) === name);
  const digests = [...new Set(found.map((d) => d.digest))];
  if (digests.length > 1) {
    throw new LayoutError(
      `${where} names ${digests.length} different images "${name}" (${digests.join(', ')})`,
      {
        hint: 'keep one descriptor per name in index.json',
      },
    );
  }
  return found[0];
}

/**
 * The index with `desc` under `name`: any other descriptor of that name loses the name (skopeo does the
 * same), and the named descriptor is added last. Without a name, `desc` is added unless the index already
 * lists its digest.
 */
export function withImage(index: LayoutIndex, desc: Descriptor, name: string | undefined): LayoutIndex {
  const plain: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (name === undefined) {
    if (index.manifests.some((d) => d.digest === desc.digest)) return index;
    return { extra: index.extra, manifests: [...index.manifests, plain] };
  }
  const kept = index.manifests.filter((d) => nameOf(d) !== name);
  return {
    extra: index.extra,
    manifests: [...kept, { ...plain, annotations: { [REF_NAME_ANNOTATION]: name } }],
  };
}
