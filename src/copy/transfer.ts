// The fan-out transfer: one streamed GET of a source blob feeds every target upload session that needs
// it. The SHA-256 and the size are checked on the way; nothing is committed (no closing PUT) until the
// whole blob has been read and verified.
//
// Memory: targets that use the same chunk size share the chunk buffers. Each such group has two buffers
// that take turns — one being uploaded (the same bytes PATCHed to every target of the group), one
// filling from the source — and the source is not read further until every target has taken the full
// one. So memory is about 2 × chunk size per distinct chunk size, whatever the blob size and however
// many targets.

import type { Readable } from 'node:stream';
import { DigestMismatchError, isAbort, RegmirrorError } from '../errors.js';
import { algorithmOf, type Digest, Digester } from '../oci/digest.js';
import type { UploadSink } from './store.js';

export interface SinkSpec {
  session: UploadSink;
}

/** One target's session: at most one PATCH in flight; a failure ends this target only. */
class Sink {
  private inflight: Promise<void> | undefined;
  error: unknown;

  constructor(readonly session: UploadSink) {}

  get failed(): boolean {
    return this.error !== undefined;
  }

  /** Start sending `chunk` once the previous one is through; resolves when it has started. */
  async send(chunk: Buffer): Promise<void> {
    await this.settle();
    if (this.failed) return;
    this.inflight = this.session.patch(chunk).catch((err) => {
      this.error ??= err;
    });
  }

  /** Wait for the PATCH in flight, so its buffer may be reused. */
  async settle(): Promise<void> {
    if (this.inflight) {
      await this.inflight;
      this.inflight = undefined;
    }
  }

  async finish(digest: Digest, last: Buffer): Promise<void> {
    await this.settle();
    if (this.failed) throw this.error;
    try {
      await this.session.finish(digest, last.byteLength > 0 ? last : undefined);
    } catch (err) {
      this.error = err;
      throw err;
    }
  }

  async abandon(): Promise<void> {
    await this.settle();
    await this.session.cancel();
  }
}

/** The targets sharing one chunk size, and the two buffers they take turns with. */
class ChunkGroup {
  private readonly buffers: [Buffer, Buffer];
  private current = 0;
  private fill = 0;
  readonly sinks: Sink[] = [];
  /** A blob sent whole by the closing PUT: nothing is flushed early. */
  private readonly monolithic: boolean;

  constructor(chunkSize: number, total: number, monolithic: boolean) {
    this.monolithic = monolithic;
    const size = this.monolithic ? total : chunkSize;
    this.buffers = [Buffer.allocUnsafe(size), this.monolithic ? Buffer.alloc(0) : Buffer.allocUnsafe(size)];
  }

  /** Copy `data` in; every time the buffer is full, hand it to all targets and switch buffers. */
  async write(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.byteLength) {
      const buf = this.buffers[this.current]!;
      const n = Math.min(buf.byteLength - this.fill, data.byteLength - offset);
      data.copy(buf, this.fill, offset, offset + n);
      this.fill += n;
      offset += n;
      if (this.fill === buf.byteLength && !this.monolithic) {
        // send() waits for each target's previous PATCH, i.e. for the other buffer to be free.
        await Promise.all(this.sinks.map((s) => s.send(buf)));
        this.current = 1 - this.current;
        this.fill = 0;
      }
      if (this.fill === buf.byteLength && this.monolithic) break;
    }
  }

  /** The bytes not yet sent (the whole blob, for a monolithic upload). */
  rest(): Buffer {
    return this.buffers[this.current]!.subarray(0, this.fill);
  }
}

export interface FanOutResult {
  /** Per sink, in the order given: undefined = committed, or the error that failed that target. */
  outcomes: unknown[];
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
  specs: SinkSpec[],
  onProgress?: (bytes: number) => void,
): Promise<FanOutResult> {
  const groups = new Map<string, ChunkGroup>();
  const sinks = specs.map((spec) => {
    // Each session says how its registry wants the blob: in one PUT, or in chunks of its size.
    const { chunkSize, monolithicMaxSize } = spec.session;
    const monolithic = size <= Math.min(chunkSize, monolithicMaxSize);
    const key = monolithic ? 'whole' : `chunks of ${chunkSize}`;
    let group = groups.get(key);
    if (!group) {
      group = new ChunkGroup(chunkSize, size, monolithic);
      groups.set(key, group);
    }
    const sink = new Sink(spec.session);
    group.sinks.push(sink);
    return { sink, group };
  });
  const abandonAll = () => Promise.all(sinks.map(({ sink }) => sink.abandon().catch(() => {})));
  const digester = new Digester(algorithmOf(digest));
  try {
    for await (const chunk of source) {
      const buf = chunk as Buffer;
      digester.update(buf);
      if (digester.size > size) break;
      for (const group of groups.values()) await group.write(buf);
      onProgress?.(buf.byteLength);
      if (sinks.every(({ sink }) => sink.failed)) break;
    }
  } catch (err) {
    source.destroy();
    await abandonAll();
    if (isAbort(err) || err instanceof RegmirrorError) throw err;
    throw new RegmirrorError(`reading blob ${digest} from the source failed: ${(err as Error).message}`, {
      context: { side: 'source', digest },
      cause: err,
    });
  }
  source.destroy();
  if (sinks.every(({ sink }) => sink.failed)) {
    await abandonAll();
    return { outcomes: sinks.map(({ sink }) => sink.error) };
  }
  const actual = digester.digest();
  if (digester.size !== size || actual !== digest) {
    await abandonAll();
    const step =
      digester.size === size
        ? 'blob GET'
        : `blob GET (read ${digester.size} bytes, the descriptor says ${size})`;
    throw new DigestMismatchError(digest, actual, { context: { side: 'source', step } });
  }
  const outcomes = await Promise.all(
    sinks.map(async ({ sink, group }) => {
      if (sink.failed) {
        await sink.abandon().catch(() => {});
        return sink.error;
      }
      try {
        await sink.finish(digest, group.rest());
        return undefined;
      } catch (err) {
        return err;
      }
    }),
  );
  return { outcomes };
}
