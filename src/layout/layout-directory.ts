// An OCI image layout directory (image-spec image-layout.md): oci-layout, index.json, blobs/<alg>/<hex>.
// Reads trust nothing in it: digests are checked before they become paths (blob-path.ts) and index.json
// is validated (index-file.ts). Writes never leave a partial file in place: blobs and index.json go to
// temporary files first and are renamed when complete, and temporary files of killed runs are removed
// by the next run that writes.

import {
  access,
  constants,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  stat,
  unlink,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { LayoutError, NotFoundError, whyUnreadable } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { registryText } from '../sanitize.js';
import { blobEntry } from './blob-path.js';
import { BlobWriter } from './blob-writer.js';
import {
  EMPTY_INDEX,
  INDEX_READ_LIMIT,
  type LayoutIndex,
  parseIndexFile,
  serializeIndex,
  withImage,
} from './index-file.js';
import type { LayoutWriter, ReadTrace } from './layout.js';
import { isTempName, removeStaleTemps, tempName } from './temp-files.js';

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}\n';
const FIX_DAMAGED = 'the layout is damaged; copy it again from where it came from';

/** Check the oci-layout file's text: a 1.x image layout. */
export function checkLayoutVersion(text: string, where: string): void {
  let version: unknown;
  try {
    version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch (err) {
    throw new LayoutError(`${where} is not valid JSON (${registryText((err as Error).message, 160)})`, {
      hint: FIX_DAMAGED,
    });
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new LayoutError(
      `${where} declares imageLayoutVersion ${registryText(JSON.stringify(version) ?? 'none', 60)}; this regmirror reads 1.x layouts`,
    );
  }
}

type PathState = 'missing' | 'empty' | 'layout' | 'not-layout' | 'not-directory';

export class LayoutDirectory implements LayoutWriter {
  private cachedIndex: LayoutIndex | undefined;
  private prepared: Promise<void> | undefined;
  /** index.json updates, one at a time (read, change, write, rename). */
  private indexLock: Promise<unknown> = Promise.resolve();

  constructor(
    /** The directory, as given. */
    readonly root: string,
    private readonly onRead?: ReadTrace,
    /** What index.json starts as when this run creates the layout (default: empty). */
    private readonly seedIndex: () => Promise<LayoutIndex> = async () => EMPTY_INDEX,
  ) {}

  get where(): string {
    return this.root;
  }

  private async state(): Promise<PathState> {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.root)).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw new LayoutError(`${this.root} ${whyUnreadable(err)}`);
    }
    if (!isDirectory) return 'not-directory';
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      throw new LayoutError(`${this.root} ${whyUnreadable(err)}`);
    }
    if (names.includes(OCI_LAYOUT_FILE)) return 'layout';
    // A killed run may have left only a temporary file: the directory is still as good as empty.
    return names.every(isTempName) ? 'empty' : 'not-layout';
  }

  async checkReadable(): Promise<void> {
    const state = await this.state();
    if (state === 'missing') throw new LayoutError(`${this.root} does not exist`);
    if (state === 'not-directory') {
      throw new LayoutError(`${this.root} is a file, not a layout directory`, {
        hint: 'for an OCI archive (a tar file) write oci-archive:PATH',
      });
    }
    if (state !== 'layout') {
      throw new LayoutError(`${this.root} is not an OCI image layout (it has no ${OCI_LAYOUT_FILE} file)`, {
        hint: 'give the directory that holds oci-layout, index.json and blobs/',
      });
    }
    await this.checkVersion();
    this.cachedIndex = await this.readIndexFile(false);
  }

  async checkWritable(): Promise<void> {
    const state = await this.state();
    if (state === 'not-directory') {
      throw new LayoutError(`${this.root} is a file, not a directory`, {
        hint: 'to write a tar file use oci-archive:PATH; for a layout give a new or empty directory',
      });
    }
    if (state === 'not-layout') {
      throw new LayoutError(
        `${this.root} exists and is not an OCI image layout (it has no ${OCI_LAYOUT_FILE} file)`,
        {
          hint: 'give a new or empty directory, or an existing layout',
        },
      );
    }
    if (state === 'layout') {
      await this.checkVersion();
      this.cachedIndex = await this.readIndexFile(true);
      try {
        await access(this.root, constants.W_OK);
      } catch (err) {
        throw new LayoutError(
          `${this.root} cannot be written (${(err as NodeJS.ErrnoException).code ?? err})`,
        );
      }
    }
  }

  private async checkVersion(): Promise<void> {
    const file = join(this.root, OCI_LAYOUT_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new LayoutError(`${file} ${whyUnreadable(err)}`);
    }
    checkLayoutVersion(text, file);
  }

  /**
   * index.json as on disk now. Without one, a layout is damaged when read as a source; as a target, it
   * is one being created (by this run or a killed one): empty.
   */
  private async readIndexFile(missingIsEmpty: boolean): Promise<LayoutIndex> {
    const file = join(this.root, 'index.json');
    let bytes: Buffer;
    try {
      const handle = await open(file, 'r');
      try {
        const { size } = await handle.stat();
        if (size > INDEX_READ_LIMIT)
          throw new LayoutError(`${file} is larger than ${INDEX_READ_LIMIT} bytes`);
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (err instanceof LayoutError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (missingIsEmpty) return EMPTY_INDEX;
        throw new LayoutError(`${file} does not exist`, { hint: FIX_DAMAGED });
      }
      throw new LayoutError(`${file} ${whyUnreadable(err)}`);
    }
    return parseIndexFile(bytes, file);
  }

  async index(): Promise<LayoutIndex> {
    this.cachedIndex ??= await this.readIndexFile(true);
    return this.cachedIndex;
  }

  blobLocation(digest: Digest): string {
    return join(this.root, blobEntry(digest));
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      // lstat: a link in blobs/ would lead outside the layout; it counts as absent (and is never read).
      const s = await lstat(this.blobLocation(digest));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LayoutError(`${this.blobLocation(digest)} ${whyUnreadable(err)}`);
    }
  }

  async openBlob(digest: Digest): Promise<Readable> {
    const file = this.blobLocation(digest);
    // Opened here, not lazily by the stream, so that a missing file is an error of this call. Never
    // through a symbolic link: a blob is a file in blobs/, not a way to read something elsewhere.
    const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ELOOP') {
          throw new LayoutError(`${file} is a symbolic link; the blobs of a layout must be plain files`);
        }
        if (err.code === 'ENOENT') {
          throw new NotFoundError(`blob ${digest} is not in the layout: ${file} does not exist`, {
            hint: 'the layout is incomplete; copy it again from where it came from',
          });
        }
        throw new LayoutError(`${file} ${whyUnreadable(err)}`);
      },
    );
    this.onRead?.(file);
    return handle.createReadStream();
  }

  async readBlob(digest: Digest, limit: number): Promise<Buffer> {
    const body = await this.openBlob(digest);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).byteLength;
      if (size > limit) {
        body.destroy();
        throw new LayoutError(`${this.blobLocation(digest)} is larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async readExtra(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.root, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new LayoutError(`${join(this.root, name)} ${whyUnreadable(err)}`);
    }
  }

  // ---- writing ------------------------------------------------------------------------------------

  /** Create the layout on the first write, and clear what killed runs left behind. */
  private prepare(): Promise<void> {
    this.prepared ??= (async () => {
      const missing = async (name: string) =>
        (await stat(join(this.root, name)).catch(() => undefined)) === undefined;
      try {
        // oci-layout first: from then on the directory is a layout, which a killed run's successor accepts.
        await mkdir(this.root, { recursive: true });
        await removeStaleTemps(this.root);
        if (await missing(OCI_LAYOUT_FILE))
          await this.writeAtomic(OCI_LAYOUT_FILE, Buffer.from(OCI_LAYOUT_CONTENT));
        await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
        await removeStaleTemps(join(this.root, 'blobs'));
        if (await missing('index.json'))
          await this.writeAtomic('index.json', serializeIndex(await this.seedIndex()));
      } catch (err) {
        this.prepared = undefined;
        if (err instanceof LayoutError) throw err;
        throw new LayoutError(`cannot create the layout in ${this.root}: ${(err as Error).message}`);
      }
    })();
    return this.prepared;
  }

  /** Write `name` in the layout root through a temporary file and a rename. */
  private async writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    const temp = join(this.root, tempName(name));
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, join(this.root, name));
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw err;
    }
  }

  async startBlob(): Promise<BlobWriter> {
    await this.prepare();
    const temp = join(this.root, 'blobs', tempName(''));
    const handle = await open(temp, 'wx', 0o644);
    return new BlobWriter(this.root, temp, handle, () => {});
  }

  async putBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    if ((await this.blobSize(digest)) === bytes.byteLength) return;
    const writer = await this.startBlob();
    await writer.finish(digest, bytes);
  }

  async nameImage(desc: Descriptor, name: string | undefined): Promise<void> {
    await this.prepare();
    const update = this.indexLock.then(async () => {
      // Read again: the file is the truth (another tool may have added images since it was read).
      const next = withImage(await this.readIndexFile(true), desc, name);
      await this.writeAtomic('index.json', serializeIndex(next));
      this.cachedIndex = next;
    });
    this.indexLock = update.catch(() => {});
    await update;
  }

  async writeExtra(name: string, bytes: Uint8Array): Promise<void> {
    await this.prepare();
    await this.writeAtomic(name, bytes);
  }

  async close(): Promise<'done'> {
    await this.indexLock;
    return 'done';
  }
}
