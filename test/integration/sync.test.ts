// `regmirror sync` and `plan` on a config, against real registries: a migration-sized estate (10
// repositories × 8 multi-arch tags, shared base layers) to three targets, checked with skopeo; the
// no-op second run counted at the proxies; policies (overwrite never, platform filters); reports.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { syncReportSchema } from '../../src/cli/report.js';
import type { World } from '../harness/fixture.js';
import { startWorld } from '../harness/fixture.js';
import {
  ociImage,
  pushManifestTree,
  randomBlob,
  RegistryClient as SeedClient,
  type SeededImage,
  seedImage,
} from '../harness/seed.js';
import { skopeoInspectRaw, skopeoListTags } from '../harness/skopeo.js';

const REPOS = Array.from({ length: 10 }, (_, i) => `estate/app${i}`);
const SELECTED = Array.from({ length: 8 }, (_, i) => `v1.${i}.0`);
/** Tags the config must not select: an older major, a pre-release, a moving dev tag. */
const UNSELECTED = ['v0.9.0', 'v1.8.0-rc.1', 'dev'];

let world: World;
let env: Record<string, string>;
/** repo → tag → seeded image */
const seeded = new Map<string, Map<string, SeededImage>>();

async function limitedAll<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

function estateConfig() {
  return {
    defaults: { concurrency: 6 },
    mirrors: REPOS.map((repo) => ({
      source: `${world.source.host}/${repo}`,
      targets: [
        `${world.source.host}/mirror/{path}`,
        `${world.basic.host}/{path}`,
        `${world.open.host}/{path}`,
      ],
      tags: { semver: '>=1.0.0' },
    })),
  };
}

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  const base = [randomBlob({ seed: 'estate-base-os', size: 48 * 1024 })];
  const client = new SeedClient(world.source.seedTarget);
  await limitedAll(REPOS, 4, async (repo) => {
    const byTag = new Map<string, SeededImage>();
    for (const tag of SELECTED) {
      byTag.set(
        tag,
        await seedImage(client, repo, tag, 'oci-index-with-attestations', { sharedLayers: base }),
      );
    }
    seeded.set(repo, byTag);
    // Unselected tags point at images of their own, so a wrong selection shows as extra tags.
    for (const tag of UNSELECTED) await seedImage(client, repo, tag, 'oci-image', { sharedLayers: base });
  });
});
after(async () => {
  await world?.stop();
});

