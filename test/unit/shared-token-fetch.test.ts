// Concurrent requests for the same scopes share one token fetch. One caller's abort (an upload's cancel
// runs with a 1-second timeout) must not fail the others: the fetch is aborted only when every caller has
// aborted. Against a real token realm on loopback that takes 1.5 s to answer.

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { AbortedError } from '../../src/errors.js';
import { Authenticator } from '../../src/registry/auth.js';
import { Transport } from '../../src/registry/transport.js';
import { basicLogin } from '../harness/basic-login.js';
import { closeServer, listen } from '../harness/http-server.js';

const SCOPES = ['repository:a/b:pull'];

/** A realm answering each token request after `delayMs`; records requests cut before their answer. */
async function slowRealm(delayMs: number) {
  const state = { requests: 0, cut: 0, cutSeen: undefined as (() => void) | undefined };
  const server = createServer((_req, res) => {
    const n = ++state.requests;
    const timer = setTimeout(() => {
      const body = JSON.stringify({ token: `t${n}`, expires_in: 300 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    }, delayMs);
    res.on('close', () => {
      if (res.writableEnded) return;
      clearTimeout(timer);
      state.cut++;
      state.cutSeen?.();
    });
  });
  const port = await listen(server, '127.0.0.1');
  const transport = new Transport({ settings: () => ({ tls: 'disabled', concurrency: 4 }) });
  const login = basicLogin('registry.test');
  const auth = new Authenticator('registry.test', transport, login);
  auth.unauthorized(
    `Bearer realm="http://127.0.0.1:${port}/token",service="registry.test",scope="${SCOPES[0]}"`,
    undefined,
  );
  return {
    auth,
    state,
    /** Resolves when the realm has seen a request closed before it answered. */
    cutSeen: () =>
      new Promise<void>((resolve) => {
        if (state.cut > 0) resolve();
        else state.cutSeen = resolve;
      }),
    async stop() {
      await transport.close();
      await closeServer(server);
    },
  };
}

describe('a token fetch shared by concurrent requests', () => {
  it("one caller's timeout fails that caller only; the others get the token", async () => {
    const realm = await slowRealm(1500);
    try {
      const started = Date.now();
      // The caller with the short timeout starts the fetch; the second joins it.
      const short = realm.auth.authorize(SCOPES, AbortSignal.timeout(200));
      const patient = realm.auth.authorize(SCOPES);
      await assert.rejects(short, AbortedError);
      assert.ok(Date.now() - started < 1000, 'the aborted caller leaves at once, not when the fetch ends');
      assert.equal(await patient, 'Bearer t1');
      assert.equal(realm.state.requests, 1, 'one fetch for both');
      assert.equal(realm.state.cut, 0, 'the shared fetch was not aborted');
    } finally {
      await realm.stop();
    }
  });

  it('is aborted when every caller has aborted, and the next caller starts a fresh one', async () => {
    const realm = await slowRealm(1500);
    try {
      const cut = realm.cutSeen();
      const first = realm.auth.authorize(SCOPES, AbortSignal.timeout(200));
      const second = realm.auth.authorize(SCOPES, AbortSignal.timeout(300));
      await assert.rejects(first, AbortedError);
      await assert.rejects(second, AbortedError);
      await cut;
      assert.equal(realm.state.cut, 1, 'the realm saw the request closed before its answer');
      assert.equal(await realm.auth.authorize(SCOPES), 'Bearer t2');
    } finally {
      await realm.stop();
    }
  });

  it('leaves no abort listener on a long-lived signal once the token is in', async () => {
    const realm = await slowRealm(100);
    try {
      const run = new AbortController();
      const tokens = await Promise.all([
        realm.auth.authorize(SCOPES, run.signal),
        realm.auth.authorize(SCOPES, run.signal),
      ]);
      assert.deepEqual(tokens, ['Bearer t1', 'Bearer t1']);
      assert.equal(getEventListeners(run.signal, 'abort').length, 0);
    } finally {
      await realm.stop();
    }
  });
});
