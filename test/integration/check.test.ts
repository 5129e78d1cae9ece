// `regmirror check` against real registries: in sync after a sync; then a moved source tag, a deleted
// target tag and an extra target tag are reported exactly; HEAD-only request counts; --deep finds a
// deleted blob and --fix repairs it; Markdown output; shards cover every source once.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startWorld, type World } from '../harness/fixture.js';
import { type SeededImage, seedImage } from '../harness/seed.js';

const REPOS = ['drift/a', 'drift/b', 'drift/c'];
const TAGS = ['1.0.0', '1.1.0', '1.2.0'];

let world: World;
let env: Record<string, string>;
let config: string;
const seeded = new Map<string, SeededImage>();

interface Row {
  target: string;
  tag: string;
  state: string;
  sourceDigest?: string;
  targetDigest?: string;
  missingContent?: string[];
}
interface CheckReport {
  exitCode: number;
  counts: Record<string, number>;
  rows: Row[];
}

async function check(...args: string[]) {
  const res = await world.runCli(['check', '--config', config, ...args], { env });
  return res;
}

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  for (const repo of REPOS) {
    for (const tag of TAGS) {
      seeded.set(
        `${repo}:${tag}`,
        await seedImage(world.source.seedTarget, repo, tag, 'oci-index-with-attestations'),
      );
    }
  }
  config = join(world.workDir, 'drift.json');
  await writeFile(
    config,
    JSON.stringify({
      mirrors: REPOS.map((repo) => ({
        source: `${world.source.host}/${repo}`,
        targets: [`${world.open.host}/{path}`, `${world.basic.host}/{path}`],
        tags: { semver: '>=1.0.0' },
      })),
    }),
  );
  const res = await world.runCli(['sync', '--config', config], { env });
  assert.equal(res.code, 0, res.stderr);
});
after(async () => {
  await world?.stop();
});

test('after a sync: exit 0, every row ok, HEAD requests only (and one referrers probe)', async () => {
  world.resetCounts();
  const res = await check('--json');
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as CheckReport;
  const n = REPOS.length * TAGS.length;
  assert.equal(report.rows.length, n * 2);
  assert.ok(report.rows.every((r) => r.state === 'ok'));
  // At most N × (T + 1) manifest HEADs, no GETs of manifests or blobs, nothing written.
  const heads = [world.source, world.open, world.basic].reduce(
    (sum, ep) => sum + ep.proxy.count({ method: 'HEAD', kind: 'manifest', status: 200 }),
    0,
  );
  assert.ok(heads <= n * 3, `${heads} manifest HEADs for ${n} tags and 2 targets`);
  // With referrers on (the default), one referrers request to the source registry, answered 404 (no
  // referrers API: learned once for the run); the source tag lists, read anyway, hold no referrer tag,
  // so no manifest has referrers and nothing more is asked — on either side.
  assert.equal(world.source.proxy.count({ kind: 'referrers' }), 1);
  assert.equal(world.source.proxy.count({ kind: 'referrers', status: 404 }), 1);
  for (const ep of [world.source, world.open, world.basic]) {
    assert.equal(ep.proxy.count({ method: 'GET', kind: 'manifest' }), 0);
    assert.equal(ep.proxy.count({ kind: 'blob' }), 0);
    assert.equal(ep.proxy.count({ method: 'PUT' }) + ep.proxy.count({ method: 'POST' }), 0);
    const other = ep.proxy.requests.filter(
      (r) => r.kind !== 'manifest' && r.kind !== 'tags' && r.kind !== 'referrers' && r.status !== 401,
    );
    assert.deepEqual(other, [], `unexpected requests at ${ep.host}`);
  }
  for (const ep of [world.open, world.basic]) assert.equal(ep.proxy.count({ kind: 'referrers' }), 0);
});

