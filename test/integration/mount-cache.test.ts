// Mounts across runs (issue 14, item 5), against real registries: a later `copy` into another repository
// of the same target registry mounts what an earlier `copy` uploaded (201 mounts counted at the proxy);
// without the cache it uploads; a stale entry costs no extra request (the declined mount's session takes
// the upload); `--mount-from` names a repository to try first. And a Bearer target repository costs one
// token, not a pull token and then a pull,push one.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runCli, startWorld, type World } from '../harness/fixture.js';
import { ociImage, pushManifestTree, randomBlob } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';

let world: World;
let cacheHome: string;
before(async () => {
  world = await startWorld();
  cacheHome = await makeTempDir('mount-cache');
});
after(async () => {
  await world?.stop();
  await removeDir(cacheHome);
});

const shared = [
  randomBlob({ seed: 'cache-base-1', size: 96 * 1024 }),
  randomBlob({ seed: 'cache-base-2', size: 48 * 1024 }),
];

/** `regmirror copy` with this test's cache directory (or none, with --no-mount-cache in args). */
function copy(args: string[], cache = cacheHome) {
  return runCli(['copy', ...args, '--json'], {
    env: { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir, XDG_CACHE_HOME: cache },
  });
}

const mounts = (status?: number) =>
  world.basic.proxy.count({ method: 'POST', kind: 'upload', query: 'mount=', ...(status ? { status } : {}) });
const sourceGets = (digest: string) =>
  world.source.proxy.requests.filter(
    (r) => r.method === 'GET' && r.kind === 'blob' && r.path.endsWith(digest),
  ).length;

