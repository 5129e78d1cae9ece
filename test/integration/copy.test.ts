// `regmirror copy` against real distribution registries (token auth, Basic auth, no auth), checked
// independently with skopeo and by counting requests at the proxies.

import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Endpoint, startWorld, type World } from '../harness/fixture.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';

let world: World;
let env: Record<string, string>;

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
});
after(async () => {
  await world?.stop();
});

/** Every target ends up with the exact bytes of the index and of every child, as skopeo sees them. */
async function assertIdentical(
  image: SeededImage,
  target: Endpoint,
  repo: string,
  tag: string,
): Promise<void> {
  const opts = target.skopeoCreds ? { creds: target.skopeoCreds } : {};
  const top = await skopeoInspectRaw(`${target.host}/${repo}:${tag}`, opts);
  assert.ok(top.equals(image.bytes), `${target.host}/${repo}:${tag} differs from the source index`);
  for (const child of image.children) {
    const raw = await skopeoInspectRaw(`${target.host}/${repo}@${child.digest}`, opts);
    assert.ok(raw.equals(child.bytes), `${target.host}/${repo}@${child.digest} differs from the source`);
  }
}

function resetCounts(): void {
  world.resetCounts();
}

for (const kind of ['oci-index-with-attestations', 'docker-manifest-list'] as const) {
  describe(`copy of ${kind} to three targets`, () => {
    const repo = `fanout/${kind}`;
    let image: SeededImage;
    before(async () => {
      image = await seedImage(world.source.seedTarget, repo, 'v1', kind);
    });

    test('every target holds byte-identical manifests; the source serves each blob once', async () => {
      resetCounts();
      const res = await world.runCli(
        [
          'copy',
          `${world.source.host}/${repo}:v1`,
          `${world.source.host}/mirror/${repo}`,
          `${world.basic.host}/${repo}`,
          `${world.open.host}/${repo}`,
          '--json',
        ],
        { env },
      );
      assert.equal(res.code, 0, res.stderr);
      const report = JSON.parse(res.stdout) as { targets: { status: string }[]; digest: string };
      assert.equal(report.digest, image.digest);
      assert.deepEqual(
        report.targets.map((t) => t.status),
        ['copied', 'copied', 'copied'],
      );
      // One GET per distinct blob, whatever the number of targets (the same-registry target mounts).
      const blobGets = world.source.proxy.count({ method: 'GET', kind: 'blob', repo });
      assert.equal(blobGets, image.blobs.length);
      // The target on the source registry got its blobs by cross-repository mount.
      assert.equal(
        world.source.proxy.count({ method: 'POST', kind: 'upload', query: 'mount=', status: 201 }),
        image.blobs.length,
      );
      await assertIdentical(image, world.source, `mirror/${repo}`, 'v1');
      await assertIdentical(image, world.basic, repo, 'v1');
      await assertIdentical(image, world.open, repo, 'v1');
    });

    test('a repeated identical copy reads no blob, uploads nothing, pushes no manifest', async () => {
      resetCounts();
      const res = await world.runCli(
        [
          'copy',
          `${world.source.host}/${repo}:v1`,
          `${world.source.host}/mirror/${repo}`,
          `${world.basic.host}/${repo}`,
          `${world.open.host}/${repo}`,
        ],
        { env },
      );
      assert.equal(res.code, 0, res.stderr);
      for (const ep of [world.source, world.basic, world.open]) {
        assert.equal(ep.proxy.count({ method: 'GET', kind: 'blob' }), 0, `blob GETs at ${ep.host}`);
        assert.equal(ep.proxy.count({ kind: 'upload' }), 0, `uploads at ${ep.host}`);
        assert.equal(ep.proxy.count({ method: 'PUT', kind: 'manifest' }), 0, `manifest PUTs at ${ep.host}`);
        assert.equal(ep.proxy.count({ method: 'GET', kind: 'manifest' }), 0, `manifest GETs at ${ep.host}`);
      }
      // One HEAD for the source and one per target (each target answered with 200 after auth).
      const heads = [world.source, world.basic, world.open].reduce(
        (n, ep) => n + ep.proxy.count({ method: 'HEAD', kind: 'manifest', status: 200 }),
        0,
      );
      assert.equal(heads, 4);
      // Referrers are on by default: one referrers request to the source registry, 404 (no referrers API),
      // and one tag list of the source repository, which holds no referrer tag (sha256-<hex>, cosign's
      // .sig/.att/.sbom): so no manifest has referrers, and neither the index nor any target is asked more.
      assert.equal(world.source.proxy.count({ kind: 'referrers', status: 404 }), 1);
      assert.equal(world.source.proxy.count({ kind: 'referrers' }), 1);
      assert.equal(world.source.proxy.count({ kind: 'tags', repo, status: 200 }), 1);
      for (const ep of [world.basic, world.open]) {
        assert.equal(ep.proxy.count({ kind: 'referrers' }) + ep.proxy.count({ kind: 'tags' }), 0, ep.host);
      }
      assert.match(res.stderr, /: up to date$/m);
    });
  });
}

