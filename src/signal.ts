// A wake-up call for waiters: `wait()` gives a promise that the next `fire()` resolves, and each fire
// starts a new round. Used where several parties wait for "something changed" (a fan-out's readers, a
// transport's congestion state) without keeping a list of them. Imported from anywhere, like errors.ts.

/** A promise that is resolved and replaced each time something changes. */
export class Signal {
  private resolve!: () => void;
  private promise!: Promise<void>;
  constructor() {
    this.reset();
  }
  private reset(): void {
    this.promise = new Promise((r) => {
      this.resolve = r;
    });
  }
  wait(): Promise<void> {
    return this.promise;
  }
  fire(): void {
    const resolve = this.resolve;
    this.reset();
    resolve();
  }
}
