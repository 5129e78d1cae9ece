// An OCI archive as a target. A tar is written front to back, while a copy finishes blobs in any order
// and may be killed at any moment; so the run writes into a staging layout directory beside the archive
// (".NAME.tar.regmirror-staging": only the blobs the archive lacks, and the whole new index.json), reads
// through it to the existing archive, and at the end packs one new tar — the old archive's blobs copied
// entry by entry, the staged ones, index.json — into a temporary file that then replaces the archive.
// The old archive is never unpacked, never modified in place, and stays valid until the rename; a killed
// run leaves the staging directory, which the next run completes and packs.

import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import type { UploadSink } from '../copy/store.js';
import { LayoutError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { ArchiveReader } from './archive-reader.js';
import { digestOfEntry } from './blob-path.js';
import { EMPTY_INDEX, type LayoutIndex } from './index-file.js';
import { BUNDLE_FILE, type LayoutWriter, type ReadTrace } from './layout.js';
import { LayoutDirectory, OCI_LAYOUT_FILE } from './layout-directory.js';
import { isTempName, removeStaleTemps, tempName } from './temp-files.js';

export function stagingDirFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.regmirror-staging`);
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

export class ArchiveWriter implements LayoutWriter {
  /** The archive as it is on disk, when there is one. */
  private readonly base: ArchiveReader;
  private readonly staging: LayoutDirectory;
  private baseExists: Promise<boolean> | undefined;

  constructor(
    readonly file: string,
    onRead?: ReadTrace,
  ) {
    this.base = new ArchiveReader(file, onRead);
    this.staging = new LayoutDirectory(stagingDirFor(file), onRead, () => this.baseIndex());
  }

  get where(): string {
    return this.file;
  }

  private hasBase(): Promise<boolean> {
    this.baseExists ??= exists(this.file);
    return this.baseExists;
  }

  private async baseIndex(): Promise<LayoutIndex> {
    return (await this.hasBase()) ? this.base.index() : EMPTY_INDEX;
  }

  /** A staging directory with an index.json: this run's (or a killed run's) writes, not packed yet. */
  private stagingActive(): Promise<boolean> {
    return exists(join(this.staging.root, 'index.json'));
  }

  async checkReadable(): Promise<void> {
    await this.base.checkReadable();
  }

  async checkWritable(): Promise<void> {
    if (await this.hasBase()) {
      try {
        await this.base.checkReadable();
      } catch (err) {
        if (!(err instanceof LayoutError)) throw err;
        throw new LayoutError(`${this.file} exists and cannot be added to: ${err.message}`, {
          hint: 'give a new file name, or remove the file',
        });
      }
    }
    await this.staging.checkWritable();
  }

  async index(): Promise<LayoutIndex> {
    return (await this.stagingActive()) ? this.staging.index() : this.baseIndex();
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    const staged = await this.staging.blobSize(digest);
    if (staged !== undefined) return staged;
    return (await this.hasBase()) ? this.base.blobSize(digest) : undefined;
  }

  async openBlob(digest: Digest): Promise<Readable> {
    if ((await this.staging.blobSize(digest)) !== undefined || !(await this.hasBase())) {
      return this.staging.openBlob(digest);
    }
    return this.base.openBlob(digest);
  }

  async readBlob(digest: Digest, limit: number): Promise<Buffer> {
    if ((await this.staging.blobSize(digest)) !== undefined || !(await this.hasBase())) {
      return this.staging.readBlob(digest, limit);
    }
    return this.base.readBlob(digest, limit);
  }

  blobLocation(digest: Digest): string {
    return this.base.blobLocation(digest);
  }

  async readExtra(name: string): Promise<Buffer | undefined> {
    const staged = await this.staging.readExtra(name);
    if (staged !== undefined) return staged;
    return (await this.hasBase()) ? this.base.readExtra(name) : undefined;
  }

  startBlob(): Promise<UploadSink> {
    return this.staging.startBlob();
  }

  async putBlob(digest: Digest, bytes: Uint8Array): Promise<void> {
    if ((await this.blobSize(digest)) === bytes.byteLength) return;
    await this.staging.putBlob(digest, bytes);
  }

  nameImage(desc: Descriptor, name: string | undefined): Promise<void> {
    return this.staging.nameImage(desc, name);
  }

  writeExtra(name: string, bytes: Uint8Array): Promise<void> {
    return this.staging.writeExtra(name, bytes);
  }

  /** Pack the staged writes (this run's, or a killed run's) into the archive; nothing staged: nothing to do. */
  async close(commit: boolean): Promise<'done' | 'staged'> {
    await this.staging.close();
    if (!(await this.stagingActive())) return 'done';
    if (!commit) return 'staged';
    const dir = dirname(this.file);
    await mkdir(dir, { recursive: true });
    await removeStaleTemps(dir);
    const temp = join(dir, tempName(basename(this.file)));
    try {
      await this.pack(temp);
      const handle = await open(temp, 'r+');
      await handle.sync().finally(() => handle.close());
      await rename(temp, this.file);
    } catch (err) {
      await unlink(temp).catch(() => {});
      throw new LayoutError(`writing ${this.file} failed: ${(err as Error).message}`, {
        cause: err,
        hint: `the staged content stays in ${this.staging.root}; run again to write the archive`,
      });
    }
    await rm(this.staging.root, { recursive: true, force: true });
    this.baseExists = undefined;
    return 'done';
  }

  private async pack(temp: string): Promise<void> {
    // node-tar is loaded when an archive is written, not at every command's start.
    const { list, Pack } = await import('tar');
    const root = this.staging.root;
    const staged = new Set<string>();
    for (const algorithm of await readdir(join(root, 'blobs')).catch(() => [])) {
      for (const hex of await readdir(join(root, 'blobs', algorithm)).catch(() => [])) {
        staged.add(`blobs/${algorithm}/${hex}`);
      }
    }
    const pack = new Pack({
      cwd: root,
      portable: true,
      filter: (path) => !isTempName(basename(path)),
    });
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o644 });
    pack.pipe(out);
    const done = finished(out);
    const failed = new Promise<never>((_, reject) => pack.on('error', reject));
    failed.catch(() => {});
    // The old archive's blobs that were not staged again, copied entry by entry (never unpacked).
    if (await this.hasBase()) {
      await list({
        file: this.file,
        noResume: true,
        onReadEntry: (entry: ReadEntry) => {
          const path = entry.path.replace(/^(\.\/)+/, '');
          const digest = digestOfEntry(path);
          if (entry.type === 'File' && digest !== undefined && !staged.has(path)) pack.add(entry);
          else entry.resume();
        },
      });
    }
    pack.add(OCI_LAYOUT_FILE);
    pack.add('blobs');
    pack.add('index.json');
    if (await exists(join(root, BUNDLE_FILE))) pack.add(BUNDLE_FILE);
    pack.end();
    await Promise.race([done, failed]);
  }
}
