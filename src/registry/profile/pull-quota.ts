// A pull quota reported in rate-limit headers (Docker Hub: `ratelimit-limit: 100;w=21600`), tracked per
// registry for the run. It does three things with what the registry says:
//
// - remembers the last numbers, for the reports (`rateLimits`);
// - slows the run down before the quota is gone: once no more than a reserve (a share of the limit) is
//   left, manifest GETs are spaced window/limit apart — the rate at which a sliding window gives pulls
//   back — so that the run goes on slowly instead of running into 429s;
// - names the quota and its reset time when a 429 comes, while the transport waits it out and when it
//   could not.
//
// Vendors give the words and the reserve (src/cloud/dockerhub.ts); nothing here knows a vendor.

import type { QuotaAnswer, RateLimitHeaders } from '../rate-limit.js';
import type { PullQuota, PullQuotaReport, QuotaNotice } from './profile.js';

export interface PullQuotaPolicy {
  /** What the quota is called in messages: "Docker Hub pull quota". */
  name: string;
  /** Keep this share of the limit in reserve: once no more is left, manifest GETs are spaced out. */
  reserveFraction: number;
  /** The window to assume when the registry names none (`w=`). */
  defaultWindowSeconds?: number;
  /** What the user can do once the quota is gone (the error's hint). */
  hint: string;
}