test('a moved source tag, a deleted target tag and an extra target tag: exactly those rows (the moved tag is stale on both targets), exit 1', async () => {
  // Move drift/a:1.2.0 at the source to another image.
  const moved = await seedImage(world.source.seedTarget, 'drift/a', '1.2.0', 'oci-image', { seed: 'moved' });
  // Delete drift/b:1.0.0 on the open target (by digest: the registry deletes the manifest and its tag).
  const deleted = seeded.get('drift/b:1.0.0')!;
  const del = await fetch(`${world.open.url}/v2/drift/b/manifests/${deleted.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  // An extra tag the selection would take, which the source does not have.
  const extra = await seedImage(world.open.seedTarget, 'drift/c', '1.9.0', 'oci-image', { seed: 'extra' });

  const res = await check('--json');
  assert.equal(res.code, 1, res.stderr);
  const report = JSON.parse(res.stdout) as CheckReport;
  const diffs = report.rows.filter((r) => r.state !== 'ok');
  const open = world.open.host;
  const basic = world.basic.host;
  const old = seeded.get('drift/a:1.2.0')!.digest;
  assert.deepEqual(
    diffs.map((r) => [r.state, r.target, r.tag, r.sourceDigest, r.targetDigest]).sort(),
    [
      ['extra', `${open}/drift/c`, '1.9.0', undefined, extra.digest],
      ['missing', `${open}/drift/b`, '1.0.0', deleted.digest, undefined],
      ['stale', `${basic}/drift/a`, '1.2.0', moved.digest, old],
      ['stale', `${open}/drift/a`, '1.2.0', moved.digest, old],
    ].sort(),
  );
  assert.equal(report.counts.extra, 1);
  assert.equal(report.counts.missing, 1);
  assert.equal(report.counts.stale, 2);

  // Extras alone are not drift by default; --fail-on says what counts.
  const onlyExtra = await check('--fail-on', 'extra', '--only', `${world.source.host}/drift/c`);
  assert.equal(onlyExtra.code, 1, onlyExtra.stderr);
  const notCounted = await check('--only', `${world.source.host}/drift/c`);
  assert.equal(notCounted.code, 0, notCounted.stderr);

  const md = await check('--format', 'markdown');
  assert.equal(md.code, 1);
  assert.match(md.stdout, /^## regmirror check: 3 drifted/m);
  assert.match(md.stdout, /\| mirror \| target \| ok \| missing \| stale \| extra \| incomplete \| error \|/);
  assert.match(md.stdout, new RegExp(`\\| missing \\| ${open}/drift/b \\| \`1\\.0\\.0\``));
  if (process.env.REGMIRROR_PRINT_MARKDOWN) process.stderr.write(`${md.stdout}\n`);

  // --fix syncs exactly the drifted rows; afterwards only the extra remains.
  world.resetCounts();
  const fixed = await check('--fix', '--json');
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.equal(world.basic.proxy.count({ method: 'PUT', kind: 'manifest' }) > 0, true);
  const afterFix = await check('--json');
  assert.ok(afterFix.stdout.trim().startsWith('{'), `check --json printed no report: ${afterFix.stderr}`);
  const after = JSON.parse(afterFix.stdout) as CheckReport;
  assert.deepEqual(
    after.rows.filter((r) => r.state !== 'ok').map((r) => [r.state, r.tag]),
    [['extra', '1.9.0']],
  );
});

test('--deep finds a blob deleted on a target; --fix brings it back', async () => {
  const image = seeded.get('drift/c:1.1.0')!;
  const layer = image.blobs.find((b) => b.mediaType.includes('layer'))!;
  const del = await fetch(`${world.open.url}/v2/drift/c/blobs/${layer.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);

  const shallow = await check('--json', '--only', `${world.source.host}/drift/c`);
  assert.equal(shallow.code, 0, 'a HEAD-only check cannot see a missing blob');
  const deep = await check('--json', '--deep', '--only', `${world.source.host}/drift/c`);
  assert.equal(deep.code, 1, deep.stderr);
  const rows = (JSON.parse(deep.stdout) as CheckReport).rows.filter((r) => r.state === 'incomplete');
  assert.deepEqual(
    rows.map((r) => [r.target, r.tag, r.missingContent]),
    [[`${world.open.host}/drift/c`, '1.1.0', [`blob ${layer.digest}`]]],
  );

  const fix = await check('--deep', '--fix', '--only', `${world.source.host}/drift/c`);
  assert.equal(fix.code, 0, fix.stderr);
  const again = await check('--deep', '--only', `${world.source.host}/drift/c`);
  assert.equal(again.code, 0, again.stderr);
});

test('three shards cover every source repository exactly once', async () => {
  const seen: string[] = [];
  for (const i of [1, 2, 3]) {
    const res = await world.runCli(['plan', '--config', config, '--shard', `${i}/3`, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as { mirrors: { source: string }[] };
    seen.push(...report.mirrors.map((m) => m.source));
  }
  assert.deepEqual(seen.sort(), REPOS.map((r) => `${world.source.host}/${r}`).sort());
  const bad = await world.runCli(['check', '--config', config, '--shard', '4/3'], { env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--shard/);
});