test('a later copy mounts the layers an earlier copy uploaded to another repository of the target registry', async () => {
  const first = ociImage({ seed: 'cache-first', layers: shared, layerCount: 1 });
  const second = ociImage({ seed: 'cache-second', layers: shared, layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'cache/first', first, 'v1');
  await pushManifestTree(world.source.seedTarget, 'cache/second', second, 'v1');

  world.resetCounts();
  const a = await copy([`${world.source.host}/cache/first:v1`, `${world.basic.host}/cached/first`]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(mounts(), 0, 'nothing to mount from in the first run');

  // A new process: only the cache on disk knows where the shared layers are.
  world.resetCounts();
  const b = await copy([`${world.source.host}/cache/second:v1`, `${world.basic.host}/cached/second`]);
  assert.equal(b.code, 0, b.stderr);
  const report = JSON.parse(b.stdout) as { targets: { blobsMounted: number; blobsUploaded: number }[] };
  assert.equal(report.targets[0]!.blobsMounted, shared.length);
  assert.equal(mounts(201), shared.length);
  assert.equal(mounts(), shared.length, 'one mount request per shared layer');
  for (const layer of shared) assert.equal(sourceGets(layer.digest), 0, 'a mounted layer is not read');
  const raw = await skopeoInspectRaw(`${world.basic.host}/cached/second:v1`, {
    creds: world.basic.skopeoCreds,
  });
  assert.ok(raw.equals(second.bytes));
});

test('with the cache deleted, the same kind of copy still succeeds by uploading', async () => {
  const third = ociImage({ seed: 'cache-third', layers: shared, layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'cache/third', third, 'v1');
  await rm(join(cacheHome, 'regmirror'), { recursive: true, force: true });

  world.resetCounts();
  const c = await copy([`${world.source.host}/cache/third:v1`, `${world.basic.host}/cached/third`]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(mounts(), 0);
  for (const layer of shared) assert.equal(sourceGets(layer.digest), 1);
  const raw = await skopeoInspectRaw(`${world.basic.host}/cached/third:v1`, {
    creds: world.basic.skopeoCreds,
  });
  assert.ok(raw.equals(third.bytes));
});

test('a stale entry costs nothing: the declined mount opens the session the upload goes into', async () => {
  const lonely = randomBlob({ seed: 'cache-lonely', size: 40 * 1024 });
  const image = ociImage({ seed: 'cache-stale', layers: [lonely], layerCount: 0 });
  await pushManifestTree(world.source.seedTarget, 'cache/stale', image, 'v1');
  // A run that put the layer into cached/gone, whose repository has since been emptied by hand.
  const staleCache = await makeTempDir('mount-cache-stale');
  try {
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(join(staleCache, 'regmirror'), { recursive: true });
    await writeFile(
      join(staleCache, 'regmirror', 'mounts.json'),
      JSON.stringify({
        version: 1,
        registries: { [world.basic.host]: { [lonely.digest]: ['cached/gone'] } },
      }),
    );
    world.resetCounts();
    const res = await copy(
      [`${world.source.host}/cache/stale:v1`, `${world.basic.host}/cached/stale`],
      staleCache,
    );
    assert.equal(res.code, 0, res.stderr);
    // The layer: one POST (the mount, declined with 202), its bytes into that session, no DELETE.
    const layerPosts = world.basic.proxy.requests.filter(
      (r) =>
        r.method === 'POST' &&
        r.kind === 'upload' &&
        r.repo === 'cached/stale' &&
        r.query.get('mount') === lonely.digest,
    );
    assert.deepEqual(
      layerPosts.map((r) => r.status),
      [202],
    );
    assert.equal(world.basic.proxy.count({ method: 'DELETE' }), 0);
    // Every blob of the image took exactly one POST: the stale entry added none.
    assert.equal(world.basic.proxy.count({ method: 'POST', kind: 'upload', repo: 'cached/stale' }), 2);
    const raw = await skopeoInspectRaw(`${world.basic.host}/cached/stale:v1`, {
      creds: world.basic.skopeoCreds,
    });
    assert.ok(raw.equals(image.bytes));
  } finally {
    await removeDir(staleCache);
  }
});

test('--mount-from names a repository to mount from first, without any cache', async () => {
  const fourth = ociImage({ seed: 'cache-fourth', layers: shared, layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'cache/fourth', fourth, 'v1');
  world.resetCounts();
  const res = await copy([
    `${world.source.host}/cache/fourth:v1`,
    `${world.basic.host}/cached/fourth`,
    '--mount-from',
    `${world.basic.host}/cached/first`,
    '--no-mount-cache',
  ]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(mounts(201), shared.length);
  for (const layer of shared) assert.equal(sourceGets(layer.digest), 0);
});

test('one token serves a copy between two repositories of one Bearer registry (pull,push from the first request)', async () => {
  const image = ociImage({ seed: 'cache-token', layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'cache/token', image, 'v1');
  world.resetCounts();
  const res = await copy([`${world.source.host}/cache/token:v1`, `${world.source.host}/mirror/cache/token`]);
  assert.equal(res.code, 0, res.stderr);
  // The run's repositories on that registry are asked for together, each with what the run does there:
  // the source's HEAD, the target's HEAD and uploads, and the mounts from the source all use it.
  assert.deepEqual(
    world.tokenServer.requests.map((r) => [r.ok, [...r.scopes].sort()]),
    [[true, ['repository:cache/token:pull', 'repository:mirror/cache/token:pull,push']]],
  );
});

test('check --fix repairs with mounts from the cache too; --no-mount-cache without --fix is refused', async () => {
  const fifth = ociImage({ seed: 'cache-fifth', layers: shared, layerCount: 1 });
  await pushManifestTree(world.source.seedTarget, 'cache/fifth', fifth, 'v1');
  const { writeFile } = await import('node:fs/promises');
  const config = join(world.workDir, 'mount-cache-check.json');
  await writeFile(
    config,
    JSON.stringify({
      mirrors: [
        {
          source: `${world.source.host}/cache/fifth`,
          targets: [`${world.basic.host}/cached/fifth`],
          tags: ['v1'],
        },
      ],
    }),
  );
  const env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir, XDG_CACHE_HOME: cacheHome };

  const refused = await runCli(['check', '--config', config, '--no-mount-cache'], { env });
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--no-mount-cache applies to check --fix only/);

  // The first test's copies left the shared layers on this registry, and the cache says where.
  world.resetCounts();
  const res = await runCli(['check', '--config', config, '--fix', '--json'], { env });
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as { countsBefore: { missing: number }; counts: { ok: number } };
  assert.equal(report.countsBefore.missing, 1);
  assert.equal(report.counts.ok, 1);
  assert.equal(mounts(201), shared.length, 'each shared layer mounted');
  for (const layer of shared) assert.equal(sourceGets(layer.digest), 0, 'a mounted layer is not read');
  const raw = await skopeoInspectRaw(`${world.basic.host}/cached/fifth:v1`, {
    creds: world.basic.skopeoCreds,
  });
  assert.ok(raw.equals(fifth.bytes));
});
