// Waiting for targets, except those whose registry is throttling us. The engine never waits for a
// throttled registry on behalf of the others: a target there is left to go on at its own pace, and
// the image (or the blob's fan-out) goes on with the rest. Which registry is throttling is the store's
// to say (the transport sees the 429s and 503s); a store that cannot say makes this a plain wait.

import type { RegistryStore } from './store.js';

export interface Watched {
  promise: Promise<unknown>;
  /** The registry the work is for. */
  registry: string;
}

/**
 * Resolves once every promise has settled, or the ones still pending are all for registries that are
 * throttling us now. Returns which had settled by then. Never rejects.
 */
export async function untilSettledOrCongested(
  items: Watched[],
  store: Pick<RegistryStore, 'congested' | 'congestionChanged'>,
): Promise<boolean[]> {
  const settled = items.map(() => false);
  const watching = items.map((item, i) =>
    item.promise.then(
      () => {
        settled[i] = true;
      },
      () => {
        settled[i] = true;
      },
    ),
  );
  const congested = store.congested?.bind(store);
  if (!congested) {
    await Promise.all(watching);
    return settled;
  }
  for (;;) {
    const waiting = watching.filter((_, i) => !settled[i] && !congested(items[i]!.registry));
    if (waiting.length === 0) return [...settled];
    const changed = store.congestionChanged?.();
    await Promise.race(changed ? [...waiting, changed] : waiting);
  }
}
