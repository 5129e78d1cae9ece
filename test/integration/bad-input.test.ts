// Bad input, one test per row of the table "When something goes wrong" in README.md: for each mistake
// a user can make (config, reference, credentials, permissions, network, TLS, corrupt content), the exit
// code, a message on stderr that names what and where, and that nothing was written to a target.
//
// The tests run side by side, so none looks at another's traffic: each writes to a target repository of
// its own and counts only requests for that repository.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ALICE, BOB, type CliResult, READER, startWorld, type World } from '../harness/fixture.js';
import { freePort } from '../harness/ports.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { makeTestCertificate } from '../harness/tls-cert.js';

let world: World;
let image: SeededImage;
/** `host/repo:tag` of the seeded image on the token-auth registry, the source of most tests. */
let src: string;
/** Served corrupt by the proxy in one test: an image of its own, so no other test reads bad bytes. */
let corruptible: SeededImage;

before(async () => {
  world = await startWorld();
  [image, corruptible] = await Promise.all([
    seedImage(world.source.seedTarget, 'bad-input/app', 'v1', 'oci-image'),
    seedImage(world.source.seedTarget, 'bad-input/corruptible', 'v1', 'oci-image'),
  ]);
  src = `${world.source.host}/bad-input/app:v1`;
});
after(async () => {
  await world?.stop();
});

