// Concurrency bounds, on p-limit: one for images in flight, one per registry host for requests.

import pLimit from 'p-limit';

export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

export function createLimiter(concurrency: number): Limiter {
  const limit = pLimit(Math.max(1, Math.floor(concurrency)));
  return (fn) => limit(fn);
}
