// Token-auth variants (identity tokens over the OAuth2 form, Quay-style responses without expires_in)
// and cross-repository mounts between images of one run, against real registries.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createClient } from '../../src/cli/runtime.js';
import { copyImage } from '../../src/copy/copy-image.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { parseReference } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { runCli, startWorld, type World } from '../harness/fixture.js';
import { startProxy } from '../harness/proxy.js';
import { startRegistry } from '../harness/registry.js';
import { ociImage, pushManifestTree, randomBlob, seedImage } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';
import { startTokenServer } from '../harness/token-server.js';

let world: World;
before(async () => {
  world = await startWorld();
});
after(async () => {
  await world?.stop();
});

test('an identity token (config.json identitytoken) is exchanged with the OAuth2 POST form; no expires_in is fine', async (t) => {
  const tokenServer = await startTokenServer({
    users: { carol: { password: 'carol-secret-pw', access: 'push' } },
    refreshTokens: { 'refresh-token-4711': 'carol' },
    omitExpiresIn: true,
  });
  t.after(() => tokenServer.stop());
  const registry = await startRegistry({ auth: 'token', tokenServer });
  t.after(() => registry.stop());
  const proxy = await startProxy(registry.url);
  t.after(() => proxy.stop());
  const image = await seedImage(
    { url: proxy.url, username: 'carol', password: 'carol-secret-pw' },
    'idt/app',
    'v1',
    'oci-image',
  );

  const dir = await makeTempDir('idtoken');
  t.after(() => removeDir(dir));
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({ auths: { [proxy.host]: { identitytoken: 'refresh-token-4711' } } }),
  );
  tokenServer.requests.length = 0;
  const res = await runCli(['copy', `${proxy.host}/idt/app:v1`, `${world.open.host}/idt/app`], {
    env: { DOCKER_CONFIG: dir, HOME: dir },
  });
  assert.equal(res.code, 0, res.stderr);
  assert.ok(tokenServer.requests.length > 0);
  assert.ok(
    tokenServer.requests.every((r) => r.method === 'POST' && r.grantType === 'refresh_token' && r.ok),
    JSON.stringify(tokenServer.requests),
  );
  assert.ok((await skopeoInspectRaw(`${world.open.host}/idt/app:v1`)).equals(image.bytes));
  assert.ok(!res.stderr.includes('refresh-token-4711'));
});

test('a second repository sharing layers with the first mounts them on the same target registry', async (t) => {
  const shared = [
    randomBlob({ seed: 'shared-base-1', size: 64 * 1024 }),
    randomBlob({ seed: 'shared-base-2', size: 32 * 1024 }),
  ];
  const first = ociImage({ seed: 'mount-first', layers: shared, layerCount: 1 });
  const second = ociImage({ seed: 'mount-second', layers: shared, layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'mount/first', first, 'v1');
  await pushManifestTree(world.source.seedTarget, 'mount/second', second, 'v1');

  const controller = new AbortController();
  const client = createClient({
    flags: {},
    signal: controller.signal,
    env: { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir },
  });
  t.after(() => client.close());
  const ctx = {
    store: client,
    knowledge: new BlobKnowledge(),
    chunkSize: () => 8 * 1024 * 1024,
    transfers: createLimiter(4),
  };
  world.resetCounts();
  const a = await copyImage(
    parseReference(`${world.source.host}/mount/first:v1`),
    [parseReference(`${world.basic.host}/mirror/first:v1`)],
    ctx,
  );
  assert.equal(a.targets[0]!.status, 'copied', a.targets[0]!.error);
  assert.equal(world.basic.proxy.count({ method: 'POST', kind: 'upload', query: 'mount=' }), 0);

  const b = await copyImage(
    parseReference(`${world.source.host}/mount/second:v1`),
    [parseReference(`${world.basic.host}/mirror/second:v1`)],
    ctx,
  );
  assert.equal(b.targets[0]!.status, 'copied', b.targets[0]!.error);
  assert.equal(b.targets[0]!.blobsMounted, shared.length);
  assert.equal(
    world.basic.proxy.count({ method: 'POST', kind: 'upload', query: 'mount=', status: 201 }),
    shared.length,
  );
  // The shared layers were read from the source once (for the first image), never for the second.
  for (const layer of shared) {
    assert.equal(
      world.source.proxy.requests.filter(
        (r) => r.method === 'GET' && r.kind === 'blob' && r.path.endsWith(layer.digest),
      ).length,
      1,
    );
  }
  const raw = await skopeoInspectRaw(`${world.basic.host}/mirror/second:v1`, {
    creds: world.basic.skopeoCreds,
  });
  assert.ok(raw.equals(second.bytes));
});

test('auth check proves pull and push without storing anything, and names what is denied', async () => {
  await seedImage(world.source.seedTarget, 'authcheck/app', 'v1', 'oci-image');
  const config = join(world.workDir, 'authcheck.json');
  await writeFile(
    config,
    JSON.stringify({
      mirrors: [
        {
          source: `${world.source.host}/authcheck/app`,
          targets: [`${world.basic.host}/authcheck/app`, `${world.source.host}/mirror/authcheck/app`],
        },
      ],
    }),
  );
  // The token registry's credentials are the read-only user's: pull works there, push does not.
  const dir = await makeTempDir('authcheck');
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      auths: {
        [world.source.host]: { auth: Buffer.from('reader:reader-secret-pw').toString('base64') },
        [world.basic.host]: { auth: Buffer.from('bob:bob-secret-pw').toString('base64') },
      },
    }),
  );
  try {
    world.resetCounts();
    const res = await runCli(['auth', 'check', '--config', config, '--json'], {
      env: { DOCKER_CONFIG: dir, HOME: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    const report = JSON.parse(res.stdout) as {
      ok: boolean;
      checks: { repository: string; access: string; ok: boolean; errorKind?: string }[];
    };
    const summary = report.checks.map((c) => [c.access, c.repository, c.ok, c.errorKind ?? '']).sort();
    assert.deepEqual(summary, [
      ['pull', 'authcheck/app', true, ''],
      ['push', 'authcheck/app', true, ''],
      ['push', 'mirror/authcheck/app', false, 'permission'],
    ]);
    assert.match(res.stderr, /mirror\/authcheck\/app/);
    assert.ok(!res.stderr.includes('reader-secret-pw') && !res.stdout.includes('reader-secret-pw'));
    // Nothing was stored: no blob or manifest PUT anywhere.
    for (const ep of [world.source, world.basic]) assert.equal(ep.proxy.count({ method: 'PUT' }), 0);
  } finally {
    await removeDir(dir);
  }
});
