// An OCI archive (oci-archive:FILE) read in place: one pass over the tar headers finds every entry, then
// index.json is read from its byte range and each blob is streamed from its own — nothing is unpacked.

import { createReadStream } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { LayoutError, NotFoundError, whyUnreadable } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { registryText } from '../sanitize.js';
import { blobEntry } from './blob-path.js';
import { INDEX_READ_LIMIT, type LayoutIndex, parseIndexFile } from './index-file.js';
import type { LayoutReader, ReadTrace } from './layout.js';
import { checkLayoutVersion, OCI_LAYOUT_FILE } from './layout-directory.js';
import { readTarEntries, type TarEntry } from './tar-entries.js';

export class ArchiveReader implements LayoutReader {
  private entries: Promise<Map<string, TarEntry>> | undefined;
  private cachedIndex: LayoutIndex | undefined;

  constructor(
    readonly file: string,
    private readonly onRead?: ReadTrace,
  ) {}

  get where(): string {
    return this.file;
  }

  /** The entry table, read once. */
  table(): Promise<Map<string, TarEntry>> {
    this.entries ??= (async () => {
      let handle: FileHandle;
      try {
        if ((await stat(this.file)).isDirectory()) {
          throw new LayoutError(`${this.file} is a directory, not a tar file`, {
            hint: 'for a layout directory write oci:PATH',
          });
        }
        handle = await open(this.file, 'r');
      } catch (err) {
        if (err instanceof LayoutError) throw err;
        throw new LayoutError(`${this.file} ${whyUnreadable(err)}`);
      }
      try {
        return await readTarEntries(handle, this.file);
      } finally {
        await handle.close();
      }
    })();
    this.entries.catch(() => {});
    return this.entries;
  }

  private async entry(path: string): Promise<TarEntry | undefined> {
    const e = (await this.table()).get(path);
    if (e && !e.regular) {
      throw new LayoutError(
        `${this.file}: "${path}" is not a regular file in the archive (a link or directory)`,
      );
    }
    return e;
  }

  private async readEntry(e: TarEntry): Promise<Buffer> {
    const handle = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(e.size);
      let got = 0;
      while (got < e.size) {
        const { bytesRead } = await handle.read(buf, got, e.size - got, e.offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await handle.close();
    }
  }

  async checkReadable(): Promise<void> {
    const table = await this.table();
    const layout = await this.entry(OCI_LAYOUT_FILE);
    if (!layout) {
      const some = [...table.keys()].slice(0, 5);
      throw new LayoutError(
        `${this.file} is a tar archive but not an OCI archive: it has no ${OCI_LAYOUT_FILE} entry (${some.length === 0 ? 'it is empty' : `entries: ${some.map((e) => registryText(e, 80)).join(', ')}${table.size > some.length ? ', …' : ''}`})`,
        { hint: 'an OCI archive holds oci-layout, index.json and blobs/ at its top level' },
      );
    }
    checkLayoutVersion((await this.readEntry(layout)).toString('utf8'), `${this.file}:${OCI_LAYOUT_FILE}`);
    await this.index();
  }

  async index(): Promise<LayoutIndex> {
    if (this.cachedIndex) return this.cachedIndex;
    const e = await this.entry('index.json');
    if (!e) throw new LayoutError(`${this.file} has no index.json entry`, { hint: 'the archive is damaged' });
    if (e.size > INDEX_READ_LIMIT)
      throw new LayoutError(`${this.file}:index.json is larger than ${INDEX_READ_LIMIT} bytes`);
    this.cachedIndex = parseIndexFile(await this.readEntry(e), `${this.file}:index.json`);
    return this.cachedIndex;
  }

  blobLocation(digest: Digest): string {
    return `${this.file}:${blobEntry(digest)}`;
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    return (await this.entry(blobEntry(digest)))?.size;
  }

  private missing(digest: Digest): NotFoundError {
    return new NotFoundError(
      `blob ${digest} is not in the archive: ${this.file} has no ${blobEntry(digest)}`,
      {
        hint: 'the archive is incomplete; copy it again from where it came from',
      },
    );
  }

  async openBlob(digest: Digest): Promise<Readable> {
    const e = await this.entry(blobEntry(digest));
    if (!e) throw this.missing(digest);
    this.onRead?.(this.blobLocation(digest));
    if (e.size === 0) return Readable.from([]);
    return createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1 });
  }

  async readBlob(digest: Digest, limit: number): Promise<Buffer> {
    const e = await this.entry(blobEntry(digest));
    if (!e) throw this.missing(digest);
    if (e.size > limit) throw new LayoutError(`${this.blobLocation(digest)} is larger than ${limit} bytes`);
    this.onRead?.(this.blobLocation(digest));
    return this.readEntry(e);
  }

  async readExtra(name: string): Promise<Buffer | undefined> {
    const e = await this.entry(name);
    return e ? this.readEntry(e) : undefined;
  }
}
