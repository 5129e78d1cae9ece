// The fan-out transfer: one streamed GET of a source blob feeds every target upload session that needs
// it. The SHA-256 and the size are checked on the way; nothing is committed (no closing PUT) until the
// whole blob has been read and verified.
//
// The source's pieces go into one shared list; each target (a sink) has its own cursor into it and goes
// at its own pace, in one of three ways its session chooses:
//
//   whole   a blob no larger than the session's single-request size: sent in the closing PUT once it has
//           been read and verified (all such sinks share one buffer);
//   stream  registries that take a whole blob in one request: a single PATCH whose body is fed from the
//           list as the source delivers, then the closing PUT once verified;
//   chunks  registries that need parts of a size (ECR ≥ 5 MiB, GHCR ≤ 4 MiB) or were given a chunk size:
//           PATCHes of that size, the last part with the closing PUT.
//
// Memory: the list keeps what the slowest sink still needs, and the source is not read further while a
// sink is more than a window (16 MiB, or a chunk and a bit) behind — so a 1 GiB layer to three registries
// holds a few tens of MiB, and targets of similar speed never wait for each other's requests. A target
// whose registry is throttling us (congested) and that holds the others back is dropped instead: it gets
// the blob again later, from a new source GET, and the others go on. Sessions may still be opening when
// the source GET starts: their sinks start from the beginning of the list when they open.

import { PassThrough, type Readable } from 'node:stream';
import { DigestMismatchError, isAbort, RegmirrorError, UploadInterruptedError } from '../errors.js';
import { algorithmOf, type Digest, Digester } from '../oci/digest.js';
import { Signal } from '../signal.js';
import type { UploadSink } from './store.js';

/** How far (bytes) a streaming or chunking sink may fall behind the source before the source waits. */
export const FAN_OUT_WINDOW = 16 * 1024 * 1024;

export interface SinkSpec {
  /** The upload session, or the promise of one still being opened (its POST runs beside the source GET). */
  session: UploadSink | Promise<UploadSink>;
  /** True while this target's registry is throttling us: a sink holding the source back then is dropped. */
  congested?: () => boolean;
}

/** One sink's end: undefined = committed; else the error, and whether the source caused it (every sink's). */
export type SinkOutcome = undefined | { error: unknown; source: boolean };

export interface FanOut {
  /** Per sink, in the order given; each settles when that target is done, whatever the others do. */
  outcomes: Promise<SinkOutcome>[];
  /** Settles once the source has been read to its end (or failed): no stream is open any more. */
  read: Promise<void>;
}

type SinkState = 'opening' | 'running' | 'done';

class Sink {
  state: SinkState = 'opening';
  /** Bytes of the blob this sink no longer needs from the shared list. */
  cursor = 0;
  mode: 'whole' | 'stream' | 'chunks' | undefined;
  session: UploadSink | undefined;
  /** Why this sink stopped early (set once). */
  error: unknown;
  /** A stream sink's request body, to cut when the sink is dropped or the source fails. */
  body: PassThrough | undefined;
  constructor(readonly congested: () => boolean) {}
  get live(): boolean {
    return this.state !== 'done' && this.error === undefined;
  }
}

/**
 * Stream the blob `digest` (`size` bytes) from `open()` into every sink. Each sink's outcome settles on
 * its own; a source failure or a digest mismatch fails every sink (their sessions are cancelled, nothing
 * is committed) and is reported with `source: true`.
 */
