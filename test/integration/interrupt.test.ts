// Interruptions, the audit log and secrets, against real registries: Ctrl-C mid-upload (exit 130 in
// under two seconds, a partial report, upload sessions abandoned), `kill -9` at three moments with
// `check --deep` after each (no tag ever points at incomplete content) and a re-run that completes, the
// audit log as a true record, and known passwords and tokens absent from everything the tool writes.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AuditEntry } from '../../src/cli/audit.js';
import { syncReportSchema } from '../../src/cli/report.js';
import type { DriftRow } from '../../src/copy/check.js';
import {
  ALICE,
  BOB,
  basicAuth,
  type CliResult,
  READER,
  startWorld,
  type World,
  writeDockerConfig,
} from '../harness/fixture.js';
import type { FaultRequest } from '../harness/proxy.js';
import { RegistryClient as SeedClient, seedImage, seedLargeBlobImage } from '../harness/seed.js';
import { assertSkopeoPulls } from '../harness/witness.js';

const MiB = 1024 * 1024;

let world: World;
let env: Record<string, string>;

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
});
after(async () => {
  await world?.stop();
});

async function writeConfig(name: string, repos: string[], tags: string[]): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(
    file,
    JSON.stringify({
      defaults: { concurrency: 2 },
      mirrors: repos.map((repo) => ({
        source: `${world.source.host}/${repo}`,
        targets: [`${world.basic.host}/{path}`, `${world.open.host}/{path}`],
        tags,
      })),
    }),
  );
  return file;
}

async function readAudit(file: string): Promise<AuditEntry[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  // Every line is whole: a killed run never leaves half a line.
  assert.ok(text === '' || text.endsWith('\n'), 'the audit log ends mid-line');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditEntry);
}

async function deepCheck(configFile: string): Promise<{ res: CliResult; rows: DriftRow[] }> {
  const res = await world.runCli(['check', '--config', configFile, '--deep', '--json'], { env });
  const rows = (JSON.parse(res.stdout) as { rows: DriftRow[] }).rows;
  return { res, rows };
}

test('Ctrl-C during a sync: exit 130 within two seconds, a partial report, open upload sessions abandoned', async () => {
  const repos = ['sigint/a', 'sigint/b', 'sigint/c'];
  for (const repo of repos) await seedLargeBlobImage(world.source.seedTarget, repo, 'v1', 2 * MiB);
  const configFile = await writeConfig('sigint.json', repos, ['v1']);
  world.resetCounts();
  let interruptedAt = 0;
  const run = world.startCli(['sync', '--config', configFile, '--json', '--chunk-size', '256KiB'], { env });
  // A slow target; the first PATCH that reaches it is the moment to press Ctrl-C.
  world.basic.proxy.settings.fault = (req: FaultRequest) => {
    if (req.method === 'PATCH' && interruptedAt === 0) {
      interruptedAt = Date.now();
      run.child.kill('SIGINT');
    }
    return { delayMs: 100 };
  };
  let res: CliResult;
  try {
    res = await run.result;
  } finally {
    world.clearFaults();
  }
  const stoppedIn = Date.now() - interruptedAt;
  assert.ok(interruptedAt > 0, 'no upload reached the target');
  assert.equal(res.code, 130, res.stderr);
  assert.ok(stoppedIn < 2000, `exit ${stoppedIn} ms after SIGINT`);
  assert.match(res.stderr, /SIGINT: stopping/);
  assert.match(res.stderr, /interrupted: \d+ of 3 images finished/);
  const report = syncReportSchema.parse(JSON.parse(res.stdout));
  assert.equal(report.interrupted, true);
  assert.equal(report.exitCode, 130);
  const stopped = report.mirrors.flatMap((m) => m.images).filter((i) => i.errorKind === 'interrupted');
  assert.ok(stopped.length >= 1, 'the image in flight is reported as interrupted');
  // The session open on the target was abandoned, and no tag points at the unfinished image.
  assert.ok(world.basic.proxy.count({ method: 'DELETE', kind: 'upload' }) >= 1, 'no upload DELETE');
  const { rows } = await deepCheck(configFile);
  assert.deepEqual(
    rows.filter((r) => r.state !== 'ok' && r.state !== 'missing'),
    [],
  );
});

