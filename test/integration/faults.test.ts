// Faults on the wire, against real registries: blob bodies cut midway (resumed with Range, or restarted
// where Range is ignored), an upload whose answer is lost (the session started again), throttling and
// 5xx on a source and a target during a multi-repository sync, retry limits, and tokens that expire
// many times over during a run. skopeo is the witness: it pulls every image and checks every digest.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { syncReportSchema } from '../../src/cli/report.js';
import { type Endpoint, startWorld, type World, writeDockerConfig } from '../harness/fixture.js';
import type { FaultAction, FaultRequest } from '../harness/proxy.js';
import { startProxy } from '../harness/proxy.js';
import { startRegistry } from '../harness/registry.js';
import {
  type LargeBlobImage,
  RegistryClient as SeedClient,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
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

describe('a blob GET cut midway', () => {
  let image: LargeBlobImage;
  before(async () => {
    image = await seedLargeBlobImage(world.source.seedTarget, 'cut/app', 'v1', 3 * MiB);
  });

  test('resumes with a Range request from the byte where it stopped', async () => {
    const ranges: string[] = [];
    let cuts = 0;
    world.resetCounts();
    world.source.proxy.settings.fault = (req) => {
      if (req.method !== 'GET' || req.kind !== 'blob' || !req.path.endsWith(image.layer.digest)) return;
      if (req.headers.range) ranges.push(String(req.headers.range));
      // Cut the first two attempts: the fresh GET and the first resume.
      return cuts++ < 2 ? { cutBodyAfterBytes: MiB / 2 + 1000 } : undefined;
    };
    let res: Awaited<ReturnType<World['runCli']>>;
    try {
      res = await world.runCli(
        ['copy', `${world.source.host}/cut/app:v1`, `${world.open.host}/cut/ranged:v1`, '--json'],
        { env },
      );
    } finally {
      world.clearFaults();
    }
    assert.equal(res.code, 0, res.stderr);
    // Each resume starts where the bytes received so far end: at or after the cut point.
    assert.equal(ranges.length, 2, `Range requests: ${ranges.join(', ')}`);
    for (const r of ranges) assert.match(r, /^bytes=\d+-$/);
    const starts = ranges.map((r) => Number(/\d+/.exec(r)![0]));
    assert.ok(starts[0]! > 0 && starts[0]! <= MiB && starts[1]! > starts[0]!, `starts ${starts.join(', ')}`);
    const report = JSON.parse(res.stdout) as { retries: number };
    assert.ok(report.retries >= 2, `retries ${report.retries}`);
    // One upload of the layer on the target: the resumed stream fed the same session.
    assert.equal(world.open.proxy.count({ method: 'POST', kind: 'upload', repo: 'cut/ranged' }), 2);
    await assertSkopeoPulls(world.open, 'cut/ranged', 'v1', image.manifest.bytes);
  });

  test('restarts from the first byte when the server ignores Range, and skips what it already has', async () => {
    let gets = 0;
    world.resetCounts();
    world.source.proxy.settings.fault = (req) => {
      if (req.method !== 'GET' || req.kind !== 'blob' || !req.path.endsWith(image.layer.digest)) return;
      gets++;
      if (gets === 1) return { cutBodyAfterBytes: MiB + 123 };
      return { withoutHeaders: ['range'] };
    };
    let res: Awaited<ReturnType<World['runCli']>>;
    try {
      res = await world.runCli(
        ['copy', `${world.source.host}/cut/app:v1`, `${world.open.host}/cut/restarted:v1`],
        { env },
      );
    } finally {
      world.clearFaults();
    }
    assert.equal(res.code, 0, res.stderr);
    assert.equal(gets, 2);
    await assertSkopeoPulls(world.open, 'cut/restarted', 'v1', image.manifest.bytes);
  });
});

test('an upload whose PATCH answer is lost starts again in a new session, and the blob is whole', async () => {
  const image = await seedLargeBlobImage(world.source.seedTarget, 'lost/app', 'v1', 3 * MiB);
  let patches = 0;
  world.resetCounts();
  world.basic.proxy.settings.fault = (req) =>
    req.method === 'PATCH' && ++patches === 2 ? { dropResponse: true } : undefined;
  let res: Awaited<ReturnType<World['runCli']>>;
  try {
    res = await world.runCli(
      [
        'copy',
        `${world.source.host}/lost/app:v1`,
        `${world.basic.host}/lost/app:v1`,
        `${world.open.host}/lost/app:v1`,
        '--chunk-size',
        '512KiB',
        '--json',
      ],
      { env },
    );
  } finally {
    world.clearFaults();
  }
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as { targets: { blobsUploaded: number }[] };
  assert.deepEqual(
    report.targets.map((t) => t.blobsUploaded),
    [2, 2],
  );
  // The basic target's layer session was given up after the lost answer, and a second one opened.
  assert.ok(world.basic.proxy.count({ method: 'POST', kind: 'upload' }) >= 3);
  // The source served the layer twice: once for both targets, once for the restart.
  const layerGets = world.source.proxy.requests.filter(
    (r) => r.method === 'GET' && r.path.endsWith(image.layer.digest),
  );
  assert.equal(layerGets.length, 2);
  await assertSkopeoPulls(world.basic, 'lost/app', 'v1', image.manifest.bytes);
  await assertSkopeoPulls(world.open, 'lost/app', 'v1', image.manifest.bytes);
});

test('--retries bounds the attempts: 503 forever fails after exactly N+1 requests, naming the registry', async () => {
  await seedImage(world.source.seedTarget, 'limits/app', 'v1', 'oci-image');
  world.resetCounts();
  world.open.proxy.settings.fault = (req) => (req.kind === 'manifest' ? { status: 503 } : undefined);
  let res: Awaited<ReturnType<World['runCli']>>;
  try {
    res = await world.runCli(
      ['copy', `${world.source.host}/limits/app:v1`, `${world.open.host}/limits/app`, '--retries', '2'],
      { env },
    );
  } finally {
    world.clearFaults();
  }
  assert.equal(res.code, 1, res.stderr);
  assert.equal(world.open.proxy.count({ kind: 'manifest' }), 3);
  assert.match(res.stderr, new RegExp(`${world.open.host}.*HTTP 503`));
  assert.equal(world.source.proxy.count({ method: 'GET', kind: 'blob' }), 0);
});

/** A small deterministic PRNG, so a failing fault pattern can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * 10% of requests answered 429 (a quarter of them with Retry-After) or 503, and 10% of blob GETs cut
 * after a few bytes. Token requests go to the token server and are not faulted.
 */
function flaky(seed: number, tally: { injected: number }) {
  const random = prng(seed);
  return (req: FaultRequest): FaultAction | undefined => {
    const r = random();
    if (r < 0.025) {
      tally.injected++;
      return { status: 429, headers: { 'retry-after': '1' } };
    }
    if (r < 0.05) {
      tally.injected++;
      return { status: 429 };
    }
    if (r < 0.1) {
      tally.injected++;
      return { status: 503 };
    }
    if (req.kind === 'blob' && req.method === 'GET' && random() < 0.1) {
      tally.injected++;
      return { cutBodyAfterBytes: 1 + Math.floor(random() * 200_000) };
    }
    return undefined;
  };
}

test('a sync through 429s, 503s and cut bodies on the source and a target completes, and the second run is a no-op', async () => {
  const repos = ['flaky/api', 'flaky/web', 'flaky/worker'];
  const tags = ['1.0.0', '1.1.0'];
  const seeded = new Map<string, Buffer>();
  const client = new SeedClient(world.source.seedTarget);
  for (const repo of repos) {
    for (const tag of tags) {
      const img = await seedImage(client, repo, tag, 'oci-index-with-attestations', { layerSize: 300_000 });
      seeded.set(`${repo}:${tag}`, img.bytes);
    }
  }
  const configFile = join(world.workDir, 'flaky.json');
  await writeFile(
    configFile,
    JSON.stringify({
      defaults: { concurrency: 4 },
      mirrors: repos.map((repo) => ({
        source: `${world.source.host}/${repo}`,
        targets: [`${world.basic.host}/{path}`, `${world.open.host}/{path}`],
        tags: { semver: '>=1.0.0' },
      })),
    }),
  );
  const tally = { injected: 0 };
  world.resetCounts();
  world.source.proxy.settings.fault = flaky(1, tally);
  world.basic.proxy.settings.fault = flaky(2, tally);
  try {
    const first = await world.runCli(['sync', '--config', configFile, '--json', '--chunk-size', '128KiB'], {
      env,
      timeoutMs: 300_000,
    });
    assert.equal(first.code, 0, first.stderr);
    const report = syncReportSchema.parse(JSON.parse(first.stdout));
    assert.equal(report.summary.copied, repos.length * tags.length * 2);
    assert.equal(report.summary.failed, 0);
    assert.ok(tally.injected >= 10, `only ${tally.injected} faults injected`);
    assert.ok(report.summary.retries >= tally.injected / 2, `${report.summary.retries} retries`);
    // The report says where the run was throttled: exactly the 429s and 503s each registry answered
    // (a storage redirect's host has none here); the registry that injected none is not listed.
    for (const ep of [world.source, world.basic]) {
      const entry = report.throttling.find((t) => t.registry === ep.host);
      assert.ok(entry, `no throttling entry for ${ep.host}: ${JSON.stringify(report.throttling)}`);
      assert.equal(entry.tooManyRequests, ep.proxy.count({ status: 429 }), `${ep.host} 429s`);
      assert.equal(entry.unavailable, ep.proxy.count({ status: 503 }), `${ep.host} 503s`);
      assert.ok(entry.waitedMs > 0);
      assert.ok(entry.concurrency.lowest < entry.concurrency.initial, 'the bound went down');
    }
    assert.equal(
      report.throttling.find((t) => t.registry === world.open.host),
      undefined,
    );

    world.resetCounts();
    const second = await world.runCli(['sync', '--config', configFile, '--json'], {
      env,
      timeoutMs: 300_000,
    });
    assert.equal(second.code, 0, second.stderr);
    const again = syncReportSchema.parse(JSON.parse(second.stdout));
    assert.equal(again.summary.upToDate, repos.length * tags.length * 2);
    assert.equal(again.summary.blobsUploaded, 0);
    for (const ep of [world.basic, world.open]) {
      assert.equal(ep.proxy.count({ method: 'PUT' }), 0);
      assert.equal(ep.proxy.count({ method: 'POST' }), 0);
    }
    assert.equal(world.source.proxy.count({ method: 'GET', kind: 'blob' }), 0);
  } finally {
    world.clearFaults();
  }
  for (const [ref, bytes] of seeded) {
    const [repo, tag] = ref.split(':') as [string, string];
    await assertSkopeoPulls(world.basic, repo, tag, bytes);
    await assertSkopeoPulls(world.open, repo, tag, bytes);
  }
});

describe('tokens that live 3 seconds', () => {
  let short: World;
  let target: Endpoint;
  const stops: (() => Promise<void>)[] = [];
  before(async () => {
    short = await startWorld({ tokenLifetimeSeconds: 3 });
    // A second token registry as the target, so that uploads need push tokens too.
    const registry = await startRegistry({ auth: 'token', tokenServer: short.tokenServer });
    stops.push(() => registry.stop());
    const proxy = await startProxy(registry.url);
    stops.push(() => proxy.stop());
    target = {
      registry,
      proxy,
      host: proxy.host,
      url: proxy.url,
      creds: short.source.creds!,
      skopeoCreds: short.source.skopeoCreds!,
      seedTarget: { url: proxy.url, ...short.source.creds! },
    };
    await writeDockerConfig(short.dockerConfigDir, [
      [short.source.host, short.source.creds!],
      [target.host, short.source.creds!],
    ]);
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await short?.stop();
  });

  test('a sync that runs for many token lifetimes, with chunked uploads longer than one, completes', async () => {
    const repos = ['slow/a', 'slow/b', 'slow/c'];
    const seeded = new Map<string, Buffer>();
    for (const repo of repos) {
      const img = await seedLargeBlobImage(short.source.seedTarget, repo, 'v1', 2 * MiB);
      seeded.set(repo, img.manifest.bytes);
    }
    const configFile = join(short.workDir, 'slow.json');
    await writeFile(
      configFile,
      JSON.stringify({
        mirrors: repos.map((repo) => ({
          source: `${short.source.host}/${repo}`,
          targets: [`${target.host}/{path}`],
          tags: ['v1'],
        })),
      }),
    );
    // A slow target: every request waits 150 ms, so one 2 MiB layer in 128 KiB chunks takes > 3 s.
    target.proxy.settings.fault = () => ({ delayMs: 150 });
    short.resetCounts();
    const started = Date.now();
    const res = await short.runCli(
      ['sync', '--config', configFile, '--json', '--chunk-size', '128KiB', '-c', '1'],
      { env: { DOCKER_CONFIG: short.dockerConfigDir, HOME: short.homeDir }, timeoutMs: 300_000 },
    );
    const took = Date.now() - started;
    target.proxy.settings.fault = undefined;
    assert.equal(res.code, 0, res.stderr);
    assert.ok(took > 3 * 3000, `the sync took only ${took} ms`);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, 3);
    // Push tokens for the target were fetched again and again as they expired.
    const pushTokens = short.tokenServer.requests.filter(
      (r) => r.ok && r.scopes.some((s) => s.includes(':pull,push') || s.endsWith(':push,pull')),
    );
    assert.ok(pushTokens.length >= 4, `${pushTokens.length} push tokens for a ${took} ms run`);
    for (const [repo, bytes] of seeded) await assertSkopeoPulls(target, repo, 'v1', bytes);
  });
});
