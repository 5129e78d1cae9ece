// Backoff for transient faults (408, 429, 5xx, network errors): exponential with full jitter, and the
// registry's Retry-After (seconds or an HTTP date) when it gives one. Sleeping holds no concurrency slot:
// the caller waits outside the host limiter.

import { AbortedError } from '../errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** First backoff step in milliseconds. */
  baseDelayMs: number;
  /** Longest single wait. */
  maxDelayMs: number;
  /** Give up retrying once this much time has passed since the first attempt. */
  maxElapsedMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  maxElapsedMs: 5 * 60_000,
};

/** Parse Retry-After: delta seconds or an HTTP date. Returns milliseconds, or undefined. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Only something shaped like an HTTP date: Date.parse is lenient and reads "-1" or "1.5" as dates.
  if (!/^[A-Za-z]{3},? /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfter: string | undefined,
  random: () => number = Math.random,
): number {
  const fromHeader = parseRetryAfter(retryAfter);
  if (fromHeader !== undefined) return Math.min(fromHeader, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
