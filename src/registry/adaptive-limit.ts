// Requests in flight to one registry host, adapted to how it answers (additive increase, multiplicative
// decrease, as TCP does): the bound grows by one each time a full round of requests came back well while
// more were waiting, and halves when the registry answers 429 or 503 (at most once per round, so a burst
// of refusals to requests already sent counts once). A configured concurrency is the ceiling, and the
// starting point; without one the bound starts at 16 and may grow to 64.
//
// The host's throttling is also what the copy engine asks about (`congested`): a registry that refused a
// request with 429/503 a moment ago is slow on purpose, and work for other registries does not wait for
// it. And it is counted for the report: refusals, time spent waiting to retry them, the lowest bound.

import pLimit from 'p-limit';
import { sleep } from './retry.js';

/** How long after its last 429/503 a host still counts as throttling us. */
export const CONGESTION_MS = 5_000;

export interface AdaptiveBounds {
  /** Requests in flight at the start. */
  initial: number;
  /** The most it may grow to. */
  max: number;
  /** Requests per second allowed for some kinds of request (a vendor's API rate limits). */
  rates?: RequestRates;
}

/** Requests per second, by kind of request, that a registry accepts (ECR Public: ~10 manifest PUTs/s). */
export interface RequestRates {
  manifestPut?: number;
}

export type RateAction = keyof RequestRates;

/** What the report says about one host that throttled the run. */
export interface ThrottleStats {
  host: string;
  /** Answers 429 (Too Many Requests). */
  tooManyRequests: number;
  /** Answers 503 (Service Unavailable). */
  unavailable: number;
  /** Time requests spent waiting before a retry of such an answer, summed over requests (ms). */
  waitedMs: number;
  /** Time requests spent waiting for a per-action rate limit (ms). */
  pacedMs: number;
  /** Requests in flight allowed at the start, the lowest it came to, and at the end. */
  concurrency: { initial: number; lowest: number; final: number };
}

export class AdaptiveLimit {
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly bounds: AdaptiveBounds;
  /** Good answers since the bound last changed, counted while requests were waiting for a slot. */
  private credit = 0;
  /** Answers still owed by requests sent before the last decrease: their refusals are not counted again. */
  private grace = 0;
  private lastThrottled = 0;
  private congestionTimer: NodeJS.Timeout | undefined;
  private nextPaced = new Map<RateAction, number>();
  readonly stats: ThrottleStats;

  constructor(
    host: string,
    bounds: AdaptiveBounds,
    private readonly onCongestion: () => void = () => {},
  ) {
    const initial = Math.max(1, Math.floor(Math.min(bounds.initial, bounds.max)));
    this.bounds = { ...bounds, max: Math.max(initial, Math.floor(bounds.max)) };
    this.limit = pLimit(initial);
    this.stats = {
      host,
      tooManyRequests: 0,
      unavailable: 0,
      waitedMs: 0,
      pacedMs: 0,
      concurrency: { initial, lowest: initial, final: initial },
    };
  }

  /** Requests in flight allowed now. */
  get current(): number {
    return this.limit.concurrency;
  }

  /** Run `fn` once a slot is free (the slot is held until `fn` settles). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.limit(fn);
  }

  /**
   * Wait until a request of this kind may go, by the host's per-second rate for it. Called before a slot
   * is taken: the wait holds none.
   */
  async pace(action: RateAction | undefined, signal?: AbortSignal): Promise<void> {
    const rate = action ? this.bounds.rates?.[action] : undefined;
    if (!action || !rate || rate <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.nextPaced.get(action) ?? 0);
    this.nextPaced.set(action, at + 1000 / rate);
    if (at > now) {
      this.stats.pacedMs += at - now;
      await sleep(at - now, signal);
    }
  }

  /** An answer from the host: grow on a round of good ones while requests wait, halve on a refusal. */
  answered(status: number): void {
    if (this.grace > 0) this.grace--;
    if (status === 429 || status === 503) {
      if (status === 429) this.stats.tooManyRequests++;
      else this.stats.unavailable++;
      this.throttled();
      return;
    }
    if (status >= 500) return;
    if (this.limit.pendingCount === 0) return;
    if (++this.credit >= this.current && this.current < this.bounds.max) {
      this.set(this.current + 1);
    }
  }

  /** Time a request waited before retrying a 429/503 answer. */
  waited(ms: number): void {
    this.stats.waitedMs += ms;
  }

  /** Whether the host refused a request with 429/503 within the last CONGESTION_MS. */
  get congested(): boolean {
    return this.lastThrottled > 0 && Date.now() - this.lastThrottled < CONGESTION_MS;
  }

  private throttled(): void {
    const was = this.congested;
    this.lastThrottled = Date.now();
    if (this.grace === 0) {
      this.set(Math.max(1, Math.floor(this.current / 2)));
      // The requests already out when the bound went down may be refused too: one decrease per round.
      this.grace = this.limit.activeCount;
    }
    clearTimeout(this.congestionTimer);
    this.congestionTimer = setTimeout(() => this.onCongestion(), CONGESTION_MS + 10);
    this.congestionTimer.unref();
    if (!was) this.onCongestion();
  }

  private set(n: number): void {
    this.credit = 0;
    this.limit.concurrency = n;
    this.stats.concurrency.lowest = Math.min(this.stats.concurrency.lowest, n);
    this.stats.concurrency.final = n;
  }

  /** Whether this host was throttled at all (refusals or pacing): only those are reported. */
  get eventful(): boolean {
    return this.stats.tooManyRequests + this.stats.unavailable > 0 || this.stats.pacedMs > 0;
  }

  close(): void {
    clearTimeout(this.congestionTimer);
  }
}