export function fanOut(
  open: () => Promise<Readable>,
  digest: Digest,
  size: number,
  specs: SinkSpec[],
  onProgress?: (bytes: number) => void,
): FanOut {
  const pieces: Buffer[] = [];
  /** Blob offset of pieces[0]. */
  let base = 0;
  /** Bytes read from the source so far. */
  let end = 0;
  /** The source ended: `verified` then says whether it was right. */
  let ended = false;
  let sourceError: unknown;
  const data = new Signal();
  const progress = new Signal();
  let settleVerified!: (ok: boolean) => void;
  const verified = new Promise<boolean>((r) => {
    settleVerified = r;
  });
  let whole: Buffer | undefined;

  const sinks = specs.map((spec) => new Sink(spec.congested ?? (() => false)));

  /** Bytes [from, to) of the blob, copied out of the list. */
  const copy = (from: number, to: number): Buffer => {
    const out = Buffer.allocUnsafe(to - from);
    let at = base;
    let written = 0;
    for (const p of pieces) {
      const pEnd = at + p.byteLength;
      if (pEnd > from && at < to) {
        const s = Math.max(from, at) - at;
        const e = Math.min(to, pEnd) - at;
        p.copy(out, written, s, e);
        written += e - s;
      }
      at = pEnd;
      if (at >= to) break;
    }
    return out;
  };

  /** Bytes [from, to) of the blob as views of the list's pieces. */
  const slices = (from: number, to: number): Buffer[] => {
    const out: Buffer[] = [];
    let at = base;
    for (const p of pieces) {
      const pEnd = at + p.byteLength;
      if (pEnd > from && at < to) out.push(p.subarray(Math.max(from, at) - at, Math.min(to, pEnd) - at));
      at = pEnd;
      if (at >= to) break;
    }
    return out;
  };

  /** Drop the pieces every live sink has passed (an opening sink still needs them all). */
  const trim = (): void => {
    let keepFrom = end;
    for (const s of sinks) if (s.live) keepFrom = Math.min(keepFrom, s.state === 'opening' ? 0 : s.cursor);
    while (pieces.length > 0 && base + pieces[0]!.byteLength <= keepFrom) base += pieces.shift()!.byteLength;
  };

  const advance = (s: Sink, to: number): void => {
    s.cursor = to;
    trim();
    progress.fire();
  };

  const fail = (s: Sink, err: unknown): void => {
    if (s.error !== undefined || s.state === 'done') return;
    s.error = err;
    s.body?.destroy(err instanceof Error ? err : new Error(String(err)));
    trim();
    progress.fire();
  };

  /** Wait until the list holds bytes past `at`, or the source ended. False when this sink must stop. */
  const until = async (s: Sink, wanted: (end: number) => boolean): Promise<boolean> => {
    while (!wanted(end) && !ended && sourceError === undefined && s.error === undefined) await data.wait();
    return s.error === undefined && sourceError === undefined;
  };

  /** Wait for the source's verdict; throws the source's error when it failed. */
  const verdict = async (): Promise<void> => {
    const ok = await verified;
    if (!ok) throw sourceError;
  };

  const runSink = async (s: Sink, spec: SinkSpec): Promise<void> => {
    const session = await spec.session;
    s.session = session;
    if (s.error !== undefined) throw s.error;
    s.mode =
      size <= Math.min(session.chunkSize, session.monolithicMaxSize)
        ? 'whole'
        : session.stream && session.streamable
          ? 'stream'
          : 'chunks';
    s.state = 'running';
    trim();
    progress.fire();
    if (s.mode === 'whole') {
      await verdict();
      whole ??=
        base === 0 && pieces.length === 1 && pieces[0]!.byteLength === size ? pieces[0]! : copy(0, size);
      if (s.error !== undefined) throw s.error;
      await session.finish(digest, whole.byteLength > 0 ? whole : undefined);
      return;
    }
    if (s.mode === 'stream') {
      const body = new PassThrough({ highWaterMark: 1024 * 1024 });
      // Its reader (the request) sees an error it is cut with; the event itself needs no other listener.
      body.on('error', () => {});
      s.body = body;
      const feed = async (): Promise<void> => {
        while (s.cursor < size) {
          if (!(await until(s, (e) => e > s.cursor))) return;
          if (s.cursor >= end) return; // the source ended short: the verdict says so
          // Views of the source's own buffers, not copies: the list never changes a piece.
          const views = slices(s.cursor, end);
          advance(s, end);
          let flowing = true;
          for (const v of views) flowing = body.write(v);
          if (!flowing) {
            await new Promise<void>((resolve) => {
              const done = () => {
                body.off('drain', done);
                body.off('close', done);
                resolve();
              };
              body.on('drain', done);
              body.on('close', done);
            });
          }
          if (body.destroyed) return;
        }
        body.end();
      };
      const fed = feed();
      try {
        await session.stream!(body, size);
      } finally {
        body.destroy();
        await fed.catch(() => {});
      }
      if (s.error !== undefined) throw s.error;
      await verdict();
      await session.finish(digest);
      return;
    }
    // Chunks of the session's size; the rest goes with the closing PUT.
    const chunk = session.chunkSize;
    while (s.cursor + chunk <= size) {
      if (!(await until(s, (e) => e >= s.cursor + chunk))) break;
      if (end < s.cursor + chunk) break; // the source ended short
      const bytes = copy(s.cursor, s.cursor + chunk);
      advance(s, s.cursor + chunk);
      await session.patch(bytes);
    }
    if (s.error !== undefined) throw s.error;
    await verdict();
    const rest = copy(s.cursor, end);
    advance(s, end);
    await session.finish(digest, rest.byteLength > 0 ? rest : undefined);
  };

  const outcomes = sinks.map(async (s, k): Promise<SinkOutcome> => {
    try {
      await runSink(s, specs[k]!);
      s.state = 'done';
      return undefined;
    } catch (err) {
      // The first reason this sink stopped: its own failure, or the source's (then every sink's).
      const error = s.error ?? err;
      const fromSource = sourceError !== undefined && error === sourceError;
      fail(s, error);
      s.state = 'done';
      await s.session?.cancel().catch(() => {});
      progress.fire();
      return { error, source: fromSource };
    }
  });

  /** The source waits while a streaming or chunking sink is more than a window behind. */
  const window = (): number => {
    let w = FAN_OUT_WINDOW;
    for (const s of sinks)
      if (s.live && s.mode === 'chunks') w = Math.max(w, s.session!.chunkSize + FAN_OUT_WINDOW / 4);
    return w;
  };
  const holding = (): Sink[] =>
    sinks.filter(
      (s) => s.live && s.mode !== 'whole' && (s.state === 'opening' ? 0 : s.cursor) + window() < end,
    );

  const read = (async (): Promise<void> => {
    const digester = new Digester(algorithmOf(digest));
    let body: Readable | undefined;
    try {
      body = await open();
      for await (const chunk of body) {
        const buf = chunk as Buffer;
        digester.update(buf);
        if (digester.size > size) break;
        pieces.push(buf);
        end += buf.byteLength;
        data.fire();
        onProgress?.(buf.byteLength);
        for (;;) {
          const behind = holding();
          if (behind.length === 0) break;
          // A target throttled by its registry does not hold the others: it gets the blob again later.
          for (const s of behind) {
            if (s.congested()) {
              fail(
                s,
                new UploadInterruptedError(
                  'the registry is throttling requests and this upload fell behind the others; it is sent again',
                ),
              );
            }
          }
          if (holding().length === 0) break;
          await progress.wait();
        }
        if (sinks.every((s) => !s.live)) break;
      }
    } catch (err) {
      sourceError =
        isAbort(err) || err instanceof RegmirrorError
          ? err
          : new RegmirrorError(`reading blob ${digest} from the source failed: ${(err as Error).message}`, {
              context: { side: 'source', digest },
              cause: err,
            });
    } finally {
      body?.destroy();
    }
    if (sourceError === undefined && sinks.some((s) => s.live)) {
      const actual = digester.digest();
      if (digester.size !== size || actual !== digest) {
        const step =
          digester.size === size
            ? 'blob GET'
            : `blob GET (read ${digester.size} bytes, the descriptor says ${size})`;
        sourceError = new DigestMismatchError(digest, actual, { context: { side: 'source', step } });
      }
    }
    ended = true;
    if (sourceError !== undefined) for (const s of sinks) if (s.live) fail(s, sourceError);
    data.fire();
    settleVerified(sourceError === undefined);
  })();

  return { outcomes, read };
}
