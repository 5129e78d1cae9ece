// A bound on blob transfers in flight by the memory they hold, not by their number: a small blob's
// transfer holds the blob (a few KiB), a large one's the fan-out window and a chunk per chunking target.
// Counting them alike either starves many small transfers (a low count) or lets a few large ones hold
// hundreds of MiB (a high one). First come, first served: a large transfer waiting at the head is not
// overtaken by small ones forever.

export interface TransferBudget {
  /** Run `fn` once `weight` bytes (and one of the transfers in flight) are free; a weight above the whole
   * budget runs alone. */
  run<T>(weight: number, fn: () => Promise<T>): Promise<T>;
}

export function transferBudget(bytes: number, maxTransfers: number): TransferBudget {
  let used = 0;
  let running = 0;
  const queue: { weight: number; start: () => void }[] = [];
  const fits = (weight: number) =>
    running < maxTransfers && (running === 0 || used + Math.min(weight, bytes) <= bytes);
  const next = () => {
    while (queue.length > 0 && fits(queue[0]!.weight)) queue.shift()!.start();
  };
  return {
    run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const start = () => {
          const held = Math.min(weight, bytes);
          used += held;
          running++;
          fn()
            .then(resolve, reject)
            .finally(() => {
              used -= held;
              running--;
              next();
            });
        };
        if (queue.length === 0 && fits(weight)) start();
        else queue.push({ weight, start });
      });
    },
  };
}
