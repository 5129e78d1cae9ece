// Pull quotas reported in rate-limit headers (Docker Hub): reading the headers, pacing manifest GETs once
// the reserve is reached, naming a 429 and its reset time. Pure, with a clock the test moves.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { renderRateLimits } from '../../src/cli/summary.js';
import { DOCKER_HUB_QUOTA } from '../../src/cloud/dockerhub.js';
import { ReportedPullQuota } from '../../src/registry/profile/pull-quota.js';
import { readRateLimit } from '../../src/registry/rate-limit.js';

const headers = (h: Record<string, string>) => (name: string) => h[name];
const T0 = Date.parse('2026-11-23T08:00:00.000Z');

function quota(now: { t: number }) {
  return new ReportedPullQuota('docker.io', DOCKER_HUB_QUOTA, () => now.t);
}

function answer(status: number, h: Record<string, string>, now: number) {
  return {
    status,
    rateLimit: readRateLimit(headers(h), now),
    retryAfterMs: h['retry-after'] ? Number(h['retry-after']) * 1000 : undefined,
  };
}

describe('rate-limit headers', () => {
  it("reads Docker Hub's limit, remaining and window", () => {
    assert.deepEqual(
      readRateLimit(headers({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' })),
      { limit: 100, remaining: 76, windowSeconds: 21600 },
    );
  });

  it('reads the draft list form, a reset in seconds or as an epoch time', () => {
    const now = T0;
    assert.deepEqual(
      readRateLimit(
        headers({
          'ratelimit-limit': '10, 10;w=1, 50;w=60',
          'ratelimit-remaining': '3',
          'ratelimit-reset': '30',
        }),
        now,
      ),
      { limit: 10, remaining: 3, windowSeconds: 1, resetAt: now + 30_000 },
    );
    assert.equal(
      readRateLimit(headers({ 'ratelimit-reset': '1900000000' }), now)?.resetAt,
      1_900_000_000_000,
    );
  });

  it('ignores what is not a plain number, and answers nothing without the headers', () => {
    assert.equal(readRateLimit(headers({})), undefined);
    assert.equal(
      readRateLimit(
        headers({ 'ratelimit-limit': '-1', 'ratelimit-remaining': 'lots', 'ratelimit-reset': '1e3' }),
      ),
      undefined,
    );
    assert.deepEqual(readRateLimit(headers({ 'ratelimit-limit': '100;w=abc' })), { limit: 100 });
  });
});

describe('Docker Hub pull quota', () => {
  it('is part of the docker.io profile, and of a registry the config calls dockerhub, and no other', () => {
    const profiles = buildProfiles({ flags: {}, env: {} });
    assert.ok(profiles.for('docker.io').pullQuota);
    assert.ok(profiles.for('registry-1.docker.io').pullQuota);
    assert.equal(profiles.for('quay.io').pullQuota, undefined);
    assert.equal(profiles.for('127.0.0.1:5000').pullQuota, undefined);
  });

  it('goes at full speed while more than a tenth is left, then spaces GETs window/limit apart', () => {
    const now = { t: T0 };
    const q = quota(now);
    assert.equal(q.beforeGet(60_000).waitMs, 0, 'nothing known yet: no pacing');
    q.observe(answer(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '11;w=21600' }, now.t));
    assert.deepEqual(q.beforeGet(600_000), { waitMs: 0 });
    assert.deepEqual(q.beforeGet(600_000), { waitMs: 0 });
    // 10 left = the reserve: 21600 s / 100 pulls = one GET every 216 s.
    q.observe(answer(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '10;w=21600' }, now.t));
    const first = q.beforeGet(600_000);
    assert.equal(first.waitMs, 216_000, 'the last GET went just now');
    assert.match(
      first.notice!.text,
      /^docker\.io: Docker Hub pull quota: 10 of 100 pulls left in a 6 h window; manifest GETs are now spaced 3.6 min apart to keep a reserve of 10$/,
    );
    const second = q.beforeGet(600_000);
    assert.equal(second.waitMs, 432_000, 'concurrent GETs queue behind each other');
    assert.equal(second.notice, undefined, 'said once');
    // A third would wait past the limit given: refused, nothing reserved.
    assert.deepEqual(q.beforeGet(600_000), { waitMs: 648_000, exceeded: true });
    assert.match(
      q.exhausted(648_000).message,
      /Docker Hub pull quota nearly exhausted, 10 of 100 pulls left per 6 h: the next manifest GET would have to wait 11 min/,
    );
    // The quota recovers (a sliding window gives pulls back): full speed again.
    now.t += 432_000;
    q.observe(answer(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '40;w=21600' }, now.t));
    assert.deepEqual(q.beforeGet(600_000), { waitMs: 0 });
    const r = q.report()!;
    assert.equal(r.pacedRequests, 2);
    assert.equal(r.pacedMs, 648_000);
    assert.equal(r.remaining, 40);
  });

  it('with nothing left and a reset time known, the next GET waits for the reset', () => {
    const now = { t: T0 };
    const q = quota(now);
    q.observe(
      answer(
        200,
        { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0', 'ratelimit-reset': '90' },
        now.t,
      ),
    );
    assert.equal(q.beforeGet(600_000).waitMs, 90_000);
  });

  it('names a 429, once per spell, with the reset time from Retry-After or ratelimit-reset', () => {
    const now = { t: T0 };
    const q = quota(now);
    const limited = { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' };
    assert.equal(
      q.observe(answer(429, { ...limited, 'retry-after': '30' }, now.t)),
      undefined,
      'Retry-After rules',
    );
    const notice = q.retrying(30_000, 'retry-after');
    assert.equal(notice?.level, 'warn');
    assert.equal(
      notice?.text,
      'docker.io: Docker Hub pull quota exhausted (HTTP 429, 0 of 100 pulls left per 6 h); retrying in 30 s as its Retry-After asks; it resets at 2026-11-23T08:00:30.000Z (in 30 s)',
    );
    q.observe(answer(429, limited, now.t));
    assert.equal(q.retrying(1000, 'backoff'), undefined, 'one notice for the spell');
    // A Retry-After longer than the retry policy's longest wait: the notice does not pretend otherwise.
    q.observe(answer(200, limited, now.t));
    q.observe(answer(429, { ...limited, 'retry-after': '3600' }, now.t));
    assert.match(
      q.retrying(30_000, 'retry-after')!.text,
      /retrying in 30 s \(the longest wait between retries; its Retry-After asks for 1 h\); it resets at 2026-11-23T09:00:00\.000Z/,
    );
    q.observe(answer(200, { ...limited, 'ratelimit-remaining': '1;w=21600' }, now.t));
    // A new spell, without Retry-After but with a reset: the quota says how long to wait.
    const wait = q.observe(answer(429, { ...limited, 'ratelimit-reset': '12' }, now.t));
    assert.equal(wait, 12_000);
    assert.match(q.retrying(12_000, 'reset')!.text, /retrying in 12 s when the quota resets/);
    const err = q.exhausted();
    assert.equal(
      err.message,
      'Docker Hub pull quota exhausted: docker.io answered HTTP 429 to a manifest request, 0 of 100 pulls left per 6 h; it resets at 2026-11-23T08:00:12.000Z (in 12 s)',
    );
    assert.match(err.hint, /docker login/);
    assert.equal(q.report()?.throttled, 4);
  });

  it('a 429 with no reset time at all says so', () => {
    const now = { t: T0 };
    const q = quota(now);
    assert.equal(q.observe(answer(429, {}, now.t)), undefined);
    assert.match(
      q.retrying(700, 'backoff')!.text,
      /exhausted \(HTTP 429\); retrying in 700 ms with backoff \(it gave no Retry-After or reset time\)$/,
    );
    assert.match(q.exhausted().message, /answered HTTP 429 to a manifest request; it gave no reset time$/);
  });

  it('reports what it saw, and a line for people', () => {
    const now = { t: T0 };
    const q = quota(now);
    assert.equal(q.report(), undefined, 'nothing seen, nothing reported');
    q.observe(answer(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' }, now.t));
    const r = q.report()!;
    assert.deepEqual(r, {
      registry: 'docker.io',
      quota: 'Docker Hub pull quota',
      limit: 100,
      remaining: 76,
      windowSeconds: 21600,
      observedAt: '2026-11-23T08:00:00.000Z',
      throttled: 0,
      pacedRequests: 0,
      pacedMs: 0,
    });
    assert.deepEqual(renderRateLimits([r]), [
      'docker.io: Docker Hub pull quota: 76 of 100 left (6 h window) as of 2026-11-23T08:00:00.000Z',
    ]);
  });
});
