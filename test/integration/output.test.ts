// What people read, against real registries: plan says per target what would happen to the tag (create
// in a new repository, move old → new, keep, up to date), what would be uploaded and mounted with bytes,
// and that a platform filter makes a new index digest; sync says the last too; tables fit 80 columns;
// check --fix ends with the state after the fix and exits by it; check exits 2 when trouble and drift
// mix, as diff does.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatBytes } from '../../src/cli/format.js';
import { syncReportSchema } from '../../src/cli/report.js';
import { BOB, READER, startWorld, type World, writeDockerConfig } from '../harness/fixture.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';

let world: World;
const seeded = new Map<string, SeededImage>();
const COLUMNS = { COLUMNS: '80' };

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

const short = (digest: string) => digest.slice(0, 19);
const bytesOf = (image: SeededImage, blobs = image.blobs) => blobs.reduce((n, b) => n + b.size, 0);

/** The lines of the summary table: from its header to the first empty line. */
function tableLines(stderr: string, header: RegExp): string[] {
  const lines = stderr.split('\n');
  const start = lines.findIndex((l) => header.test(l));
  assert.ok(start >= 0, `no table in:\n${stderr}`);
  const end = lines.indexOf('', start);
  return lines.slice(start, end < 0 ? undefined : end);
}

/** What a user must never read: two spellings of "up to date", or "1 images". */
function assertWording(text: string): void {
  assert.ok(!/up-to-date/.test(text), `"up-to-date" in:\n${text}`);
  assert.ok(
    !/\b1 (images|targets|retries|requests|blobs|manifests|tags|rows|checks|mirrors)\b/.test(text),
    text,
  );
  assert.ok(
    !/\b(0|[2-9]|\d\d+) (image|target|retry|request|blob|manifest|row|check|mirror)\b(?!s)/.test(text),
    text,
  );
}

before(async () => {
  world = await startWorld();
  for (const tag of ['1.0.0', '1.1.0']) {
    seeded.set(
      `out/app:${tag}`,
      await seedImage(world.source.seedTarget, 'out/app', tag, 'oci-index-with-attestations'),
    );
  }
  for (const tag of ['1.0.0', '1.1.0']) {
    seeded.set(`fix/app:${tag}`, await seedImage(world.source.seedTarget, 'fix/app', tag, 'oci-image'));
  }
});
after(async () => {
  await world?.stop();
});

