// Reaching registries as the command line says: a loopback registry that serves HTTPS (a real
// docker-registry with TLS) spoken to in plain HTTP says so and names the fix, and --tls-verify HOST
// forces verified HTTPS for it; a host name that does not resolve fails at once naming it; and
// credentials for a one-off copy from the command line (--src-creds / --dest-creds, --password-stdin,
// a prompt on a real terminal that does not echo, --authfile), never shown in any output.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ALICE, BOB, type CliResult, REPO_ROOT, startWorld, type World } from '../harness/fixture.js';
import { type Registry, startRegistry } from '../harness/registry.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';
import { makeTestCertificate } from '../harness/tls-cert.js';

let world: World;
let image: SeededImage;
let src: string;
/** An empty DOCKER_CONFIG: the only credentials are the ones the command line gives. */
let noLogins: Record<string, string>;

before(async () => {
  world = await startWorld();
  image = await seedImage(world.source.seedTarget, 'connect/app', 'v1', 'oci-index-with-attestations');
  src = `${world.source.host}/connect/app:v1`;
  const empty = join(world.workDir, 'no-logins');
  await mkdir(empty, { recursive: true });
  noLogins = { DOCKER_CONFIG: empty };
});
after(async () => {
  await world?.stop();
});

function assertNoSecret(res: CliResult, ...secrets: string[]): void {
  for (const s of secrets) assert.ok(!(res.stdout + res.stderr).includes(s), `output shows a secret: ${s}`);
}

describe('a loopback registry that serves HTTPS', () => {
  let tlsRegistry: Registry;
  let caFile: string;
  let host: string;
  before(async () => {
    const tls = await makeTestCertificate(join(world.workDir, 'tls'), 'regmirror tls test');
    caFile = tls.certFile;
    tlsRegistry = await startRegistry({ auth: 'none' }, { certificate: caFile, key: tls.keyFile });
    host = tlsRegistry.host;
  });
  after(async () => {
    await tlsRegistry?.stop();
  });

  test('spoken to in plain HTTP (the loopback default): the error says so and names --tls-verify', async () => {
    for (const args of [
      ['inspect', `${host}/connect/app:v1`],
      ['copy', src, `${host}/connect/app`, '--json'],
    ]) {
      const res = await world.runCli(args);
      assert.equal(res.code, 1, res.stderr);
      assert.match(
        res.stderr,
        new RegExp(`cannot talk to ${host}: it answered plain HTTP with "400 Bad Request"`),
      );
      assert.ok(res.stderr.includes(`give --tls-verify ${host} (or --ca-file ${host}=FILE`), res.stderr);
      assert.ok(!/HTTP 400\b/.test(res.stderr), res.stderr);
      // An answer, not a fault: nothing retried.
      if (args[0] === 'copy') assert.equal((JSON.parse(res.stdout) as { retries: number }).retries, 0);
    }
  });

  test('--tls-verify HOST: verified HTTPS, so an untrusted certificate is refused, a trusted one works', async () => {
    const untrusted = await world.runCli(['--tls-verify', host, 'copy', src, `${host}/connect/app`]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /TLS certificate not trusted/);
    // Trusted through NODE_EXTRA_CA_CERTS, as a company CA would be: the copy goes through.
    const trusted = await world.runCli(['--tls-verify', host, 'copy', src, `${host}/connect/app`], {
      env: { NODE_EXTRA_CA_CERTS: caFile },
    });
    assert.equal(trusted.code, 0, trusted.stderr);
    // --ca-file goes with it too; a contradiction does not.
    const both = await world.runCli([
      'inspect',
      '--tls-verify',
      host,
      '--ca-file',
      `${host}=${caFile}`,
      `${host}/connect/app:v1`,
    ]);
    assert.equal(both.code, 0, both.stderr);
    const contradiction = await world.runCli([
      '--plain-http',
      host,
      '--tls-verify',
      host,
      'inspect',
      `${host}/connect/app:v1`,
    ]);
    assert.equal(contradiction.code, 2);
    assert.match(
      contradiction.stderr,
      new RegExp(`--plain-http ${host} and --tls-verify ${host} contradict each other`),
    );
  });
});

test('a host name that does not resolve fails at once, naming it, without retries', async () => {
  const res = await world.runCli(['copy', src, 'registry.does-not-exist.invalid/acme/app', '--json']);
  assert.equal(res.code, 1, res.stderr);
  assert.match(
    res.stderr,
    /cannot reach registry\.does-not-exist\.invalid: DNS has no address for registry\.does-not-exist\.invalid/,
  );
  // Not retried: the report counts none (a refused connection would count 5, over about 6 s).
  assert.equal((JSON.parse(res.stdout) as { retries: number }).retries, 0);
});