async function writeJson(name: string, value: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

/** A DOCKER_CONFIG directory whose config.json logs in to each host as given. */
async function dockerConfig(name: string, logins: Record<string, string>): Promise<string> {
  const dir = join(world.workDir, name);
  await mkdir(dir, { recursive: true });
  const auths: Record<string, { auth: string }> = {};
  for (const [host, userPass] of Object.entries(logins)) {
    auths[host] = { auth: Buffer.from(userPass).toString('base64') };
  }
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
  return dir;
}

/** Requests for `repo` at any of the three registries. */
function requestsFor(repo: string): number {
  return [world.source, world.basic, world.open].reduce((n, ep) => n + ep.proxy.count({ repo }), 0);
}

function manifestPuts(repo: string): number {
  return [world.source, world.basic, world.open].reduce(
    (n, ep) => n + ep.proxy.count({ method: 'PUT', kind: 'manifest', repo }),
    0,
  );
}

/** Whether the open registry holds repo:tag, asked directly (not through the CLI or the proxy's records). */
async function openHas(repo: string, tag: string): Promise<boolean> {
  const res = await fetch(`${world.open.registry.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: image.mediaType },
  });
  return res.status === 200;
}

function assertNoSecret(res: CliResult, ...secrets: string[]): void {
  for (const secret of secrets) {
    assert.ok(!(res.stdout + res.stderr).includes(secret), `output shows a secret: ${secret}`);
  }
}

function mirrorConfig(repo: string) {
  return {
    mirrors: [
      { source: `${world.source.host}/bad-input/app`, tags: ['v1'], targets: [`${world.open.host}/${repo}`] },
    ],
  };
}

interface HttpsRegistry {
  host: string;
  caFile: string;
  stop(): Promise<void>;
}

/**
 * An HTTPS registry with a self-signed certificate (made here with openssl): a TLS front for the open
 * registry's proxy, so that what gets through is counted there. Upload locations point back at itself.
 */
async function startHttpsRegistry(): Promise<HttpsRegistry> {
  const tls = await makeTestCertificate(join(world.workDir, 'tls'), 'regmirror test registry');
  const caFile = tls.certFile;
  const upstream = new URL(world.open.url);
  let host = '';
  const server: HttpsServer = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        const headers = { ...answer.headers };
        if (typeof headers.location === 'string') {
          headers.location = headers.location.replace(`http://${upstream.host}`, `https://${host}`);
        }
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    host,
    caFile,
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('bad input', { concurrency: 3 }, () => {
  // ---- config ----------------------------------------------------------------------------------------

  test('config file that is not valid JSON', async () => {
    const repo = 'config/json';
    // A trailing comma, the most common slip when editing JSON by hand.
    const entry = `{ "source": "${world.source.host}/bad-input/app", "targets": ["${world.open.host}/${repo}"], }`;
    const file = join(world.workDir, 'broken.json');
    await writeFile(file, `{\n  "mirrors": [\n    ${entry}\n  ]\n}\n`);
    const res = await world.runCli(['sync', '--config', file]);
    assert.equal(res.code, 2, res.stderr);
    // File, line and column, what is wrong and what to do, then the line itself with a caret under the spot.
    const column = 4 + entry.length;
    assert.ok(
      res.stderr.includes(
        `error: config ${file}:3:${column}: invalid JSON: trailing comma before "}"; remove it`,
      ),
      res.stderr,
    );
    assert.ok(res.stderr.includes(`\n  3 |     ${entry}\n    | ${' '.repeat(column - 1)}^`), res.stderr);
    assert.equal(requestsFor(repo), 0);
  });

  test('config with schema errors: unknown key, bad tag rules', async () => {
    const repo = 'config/schema';
    const config = mirrorConfig(repo);
    const file = await writeJson('schema.json', {
      mirrors: [
        { ...config.mirrors[0], platfroms: 'all', tags: { semver: 'not a range', include: ['(unclosed'] } },
      ],
    });
    const res = await world.runCli(['sync', '--config', file]);
    assert.equal(res.code, 2, res.stderr);
    assert.ok(res.stderr.includes(`config ${file} is invalid (3 problems):`), res.stderr);
    assert.match(res.stderr, /mirrors\[0\]\.platfroms: unknown key \(did you mean "platforms"\?\)/);
    assert.match(res.stderr, /mirrors\[0\]\.tags\.semver: "not a range" is not a semver range/);
    assert.match(
      res.stderr,
      /mirrors\[0\]\.tags\.include\[0\]: "\(unclosed" is not a valid regular expression/,
    );
    assert.equal(requestsFor(repo), 0);
  });

  test('config file that does not exist', async () => {
    const file = join(world.workDir, 'no-such-config.json');
    const res = await world.runCli(['plan', '--config', file]);
    assert.equal(res.code, 2, res.stderr);
    assert.ok(res.stderr.includes(`error: config file ${file} does not exist`), res.stderr);
  });

  // ---- references ------------------------------------------------------------------------------------

  test('malformed image reference', async () => {
    const [badSource, badTarget] = await Promise.all([
      world.runCli(['copy', `${world.source.host}/Bad-Input/App:v1`, `${world.open.host}/ref/app`]),
      world.runCli(['copy', `${world.source.host}/ref/source:v1`, `${world.open.host}/ref//app`]),
    ]);
    assert.equal(badSource.code, 2, badSource.stderr);
    assert.ok(
      badSource.stderr.includes(
        `error: source: invalid reference "${world.source.host}/Bad-Input/App:v1": repository names must be lower-case ("Bad-Input")`,
      ),
      badSource.stderr,
    );
    assert.equal(badTarget.code, 2, badTarget.stderr);
    assert.ok(
      badTarget.stderr.includes(
        `error: target: invalid reference "${world.open.host}/ref//app": the repository path has an empty component`,
      ),
      badTarget.stderr,
    );
    // Refused before any request: the valid side was not asked either.
    assert.equal(requestsFor('ref/app') + requestsFor('ref/source'), 0);
  });

  test('image reference that does not exist (no such tag)', async () => {
    const repo = 'notfound/app';
    const res = await world.runCli([
      'copy',
      `${world.source.host}/bad-input/app:v9`,
      `${world.open.host}/${repo}`,
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(
      res.stderr.includes(
        `source registry ${world.source.host}, repository bad-input/app, manifest HEAD: tag "v9" not found`,
      ),
      res.stderr,
    );
    assert.match(res.stderr, /not copied: the source failed/);
    assert.equal(manifestPuts(repo), 0);
  });

  // ---- credentials and permissions -------------------------------------------------------------------

  test('wrong password for a token-auth registry', async () => {
    const repo = 'wrong-token/app';
    const bad = 'Wr0ng-t0ken-pw';
    const dir = await dockerConfig('wrong-token', { [world.source.host]: `${ALICE.username}:${bad}` });
    const res = await world.runCli(['copy', src, `${world.open.host}/${repo}`], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(`source registry ${world.source.host}, token request: authentication failed`),
    );
    // The token server that said no, the registry it was for, and where the credentials came from.
    assert.match(
      res.stderr,
      new RegExp(`the token server 127\\.0\\.0\\.1:\\d+ rejected the credentials for ${world.source.host}`),
    );
    assert.ok(res.stderr.includes(`from docker config ${join(dir, 'config.json')}`), res.stderr);
    assert.equal(manifestPuts(repo), 0);
    assertNoSecret(res, bad, ALICE.password);
  });

  test('wrong password for a Basic-auth registry', async () => {
    const repo = 'wrong-basic/app';
    const bad = 'Wr0ng-b4sic-pw';
    const dir = await dockerConfig('wrong-basic', {
      [world.source.host]: `${ALICE.username}:${ALICE.password}`,
      [world.basic.host]: `${BOB.username}:${bad}`,
    });
    const res = await world.runCli(['copy', src, `${world.basic.host}/${repo}`], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.ok(
      res.stderr.includes(
        `target registry ${world.basic.host}, repository ${repo}, manifest HEAD: authentication failed: ` +
          `${world.basic.host} rejected the credentials from docker config ${join(dir, 'config.json')}`,
      ),
      res.stderr,
    );
    assert.equal(manifestPuts(repo), 0);
    assert.equal(world.basic.proxy.count({ kind: 'upload', repo }), 0);
    assertNoSecret(res, bad, Buffer.from(`${BOB.username}:${bad}`).toString('base64'), ALICE.password);
  });

  test('no credentials for a registry that requires them', async () => {
    const repo = 'no-login/app';
    const dir = await dockerConfig('no-login', {});
    const res = await world.runCli(['copy', src, `${world.open.host}/${repo}`], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.ok(
      res.stderr.includes(
        `source registry ${world.source.host}, repository bad-input/app, manifest HEAD: authentication required: ` +
          `${world.source.host} gives no anonymous access here (log in with docker login, or configure credentials for this registry)`,
      ),
      res.stderr,
    );
    assert.equal(manifestPuts(repo), 0);
  });

  test('pull-only account pushing', async () => {
    const repo = 'mirror/pull-only/app';
    const dir = await dockerConfig('pull-only', {
      [world.source.host]: `${READER.username}:${READER.password}`,
    });
    const res = await world.runCli(['copy', src, `${world.source.host}/${repo}`], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(`target registry ${world.source.host}, repository ${repo}, [a-z ]+: access denied: `),
    );
    assert.ok(
      res.stderr.includes(
        `the credentials from docker config ${join(dir, 'config.json')} were not granted ${repo}:pull,push`,
      ),
      res.stderr,
    );
    assert.equal(manifestPuts(repo), 0);
    assert.equal(world.source.proxy.count({ method: 'PUT', kind: 'upload', repo }), 0);
    assertNoSecret(res, READER.password);
  });

  // ---- network and TLS -----------------------------------------------------------------------------

  test('unreachable registry (connection refused)', async () => {
    // A loopback port nothing listens on.
    const host = `127.0.0.1:${await freePort()}`;
    // The message is the same after any number of retries; one (not the default 5, over about 6 s) keeps
    // this test short.
    const res = await world.runCli([
      'copy',
      `${host}/unreachable/app:v1`,
      `${world.open.host}/unreachable/app`,
      '--retries',
      '1',
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(
      res.stderr.includes(
        `source registry ${host}: cannot reach ${host}: connection refused ` +
          '(check the host name, port, and that the registry is running)',
      ),
      res.stderr,
    );
    assert.match(res.stderr, /not copied: the source failed/);
    assert.equal(manifestPuts('unreachable/app'), 0);
    assert.equal(await openHas('unreachable/app', 'v1'), false);
  });

  test('registry host name that does not resolve', async () => {
    // .invalid never resolves (RFC 6761). No retry can change that: the answer comes at once.
    const res = await world.runCli(['copy', src, 'registry.example.invalid/dns/app', '--json']);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(
      res.stderr.includes(
        'target registry registry.example.invalid: cannot reach registry.example.invalid: DNS has no address ' +
          'for registry.example.invalid (check the registry host name for a typo; not retried)',
      ),
      res.stderr,
    );
    assert.equal((JSON.parse(res.stdout) as { retries: number }).retries, 0);
  });

  test('HTTPS registry with an untrusted (self-signed) certificate', async (t) => {
    const https = await startHttpsRegistry();
    t.after(() => https.stop());
    const syncTo = (name: string, repo: string, tls: unknown) =>
      writeJson(name, {
        registries: { [https.host]: { tls } },
        mirrors: [
          { source: `${world.source.host}/bad-input/app`, tags: ['v1'], targets: [`${https.host}/${repo}`] },
        ],
      }).then((config) => world.runCli(['sync', '--config', config]));
    // Loopback hosts are spoken to in plain HTTP unless configured: "verify" makes this one behave as
    // registry.example.com would by default. Meanwhile, the fix on the command line: --ca-file.
    const [res, copied] = await Promise.all([
      syncTo('tls-verify.json', 'tls/untrusted', 'verify'),
      world.runCli(['copy', src, `${https.host}/tls/app`, '--ca-file', `${https.host}=${https.caFile}`]),
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(
      res.stderr.includes(
        `${https.host}/tls/untrusted:v1: target registry ${https.host}: cannot reach ${https.host}: ` +
          'TLS certificate not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate) ' +
          '(trust its CA: --ca-file HOST=FILE, or "tls": { "caFile": ... } for the registry in the config, or NODE_EXTRA_CA_CERTS)',
      ),
      res.stderr,
    );
    assert.equal(world.open.proxy.count({ repo: 'tls/untrusted' }), 0, 'a request got through the TLS front');
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(await openHas('tls/app', 'v1'), true);

    // Without any TLS setting a loopback host is spoken to in plain HTTP; the hint says so.
    const plain = await world.runCli(['copy', src, `${https.host}/tls/plain`, '--retries', '0']);
    assert.equal(plain.code, 1, plain.stderr);
    assert.ok(
      plain.stderr.includes(
        `${https.host} is spoken to in plain HTTP (the default for loopback hosts); if it serves HTTPS`,
      ),
      plain.stderr,
    );

    // The fix in the config, which the hint names: tls.caFile (relative to the config file).
    const synced = await syncTo('tls-ca.json', 'tls/app', { caFile: 'tls/cert.pem' });
    assert.equal(synced.code, 0, synced.stderr);
    assert.match(synced.stderr, /1 up to date/);
  });

  test("--ca-file (or a config's tls.caFile) naming a missing or non-PEM file", async () => {
    const missing = join(world.workDir, 'missing-ca.pem');
    const notPem = await writeJson('not-a-cert.json', { hello: 'world' });
    const copyWith = (caFile: string) =>
      world.runCli([
        'copy',
        `${world.source.host}/cafile/source:v1`,
        `${world.open.host}/cafile/app`,
        '--ca-file',
        `${world.open.host}=${caFile}`,
      ]);
    const [noFile, noPem] = await Promise.all([copyWith(missing), copyWith(notPem)]);
    assert.equal(noFile.code, 2, noFile.stderr);
    assert.ok(
      noFile.stderr.includes(`error: --ca-file ${world.open.host}=${missing}: ${missing} does not exist`),
      noFile.stderr,
    );
    assert.equal(noPem.code, 2, noPem.stderr);
    assert.ok(
      noPem.stderr.includes(
        `error: --ca-file ${world.open.host}=${notPem}: ${notPem} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`,
      ),
      noPem.stderr,
    );
    // The same mistake in a config: tls.caFile is read before the first request too.
    const config = await writeJson('cafile-config.json', {
      registries: { [world.open.host]: { tls: { caFile: 'no-such-ca.pem' } } },
      mirrors: [
        {
          source: `${world.source.host}/cafile/source`,
          tags: ['v1'],
          targets: [`${world.open.host}/cafile/app`],
        },
      ],
    });
    const fromConfig = await world.runCli(['sync', '--config', config]);
    assert.equal(fromConfig.code, 2, fromConfig.stderr);
    assert.match(
      fromConfig.stderr,
      new RegExp(
        `error: config registries\\["${world.open.host}"\\]\\.tls\\.caFile: \\S*no-such-ca\\.pem does not exist`,
      ),
    );
    // Refused before any request.
    assert.equal(requestsFor('cafile/app') + requestsFor('cafile/source'), 0);
  });

  // ---- content ---------------------------------------------------------------------------------------

  test('corrupt content: a source blob whose bytes do not match its digest', async () => {
    const repo = 'corrupt/app';
    const layer = corruptible.blobs.find((b) => b.mediaType.includes('layer'))!;
    world.source.proxy.settings.fault = (req) =>
      req.method === 'GET' && req.kind === 'blob' && req.path.endsWith(layer.digest)
        ? {
            status: 200,
            headers: { 'content-type': 'application/octet-stream' },
            body: 'x'.repeat(layer.bytes.length),
          }
        : undefined;
    let res: CliResult;
    try {
      res = await world.runCli([
        'copy',
        `${world.source.host}/bad-input/corruptible:v1`,
        `${world.open.host}/${repo}`,
      ]);
    } finally {
      world.source.proxy.settings.fault = undefined;
    }
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(
        `source registry ${world.source.host}, repository bad-input/corruptible, blob GET: ` +
          `content does not match its digest: expected ${layer.digest}, got sha256:[0-9a-f]{64}`,
      ),
    );
    assert.match(
      res.stderr,
      /the source registry served corrupt content; nothing that refers to it was pushed/,
    );
    assert.equal(manifestPuts(repo), 0);
    assert.equal(
      world.open.proxy.count({ method: 'PUT', kind: 'upload', repo, query: layer.digest.slice(7) }),
      0,
    );
    assert.equal(await openHas(repo, 'v1'), false);
  });
});