describe('plan and sync say what would happen, per target', () => {
  let config: string;
  let moved: SeededImage;
  before(async () => {
    // The open target has 1.0.0 already, and another image under 1.1.0.
    const cp = await world.runCli([
      'copy',
      `${world.source.host}/out/app:1.0.0`,
      `${world.open.host}/out/app`,
    ]);
    assert.equal(cp.code, 0, cp.stderr);
    moved = await seedImage(world.open.seedTarget, 'out/app', '1.1.0', 'oci-image', { seed: 'elsewhere' });
    config = await writeConfig('plan.json', {
      mirrors: [
        {
          source: `${world.source.host}/out/app`,
          tags: { semver: '>=1.0.0' },
          targets: [`${world.open.host}/out/app`, `${world.basic.host}/out/new`],
        },
        {
          name: 'immutable',
          source: `${world.source.host}/out/app`,
          tags: ['1.1.0'],
          overwrite: 'never',
          targets: [`${world.open.host}/out/app`],
        },
        {
          name: 'arm',
          source: `${world.source.host}/out/app`,
          tags: ['1.0.0'],
          platforms: ['linux/arm64'],
          targets: [`${world.open.host}/out/arm`],
        },
      ],
    });
  });

  test('plan: create in a new repository, move old → new, keep, up to date, bytes, the platform filter', async () => {
    world.resetCounts();
    const res = await world.runCli(['plan', '--config', config], { env: COLUMNS });
    assert.equal(res.code, 0, res.stderr);
    const open = world.open.host;
    const basic = world.basic.host;
    const v100 = seeded.get('out/app:1.0.0')!;
    const v110 = seeded.get('out/app:1.1.0')!;
    const err = res.stderr;
    assert.match(err, new RegExp(`^    = ${open}/out/app:1\\.0\\.0: up to date$`, 'm'));
    assert.ok(
      err.includes(
        `    + ${open}/out/app:1.1.0: move ${short(moved.digest)} → ${short(v110.digest)}; upload ${v110.blobs.length} blobs (${formatBytes(bytesOf(v110))}), push 5 manifests\n`,
      ),
      err,
    );
    assert.ok(
      err.includes(
        `    ~ ${open}/out/app:1.1.0: kept, the tag points at ${short(moved.digest)} (overwrite "never")\n`,
      ),
      err,
    );
    // The first image to reach the new repository uploads; the other mounts what the first brought.
    const created = err.split('\n').filter((l) => l.includes(`${basic}/out/new:`));
    assert.equal(created.length, 2, err);
    for (const line of created) {
      assert.match(
        line,
        /^ {4}\+ \S+: create the tag in a new repository; (upload|mount) 8 blobs \([\d.]+ KiB\)/,
      );
    }
    const arm = v100.children[1]!;
    const armBlobs = [...arm.blobs, ...v100.children[3]!.blobs];
    assert.ok(
      err.includes(
        `    + ${open}/out/arm:1.0.0: create the tag in a new repository; upload ${armBlobs.length} blobs (${formatBytes(armBlobs.reduce((n, b) => n + b.size, 0))}), push 3 manifests\n`,
      ),
      err,
    );
    assert.match(
      err,
      new RegExp(
        `platforms linux/arm64 only: the targets get a new index sha256:[0-9a-f]{12}, not the source index ${short(v100.digest)}`,
      ),
    );
    assert.ok(
      err.includes(
        `2 repositories to create:\n${[`${basic}/out/new`, `${open}/out/arm`]
          .sort()
          .map((name) => `  ${name} (by the first push)\n`)
          .join('')}`,
      ),
      err,
    );
    assert.match(err, /^4 images, 6 targets: 4 to copy, 1 up to date, 1 kept, 0 failed$/m);
    for (const line of tableLines(
      err,
      /^mirror\s+target\s+create\s+move\s+up to date\s+kept\s+failed\s+bytes$/,
    )) {
      assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
    }
    assertWording(err);
    for (const ep of [world.source, world.basic, world.open]) {
      assert.equal(
        ep.proxy.count({ method: 'PUT' }) + ep.proxy.count({ method: 'POST' }),
        0,
        `plan wrote to ${ep.host}`,
      );
    }

    const json = await world.runCli(['plan', '--config', config, '--json']);
    const report = syncReportSchema.parse(JSON.parse(json.stdout));
    const targets = report.mirrors.flatMap((m) => m.images.flatMap((i) => i.targets));
    assert.deepEqual(
      targets
        .filter((t) => t.newRepository)
        .map((t) => t.target)
        .sort(),
      [`${basic}/out/new:1.0.0`, `${basic}/out/new:1.1.0`, `${open}/out/arm:1.0.0`].sort(),
    );
  });

  test('sync says the same: moved old → new, the platform filter; the table fits 80 columns', async () => {
    const res = await world.runCli(['sync', '--config', config], { env: COLUMNS });
    assert.equal(res.code, 0, res.stderr);
    const v110 = seeded.get('out/app:1.1.0')!;
    assert.ok(
      res.stderr.includes(
        `    ${world.open.host}/out/app:1.1.0: moved ${short(moved.digest)} → ${short(v110.digest)}\n`,
      ),
      res.stderr,
    );
    assert.match(
      res.stderr,
      /platforms linux\/arm64 only: the targets got a new index sha256:[0-9a-f]{12}, not the source index/,
    );
    assert.match(
      res.stderr,
      /^1 image platform-filtered: the targets got new index digests, not the sources'$/m,
    );
    for (const line of tableLines(
      res.stderr,
      /^mirror\s+target\s+copied\s+up to date\s+kept\s+failed\s+bytes\s+time$/,
    )) {
      assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
    }
    assertWording(res.stderr);
    assert.ok((await skopeoInspectRaw(`${world.open.host}/out/app:1.1.0`)).equals(v110.bytes));
  });
});