test('chunked and monolithic uploads produce the same digests', async () => {
  const repo = 'chunks/app';
  const image = await seedImage(world.source.seedTarget, repo, 'v1', 'oci-image', { layerSize: 300 * 1024 });
  resetCounts();
  const chunked = await world.runCli(
    ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/chunked/app`, '--chunk-size', '64KiB'],
    { env },
  );
  assert.equal(chunked.code, 0, chunked.stderr);
  const patches = world.open.proxy.count({ method: 'PATCH', kind: 'upload' });
  assert.ok(patches >= 4, `expected several PATCH chunks, saw ${patches}`);

  resetCounts();
  const mono = await world.runCli(
    ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/mono/app`, '--chunk-size', '4MiB'],
    { env },
  );
  assert.equal(mono.code, 0, mono.stderr);
  assert.equal(world.open.proxy.count({ method: 'PATCH', kind: 'upload' }), 0);
  assert.equal(world.open.proxy.count({ method: 'PUT', kind: 'upload' }), image.blobs.length);

  const a = await skopeoInspectRaw(`${world.open.host}/chunked/app:v1`);
  const b = await skopeoInspectRaw(`${world.open.host}/mono/app:v1`);
  assert.ok(a.equals(image.bytes) && b.equals(image.bytes));
  for (const blob of image.blobs) {
    for (const r of ['chunked/app', 'mono/app']) {
      const res = await fetch(`${world.open.url}/v2/${r}/blobs/${blob.digest}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.ok(bytes.equals(blob.bytes), `${r} ${blob.digest}`);
    }
  }
});

test('a redirected blob GET reaches the storage host without Authorization', async () => {
  const repo = 'redirect/app';
  const image = await seedImage(world.source.seedTarget, repo, 'v1', 'oci-image');
  resetCounts();
  world.source.proxy.settings.redirectBlobGets = true;
  try {
    const res = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/${repo}`],
      { env },
    );
    assert.equal(res.code, 0, res.stderr);
  } finally {
    world.source.proxy.settings.redirectBlobGets = false;
  }
  const storage = world.source.proxy.storageRequests;
  assert.equal(storage.length, image.blobs.length);
  assert.ok(
    storage.every((r) => !r.hasAuthorization),
    'Authorization leaked to the storage host',
  );
  // The registry itself did see authorized blob GETs (the ones that were redirected).
  assert.ok(world.source.proxy.requests.some((r) => r.kind === 'blob' && r.hasAuthorization));
  const copied = await skopeoInspectRaw(`${world.open.host}/${repo}:v1`);
  assert.ok(copied.equals(image.bytes));
});

