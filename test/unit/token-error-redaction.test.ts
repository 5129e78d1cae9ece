// A token server's error answer goes into the error's hint, and so into reports. A realm that echoes what
// it was sent (`400 invalid_grant: refresh_token=...`) must not put the credential there. Against a real
// token realm on loopback that answers 400 with the request it got.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { AuthError } from '../../src/errors.js';
import { Authenticator } from '../../src/registry/auth.js';
import type { Credential } from '../../src/registry/credentials/types.js';
import { sourcesProvider } from '../../src/registry/profile/credential-provider.js';
import { Transport } from '../../src/registry/transport.js';
import { redactSecrets } from '../../src/sanitize.js';
import { closeServer, listen } from '../harness/http-server.js';

/** Every form a secret may be echoed in: as is, in a URL, in an urlencoded form, base64 of user:password. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)];
}

/** The AuthError a token request with `credential` gets from a realm that echoes the request in a 400. */
async function echoedError(credential: Credential): Promise<AuthError> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = Buffer.concat(chunks).toString('utf8');
      const decoded = new URLSearchParams(form).get('refresh_token') ?? '';
      const basic = req.headers.authorization ?? '';
      const password =
        Buffer.from(basic.replace(/^Basic /, ''), 'base64')
          .toString('utf8')
          .split(':')[1] ?? '';
      const body = `invalid_grant: ${form} token=${decoded} auth=${basic} password=${password} q=${encodeURIComponent(password)}`;
      res.writeHead(400, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
  });
  const port = await listen(server, '127.0.0.1');
  const transport = new Transport({ settings: () => ({ tls: 'disabled', concurrency: 4 }) });
  const auth = new Authenticator(
    'registry.test',
    transport,
    sourcesProvider([{ description: 'a docker login', lookup: async () => credential }], 'registry.test'),
  );
  try {
    auth.unauthorized(`Bearer realm="http://127.0.0.1:${port}/token",service="registry.test"`, undefined);
    const err = await auth.authorize(['repository:a/b:pull']).then(
      () => assert.fail('the realm answered 400'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuthError, String(err));
    return err;
  } finally {
    await transport.close();
    await closeServer(server);
  }
}

describe("a token server's error answer in the message", () => {
  it('never holds the refresh token the OAuth2 form carried', async () => {
    const token = 'rt/se cret+v=1~x';
    const err = await echoedError({ kind: 'identity-token', token });
    const text = `${err.message} ${err.hint}`;
    for (const f of forms(token)) assert.ok(!text.includes(f), `"${f}" in ${text}`);
    assert.match(text, /REDACTED/);
    assert.match(text, /invalid_grant/, 'the rest of the answer stays');
  });

  it('never holds the password or the Basic header sent to the realm', async () => {
    const password = 'pa ss/wörd+1';
    const err = await echoedError({ kind: 'basic', username: 'alice', password });
    const text = `${err.message} ${err.hint}`;
    const header = Buffer.from(`alice:${password}`).toString('base64');
    for (const f of [...forms(password), ...forms(header)]) assert.ok(!text.includes(f), `"${f}" in ${text}`);
    assert.match(text, /REDACTED/);
    assert.match(text, /auth=Basic REDACTED password=REDACTED q=REDACTED/, 'the rest of the answer stays');
  });

  it('drops the start of a secret where the answer was cut short', () => {
    assert.equal(redactSecrets('error: token=s3cr', ['s3cret'], true), 'error: token=');
    assert.equal(redactSecrets('error: token=s3cr', ['s3cret'], false), 'error: token=s3cr');
    assert.equal(redactSecrets('a s3cret b s3cret', ['s3cret', '']), 'a REDACTED b REDACTED');
  });
});
