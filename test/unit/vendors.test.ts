// What the vendor files (src/cloud/) put into a profile, seen through the profile builder the commands
// use: GHCR's GITHUB_TOKEN and its 4 MiB requests, Docker Hub's credential key, vendor hints.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { configSchema } from '../../src/config/schema.js';
import { Authenticator } from '../../src/registry/auth.js';
import { chunkSizeFor } from '../../src/registry/profile/profile.js';
import { Transport } from '../../src/registry/transport.js';
import { basicLogin } from '../harness/basic-login.js';
import { closeServer, listen } from '../harness/http-server.js';

let dir: string;
/** An environment whose docker and podman files are this test's (empty unless written). */
let baseEnv: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regmirror-vendors-'));
  baseEnv = { DOCKER_CONFIG: dir, REGISTRY_AUTH_FILE: join(dir, 'no-auth.json'), HOME: dir };
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function profiles(env: NodeJS.ProcessEnv, config?: object) {
  const resolved = config
    ? resolveConfig(
        configSchema.parse({ mirrors: [{ source: 'a.example/x', targets: ['b.example/x'] }], ...config }),
        { baseDir: '/' },
      )
    : undefined;
  return buildProfiles({ flags: {}, env, ...(resolved ? { config: resolved } : {}) });
}

async function user(env: NodeJS.ProcessEnv, registry: string, config?: object) {
  const found = await profiles(env, config).for(registry).credentials.get();
  if (!found) return undefined;
  const c = found.credential;
  return {
    source: found.source,
    ...(c.kind === 'basic' ? { username: c.username, password: c.password } : {}),
  };
}

describe('GHCR: GITHUB_TOKEN', () => {
  it('is the password for ghcr.io when nothing else gives credentials, the user GITHUB_ACTOR', async () => {
    assert.deepEqual(
      await user({ ...baseEnv, GITHUB_TOKEN: 'ghs_job', GITHUB_ACTOR: 'octocat' }, 'ghcr.io'),
      {
        source: 'environment variable GITHUB_TOKEN (user from GITHUB_ACTOR)',
        username: 'octocat',
        password: 'ghs_job',
      },
    );
  });

  it('else GH_TOKEN; any non-empty user name without GITHUB_ACTOR; an empty variable is unset', async () => {
    assert.deepEqual(await user({ ...baseEnv, GITHUB_TOKEN: '', GH_TOKEN: 'gho_cli' }, 'ghcr.io'), {
      source: 'environment variable GH_TOKEN',
      username: 'regmirror',
      password: 'gho_cli',
    });
    assert.equal(await user({ ...baseEnv, GITHUB_TOKEN: '', GH_TOKEN: '' }, 'ghcr.io'), undefined);
  });

  it('goes to a registry the config calls ghcr, and to no other kind of registry', async () => {
    const env = { ...baseEnv, GITHUB_TOKEN: 'ghs_job' };
    assert.equal(
      (
        await user(env, 'containers.ghe.example', {
          registries: { 'containers.ghe.example': { type: 'ghcr' } },
        })
      )?.password,
      'ghs_job',
    );
    for (const other of [
      'docker.io',
      'quay.io',
      'public.ecr.aws',
      '127.0.0.1:5000',
      'ghcr.io.evil.example',
    ]) {
      assert.equal(await user(env, other), undefined, other);
    }
  });

  it('comes after docker config.json and the config, and never for an anonymous registry', async () => {
    const withFile = await mkdtemp(join(dir, 'cfg-'));
    await writeFile(
      join(withFile, 'config.json'),
      JSON.stringify({ auths: { 'ghcr.io': { auth: Buffer.from('me:ghp_personal').toString('base64') } } }),
    );
    const env = { ...baseEnv, DOCKER_CONFIG: withFile, GITHUB_TOKEN: 'ghs_job' };
    assert.equal((await user(env, 'ghcr.io'))?.password, 'ghp_personal');
    const fromConfig = await user({ ...env, GHCR_USER: 'bot', GHCR_PAT: 'ghp_bot' }, 'ghcr.io', {
      registries: { 'ghcr.io': { credentials: { env: { username: 'GHCR_USER', password: 'GHCR_PAT' } } } },
    });
    assert.equal(fromConfig?.password, 'ghp_bot');
    assert.equal(
      await user(env, 'ghcr.io', { registries: { 'ghcr.io': { credentials: 'anonymous' } } }),
      undefined,
    );
  });

  it('keeps every request body at 4 MiB, whatever chunk size is asked for', () => {
    const p = profiles(baseEnv, { registries: { 'ghcr.io': { chunkSize: '16MiB' } } }).for('ghcr.io');
    assert.equal(chunkSizeFor(p.upload), 4 * 1024 * 1024);
    assert.equal(p.upload.monolithicMaxSize, 4 * 1024 * 1024);
    assert.equal(
      chunkSizeFor(
        buildProfiles({ flags: { chunkSize: 64 * 1024 * 1024 }, env: baseEnv }).for('ghcr.io').upload,
      ),
      4 * 1024 * 1024,
    );
  });

  it('a refused push says what a GITHUB_TOKEN needs', () => {
    assert.match(profiles(baseEnv).for('ghcr.io').hints.denied!, /packages: write/);
    assert.equal(profiles(baseEnv).for('quay.io').hints.denied, undefined);
  });
});