test('a corrupt source blob fails the image, names the digest, pushes no manifest, exit 1', async () => {
  const repo = 'corrupt/app';
  const image = await seedImage(world.source.seedTarget, repo, 'v1', 'oci-image');
  const layer = image.blobs.find((b) => b.mediaType.includes('layer'))!;
  resetCounts();
  world.source.proxy.settings.fault = (req) =>
    req.method === 'GET' && req.kind === 'blob' && req.path.endsWith(layer.digest)
      ? {
          status: 200,
          headers: { 'content-type': 'application/octet-stream' },
          body: 'x'.repeat(layer.bytes.length),
        }
      : undefined;
  let res: Awaited<ReturnType<World['runCli']>>;
  try {
    res = await world.runCli(
      [
        'copy',
        `${world.source.host}/${repo}:v1`,
        `${world.open.host}/${repo}`,
        `${world.basic.host}/${repo}`,
        '--json',
      ],
      { env },
    );
  } finally {
    world.source.proxy.settings.fault = undefined;
  }
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, new RegExp(layer.digest));
  assert.match(res.stderr, /does not match its digest/);
  for (const ep of [world.open, world.basic]) {
    assert.equal(ep.proxy.count({ method: 'PUT', kind: 'manifest' }), 0, `manifest pushed to ${ep.host}`);
    // Nothing was committed under the bad digest either.
    assert.equal(ep.proxy.count({ method: 'PUT', kind: 'upload', query: layer.digest.slice(7, 20) }), 0);
  }
  const report = JSON.parse(res.stdout) as { targets: { status: string; errorKind: string }[] };
  assert.deepEqual(
    report.targets.map((t) => [t.status, t.errorKind]),
    [
      ['failed', 'digest-mismatch'],
      ['failed', 'digest-mismatch'],
    ],
  );
});

describe('credentials', () => {
  const repo = 'creds/app';
  before(async () => {
    await seedImage(world.source.seedTarget, repo, 'v1', 'oci-image');
  });

  test('a docker-credential helper supplies the credentials', async () => {
    const dir = join(world.workDir, 'helper');
    await mkdir(join(dir, 'bin'), { recursive: true });
    await mkdir(join(dir, 'config'), { recursive: true });
    const helper = join(dir, 'bin', 'docker-credential-regtest');
    // A real helper speaking the protocol: server URL on stdin, JSON on stdout.
    await writeFile(
      helper,
      `#!/bin/sh
read server
case "$server" in
  *${world.source.host}*) printf '{"ServerURL":"%s","Username":"alice","Secret":"alice-secret-pw"}' "$server" ;;
  *${world.basic.host}*) printf '{"ServerURL":"%s","Username":"bob","Secret":"bob-secret-pw"}' "$server" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
    );
    await chmod(helper, 0o755);
    await writeFile(
      join(dir, 'config', 'config.json'),
      JSON.stringify({ credHelpers: { [world.source.host]: 'regtest', [world.basic.host]: 'regtest' } }),
    );
    const res = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${world.basic.host}/helper/app`],
      {
        env: {
          DOCKER_CONFIG: join(dir, 'config'),
          HOME: world.homeDir,
          PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        },
      },
    );
    assert.equal(res.code, 0, res.stderr);
    await skopeoInspectRaw(`${world.basic.host}/helper/app:v1`, { creds: world.basic.skopeoCreds });
  });

  for (const which of ['source', 'basic'] as const) {
    test(`a wrong password for the ${which === 'source' ? 'token' : 'Basic'} registry: exit 2, says so, no secret shown`, async () => {
      const dir = join(world.workDir, `wrong-${which}`);
      await mkdir(dir, { recursive: true });
      const bad = 'Wr0ng-s3cret-PW';
      const ep = world[which];
      const auths: Record<string, { auth: string }> = {
        [world.source.host]: { auth: Buffer.from('alice:alice-secret-pw').toString('base64') },
        [world.basic.host]: { auth: Buffer.from('bob:bob-secret-pw').toString('base64') },
      };
      auths[ep.host] = { auth: Buffer.from(`${ep.creds!.username}:${bad}`).toString('base64') };
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
      const args =
        which === 'source'
          ? ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/wrong/app`, '--json', '--debug']
          : ['copy', `${world.source.host}/${repo}:v1`, `${world.basic.host}/wrong/app`, '--json', '--debug'];
      const res = await world.runCli(args, { env: { DOCKER_CONFIG: dir, HOME: world.homeDir } });
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, new RegExp(`${ep.host}`));
      assert.match(res.stderr, /authentication failed/);
      const all = res.stdout + res.stderr;
      for (const secret of [
        bad,
        Buffer.from(`${ep.creds!.username}:${bad}`).toString('base64'),
        'alice-secret-pw',
      ]) {
        assert.ok(!all.includes(secret), `output contains a secret: ${secret}`);
      }
    });
  }
});
