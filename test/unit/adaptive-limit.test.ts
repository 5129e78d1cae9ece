// Requests in flight per registry host: grows while the registry answers well and requests wait, halves
// on 429/503 once per round, paces per-action rates without holding a slot; and the transport keeps
// connections across HEADs and counts the throttling it met. Counted, never timed (except the pacing
// test, which asserts a lower bound that a loaded machine can only exceed).

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AdaptiveLimit } from '../../src/registry/adaptive-limit.js';
import { drain, Transport } from '../../src/registry/transport.js';

/** A deferred: a request "in flight" until resolved. */
function pending(): { promise: Promise<void>; done: () => void } {
  let done!: () => void;
  const promise = new Promise<void>((r) => {
    done = r;
  });
  return { promise, done };
}

describe('AdaptiveLimit', () => {
  it('grows by one per full round of good answers while requests wait, up to its ceiling', async () => {
    const limit = new AdaptiveLimit('r.example', { initial: 2, max: 4 });
    const inflight: { done: () => void }[] = [];
    const started: number[] = [];
    const run = (n: number) =>
      limit.run(async () => {
        started.push(n);
        const p = pending();
        inflight.push(p);
        await p.promise;
        limit.answered(200);
      });
    const all = Array.from({ length: 12 }, (_, n) => run(n));
    await new Promise((r) => setImmediate(r));
    assert.equal(started.length, 2, 'two in flight at the start');
    // Two good answers while ten wait: one full round → 3.
    inflight.shift()!.done();
    inflight.shift()!.done();
    await new Promise((r) => setImmediate(r));
    assert.equal(limit.current, 3);
    // Three more → 4, the ceiling; it stays there.
    for (let i = 0; i < 3; i++) inflight.shift()!.done();
    await new Promise((r) => setImmediate(r));
    assert.equal(limit.current, 4);
    while (inflight.length > 0) {
      inflight.shift()!.done();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    assert.equal(limit.current, 4);
    assert.equal(limit.eventful, false, 'nothing to report');
  });

  it('does not grow while nothing waits (the bound is not what limits)', () => {
    const limit = new AdaptiveLimit('r.example', { initial: 2, max: 8 });
    for (let i = 0; i < 20; i++) limit.answered(200);
    assert.equal(limit.current, 2);
  });

  it('halves on 429 or 503 once per round, counts each, and says the host is congested', async () => {
    const changes: number[] = [];
    const limit = new AdaptiveLimit('r.example', { initial: 16, max: 64 }, () => changes.push(Date.now()));
    const hold = pending();
    // Eight requests in flight when the refusals come.
    const running = Array.from({ length: 8 }, () => limit.run(() => hold.promise));
    await new Promise((r) => setImmediate(r));
    assert.equal(limit.congested, false);
    limit.answered(429);
    assert.equal(limit.current, 8);
    assert.equal(limit.congested, true);
    assert.equal(changes.length, 1, 'congestion began: one change');
    // The other seven were sent before the decrease: their refusals do not halve it again.
    for (let i = 0; i < 7; i++) limit.answered(i % 2 === 0 ? 503 : 429);
    assert.equal(limit.current, 8);
    // A refusal after that round: halved again.
    limit.answered(429);
    assert.equal(limit.current, 4);
    assert.deepEqual(
      {
        tooManyRequests: limit.stats.tooManyRequests,
        unavailable: limit.stats.unavailable,
        concurrency: limit.stats.concurrency,
      },
      { tooManyRequests: 5, unavailable: 4, concurrency: { initial: 16, lowest: 4, final: 4 } },
    );
    assert.equal(limit.eventful, true);
    limit.waited(1500);
    assert.equal(limit.stats.waitedMs, 1500);
    hold.done();
    await Promise.all(running);
    limit.close();
  });

  it('never goes below one request in flight', () => {
    const limit = new AdaptiveLimit('r.example', { initial: 2, max: 2 });
    for (let i = 0; i < 10; i++) limit.answered(429);
    assert.equal(limit.current, 1);
    limit.close();
  });

  it('paces a rate-limited action (10 per second: the 11th waits about a second) and counts the wait', async () => {
    const limit = new AdaptiveLimit('public.ecr.aws', { initial: 16, max: 16, rates: { manifestPut: 10 } });
    const started = Date.now();
    await Promise.all(Array.from({ length: 11 }, () => limit.pace('manifestPut')));
    const took = Date.now() - started;
    assert.ok(took >= 950, `11 paced actions took ${took} ms`);
    assert.ok(limit.stats.pacedMs > 0);
    // Other requests are not paced.
    const other = Date.now();
    await limit.pace(undefined);
    assert.ok(Date.now() - other < 50);
  });
});

describe('Transport: connections and throttling', () => {
  let server: Server;
  let base: URL;
  let connections = 0;
  let answer429 = 0;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/busy' && answer429 > 0) {
        answer429--;
        res.writeHead(429, { 'retry-after': '0', 'content-length': '0' });
        res.end();
        return;
      }
      res.writeHead(200, { 'docker-content-digest': 'sha256:x', 'content-length': '0' });
      res.end();
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const transport = () =>
    new Transport({
      settings: () => ({ tls: 'disabled', concurrency: 4, maxConcurrency: 4 }),
      retry: { attempts: 6, baseDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 10_000 },
    });

  it('keeps one connection for many HEADs one after another', async () => {
    const t = transport();
    connections = 0;
    for (let i = 0; i < 20; i++) {
      const res = await t.send({ method: 'HEAD', url: new URL('/v2/x/manifests/1', base) });
      assert.equal(res.status, 200);
      drain(res.body);
    }
    // Without keep-alive on HEAD this is 20. (A second connection may open when the next request is
    // sent before the previous answer's socket went back to the pool.)
    assert.ok(connections <= 2, `${connections} connections for 20 HEADs`);
    await t.close();
  });

  it('counts the 429s it retried and the time it waited, per host', async () => {
    const t = transport();
    answer429 = 3;
    const res = await t.send({ method: 'GET', url: new URL('/busy', base) });
    assert.equal(res.status, 200);
    drain(res.body);
    const [stats] = t.throttling();
    assert.equal(stats?.host, base.host);
    assert.equal(stats?.tooManyRequests, 3);
    assert.equal(t.stats.retries, 3);
    assert.equal(t.congested(base.host), true);
    assert.equal(t.congested('elsewhere.example'), false);
    await t.close();
  });
});