describe('check --fix ends with the state after the fix', () => {
  let config: string;
  before(async () => {
    config = await writeConfig('fix.json', {
      mirrors: [
        {
          source: `${world.source.host}/fix/app`,
          tags: { semver: '>=1.0.0' },
          targets: [`${world.open.host}/fix/app`, `${world.basic.host}/fix/app`],
        },
      ],
    });
    const res = await world.runCli(['sync', '--config', config]);
    assert.equal(res.code, 0, res.stderr);
  });

  async function drift(): Promise<void> {
    // Missing on the open target, stale on the Basic-auth one, and an extra tag.
    const gone = seeded.get('fix/app:1.0.0')!;
    const del = await fetch(`${world.open.url}/v2/fix/app/manifests/${gone.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    await seedImage(world.basic.seedTarget, 'fix/app', '1.1.0', 'oci-image', {
      seed: `stale ${Math.random()}`,
    });
    await seedImage(world.open.seedTarget, 'fix/app', '1.9.0', 'oci-image', { seed: 'extra' });
  }

  test('--json: counts after the fix, the counts before, each repaired row with the state it was in', async () => {
    await drift();
    const res = await world.runCli(['check', '--config', config, '--fix', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as {
      exitCode: number;
      counts: Record<string, number>;
      countsBefore: Record<string, number>;
      rows: { target: string; tag: string; state: string; fixedFrom?: string }[];
    };
    assert.equal(report.exitCode, 0);
    assert.deepEqual(report.countsBefore, { ok: 2, missing: 1, stale: 1, extra: 1, incomplete: 0, error: 0 });
    assert.deepEqual(report.counts, { ok: 4, missing: 0, stale: 0, extra: 1, incomplete: 0, error: 0 });
    assert.deepEqual(
      report.rows
        .filter((r) => r.fixedFrom)
        .map((r) => [r.target, r.tag, r.fixedFrom, r.state])
        .sort(),
      [
        [`${world.basic.host}/fix/app`, '1.1.0', 'stale', 'ok'],
        [`${world.open.host}/fix/app`, '1.0.0', 'missing', 'ok'],
      ].sort(),
    );
    assert.match(res.stderr, /^fixing 2 drifted rows \(1 missing, 1 stale\) with 2 copies$/m);
    assert.match(
      res.stderr,
      /^fixed 2 of 2 rows; checked again, now: ok 4 {2}missing 0 {2}stale 0 {2}extra 1/m,
    );
    // skopeo agrees.
    const opts = { creds: world.basic.skopeoCreds! };
    assert.ok(
      (await skopeoInspectRaw(`${world.basic.host}/fix/app:1.1.0`, opts)).equals(
        seeded.get('fix/app:1.1.0')!.bytes,
      ),
    );
    assert.ok(
      (await skopeoInspectRaw(`${world.open.host}/fix/app:1.0.0`)).equals(seeded.get('fix/app:1.0.0')!.bytes),
    );
  });

  test('table: the repaired rows say what they were; the exit code follows the state after the fix', async () => {
    await drift();
    const res = await world.runCli(
      ['check', '--config', config, '--fix', '--fail-on', 'missing,stale,extra'],
      {
        env: COLUMNS,
      },
    );
    // The extra tag is never deleted, and --fail-on counts it: drift remains.
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stdout,
      /^ok 4 {2}missing 0 {2}stale 0 {2}extra 1 {2}incomplete 0 {2}error 0\nafter --fix: 2 of 2 drifted rows fixed$/m,
    );
    assert.match(
      res.stdout,
      // The target is shortened in the middle to fit 80 columns.
      /^ok\s+127\.0\.0\S*…\S*\/fix\/app\s+1\.0\.0\s+[0-9a-f]{12}\s+[0-9a-f]{12}\s+fixed, was missing$/m,
    );
    assert.match(res.stdout, /^ok\s+\S+\s+1\.1\.0\s+[0-9a-f]{12}\s+[0-9a-f]{12}\s+fixed, was stale$/m);
    assert.match(res.stdout, /^extra\s+\S+\s+1\.9\.0\s+-\s+[0-9a-f]{12}\s*$/m);
    for (const line of res.stdout.split('\n')) assert.ok(line.length <= 80, line);
    assertWording(res.stderr + res.stdout);
  });

  test('a repair that fails is trouble: exit 2, the row says why', async () => {
    const dir = join(world.workDir, 'reader-config');
    await mkdir(dir, { recursive: true });
    // Pull-only on the token registry: the target there cannot be written.
    await writeDockerConfig(dir, [
      [world.source.host, READER],
      [world.basic.host, BOB],
    ]);
    const denied = await writeConfig('denied.json', {
      mirrors: [
        {
          source: `${world.source.host}/fix/app`,
          tags: ['1.0.0'],
          targets: [`${world.source.host}/denied/app`],
        },
      ],
    });
    const res = await world.runCli(['check', '--config', denied, '--fix', '--json'], {
      env: { DOCKER_CONFIG: dir },
    });
    assert.equal(res.code, 2, res.stderr);
    const report = JSON.parse(res.stdout) as {
      rows: { state: string; fixedFrom?: string; fixError?: string }[];
    };
    assert.equal(report.rows.length, 1);
    assert.equal(report.rows[0]!.state, 'missing');
    assert.equal(report.rows[0]!.fixedFrom, 'missing');
    assert.match(report.rows[0]!.fixError ?? '', /access denied/);
  });
});

test('check with drift and an unreachable registry exits 2: trouble wins, as with diff', async () => {
  const config = await writeConfig('mixed.json', {
    mirrors: [
      {
        source: `${world.source.host}/fix/app`,
        tags: ['1.0.0'],
        targets: [`${world.open.host}/never-synced/app`],
      },
      {
        source: `${world.source.host}/fix/app`,
        name: 'gone',
        tags: ['1.0.0'],
        targets: ['127.0.0.1:9/gone/app'],
      },
    ],
  });
  const res = await world.runCli(['check', '--config', config, '--retries', '0', '--json']);
  assert.equal(res.code, 2, res.stderr);
  const report = JSON.parse(res.stdout) as { exitCode: number; counts: Record<string, number> };
  assert.equal(report.exitCode, 2);
  assert.equal(report.counts.missing, 1);
  assert.ok((report.counts.error ?? 0) >= 1);
  const md = await world.runCli(['check', '--config', config, '--retries', '0', '--format', 'markdown']);
  assert.equal(md.code, 2);
  assert.match(md.stdout, /^## regmirror check: \d+ errors?, 1 drifted$/m);
  const table = await world.runCli(['check', '--config', config, '--retries', '0']);
  assert.equal(table.code, 2);
  assert.match(
    table.stdout,
    /^errors:\n {2}127\.0\.0\.1:9\/gone\/app:1\.0\.0: target registry 127\.0\.0\.1:9.*connection refused/m,
  );
});