describe('kill -9 at three moments, then run again', () => {
  const repos = ['killed/a', 'killed/b', 'killed/c', 'killed/d'];
  const tags = ['v1', 'v2'];
  const seeded = new Map<string, Buffer>();
  let configFile: string;
  let auditFile: string;

  before(async () => {
    const client = new SeedClient(world.source.seedTarget);
    for (const repo of repos) {
      for (const tag of tags) {
        const img = await seedImage(client, repo, tag, 'oci-index-with-attestations', { layerSize: 400_000 });
        seeded.set(`${repo}:${tag}`, img.bytes);
      }
    }
    configFile = await writeConfig('killed.json', repos, tags);
    auditFile = join(world.workDir, 'killed-audit.jsonl');
  });

  /** Start a sync, kill -9 it when `when` says so (seeing each target request), and wait for it. */
  async function killedSync(when: (req: FaultRequest) => boolean): Promise<void> {
    const run = world.startCli(
      ['sync', '--config', configFile, '--chunk-size', '128KiB', '--audit-log', auditFile],
      { env },
    );
    let killed = false;
    const watch = (req: FaultRequest) => {
      if (!killed && when(req)) {
        killed = true;
        run.child.kill('SIGKILL');
      }
      return { delayMs: 20 };
    };
    world.basic.proxy.settings.fault = watch;
    world.open.proxy.settings.fault = watch;
    try {
      const res = await run.result;
      assert.ok(killed, `the moment never came; the sync ended with ${res.code}: ${res.stderr}`);
      assert.equal(res.signal, 'SIGKILL');
    } finally {
      world.clearFaults();
    }
  }

  /** What a reader of the targets sees now: every tag that exists is complete. */
  async function assertNoTagOnIncompleteContent(): Promise<void> {
    const { rows } = await deepCheck(configFile);
    const bad = rows.filter((r) => r.state !== 'ok' && r.state !== 'missing');
    assert.deepEqual(bad, [], 'a target tag points at incomplete content');
  }

  async function assertAuditIsTrue(): Promise<void> {
    const entries = await readAudit(auditFile);
    for (const e of entries.filter((x) => x.action === 'blob-upload' || x.action === 'blob-mount')) {
      const ep = e.registry === world.basic.host ? world.basic : world.open;
      assert.ok(
        await new SeedClient(ep.seedTarget).blobExists(e.repository, e.digest ?? ''),
        `audit says ${e.action} ${e.digest} to ${e.registry}/${e.repository}, but it is not there`,
      );
    }
  }

  let uploadsBeforeFirstKill = 0;

  test('killed during the first blob uploads', async () => {
    let patches = 0;
    await killedSync((req) => req.method === 'PATCH' && ++patches === 3);
    uploadsBeforeFirstKill = (await readAudit(auditFile)).length;
    await assertNoTagOnIncompleteContent();
    await assertAuditIsTrue();
  });

  test('killed right after the first tag was pushed', async () => {
    await killedSync(
      (req) => req.method === 'PUT' && req.kind === 'manifest' && /\/manifests\/v\d$/.test(req.path),
    );
    await assertNoTagOnIncompleteContent();
    await assertAuditIsTrue();
  });

  test('killed while child manifests are being pushed', async () => {
    let manifestPuts = 0;
    await killedSync((req) => req.method === 'PUT' && req.kind === 'manifest' && ++manifestPuts === 4);
    await assertNoTagOnIncompleteContent();
    await assertAuditIsTrue();
  });

  test('the next run completes; check --deep is clean; skopeo pulls every image', async () => {
    const res = await world.runCli(['sync', '--config', configFile, '--json', '--audit-log', auditFile], {
      env,
      timeoutMs: 300_000,
    });
    assert.equal(res.code, 0, res.stderr);
    const { res: check, rows } = await deepCheck(configFile);
    assert.equal(check.code, 0, check.stdout);
    assert.equal(rows.filter((r) => r.state === 'ok').length, repos.length * tags.length * 2);
    const entries = await readAudit(auditFile);
    assert.ok(entries.length > uploadsBeforeFirstKill);
    // No tag was created twice over the four runs. A PUT that reached the registry as the process died
    // is not in the log (it never heard the answer): the log may miss such a write, never invent one.
    const creates = entries
      .filter((e) => e.action === 'tag-create')
      .map((e) => `${e.registry}/${e.repository}:${e.tag}`);
    assert.equal(new Set(creates).size, creates.length, 'a tag was created twice');
    assert.ok(creates.length >= repos.length * tags.length * 2 - 3, `${creates.length} tag-create lines`);
    await assertAuditIsTrue();
    for (const [ref, bytes] of seeded) {
      const [repo, tag] = ref.split(':') as [string, string];
      for (const ep of [world.basic, world.open]) await assertSkopeoPulls(ep, repo, tag, bytes);
    }
  });
});

