// Rate-limit headers, read the same way whoever sends them. Docker Hub reports its pull quota in the
// IETF draft's fields (draft-ietf-httpapi-ratelimit-headers, the early versions):
//
//   ratelimit-limit: 100;w=21600        100 pulls per window of 21600 s
//   ratelimit-remaining: 76;w=21600     76 of them left
//   ratelimit-reset: 1200               (optional) seconds until the quota resets
//
// The values come from a registry: only plain non-negative integers are taken, anything else is ignored.
// What a quota means for a run (pacing, words in messages) is the registry profile's business
// (profile/pull-quota.ts), not this module's.

/** What one answer's headers said about the quota. Every field optional: registries send what they send. */
export interface RateLimitHeaders {
  limit?: number;
  remaining?: number;
  /** The window the limit applies to (`w=` of the limit or remaining field). */
  windowSeconds?: number;
  /** When the quota resets (epoch ms), from `ratelimit-reset`. */
  resetAt?: number;
}

/** An answer to a request the quota counts (or reports on), as the client hands it to the profile. */
export interface QuotaAnswer {
  status: number;
  rateLimit: RateLimitHeaders | undefined;
  /** The answer's Retry-After, in ms, when it had a readable one. */
  retryAfterMs: number | undefined;
}

/** Larger than any quota or window a registry would announce: a guard against nonsense. */
const MAX_VALUE = 1e12;
/** A reset value this large is an epoch time in seconds, not a delta (GitHub's style). */
const EPOCH_SECONDS_FROM = 1e9;

function integer(text: string | undefined): number | undefined {
  const t = text?.trim();
  if (!t || !/^\d{1,13}$/.test(t)) return undefined;
  const n = Number(t);
  return n <= MAX_VALUE ? n : undefined;
}

/** "100;w=21600" (or the draft's list form "100, 100;w=21600") → the number and the window. */
function quotaValue(text: string | undefined): { value?: number; window?: number } {
  if (!text) return {};
  const [first = '', ...rest] = text.split(',');
  const [number, ...params] = first.split(';');
  const out: { value?: number; window?: number } = {};
  const value = integer(number);
  if (value !== undefined) out.value = value;
  // The window may be on the first item or on a policy item of the list.
  for (const param of [...params, ...rest.flatMap((item) => item.split(';').slice(1))]) {
    const m = /^\s*w\s*=\s*(\d+)\s*$/i.exec(param);
    const window = integer(m?.[1]);
    if (window !== undefined && window > 0) {
      out.window = window;
      break;
    }
  }
  return out;
}

/**
 * The rate-limit fields of an answer, or undefined when it carried none. `get` reads one header by its
 * lower-case name.
 */
export function readRateLimit(
  get: (name: string) => string | undefined,
  now: number = Date.now(),
): RateLimitHeaders | undefined {
  const limit = quotaValue(get('ratelimit-limit'));
  const remaining = quotaValue(get('ratelimit-remaining'));
  const reset = integer(get('ratelimit-reset'));
  const out: RateLimitHeaders = {};
  if (limit.value !== undefined) out.limit = limit.value;
  if (remaining.value !== undefined) out.remaining = remaining.value;
  const window = limit.window ?? remaining.window;
  if (window !== undefined) out.windowSeconds = window;
  if (reset !== undefined) out.resetAt = reset >= EPOCH_SECONDS_FROM ? reset * 1000 : now + reset * 1000;
  return Object.keys(out).length > 0 ? out : undefined;
}
