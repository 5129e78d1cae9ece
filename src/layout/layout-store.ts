// The copy engine's store interface (copy/store.ts) over OCI layouts and archives, so that a layout is a
// source or a target like any registry: fan-out, verification and reports do not know the difference.
// A repository here is a layout plus a name prefix (reference.ts): tags are the image names under it.

import { Readable } from 'node:stream';
import type { ManifestInfo, RegistryStore, UploadSink } from '../copy/store.js';
import { DigestMismatchError, LayoutError, NotFoundError, RegmirrorError } from '../errors.js';
import { algorithmOf, type Digest, Digester, digestOf, isDigest } from '../oci/digest.js';
import { type Manifest, ManifestParseError, parseManifest } from '../oci/manifest.js';
import { joinRefName, splitRefName } from '../reference/ref-name.js';
import {
  describeSelector,
  formatRepository,
  isValidTag,
  type LayoutLocation,
  layoutKey,
  type Reference,
  type Repository,
  refNameOf,
} from '../reference/reference.js';
import { ArchiveWriter } from './archive-writer.js';
import { findByName, nameOf, refNames } from './index-file.js';
import type { LayoutWriter, ReadTrace } from './layout.js';
import { LayoutDirectory } from './layout-directory.js';

/** Manifests larger than this are not read (the same bound the registry client keeps). */
const MANIFEST_READ_LIMIT = 16 * 1024 * 1024;
const CORRUPT_HINT =
  'the file changed after it was written: the layout is corrupt; nothing that refers to it was pushed — copy the layout again from where it came from';

function location(repo: Repository): LayoutLocation {
  if (!repo.layout) throw new Error(`internal: ${formatRepository(repo)} is not a layout`);
  return repo.layout;
}

/** Give an error the layout it concerns, unless it says already. */
function inLayout<T>(err: T, repo: Repository, step: string, side?: 'source' | 'target'): T {
  if (err instanceof RegmirrorError) {
    err.context.registry ??= repo.registry;
    err.context.step ??= step;
    if (side !== undefined) err.context.side ??= side;
  }
  return err;
}

export interface LayoutStoreOptions {
  /** Told about every blob file opened for reading. */
  onRead?: ReadTrace;
}

export class LayoutStore implements RegistryStore {
  private readonly layouts = new Map<string, LayoutWriter>();

  constructor(private readonly options: LayoutStoreOptions = {}) {}

  /** The layout behind a repository, one object per layout for the whole run. */
  layout(repo: Repository): LayoutWriter {
    const loc = location(repo);
    const key = layoutKey(loc);
    let layout = this.layouts.get(key);
    if (!layout) {
      layout =
        loc.kind === 'oci'
          ? new LayoutDirectory(loc.path, this.options.onRead)
          : new ArchiveWriter(loc.path, this.options.onRead);
      this.layouts.set(key, layout);
    }
    return layout;
  }

  /** Before any work: a source layout must exist and be readable (else a LayoutError that says why). */
  async checkSource(repo: Repository): Promise<void> {
    await this.layout(repo)
      .checkReadable()
      .catch((err) => {
        throw inLayout(err, repo, 'open', 'source');
      });
  }

  /** Before any work: a target layout must be new, empty, or a layout (nothing is written yet). */
  async checkTarget(repo: Repository): Promise<void> {
    await this.layout(repo)
      .checkWritable()
      .catch((err) => {
        throw inLayout(err, repo, 'open', 'target');
      });
  }

  /** Every usable image name in the layout (`regmirror tags oci:PATH`). */
  async names(repo: Repository): Promise<string[]> {
    return refNames(await this.layout(repo).index());
  }

  async tagList(repo: Repository): Promise<string[]> {
    const names = await this.names(repo);
    const tags: string[] = [];
    for (const name of names) {
      const { prefix, tag } = splitRefName(name);
      // Names that are no registry tag ("acme/app") stay out of a mirror's selection.
      if (prefix === repo.path && isValidTag(tag) && !tags.includes(tag)) tags.push(tag);
    }
    return tags;
  }

  async manifestHead(ref: Reference): Promise<ManifestInfo | undefined> {
    const layout = this.layout(ref);
    if (ref.digest !== undefined) {
      const listed = (await layout.index()).manifests.find((d) => d.digest === ref.digest);
      if (listed && (await layout.blobSize(ref.digest)) !== undefined) {
        return { digest: listed.digest, mediaType: listed.mediaType, size: listed.size };
      }
      // A child manifest is a blob like any other: its media type is in its bytes.
      const size = await layout.blobSize(ref.digest);
      if (size === undefined || size > MANIFEST_READ_LIMIT) return undefined;
      const m = await this.manifestGet(ref);
      return { digest: m.digest, mediaType: m.mediaType, size };
    }
    const index = await layout.index();
    const name = refNameOf(ref);
    if (name === undefined) {
      // No name: the only image, as skopeo has it.
      if (index.manifests.length === 0) return undefined;
      if (index.manifests.length > 1) {
        const names = refNames(index);
        throw new LayoutError(
          `${layout.where} holds ${index.manifests.length} images; name one, e.g. ${ref.registry}:${names[0] ?? 'NAME'}`,
          {
            context: { registry: ref.registry, step: 'manifest lookup' },
            hint: `regmirror tags ${ref.registry} lists the names`,
          },
        );
      }
      const only = index.manifests[0]!;
      return { digest: only.digest, mediaType: only.mediaType, size: only.size };
    }
    const desc = findByName(index, name, `${layout.where}/index.json`);
    if (!desc) return undefined;
    return { digest: desc.digest, mediaType: desc.mediaType, size: desc.size };
  }

