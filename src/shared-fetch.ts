// One fetch shared by several callers, each with its own abort signal (a token, a credential from an
// API). The fetch runs with a signal of its own, aborted only when every caller waiting on it has aborted:
// one caller's short timeout (an upload's cancel) must not fail the others waiting for the same answer.
// A caller whose signal aborts leaves at once with AbortedError; the others keep waiting. A caller
// without a signal keeps the fetch alive to its end. Imported from anywhere, like errors.ts.

import { AbortedError } from './errors.js';

export class SharedFetch<T> {
  private readonly controller = new AbortController();
  private readonly result: Promise<T>;
  /** Callers with a signal still waiting. */
  private waiting = 0;
  /** A caller without a signal joined: nothing can abort the fetch any more. */
  private held = false;
  private settled = false;

  constructor(run: (signal: AbortSignal) => Promise<T>) {
    const done = () => {
      this.settled = true;
    };
    this.result = run(this.controller.signal);
    this.result.then(done, done);
  }

  /**
   * Every caller that waited has aborted, and so has the fetch: a new caller must start a fresh one
   * (this one ends, or has ended, with AbortedError).
   */
  get abandoned(): boolean {
    return this.controller.signal.aborted;
  }

  /** The fetch's answer for one caller, or AbortedError as soon as `signal` aborts. */
  join(signal?: AbortSignal): Promise<T> {
    if (!signal) {
      this.held = true;
      return this.result;
    }
    if (this.settled) return this.result;
    if (signal.aborted) {
      // Counted as a caller that came and left: the first caller of a fetch may already be aborted.
      this.release();
      return Promise.reject(new AbortedError());
    }
    this.waiting++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.waiting--;
        reject(new AbortedError());
        this.release();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // Settled: the listener goes, so that a long-lived signal (the run's interrupt) collects none.
      this.result.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  private release(): void {
    if (!this.settled && !this.held && this.waiting === 0) this.controller.abort(new AbortedError());
  }
}