describe('Quay: tokens without expires_in', () => {
  /** A token realm that answers like Quay (no expires_in), or with one; counts what it issued. */
  async function realm(expiresIn?: number) {
    let issued = 0;
    const server = createServer((_req, res) => {
      issued++;
      const body = JSON.stringify({ token: `t${issued}`, ...(expiresIn ? { expires_in: expiresIn } : {}) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    });
    const port = await listen(server, '127.0.0.1');
    return { url: `http://127.0.0.1:${port}/token`, issued: () => issued, stop: () => closeServer(server) };
  }

  async function tokensOver(expiresIn: number | undefined, steps: number[]): Promise<number[]> {
    const r = await realm(expiresIn);
    const transport = new Transport({ settings: () => ({ tls: 'disabled', concurrency: 2 }) });
    const robot = basicLogin('quay.test', 'acme+mirrorbot', 'x', 'test');
    const auth = new Authenticator('quay.test', transport, robot);
    auth.unauthorized(`Bearer realm="${r.url}",service="quay.test"`, undefined);
    const counts: number[] = [];
    // Only Date is mocked: the HTTP exchange runs on real timers.
    mock.timers.enable({ apis: ['Date'], now: Date.parse('2026-11-23T08:00:00Z') });
    try {
      for (const step of steps) {
        mock.timers.tick(step);
        await auth.authorize(['repository:acme/app:pull']);
        counts.push(r.issued());
      }
    } finally {
      mock.timers.reset();
      await transport.close();
      await r.stop();
    }
    return counts;
  }

  it('a token without expires_in is taken to live 60 s: reused for 45 s, fetched again before 60', async () => {
    assert.deepEqual(await tokensOver(undefined, [0, 45_000, 10_000]), [1, 1, 2]);
  });

  it('a token with expires_in lives as long as it says', async () => {
    assert.deepEqual(await tokensOver(300, [0, 45_000, 10_000, 200_000]), [1, 1, 1, 1]);
  });
});

describe('Docker Hub credentials', () => {
  it("config.json's https://index.docker.io/v1/ entry serves docker.io, whatever alias names it", async () => {
    const hub = await mkdtemp(join(dir, 'hub-'));
    await writeFile(
      join(hub, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:dckr_pat_x').toString('base64') },
        },
      }),
    );
    const env = { ...baseEnv, DOCKER_CONFIG: hub };
    const p = profiles(env);
    for (const alias of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.equal(p.for(alias).host, 'registry-1.docker.io');
      assert.equal(p.for(alias).kind, 'dockerhub');
      const found = await p.for(alias).credentials.get();
      assert.deepEqual(
        found?.credential,
        { kind: 'basic', username: 'hubuser', password: 'dckr_pat_x' },
        alias,
      );
    }
  });
});