test('the audit log: one line per write, with registry, repository, digest, size and identity; a moved tag names its previous digest', async () => {
  const client = new SeedClient(world.source.seedTarget);
  const first = await seedImage(client, 'audited/app', 'v1', 'oci-index-with-attestations');
  await seedImage(client, 'audited/lib', 'v1', 'oci-image', { sharedLayers: first.blobs.slice(-1) });
  const configFile = join(world.workDir, 'audited.json');
  await writeFile(
    configFile,
    JSON.stringify({
      mirrors: ['audited/app', 'audited/lib'].map((repo) => ({
        source: `${world.source.host}/${repo}`,
        targets: [`${world.basic.host}/{path}`, `${world.open.host}/{path}`],
        tags: ['v1'],
      })),
    }),
  );
  const auditFile = join(world.workDir, 'audit.jsonl');
  const res = await world.runCli(['sync', '--config', configFile, '--audit-log', auditFile], { env });
  assert.equal(res.code, 0, res.stderr);
  const entries = await readAudit(auditFile);
  const uploads = entries.filter((e) => e.action === 'blob-upload');
  const basicUploads = uploads.filter((e) => e.registry === world.basic.host);
  // Every distinct blob of the app image reached the basic registry exactly once by upload.
  assert.equal(new Set(basicUploads.map((e) => e.digest)).size, basicUploads.length);
  for (const e of entries) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT/);
    assert.match(e.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.ok((e.size ?? -1) >= 0);
    assert.ok(e.repository.startsWith('audited/'));
    // The identity is the user name the registry knows; the open registry needs none.
    if (e.registry === world.basic.host) assert.equal(e.identity, BOB.username);
  }
  assert.ok(
    entries.some((e) => e.action === 'manifest-put'),
    'child manifests are logged',
  );
  assert.equal(entries.filter((e) => e.action === 'tag-create').length, 4);
  const tag = entries.find((e) => e.action === 'tag-create' && e.registry === world.basic.host)!;
  assert.equal(tag.tag, 'v1');
  assert.equal(tag.source, `${world.source.host}/audited/${tag.repository.split('/')[1]}:v1`);

  // Move the source tag: the next sync moves both target tags and says from where.
  const moved = await seedImage(client, 'audited/app', 'v1', 'oci-image', { seed: 'audited moved' });
  const again = await world.runCli(['sync', '--config', configFile, '--audit-log', auditFile], { env });
  assert.equal(again.code, 0, again.stderr);
  const moves = (await readAudit(auditFile)).filter((e) => e.action === 'tag-move');
  assert.equal(moves.length, 2);
  for (const m of moves) {
    assert.equal(m.digest, moved.digest);
    assert.equal(m.previousDigest, first.digest);
  }
});

test('no password, token or Authorization value appears in stdout, stderr, --debug, JSON reports or the audit log', async () => {
  const client = new SeedClient(world.source.seedTarget);
  await seedImage(client, 'secrets/app', 'v1', 'oci-index-with-attestations');
  const configFile = join(world.workDir, 'secrets.json');
  await writeFile(
    configFile,
    JSON.stringify({
      mirrors: [
        {
          source: `${world.source.host}/secrets/app`,
          targets: [`${world.basic.host}/{path}`, `${world.source.host}/copy/{path}`],
          tags: ['v1'],
        },
      ],
    }),
  );
  const auditFile = join(world.workDir, 'secrets-audit.jsonl');
  world.resetCounts();
  const outputs: CliResult[] = [];
  const debug = ['--debug', '--json'];
  outputs.push(
    await world.runCli(['sync', '--config', configFile, '--audit-log', auditFile, ...debug], { env }),
  );
  outputs.push(await world.runCli(['check', '--config', configFile, '--deep', ...debug], { env }));
  outputs.push(await world.runCli(['auth', 'check', '--config', configFile, ...debug], { env }));
  outputs.push(
    await world.runCli(
      [
        'copy',
        `${world.source.host}/secrets/app:v1`,
        `${world.basic.host}/secrets/again`,
        '--audit-log',
        auditFile,
        ...debug,
      ],
      { env },
    ),
  );
  // Wrong and pull-only credentials: errors and hints must not echo them either.
  const wrong = join(world.workDir, 'wrong-docker-config');
  await mkdir(wrong, { recursive: true });
  const wrongBob = { username: BOB.username, password: 'wrong-secret-for-bob' };
  await writeDockerConfig(wrong, [
    [world.source.host, READER],
    [world.basic.host, wrongBob],
  ]);
  const wrongEnv = { DOCKER_CONFIG: wrong, HOME: world.homeDir };
  outputs.push(await world.runCli(['sync', '--config', configFile, ...debug], { env: wrongEnv }));
  outputs.push(await world.runCli(['auth', 'check', '--config', configFile, ...debug], { env: wrongEnv }));
  assert.equal(outputs[0]!.code, 0, outputs[0]!.stderr);
  assert.notEqual(outputs.at(-1)!.code, 0);
  assert.ok(outputs[0]!.stderr.includes('[debug]'), '--debug traced requests');

  const tokens = world.tokenServer.issued;
  assert.ok(tokens.length > 0, 'the token server issued tokens during these runs');
  const secrets = [
    ...[ALICE, BOB, READER, wrongBob].flatMap((c) => [c.password, basicAuth(c)]),
    ...tokens,
    // A JWT's signature part alone is a secret too.
    ...tokens.map((t) => t.split('.').at(-1)!).filter((s) => s.length > 20),
  ];
  const audit = await readFile(auditFile, 'utf8');
  assert.ok(audit.length > 0);
  const texts = [...outputs.flatMap((o) => [o.stdout, o.stderr]), audit];
  for (const text of texts) {
    for (const secret of secrets) {
      assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) was written out`);
    }
    assert.doesNotMatch(text, /authorization:\s*(basic|bearer)\s+\S/i);
  }
});
