// A token that expires while several requests carry it: every one of them that is answered 401 must be
// able to retry with a fresh token, not only the first to report it. Against a real token realm on
// loopback; the Authenticator is the one the registry client uses.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { Authenticator } from '../../src/registry/auth.js';
import { Transport } from '../../src/registry/transport.js';
import { basicLogin } from '../harness/basic-login.js';
import { closeServer, listen } from '../harness/http-server.js';

describe('a token that expires under concurrent requests', () => {
  it('every request that carried it may retry with a fresh token (a password login cannot be renewed)', async () => {
    let issued = 0;
    const server = createServer((_req, res) => {
      issued++;
      const body = JSON.stringify({ token: `t${issued}`, expires_in: 300 });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
    const port = await listen(server, '127.0.0.1');
    const realm = `http://127.0.0.1:${port}/token`;
    const transport = new Transport({ settings: () => ({ tls: 'disabled', concurrency: 4 }) });
    const login = basicLogin('registry.test');
    const auth = new Authenticator('registry.test', transport, login);
    try {
      const challenge = `Bearer realm="${realm}",service="registry.test",scope="repository:a/b:pull"`;
      auth.unauthorized(challenge, undefined);
      const scopes = ['repository:a/b:pull'];
      // Two requests leave with the same token (a config blob and a layer HEADed at once)...
      const first = await auth.authorize(scopes);
      const second = await auth.authorize(scopes);
      assert.equal(first, 'Bearer t1');
      assert.equal(second, first);
      // ...and both come back 401: the token expired on the way. The same challenge, twice.
      const expired = `${challenge},error="invalid_token"`;
      assert.equal(auth.unauthorized(expired, first), true, 'the first 401 may retry');
      assert.equal(auth.unauthorized(expired, second), true, 'the second 401 may retry too');
      assert.equal(await auth.authorize(scopes), 'Bearer t2');
      assert.equal(auth.renewable, false);
    } finally {
      await transport.close();
      await closeServer(server);
    }
  });
});