describe('credentials on the command line, for a copy without a config', () => {
  test('--src-creds and --dest-creds USER:PASSWORD', async () => {
    const res = await world.runCli(
      [
        'copy',
        '--src-creds',
        `${ALICE.username}:${ALICE.password}`,
        '--dest-creds',
        `${BOB.username}:${BOB.password}`,
        src,
        `${world.basic.host}/connect/creds`,
      ],
      { env: noLogins },
    );
    assert.equal(res.code, 0, res.stderr);
    assertNoSecret(res, ALICE.password, BOB.password);
    assert.ok(
      (
        await skopeoInspectRaw(`${world.basic.host}/connect/creds:v1`, { creds: world.basic.skopeoCreds! })
      ).equals(image.bytes),
    );
    // Without them the same copy is refused: the command line really was where the credentials came from.
    // A Basic-auth registry asked without credentials is asked a bounded number of times (it once looped).
    const started = Date.now();
    const without = await world.runCli(['copy', src, `${world.basic.host}/connect/creds2`], {
      env: noLogins,
    });
    assert.equal(without.code, 2, without.stderr);
    assert.ok(Date.now() - started < 30_000, `${Date.now() - started} ms`);
  });

  test('--password-stdin reads the password the flag leaves out; a wrong one is named by flag and user', async () => {
    const res = await world.runCli(
      ['copy', '--src-creds', ALICE.username, '--password-stdin', src, `${world.open.host}/connect/stdin`],
      { env: noLogins, input: `${ALICE.password}\n` },
    );
    assert.equal(res.code, 0, res.stderr);
    assertNoSecret(res, ALICE.password);
    const wrong = await world.runCli(
      ['copy', '--src-creds', ALICE.username, '--password-stdin', src, `${world.open.host}/connect/stdin`],
      { env: noLogins, input: 'not-the-password\n' },
    );
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /rejected the credentials .*--src-creds \(user alice\)/);
    assertNoSecret(wrong, 'not-the-password');
  });

  test('no password and no terminal to ask on: a usage error before any request', async () => {
    world.resetCounts();
    const res = await world.runCli(
      ['copy', '--src-creds', ALICE.username, src, `${world.open.host}/connect/x`],
      {
        env: noLogins,
      },
    );
    assert.equal(res.code, 2);
    assert.match(
      res.stderr,
      /--src-creds alice: no password, and no terminal to ask for it; give USER:PASSWORD or --password-stdin/,
    );
    const two = await world.runCli(
      [
        'copy',
        '--src-creds',
        'alice',
        '--dest-creds',
        'bob',
        '--password-stdin',
        src,
        `${world.basic.host}/x`,
      ],
      { env: noLogins, input: 'x\n' },
    );
    assert.equal(two.code, 2);
    assert.match(two.stderr, /--password-stdin reads one password/);
    const same = await world.runCli(
      ['copy', '--src-creds', 'alice:a', '--dest-creds', 'bob:b', src, `${world.source.host}/connect/same`],
      { env: noLogins },
    );
    assert.equal(same.code, 2);
    assert.match(same.stderr, /--src-creds and --dest-creds give two accounts for 127\.0\.0\.1:\d+/);
    assert.equal(
      [world.source, world.basic, world.open].reduce((n, ep) => n + ep.proxy.count(), 0),
      0,
    );
  });

  test('on a terminal, the password is asked for and not echoed', async () => {
    // script(1) gives the CLI a real pseudo-terminal; the password is typed once the prompt shows.
    const command = [
      process.execPath,
      join(REPO_ROOT, 'bin', 'regmirror.js'),
      'copy',
      '--src-creds',
      ALICE.username,
      src,
      `${world.open.host}/connect/tty`,
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', HOME: world.homeDir, TERM: 'dumb', ...noLogins },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let transcript = '';
    let typed = false;
    const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      transcript += d;
      if (!typed && transcript.includes(`Password for alice at ${world.source.host}: `)) {
        typed = true;
        child.stdin.write(`${ALICE.password}\r`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      transcript += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await done;
    clearTimeout(timer);
    assert.ok(typed, `no prompt:\n${transcript}`);
    assert.equal(code, 0, transcript);
    assert.ok(!transcript.includes(ALICE.password), `the password was echoed:\n${transcript}`);
    assert.ok((await skopeoInspectRaw(`${world.open.host}/connect/tty:v1`)).equals(image.bytes));
  });

  test('--authfile FILE: a podman auth.json instead of the default files; a missing one is refused first', async () => {
    const file = join(world.workDir, 'auth.json');
    const auth = (c: { username: string; password: string }) =>
      Buffer.from(`${c.username}:${c.password}`).toString('base64');
    await writeFile(
      file,
      JSON.stringify({
        auths: { [world.source.host]: { auth: auth(ALICE) }, [world.basic.host]: { auth: auth(BOB) } },
      }),
    );
    const res = await world.runCli(
      ['--authfile', file, 'copy', src, `${world.basic.host}/connect/authfile`],
      {
        env: noLogins,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    assertNoSecret(res, ALICE.password, BOB.password);
    world.resetCounts();
    const missing = await world.runCli(
      ['copy', '--authfile', join(world.workDir, 'nope.json'), src, `${world.basic.host}/x`],
      {
        env: noLogins,
      },
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--authfile \S+nope\.json: \S+nope\.json does not exist/);
    assert.equal(
      [world.source, world.basic, world.open].reduce((n, ep) => n + ep.proxy.count(), 0),
      0,
    );
  });
});
