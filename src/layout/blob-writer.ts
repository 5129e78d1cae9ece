// A blob upload into a layout directory: the bytes go to a temporary file; at the end its digest is
// checked (independently of the caller's own check), the file is flushed to disk and renamed to
// blobs/<alg>/<hex>. A blob file therefore either does not exist or holds exactly what its name says.

import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { UploadSink } from '../copy/store.js';
import { DigestMismatchError } from '../errors.js';
import { algorithmOf, type Digest, Digester } from '../oci/digest.js';
import { blobEntry } from './blob-path.js';

/** The chunk size the copy engine feeds a layout with: large writes, bounded memory. */
export const LAYOUT_CHUNK_SIZE = 8 * 1024 * 1024;

export class BlobWriter implements UploadSink {
  offset = 0;
  readonly chunkSize = LAYOUT_CHUNK_SIZE;
  /** Up to this size a blob arrives whole in finish(): one write, the same memory as one chunk. */
  readonly monolithicMaxSize = LAYOUT_CHUNK_SIZE;
  private readonly digester = new Digester('sha256');
  private closed = false;

  constructor(
    /** The layout root. */
    private readonly root: string,
    private readonly tempPath: string,
    private readonly file: FileHandle,
    /** Called once the blob is in place. */
    private readonly onDone: (digest: Digest, size: number) => void,
  ) {}

  async patch(chunk: Uint8Array): Promise<void> {
    // Chunks may be shared buffers the caller reuses once this resolves: written before returning.
    let done = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await this.file.write(chunk, done, chunk.byteLength - done);
      done += bytesWritten;
    }
    this.digester.update(chunk);
    this.offset += chunk.byteLength;
  }

  async finish(digest: Digest, last?: Uint8Array): Promise<void> {
    try {
      if (last && last.byteLength > 0) await this.patch(last);
      const actual =
        algorithmOf(digest) === 'sha256' ? this.digester.digest() : await this.rehash(algorithmOf(digest));
      if (actual !== digest) {
        throw new DigestMismatchError(digest, actual, {
          what: 'the blob written to the layout',
          context: { side: 'target', step: 'blob write' },
          hint: 'nothing was put in place; run again',
        });
      }
      await this.file.sync();
      await this.close();
      const target = join(this.root, blobEntry(digest));
      await mkdir(dirname(target), { recursive: true });
      await rename(this.tempPath, target);
      this.onDone(digest, this.offset);
    } catch (err) {
      await this.cancel();
      throw err;
    }
  }

  async cancel(): Promise<void> {
    await this.close();
    await unlink(this.tempPath).catch(() => {});
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close().catch(() => {});
  }

  /** A digest with another algorithm than the one computed on the way: read the file again. */
  private async rehash(algorithm: 'sha256' | 'sha512'): Promise<Digest> {
    const d = new Digester(algorithm);
    for await (const chunk of createReadStream(this.tempPath)) d.update(chunk as Buffer);
    return d.digest();
  }
}