/** "850 ms", "2.0 s", "36 s", "3.6 min", "25 min", "6 h" */
export function durationWords(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 600) return `${Math.round(s / 6) / 10} min`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.round((s / 3600) * 10) / 10} h`;
}

export class ReportedPullQuota implements PullQuota {
  private latest: (RateLimitHeaders & { observedAt: number }) | undefined;
  private resetAt: number | undefined;
  private throttled = 0;
  /** Inside a spell of 429s: one notice for all of them, not one per request. */
  private inSpell = false;
  private lastGetAt = Number.NEGATIVE_INFINITY;
  private pacedRequests = 0;
  private pacedMs = 0;
  private pacingAnnounced = false;
  /** The last 429's Retry-After, to tell a capped wait from the one asked for. */
  private askedMs: number | undefined;

  constructor(
    private readonly registry: string,
    private readonly policy: PullQuotaPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  observe(answer: QuotaAnswer): number | undefined {
    const now = this.now();
    if (answer.rateLimit) {
      this.latest = { ...this.latest, ...answer.rateLimit, observedAt: now };
      if (answer.rateLimit.resetAt !== undefined) this.resetAt = answer.rateLimit.resetAt;
    }
    if (answer.status === 429) {
      this.throttled++;
      this.askedMs = answer.retryAfterMs;
      // Retry-After on a 429 is the registry's own word on when pulls work again.
      if (answer.rateLimit?.resetAt === undefined && answer.retryAfterMs !== undefined)
        this.resetAt = now + answer.retryAfterMs;
      if (answer.retryAfterMs === undefined && this.resetAt !== undefined && this.resetAt > now)
        return this.resetAt - now;
      return undefined;
    }
    if (answer.status < 400) this.inSpell = false;
    return undefined;
  }

  retrying(delayMs: number, reason: 'retry-after' | 'reset' | 'backoff'): QuotaNotice | undefined {
    if (this.inSpell) return undefined;
    this.inSpell = true;
    const capped = reason === 'retry-after' && this.askedMs !== undefined && this.askedMs > delayMs + 1000;
    const why = capped
      ? `(the longest wait between retries; its Retry-After asks for ${durationWords(this.askedMs!)})`
      : reason === 'retry-after'
        ? 'as its Retry-After asks'
        : reason === 'reset'
          ? 'when the quota resets'
          : 'with backoff (it gave no Retry-After or reset time)';
    return {
      level: 'warn',
      text: `${this.registry}: ${this.policy.name} exhausted (HTTP 429${this.left()}); retrying in ${durationWords(delayMs)} ${why}${this.resetWords()}`,
    };
  }

  beforeGet(maxWaitMs: number): { waitMs: number; exceeded?: boolean; notice?: QuotaNotice } {
    const now = this.now();
    const spacing = this.spacing();
    let at = spacing === undefined ? now : Math.max(now, this.lastGetAt + spacing);
    // Nothing left and the reset time known: no GET can succeed before it.
    if (this.latest?.remaining === 0 && this.resetAt !== undefined && this.resetAt > at) at = this.resetAt;
    const waitMs = at - now;
    if (waitMs > maxWaitMs) return { waitMs, exceeded: true };
    this.lastGetAt = at;
    if (waitMs > 0) {
      this.pacedRequests++;
      this.pacedMs += waitMs;
    }
    if (spacing === undefined) {
      this.pacingAnnounced = false;
      return { waitMs };
    }
    if (this.pacingAnnounced) return { waitMs };
    this.pacingAnnounced = true;
    const l = this.latest!;
    return {
      waitMs,
      notice: {
        level: 'info',
        text: `${this.registry}: ${this.policy.name}: ${l.remaining} of ${l.limit} pulls left${this.windowWords()}; manifest GETs are now spaced ${durationWords(spacing)} apart to keep a reserve of ${this.reserve(l.limit!)}`,
      },
    };
  }

  exhausted(waitMs?: number): { message: string; hint: string } {
    const message =
      waitMs === undefined
        ? `${this.policy.name} exhausted: ${this.registry} answered HTTP 429 to a manifest request${this.left()}${this.resetWords() || '; it gave no reset time'}`
        : `${this.policy.name} nearly exhausted${this.left()}: the next manifest GET would have to wait ${durationWords(waitMs)} to keep a reserve, longer than --retry-max-time allows${this.resetWords()}`;
    return { message, hint: this.policy.hint };
  }

  report(): PullQuotaReport | undefined {
    if (!this.latest && this.throttled === 0) return undefined;
    const l = this.latest;
    return {
      registry: this.registry,
      quota: this.policy.name,
      ...(l?.limit !== undefined ? { limit: l.limit } : {}),
      ...(l?.remaining !== undefined ? { remaining: l.remaining } : {}),
      ...(this.window() !== undefined ? { windowSeconds: this.window()! } : {}),
      ...(l ? { observedAt: new Date(l.observedAt).toISOString() } : {}),
      ...(this.resetAt !== undefined ? { resetAt: new Date(this.resetAt).toISOString() } : {}),
      throttled: this.throttled,
      pacedRequests: this.pacedRequests,
      pacedMs: Math.round(this.pacedMs),
    };
  }

  private window(): number | undefined {
    return this.latest?.windowSeconds ?? this.policy.defaultWindowSeconds;
  }

  private reserve(limit: number): number {
    return Math.max(1, Math.ceil(limit * this.policy.reserveFraction));
  }

  /** Milliseconds between manifest GETs while the reserve is reached; undefined: no pacing. */
  private spacing(): number | undefined {
    const l = this.latest;
    const window = this.window();
    if (l?.limit === undefined || l.remaining === undefined || !window || l.limit === 0) return undefined;
    if (l.remaining > this.reserve(l.limit)) return undefined;
    return (window * 1000) / l.limit;
  }

  /** ", 0 of 100 pulls left per 6 h" — what is known of the numbers. */
  private left(): string {
    const l = this.latest;
    if (l?.remaining === undefined) return '';
    const of = l.limit !== undefined ? ` of ${l.limit}` : '';
    return `, ${l.remaining}${of} pulls left${this.windowWords('per')}`;
  }

  private windowWords(word = 'in a'): string {
    const w = this.window();
    return w === undefined ? '' : ` ${word} ${durationWords(w * 1000)}${word === 'in a' ? ' window' : ''}`;
  }

  private resetWords(): string {
    const now = this.now();
    if (this.resetAt === undefined || this.resetAt <= now) return '';
    return `; it resets at ${new Date(this.resetAt).toISOString()} (in ${durationWords(this.resetAt - now)})`;
  }
}
