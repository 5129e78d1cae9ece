// The fan-out transfer: one streamed GET of a source blob feeds every target upload session that needs
// it. The SHA-256 and the size are checked on the way; nothing is committed (no closing PUT) until the
// whole blob has been read and verified. Backpressure: the source is not read further until every sink
// has buffered the chunk it was given, and a sink holds at most one chunk in flight plus one filling, so
// memory stays at about 2 × chunk size × targets whatever the blob size.

import type { Readable } from 'node:stream';
import { DigestMismatchError, isAbort, RegmirrorError } from '../errors.js';
import { algorithmOf, type Digest, Digester } from '../oci/digest.js';
import type { UploadSink } from './store.js';

export interface SinkSpec {
  session: UploadSink;
  /** Bytes per PATCH for this target; a blob no larger than this goes in one PUT. */
  chunkSize: number;
}

/** Buffers a stream into chunks of a target's size and PATCHes them, one request in flight at a time. */
class ChunkedSink {
  private parts: Buffer[] = [];
  private buffered = 0;
  private inflight: Promise<void> | undefined;
  error: unknown;

  constructor(
    readonly spec: SinkSpec,
    private readonly total: number,
  ) {}

  get failed(): boolean {
    return this.error !== undefined;
  }

  /** Accept a chunk; resolves once it is buffered (waiting for the previous PATCH when a chunk is full). */
  async write(chunk: Buffer): Promise<void> {
    if (this.failed) return;
    this.parts.push(chunk);
    this.buffered += chunk.byteLength;
    // A blob that fits in one chunk is sent whole by finish(): one PUT, no PATCH.
    if (this.total <= this.spec.chunkSize) return;
    while (this.buffered >= this.spec.chunkSize && !this.failed) {
      const piece = this.take(this.spec.chunkSize);
      await this.settle();
      if (this.failed) return;
      this.inflight = this.spec.session.patch(piece).catch((err) => {
        this.error ??= err;
      });
    }
  }

  async finish(digest: Digest): Promise<void> {
    await this.settle();
    if (this.failed) throw this.error;
    const last = this.take(this.buffered);
    try {
      await this.spec.session.finish(digest, last.byteLength > 0 ? last : undefined);
    } catch (err) {
      this.error = err;
      throw err;
    }
  }

  async abandon(): Promise<void> {
    await this.settle();
    this.parts = [];
    this.buffered = 0;
    await this.spec.session.cancel();
  }

  private async settle(): Promise<void> {
    if (this.inflight) {
      await this.inflight;
      this.inflight = undefined;
    }
  }

  private take(n: number): Buffer {
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.buffered);
    const piece = all.subarray(0, n);
    const rest = all.subarray(n);
    this.parts = rest.byteLength > 0 ? [rest] : [];
    this.buffered = rest.byteLength;
    // Copy so the piece does not pin the whole concatenated buffer while it is uploaded.
    return n === all.byteLength ? piece : Buffer.from(piece);
  }
}

export interface FanOutResult {
  /** Per sink, in the order given: undefined = committed, or the error that failed that target. */
  outcomes: (unknown | undefined)[];
}

/**
 * Stream `source` (the blob `digest`, `size` bytes) into every sink. A source failure or a digest
 * mismatch fails all sinks (their sessions are cancelled) and is thrown; a single sink's failure fails
 * only that target and is reported in `outcomes`.
 */
export async function fanOut(
  source: Readable,
  digest: Digest,
  size: number,
  sinks: SinkSpec[],
  onProgress?: (bytes: number) => void,
): Promise<FanOutResult> {
  const chunked = sinks.map((s) => new ChunkedSink(s, size));
  const digester = new Digester(algorithmOf(digest));
  try {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      digester.update(buf);
      if (digester.size > size) break;
      await Promise.all(chunked.map((s) => s.write(buf)));
      onProgress?.(buf.byteLength);
      if (chunked.every((s) => s.failed)) break;
    }
  } catch (err) {
    source.destroy();
    await Promise.all(chunked.map((s) => s.abandon().catch(() => {})));
    if (isAbort(err) || err instanceof RegmirrorError) throw err;
    throw new RegmirrorError(`reading blob ${digest} from the source failed: ${(err as Error).message}`, {
      context: { side: 'source', digest },
      cause: err,
    });
  }
  source.destroy();
  if (chunked.every((s) => s.failed)) {
    return { outcomes: chunked.map((s) => s.error) };
  }
  const actual = digester.digest();
  if (digester.size !== size || actual !== digest) {
    await Promise.all(chunked.map((s) => s.abandon().catch(() => {})));
    const step =
      digester.size === size
        ? 'blob GET'
        : `blob GET (read ${digester.size} bytes, the descriptor says ${size})`;
    throw new DigestMismatchError(digest, actual, { context: { side: 'source', step } });
  }
  const outcomes = await Promise.all(
    chunked.map(async (s) => {
      if (s.failed) {
        await s.spec.session.cancel().catch(() => {});
        return s.error;
      }
      try {
        await s.finish(digest);
        return undefined;
      } catch (err) {
        return err;
      }
    }),
  );
  return { outcomes };
}
