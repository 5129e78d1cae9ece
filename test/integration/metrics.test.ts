// --metrics-file on sync, check and copy against real registries: the file parses with the strict
// exposition-format parser of the harness and carries the run's own counts (tags per state, blobs and
// bytes uploaded and mounted, requests and retries as the --json report counts them, the exit code,
// the last success); it is replaced whole (no temporary file left); a directory that does not exist is
// refused before any request.

import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startWorld, type World } from '../harness/fixture.js';
import { type ParsedFamily, parseExposition, sampleValue } from '../harness/prometheus-text.js';
import { type SeededImage, seedImage } from '../harness/seed.js';

let world: World;
let config: string;
const images: SeededImage[] = [];

async function metrics(file: string): Promise<Map<string, ParsedFamily>> {
  return parseExposition(await readFile(file, 'utf8'));
}

before(async () => {
  world = await startWorld();
  for (const tag of ['1.0.0', '1.1.0']) {
    images.push(await seedImage(world.source.seedTarget, 'metrics/app', tag, 'oci-index-with-attestations'));
  }
  config = join(world.workDir, 'metrics.json');
  await writeFile(
    config,
    JSON.stringify({
      mirrors: [
        {
          name: 'app',
          source: `${world.source.host}/metrics/app`,
          tags: { semver: '>=1.0.0' },
          // The second target on the source registry gets its blobs by mount.
          targets: [`${world.open.host}/metrics/app`, `${world.source.host}/mirror/metrics/app`],
        },
      ],
    }),
  );
});
after(async () => {
  await world?.stop();
});

test('sync: tags per state, blobs and bytes per target, requests and retries as reported, the last success', async () => {
  const file = join(world.workDir, 'sync.prom');
  const res = await world.runCli(['sync', '--config', config, '--metrics-file', file, '--json']);
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as { summary: { requests: number; retries: number } };
  const m = await metrics(file);
  const open = `${world.open.host}/metrics/app`;
  const mirror = `${world.source.host}/mirror/metrics/app`;
  const labels = (target: string, extra: Record<string, string>) => ({
    command: 'sync',
    mirror: 'app',
    target,
    ...extra,
  });
  for (const target of [open, mirror]) {
    assert.equal(sampleValue(m, 'regmirror_tags', labels(target, { state: 'copied' })), 2);
    for (const state of ['up-to-date', 'kept', 'failed']) {
      assert.equal(sampleValue(m, 'regmirror_tags', labels(target, { state })), 0);
    }
  }
  const blobs = images.reduce((n, i) => n + i.blobs.length, 0);
  const bytes = images.reduce((n, i) => n + i.blobs.reduce((s, b) => s + b.size, 0), 0);
  assert.equal(sampleValue(m, 'regmirror_blobs', labels(open, { action: 'uploaded' })), blobs);
  assert.equal(sampleValue(m, 'regmirror_bytes', labels(open, { action: 'uploaded' })), bytes);
  assert.equal(sampleValue(m, 'regmirror_blobs', labels(mirror, { action: 'mounted' })), blobs);
  assert.equal(sampleValue(m, 'regmirror_bytes', labels(mirror, { action: 'mounted' })), bytes);
  assert.equal(sampleValue(m, 'regmirror_blobs', labels(mirror, { action: 'uploaded' })), 0);
  assert.equal(sampleValue(m, 'regmirror_requests', { command: 'sync' }), report.summary.requests);
  assert.equal(sampleValue(m, 'regmirror_retries', { command: 'sync' }), report.summary.retries);
  assert.equal(sampleValue(m, 'regmirror_exit_code', { command: 'sync' }), 0);
  assert.ok(sampleValue(m, 'regmirror_duration_seconds', { command: 'sync' }) > 0);
  const success = sampleValue(m, 'regmirror_last_success_timestamp_seconds', { command: 'sync' });
  assert.ok(Math.abs(success - Date.now() / 1000) < 120, String(success));
  for (const f of m.values()) assert.equal(f.type, 'gauge', f.name);

  // The second run: everything up to date, nothing sent; the file replaced whole.
  const again = await world.runCli(['sync', '--config', config, '--metrics-file', file]);
  assert.equal(again.code, 0, again.stderr);
  const m2 = await metrics(file);
  assert.equal(sampleValue(m2, 'regmirror_tags', labels(open, { state: 'up-to-date' })), 2);
  assert.equal(sampleValue(m2, 'regmirror_tags', labels(open, { state: 'copied' })), 0);
  assert.equal(sampleValue(m2, 'regmirror_blobs', labels(open, { action: 'uploaded' })), 0);
  assert.deepEqual(
    (await readdir(world.workDir)).filter((f) => f.includes('sync.prom')),
    ['sync.prom'],
  );
});