describe('a 10 × 8 multi-arch estate to three targets', () => {
  test('plan says what would be copied and writes nothing', async () => {
    const config = await writeConfig('estate.json', estateConfig());
    world.resetCounts();
    const res = await world.runCli(['plan', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.command, 'plan');
    assert.equal(report.summary.images, REPOS.length * SELECTED.length);
    assert.equal(report.summary.planned, REPOS.length * SELECTED.length * 3);
    assert.ok(report.summary.bytesUploaded > 0);
    for (const ep of [world.source, world.basic, world.open]) {
      assert.equal(ep.proxy.count({ kind: 'upload' }), 0, `plan uploaded to ${ep.host}`);
      assert.equal(ep.proxy.count({ method: 'PUT' }), 0, `plan wrote to ${ep.host}`);
    }
    assert.ok(!res.stderr.includes('\u001b['), 'ANSI escape codes without a terminal');
  });

  test('sync mirrors every selected tag, and only those, with the source digests', async () => {
    const config = await writeConfig('estate.json', estateConfig());
    const res = await world.runCli(['sync', '--config', config, '--json'], { env, timeoutMs: 600_000 });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(!res.stderr.includes('\u001b['), 'ANSI escape codes without a terminal');
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, REPOS.length * SELECTED.length * 3);
    assert.equal(report.summary.failed, 0);
    // The shared base layer travels once per target registry; everything else on it is mounted.
    assert.ok(report.summary.blobsMounted > 0);

    const targets = [
      { ep: world.source, path: (r: string) => `mirror/${r}` },
      { ep: world.basic, path: (r: string) => r },
      { ep: world.open, path: (r: string) => r },
    ];
    const checks: Array<() => Promise<void>> = [];
    for (const { ep, path } of targets) {
      const opts = ep.skopeoCreds ? { creds: ep.skopeoCreds } : {};
      for (const repo of REPOS) {
        checks.push(async () => {
          const tags = await skopeoListTags(`${ep.host}/${path(repo)}`, opts);
          assert.deepEqual([...tags].sort(), [...SELECTED].sort(), `${ep.host}/${path(repo)}`);
        });
        for (const tag of SELECTED) {
          checks.push(async () => {
            const raw = await skopeoInspectRaw(`${ep.host}/${path(repo)}:${tag}`, opts);
            assert.ok(raw.equals(seeded.get(repo)!.get(tag)!.bytes), `${ep.host}/${path(repo)}:${tag}`);
          });
        }
      }
    }
    await limitedAll(checks, 4, (check) => check());
  });

  test('a second sync transfers nothing: one manifest HEAD per tag per side', async () => {
    const config = await writeConfig('estate.json', estateConfig());
    world.resetCounts();
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.upToDate, REPOS.length * SELECTED.length * 3);
    const images = REPOS.length * SELECTED.length;
    for (const ep of [world.source, world.basic, world.open]) {
      assert.equal(ep.proxy.count({ method: 'GET', kind: 'blob' }), 0);
      assert.equal(ep.proxy.count({ kind: 'upload' }), 0);
      assert.equal(ep.proxy.count({ method: 'PUT' }), 0);
      assert.equal(ep.proxy.count({ method: 'GET', kind: 'manifest' }), 0);
    }
    // Source side: one HEAD per tag on estate/*; target sides: one per tag and target.
    const sourceHeads = world.source.proxy.requests.filter(
      (r) =>
        r.method === 'HEAD' && r.kind === 'manifest' && r.repo?.startsWith('estate/') && r.status === 200,
    ).length;
    assert.equal(sourceHeads, images);
    const mirrorHeads = world.source.proxy.requests.filter(
      (r) =>
        r.method === 'HEAD' && r.kind === 'manifest' && r.repo?.startsWith('mirror/') && r.status === 200,
    ).length;
    assert.equal(mirrorHeads, images);
    assert.equal(world.basic.proxy.count({ method: 'HEAD', kind: 'manifest', status: 200 }), images);
    assert.equal(world.open.proxy.count({ method: 'HEAD', kind: 'manifest', status: 200 }), images);
    // At most one manifest request per tag per side, all kinds counted (a 401-answered first contact
    // aside), and no 401 after the first per registry (issue 14's acceptance, counted at the proxies).
    const sides = [
      { name: 'source', ep: world.source, repo: (r?: string) => r?.startsWith('estate/') ?? false },
      {
        name: 'mirror/ on the source',
        ep: world.source,
        repo: (r?: string) => r?.startsWith('mirror/') ?? false,
      },
      { name: 'basic', ep: world.basic, repo: () => true },
      { name: 'open', ep: world.open, repo: () => true },
    ];
    for (const side of sides) {
      const manifestRequests = side.ep.proxy.requests.filter(
        (r) => r.kind === 'manifest' && r.status !== 401 && side.repo(r.repo),
      );
      assert.ok(
        manifestRequests.length <= images,
        `${side.name}: ${manifestRequests.length} for ${images} tags`,
      );
    }
    for (const ep of [world.source, world.basic, world.open]) {
      assert.ok(
        ep.proxy.count({ status: 401 }) <= 1,
        `${ep.host}: ${ep.proxy.count({ status: 401 })} answers 401`,
      );
    }
    // Besides HEADs, only tag lists (one per source repository, one per target repository: a tag a
    // target lacks then costs no HEAD) and auth challenges. One target lives on the source registry.
    assert.equal(world.source.proxy.count({ kind: 'tags', status: 200 }), 2 * REPOS.length);
    assert.equal(world.basic.proxy.count({ kind: 'tags', status: 200 }), REPOS.length);
    assert.equal(world.open.proxy.count({ kind: 'tags', status: 200 }), REPOS.length);
    assert.ok(
      world.source.proxy.count({ kind: 'tags' }) <= 2 * REPOS.length + 1,
      JSON.stringify(
        world.source.proxy.requests
          .filter((r) => r.kind === 'tags')
          .map((r) => [r.status, r.hasAuthorization, r.repo]),
      ),
    );
  });
});

