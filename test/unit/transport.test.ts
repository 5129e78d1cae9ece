// Bodies the transport throws away (a redirect's, a retried 503's) and Transport.close(), against a real
// HTTP server that drips those bodies a byte at a time, just inside the idle timeout: neither may hold
// the connection, or keep close() (and so the CLI) from ending.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Transport } from '../../src/registry/transport.js';

describe('bodies the transport discards', () => {
  let server: Server;
  let base: string;
  const drips = new Set<NodeJS.Timeout>();
  /** When each dripping connection was closed (by the client: the server never ends them). */
  const closedAt = new Map<string, number>();
  let busyAnswers = 0;

  /** A body of 1 MB announced, one byte sent every 1.5 s: never idle for 2 s, never finished. */
  function drip(res: ServerResponse, name: string): void {
    res.write('x');
    const timer = setInterval(() => res.write('x'), 1_500);
    drips.add(timer);
    const socket = res.socket as Socket;
    socket.once('close', () => {
      clearInterval(timer);
      drips.delete(timer);
      closedAt.set(name, Date.now());
    });
  }

  before(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      if (path === '/redirect') {
        res.writeHead(302, { location: '/final', 'content-length': String(1 << 20) });
        drip(res, 'redirect');
      } else if (path === '/busy' && busyAnswers++ === 0) {
        res.writeHead(503, { 'retry-after': '0', 'content-length': String(1 << 20) });
        drip(res, 'busy');
      } else if (path === '/endless') {
        res.writeHead(200, { 'content-length': String(1 << 20) });
        drip(res, 'endless');
      } else res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const t of drips) clearInterval(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const transport = () =>
    new Transport({
      settings: () => ({ tls: 'disabled', concurrency: 4 }),
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20, maxElapsedMs: 10_000 },
    });

  /** How long `promise` took, or undefined if it had not settled after `ms`. */
  async function within(promise: Promise<unknown>, ms: number): Promise<number | undefined> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), ms);
    });
    const took = await Promise.race([promise.then(() => Date.now() - started), timeout]);
    clearTimeout(timer);
    return took;
  }

  it("cuts off a redirect's and a retried 503's dripping body: the connection and close() are freed", async () => {
    const t = transport();
    const bounds = {
      deadline: { ms: 3_000, what: 'the request', setting: 'limits.timeouts.manifest' },
      idleMs: 2_000,
    };
    const started = Date.now();
    for (const path of ['/redirect', '/busy']) {
      const res = await t.send({ method: 'GET', url: new URL(`${base}${path}`), ...bounds });
      assert.equal(res.status, 200, path);
      let text = '';
      for await (const chunk of res.body) text += chunk;
      assert.equal(text, 'ok', path);
    }
    assert.ok(Date.now() - started < 1_000, 'the requests succeeded by the next hop at once');
    assert.equal(t.stats.retries, 1);
    // The discarded bodies are cut off within seconds (their connections closed), not kept dripping.
    const waited = Date.now();
    while ((!closedAt.has('redirect') || !closedAt.has('busy')) && Date.now() - waited < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const name of ['redirect', 'busy']) {
      const at = closedAt.get(name);
      assert.ok(at !== undefined && at - started < 8_000, `${name}: connection still open`);
    }
    const took = await within(t.close(), 2_000);
    assert.ok(took !== undefined, 'close() did not resolve');
  });

  it('close() ends, within seconds, even with a body nobody reads still dripping', async () => {
    const t = transport();
    const res = await t.send({ method: 'GET', url: new URL(`${base}/endless`) });
    assert.equal(res.status, 200);
    // The body is left unread, with no deadline on it: only close() can end it.
    const took = await within(t.close(), 12_000);
    assert.ok(took !== undefined, 'close() did not resolve');
    assert.ok(res.body.destroyed);
  });
});