test('check: the drift counts; a failing check keeps the time of the last success', async () => {
  const file = join(world.workDir, 'check.prom');
  const ok = await world.runCli(['check', '--config', config, '--metrics-file', file]);
  assert.equal(ok.code, 0, ok.stderr);
  const success = sampleValue(await metrics(file), 'regmirror_last_success_timestamp_seconds', {
    command: 'check',
  });

  const gone = images[0]!;
  const del = await fetch(`${world.open.url}/v2/metrics/app/manifests/${gone.digest}`, { method: 'DELETE' });
  assert.equal(del.status, 202);
  await new Promise((r) => setTimeout(r, 1100));
  const drift = await world.runCli(['check', '--config', config, '--metrics-file', file]);
  assert.equal(drift.code, 1, drift.stderr);
  const m = await metrics(file);
  const labels = (target: string, state: string) => ({ command: 'check', mirror: 'app', target, state });
  const open = `${world.open.host}/metrics/app`;
  assert.equal(sampleValue(m, 'regmirror_tags', labels(open, 'missing')), 1);
  assert.equal(sampleValue(m, 'regmirror_tags', labels(open, 'ok')), 1);
  assert.equal(sampleValue(m, 'regmirror_tags', labels(`${world.source.host}/mirror/metrics/app`, 'ok')), 2);
  for (const state of ['stale', 'extra', 'incomplete', 'error']) {
    assert.equal(sampleValue(m, 'regmirror_tags', labels(open, state)), 0);
  }
  assert.equal(sampleValue(m, 'regmirror_exit_code', { command: 'check' }), 1);
  assert.equal(sampleValue(m, 'regmirror_last_success_timestamp_seconds', { command: 'check' }), success);
  assert.ok(sampleValue(m, 'regmirror_last_run_timestamp_seconds', { command: 'check' }) > success);

  // --fix: the repair's blobs are counted, the final state is what the tags say.
  const fixed = await world.runCli(['check', '--config', config, '--fix', '--metrics-file', file]);
  assert.equal(fixed.code, 0, fixed.stderr);
  const m2 = await metrics(file);
  assert.equal(sampleValue(m2, 'regmirror_tags', labels(open, 'ok')), 2);
  assert.equal(sampleValue(m2, 'regmirror_tags', labels(open, 'missing')), 0);
  const fixedBlobs = sampleValue(m2, 'regmirror_blobs', {
    command: 'check',
    target: open,
    action: 'uploaded',
  });
  // The deleted manifest's blobs are still in the registry: the fix re-pushes manifests only.
  assert.equal(fixedBlobs, 0);
});

test('copy: one target per series; a directory that does not exist is refused before any request', async () => {
  const file = join(world.workDir, 'copy.prom');
  const src = `${world.source.host}/metrics/app:1.1.0`;
  const res = await world.runCli(['copy', src, `${world.basic.host}/metrics/copy`, '--metrics-file', file]);
  assert.equal(res.code, 0, res.stderr);
  const m = await metrics(file);
  const labels = {
    command: 'copy',
    mirror: `${world.source.host}/metrics/app`,
    target: `${world.basic.host}/metrics/copy`,
  };
  assert.equal(sampleValue(m, 'regmirror_tags', { ...labels, state: 'copied' }), 1);
  assert.equal(sampleValue(m, 'regmirror_blobs', { ...labels, action: 'uploaded' }), images[1]!.blobs.length);

  world.resetCounts();
  const bad = await world.runCli([
    'copy',
    src,
    `${world.basic.host}/metrics/copy`,
    '--metrics-file',
    '/no/such/dir/x.prom',
  ]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /--metrics-file \/no\/such\/dir\/x\.prom: the directory \/no\/such\/dir does not exist/,
  );
  assert.equal(
    [world.source, world.basic, world.open].reduce((n, ep) => n + ep.proxy.count(), 0),
    0,
  );
});