test('a new repository of single-layer tags costs 8 requests a tag: 3 at the source, 5 at the target', async () => {
  const repo = 'scale/app';
  const tags = Array.from({ length: 12 }, (_, i) => `r${String(i).padStart(4, '0')}`);
  for (const tag of tags) {
    await pushManifestTree(
      world.source.seedTarget,
      repo,
      ociImage({ seed: `scale-${tag}`, layerCount: 1 }),
      tag,
    );
  }
  const config = await writeConfig('scale.json', {
    mirrors: [{ source: `${world.source.host}/${repo}`, targets: [`${world.basic.host}/${repo}`] }],
  });
  world.resetCounts();
  const res = await world.runCli(['sync', '--config', config, '--json'], { env });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(syncReportSchema.parse(JSON.parse(res.stdout)).summary.copied, tags.length);
  const n = tags.length;
  const kinds = (ep: typeof world.source) => {
    const out: Record<string, number> = {};
    for (const r of ep.proxy.requests) {
      const key = r.status === 401 ? '401' : `${r.method} ${r.kind}`;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  };
  // Source: the first contact's 401, the tag list, one referrers probe (no API here); per tag the
  // manifest GET (no HEAD: the target lacks every tag) and its two blobs.
  assert.deepEqual(kinds(world.source), {
    '401': 1,
    'GET tags': 1,
    'GET referrers': 1,
    'GET manifest': n,
    'GET blob': 2 * n,
  });
  // Target: the first contact's 401, the tag list (the repository does not exist yet); per tag two
  // uploads (POST + PUT, no HEAD: nothing is in a repository without tags) and the manifest PUT.
  assert.deepEqual(kinds(world.basic), {
    '401': 1,
    'GET tags': 1,
    'POST upload': 2 * n,
    'PUT upload': 2 * n,
    'PUT manifest': n,
  });
  for (const tag of [tags[0]!, tags[n - 1]!]) {
    const raw = await skopeoInspectRaw(`${world.basic.host}/${repo}:${tag}`, {
      creds: world.basic.skopeoCreds!,
    });
    assert.ok(raw.byteLength > 0);
  }
});

test('overwrite "never": a moved source tag leaves the target untouched and is reported', async () => {
  const repo = 'immutable/app';
  await seedImage(world.source.seedTarget, repo, '2.0.0', 'oci-image', { seed: 'first' });
  const config = await writeConfig('immutable.json', {
    mirrors: [
      {
        source: `${world.source.host}/${repo}`,
        targets: [`${world.open.host}/${repo}`],
        tags: ['2.0.0'],
        overwrite: 'never',
      },
    ],
  });
  const first = await world.runCli(['sync', '--config', config], { env });
  assert.equal(first.code, 0, first.stderr);
  const before = await skopeoInspectRaw(`${world.open.host}/${repo}:2.0.0`);

  const moved = await seedImage(world.source.seedTarget, repo, '2.0.0', 'oci-image', { seed: 'second' });
  world.resetCounts();
  const res = await world.runCli(['sync', '--config', config, '--json'], { env });
  assert.equal(res.code, 0, res.stderr);
  const report = syncReportSchema.parse(JSON.parse(res.stdout));
  const target = report.mirrors[0]!.images[0]!.targets[0]!;
  assert.equal(target.status, 'kept');
  assert.equal(target.tagAction, 'keep');
  assert.notEqual(target.digest, moved.digest);
  assert.match(res.stderr, /kept/);
  assert.equal(world.open.proxy.count({ method: 'PUT' }), 0);
  const after = await skopeoInspectRaw(`${world.open.host}/${repo}:2.0.0`);
  assert.ok(after.equals(before), 'the target tag moved');
});

test('a platform-filtered mirror gets an index of exactly those platforms, with the source child digests', async () => {
  const repo = 'filtered/app';
  const image = await seedImage(world.source.seedTarget, repo, 'v3', 'oci-index-with-attestations');
  const config = await writeConfig('filtered.json', {
    mirrors: [
      {
        source: `${world.source.host}/${repo}`,
        targets: [`${world.open.host}/${repo}`],
        tags: ['v3'],
        platforms: ['linux/arm64'],
      },
    ],
  });
  const plan = await world.runCli(['plan', '--config', config, '--json'], { env });
  assert.equal(plan.code, 0, plan.stderr);
  const planned = syncReportSchema.parse(JSON.parse(plan.stdout)).mirrors[0]!.images[0]!;
  assert.ok(planned.filteredDigest && planned.filteredDigest !== image.digest, 'plan names the new digest');

  const res = await world.runCli(['sync', '--config', config, '--json'], { env });
  assert.equal(res.code, 0, res.stderr);
  const result = syncReportSchema.parse(JSON.parse(res.stdout)).mirrors[0]!.images[0]!;
  assert.equal(result.filteredDigest, planned.filteredDigest);
  const raw = await skopeoInspectRaw(`${world.open.host}/${repo}:v3`);
  const index = JSON.parse(raw.toString('utf8')) as {
    manifests: { digest: string; platform?: { os: string; architecture: string } }[];
  };
  const platforms = index.manifests
    .filter((m) => m.platform?.os !== 'unknown')
    .map((m) => `${m.platform!.os}/${m.platform!.architecture}`);
  assert.deepEqual(platforms, ['linux/arm64']);
  const source = JSON.parse(image.bytes.toString('utf8')) as typeof index;
  for (const m of index.manifests) {
    assert.ok(
      source.manifests.some((s) => s.digest === m.digest),
      `${m.digest} is not a child of the source index`,
    );
    // Each child is there, byte-identical.
    const child = await skopeoInspectRaw(`${world.open.host}/${repo}@${m.digest}`);
    assert.ok(child.equals(image.manifests.find((x) => x.digest === m.digest)!.bytes));
  }
  // One platform image and its attestation.
  assert.equal(index.manifests.length, 2);
});

test('a bad config exits 2 naming the file and the path', async () => {
  const file = await writeConfig('bad.json', {
    mirrors: [{ source: `${world.source.host}/x`, targets: [], tags: { semver: '>=1.0.0 <<2' } }],
  });
  const res = await world.runCli(['sync', '--config', file], { env });
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /bad\.json/);
  assert.match(res.stderr, /mirrors\[0\]\.targets/);
  assert.match(res.stderr, /mirrors\[0\]\.tags\.semver/);
});