  /** The image name that a reference without tag or digest stands for (the only image), if it has one. */
  async onlyImageName(repo: Repository): Promise<string | undefined> {
    const index = await this.layout(repo).index();
    return index.manifests.length === 1 ? nameOf(index.manifests[0]!) : undefined;
  }

  async manifestGet(ref: Reference): Promise<Manifest> {
    const layout = this.layout(ref);
    let digest = ref.digest;
    let mediaType: string | undefined;
    if (digest === undefined) {
      const head = await this.manifestHead(ref);
      if (!head) {
        throw new NotFoundError(`${describeSelector(ref)} is not in ${layout.where}`, {
          context: { registry: ref.registry, step: 'manifest lookup' },
        });
      }
      digest = head.digest;
      mediaType = head.mediaType;
    } else {
      mediaType = (await layout.index()).manifests.find((d) => d.digest === digest)?.mediaType;
    }
    const where = layout.blobLocation(digest);
    const bytes = await layout.readBlob(digest, MANIFEST_READ_LIMIT).catch((err) => {
      throw inLayout(err, ref, 'manifest read');
    });
    const actual = digestOf(bytes, algorithmOf(digest));
    if (actual !== digest) {
      throw new DigestMismatchError(digest, actual, {
        what: `manifest file ${where}`,
        context: { registry: ref.registry, step: 'manifest read' },
        hint: CORRUPT_HINT,
      });
    }
    try {
      return parseManifest(bytes, mediaType);
    } catch (err) {
      if (!(err instanceof ManifestParseError)) throw err;
      throw new LayoutError(`${where} is not a manifest regmirror can read: ${err.message}`, {
        context: { registry: ref.registry, step: 'manifest read' },
      });
    }
  }

  async manifestPut(
    repo: Repository,
    selector: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<Digest> {
    const layout = this.layout(repo);
    const digest = digestOf(bytes);
    try {
      await layout.putBlob(digest, bytes);
      // A child manifest is only a blob; the image under its name goes into index.json.
      if (!isDigest(selector)) {
        await layout.nameImage(
          { mediaType, digest, size: bytes.byteLength },
          joinRefName(repo.path, selector),
        );
      } else if (selector !== digest) {
        throw new DigestMismatchError(selector, digest, { context: { step: 'manifest write' } });
      }
    } catch (err) {
      throw inLayout(err, repo, `manifest write ${selector}`);
    }
    return digest;
  }

  async blobHead(repo: Repository, digest: Digest): Promise<number | undefined> {
    return this.layout(repo).blobSize(digest);
  }

  /**
   * The blob's bytes, checked on the way: a file whose content is not what its name says fails with an
   * error naming the file, before the last byte is handed on (so nothing is committed from it).
   */
  async blobGet(repo: Repository, digest: Digest, size?: number): Promise<Readable> {
    const layout = this.layout(repo);
    const where = layout.blobLocation(digest);
    const body = await layout.openBlob(digest).catch((err) => {
      throw inLayout(err, repo, `blob read ${digest}`);
    });
    // The engine reads blobs from sources only.
    const context = { side: 'source' as const, registry: repo.registry, step: 'blob read' };
    async function* verified(): AsyncGenerator<Buffer> {
      const digester = new Digester(algorithmOf(digest));
      let pending: Buffer | undefined;
      for await (const chunk of body) {
        const buf = chunk as Buffer;
        digester.update(buf);
        if (size !== undefined && digester.size > size) {
          body.destroy();
          throw new DigestMismatchError(digest, 'more bytes than the descriptor says', {
            what: `blob file ${where} (over ${size} bytes)`,
            context,
            hint: CORRUPT_HINT,
          });
        }
        // Hold the last chunk back until the whole file is verified.
        if (pending) yield pending;
        pending = buf;
      }
      const actual = digester.digest();
      if (actual !== digest || (size !== undefined && digester.size !== size)) {
        throw new DigestMismatchError(digest, actual, {
          what: `blob file ${where}${size !== undefined && digester.size !== size ? ` (${digester.size} bytes, the descriptor says ${size})` : ''}`,
          context,
          hint: CORRUPT_HINT,
        });
      }
      if (pending) yield pending;
    }
    return Readable.from(verified(), { objectMode: false });
  }

  async uploadStart(
    repo: Repository,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSink }> {
    const layout = this.layout(repo);
    // Within one layout every blob is shared: "mounting" is finding it there already.
    if (mount && (await layout.blobSize(mount.digest)) !== undefined) return { mounted: true };
    try {
      return { mounted: false, session: await layout.startBlob() };
    } catch (err) {
      throw inLayout(err, repo, 'blob write');
    }
  }

  /**
   * End of the run: archives are written now (not after an interrupt: their staging stays for the next
   * run). Returns the archives left unwritten with staged content.
   */
  async close(commit: boolean): Promise<string[]> {
    const pending: string[] = [];
    for (const layout of this.layouts.values()) {
      if ((await layout.close(commit)) === 'staged') pending.push(layout.where);
    }
    return pending;
  }
}
