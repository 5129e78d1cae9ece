// Docker Hub's pull quota, played by the counting proxy in front of a real token-auth registry that the
// config calls `type: "dockerhub"`: every manifest answer carries ratelimit-limit / ratelimit-remaining
// (GETs spend the quota, HEADs only report it), 429s come with and without Retry-After. What is proved:
// GETs only where the content is needed, the quota in every report, the run slowing down before the
// quota is gone, 429s waited out and named, and a quota that stays gone named with its reset time.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rateLimitSchema, syncReportSchema } from '../../src/cli/report.js';
import { startWorld, type World } from '../harness/fixture.js';
import type { FaultAction, FaultRequest, ProxyRequestRecord } from '../harness/proxy.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { assertSkopeoPulls } from '../harness/witness.js';

let world: World;
let env: Record<string, string>;
/** Calls the token registry a Docker Hub: its profile gets the pull quota. */
let hubConfig: string;

/** `regmirror copy --config CONFIG SOURCE TARGET ...extra` with the Docker Hub test's environment. */
function hubCopy(source: string, target: string, extra: string[] = [], config = hubConfig) {
  return world.runCli(['copy', '--config', config, source, target, ...extra], { env });
}
const images = new Map<string, SeededImage>();

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  for (const [repo, tag] of [
    ['hub/app', '1.0'],
    ['hub/app', '1.1'],
    ['hub/paced', '1.0'],
    ['hub/throttled', '1.0'],
  ] as const) {
    images.set(
      `${repo}:${tag}`,
      await seedImage(world.source.seedTarget, repo, tag, 'oci-index-with-attestations'),
    );
  }
  hubConfig = join(world.workDir, 'hub.json');
  await writeFile(
    hubConfig,
    JSON.stringify({
      registries: { [world.source.host]: { type: 'dockerhub' } },
      mirrors: [
        {
          name: 'app',
          source: `${world.source.host}/hub/app`,
          targets: [`${world.basic.host}/{path}`, `${world.open.host}/{path}`],
        },
      ],
    }),
  );
});
after(async () => {
  await world?.stop();
});

interface Quota {
  limit: number;
  window: number;
  remaining: number;
  /** GETs spend the quota (Docker Hub); false: the number stays (a test holding it below the reserve). */
  spend: boolean;
}

/** Docker Hub's headers on every manifest answer from the source; other requests pass untouched. */
function dockerHub(quota: Quota, then?: (req: FaultRequest) => FaultAction | undefined) {
  return (req: FaultRequest): FaultAction | undefined => {
    const special = then?.(req);
    if (special) return special;
    if (req.kind !== 'manifest' || (req.method !== 'GET' && req.method !== 'HEAD')) return undefined;
    if (req.method === 'GET' && quota.spend) quota.remaining = Math.max(0, quota.remaining - 1);
    const left = quota.remaining;
    return {
      editResponseHeaders: (headers, status) =>
        status === 401
          ? headers
          : {
              ...headers,
              'ratelimit-limit': `${quota.limit};w=${quota.window}`,
              'ratelimit-remaining': `${left};w=${quota.window}`,
              'docker-ratelimit-source': '192.0.2.1',
            },
    };
  };
}

const manifestGets = (records: ProxyRequestRecord[]) =>
  records.filter((r) => r.kind === 'manifest' && r.method === 'GET' && r.status !== 401);

describe('a sync from a Docker Hub source', () => {
  const quota: Quota = { limit: 100, window: 21600, remaining: 100, spend: true };
  let firstGets = 0;

  test('GETs each source manifest once, whatever the number of targets, and reports the quota', async () => {
    world.resetCounts();
    world.source.proxy.settings.fault = dockerHub(quota);
    const res = await world.runCli(['sync', '--config', hubConfig, '--json'], { env });
    world.clearFaults();
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, 4);

    // Exactly one GET per distinct source manifest: indexes, images and attestations of both tags. The
    // targets lack both tags (their tag lists say so), so each index is fetched by its tag at once — the
    // GET gives the digest; a HEAD first would be a request more — and everything below it by digest.
    const expected = new Set(
      ['hub/app:1.0', 'hub/app:1.1'].flatMap((ref) => {
        const image = images.get(ref)!;
        return image.manifests.map((m) => (m.digest === image.digest ? ref.split(':')[1]! : m.digest));
      }),
    );
    const gets = manifestGets(world.source.proxy.requests);
    const fetched = gets.map((r) => r.path.split('/').pop()!);
    assert.equal(gets.length, expected.size, `GETs: ${fetched.join(' ')}`);
    assert.deepEqual(new Set(fetched), expected, 'every manifest once: roots by tag, the rest by digest');
    assert.equal(world.source.proxy.count({ kind: 'manifest', method: 'HEAD' }), 0, 'no HEAD at the source');
    firstGets = gets.length;

    assert.equal(report.rateLimits.length, 1);
    const seen = report.rateLimits[0]!;
    assert.equal(seen.registry, world.source.host);
    assert.equal(seen.quota, 'Docker Hub pull quota');
    assert.equal(seen.limit, 100);
    // The last answer in: GETs answered out of order may leave a number above the final one — as many
    // as were in flight together (an index's children are fetched side by side: 8 here).
    assert.ok(
      seen.remaining! >= 100 - firstGets && seen.remaining! <= 100 - firstGets + 8,
      `${seen.remaining}`,
    );
    assert.equal(seen.windowSeconds, 21600);
    assert.ok(Math.abs(Date.parse(seen.observedAt!) - Date.now()) < 120_000, seen.observedAt);
    assert.equal(seen.throttled, 0);
    assert.equal(seen.pacedRequests, 0, 'far above the reserve: nothing held back');
    assert.match(
      res.stderr,
      new RegExp(
        `${world.source.host}: Docker Hub pull quota: ${seen.remaining} of 100 left \\(6 h window\\) as of `,
      ),
    );
    for (const ep of [world.basic, world.open]) {
      for (const tag of ['1.0', '1.1'])
        await assertSkopeoPulls(ep, 'hub/app', tag, images.get(`hub/app:${tag}`)!.bytes);
    }
  });

  test('a second sync and a check spend no pull: HEADs only, and the quota still reported', async () => {
    world.resetCounts();
    world.source.proxy.settings.fault = dockerHub(quota);
    const again = await world.runCli(['sync', '--config', hubConfig, '--json'], { env });
    const check = await world.runCli(['check', '--config', hubConfig, '--json'], { env });
    const copy = await hubCopy(`${world.source.host}/hub/app:1.0`, `${world.open.host}/hub/app`, ['--json']);
    world.clearFaults();
    assert.equal(again.code, 0, again.stderr);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal(manifestGets(world.source.proxy.requests).length, 0, 'no manifest GET on the source');
    assert.ok(world.source.proxy.count({ kind: 'manifest', method: 'HEAD' }) >= 3);
    assert.equal(quota.remaining, 100 - firstGets, 'the quota was not touched');
    for (const out of [again, check, copy]) {
      const report = JSON.parse(out.stdout) as { rateLimits: unknown[] };
      assert.equal(report.rateLimits.length, 1, out.stdout);
      const seen = rateLimitSchema.parse(report.rateLimits[0]);
      assert.equal(seen.remaining, 100 - firstGets, 'read from the HEAD answers');
    }
    assert.match(check.stderr, /Docker Hub pull quota: \d+ of 100 left/);
  });
});

test('below a tenth of the quota, manifest GETs are spaced window/limit apart', async () => {
  // 10 pulls per 20 s window, 1 left: the reserve (1) is reached, so one GET every 2 s.
  const quota: Quota = { limit: 10, window: 20, remaining: 1, spend: false };
  world.resetCounts();
  world.source.proxy.settings.fault = dockerHub(quota);
  const res = await hubCopy(`${world.source.host}/hub/paced:1.0`, `${world.open.host}/hub/paced`, ['--json']);
  world.clearFaults();
  assert.equal(res.code, 0, res.stderr);
  const gets = manifestGets(world.source.proxy.requests);
  const image = images.get('hub/paced:1.0')!;
  assert.equal(gets.length, image.manifests.length);
  const times = gets.map((r) => r.at).sort((a, b) => a - b);
  for (let i = 1; i < times.length; i++) {
    // Spaced 2 s apart when released; measured at the proxy, an arrival can lag its release on a loaded
    // machine, so the bound leaves room. Unpaced, these GETs come within a few milliseconds.
    assert.ok(
      times[i]! - times[i - 1]! >= 1500,
      `GETs ${i - 1} and ${i} only ${times[i]! - times[i - 1]!} ms apart`,
    );
  }
  assert.match(
    res.stderr,
    new RegExp(
      `${world.source.host}: Docker Hub pull quota: 1 of 10 pulls left in a 20 s window; manifest GETs are now spaced 2\\.0 s apart to keep a reserve of 1`,
    ),
  );
  const report = JSON.parse(res.stdout) as { rateLimits: unknown[] };
  const seen = rateLimitSchema.parse(report.rateLimits[0]);
  assert.ok(seen.pacedRequests >= image.manifests.length - 1, JSON.stringify(seen));
  assert.ok(seen.pacedMs >= 1900 * (image.manifests.length - 1), JSON.stringify(seen));
  assert.match(res.stderr, /manifest GETs held back/);
  await assertSkopeoPulls(world.open, 'hub/paced', '1.0', image.bytes);
});

describe('a 429 from the quota', () => {
  /** The first manifest GET of the source is refused with 429 and these headers; the rest pass. */
  function firstGetRefused(headers: Record<string, string>) {
    const quota: Quota = { limit: 100, window: 21600, remaining: 50, spend: true };
    let refused = 0;
    const fault = dockerHub(quota, (req) => {
      if (req.kind !== 'manifest' || req.method !== 'GET' || refused > 0) return undefined;
      refused++;
      return {
        status: 429,
        headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600', ...headers },
        body: JSON.stringify({
          errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit.' }],
        }),
      };
    });
    return fault;
  }

  async function copyThrough(headers: Record<string, string>, target: string) {
    world.resetCounts();
    world.source.proxy.settings.fault = firstGetRefused(headers);
    const res = await hubCopy(`${world.source.host}/hub/throttled:1.0`, `${world.open.host}/${target}`, [
      '--json',
    ]);
    world.clearFaults();
    assert.equal(res.code, 0, res.stderr);
    const gets = manifestGets(world.source.proxy.requests);
    assert.equal(gets[0]!.status, 429);
    const report = JSON.parse(res.stdout) as { rateLimits: unknown[]; retries: number };
    const seen = rateLimitSchema.parse(report.rateLimits[0]);
    assert.equal(seen.throttled, 1);
    assert.ok(report.retries >= 1);
    await assertSkopeoPulls(world.open, target, '1.0', images.get('hub/throttled:1.0')!.bytes);
    return { res, gets, seen };
  }

  test('with Retry-After: waited out as asked, and named with the reset time', async () => {
    const { res, gets, seen } = await copyThrough({ 'retry-after': '2' }, 'hub/after');
    assert.ok(gets[1]!.at - gets[0]!.at >= 1900, `retried after ${gets[1]!.at - gets[0]!.at} ms`);
    assert.match(
      res.stderr,
      new RegExp(
        `${world.source.host}: Docker Hub pull quota exhausted \\(HTTP 429, 0 of 100 pulls left per 6 h\\); retrying in 2\\.0 s as its Retry-After asks; it resets at \\d{4}-\\d\\d-\\d\\dT`,
      ),
    );
    assert.ok(seen.resetAt, 'the reset time Retry-After gave is in the report');
  });

  test('without Retry-After but with ratelimit-reset: waited until the reset', async () => {
    const { res, gets, seen } = await copyThrough({ 'ratelimit-reset': '2' }, 'hub/reset');
    assert.ok(gets[1]!.at - gets[0]!.at >= 1500, `retried after ${gets[1]!.at - gets[0]!.at} ms`);
    assert.match(
      res.stderr,
      /Docker Hub pull quota exhausted \(HTTP 429, 0 of 100 pulls left per 6 h\); retrying in \d\.\d s when the quota resets; it resets at /,
    );
    assert.ok(seen.resetAt);
  });

  test('without any reset time: backoff, and said so', async () => {
    const { res } = await copyThrough({}, 'hub/backoff');
    assert.match(
      res.stderr,
      /Docker Hub pull quota exhausted \(HTTP 429, 0 of 100 pulls left per 6 h\); retrying in \d+ ms with backoff \(it gave no Retry-After or reset time\)/,
    );
  });

  test('a quota that stays gone fails the image naming the quota, its reset time and what to do', async () => {
    world.resetCounts();
    world.source.proxy.settings.fault = (req) =>
      req.kind === 'manifest' && req.method === 'GET'
        ? {
            status: 429,
            headers: {
              'ratelimit-limit': '100;w=21600',
              'ratelimit-remaining': '0;w=21600',
              'retry-after': '60',
            },
          }
        : undefined;
    // --retries 0: the 429 is final at once (the retry path is the tests above).
    const withReset = await hubCopy(`${world.source.host}/hub/throttled:1.0`, `${world.open.host}/hub/gone`, [
      '--retries',
      '0',
    ]);
    world.source.proxy.settings.fault = (req) =>
      req.kind === 'manifest' && req.method === 'GET' ? { status: 429 } : undefined;
    const noReset = await hubCopy(`${world.source.host}/hub/throttled:1.0`, `${world.open.host}/hub/gone`, [
      '--retries',
      '1',
    ]);
    // A spell of 429s longer than the manifest request's deadline: still named as the quota's doing.
    world.source.proxy.settings.fault = (req) =>
      req.kind === 'manifest' && req.method === 'GET'
        ? {
            status: 429,
            headers: {
              'ratelimit-limit': '100;w=21600',
              'ratelimit-remaining': '0;w=21600',
              'retry-after': '1',
            },
          }
        : undefined;
    const shortDeadline = join(world.workDir, 'hub-deadline.json');
    await writeFile(
      shortDeadline,
      JSON.stringify({
        registries: { [world.source.host]: { type: 'dockerhub', limits: { timeouts: { manifest: '3s' } } } },
        mirrors: [{ source: `${world.source.host}/hub/app`, targets: [`${world.open.host}/hub/app`] }],
      }),
    );
    const outlasted = await hubCopy(
      `${world.source.host}/hub/throttled:1.0`,
      `${world.open.host}/hub/gone`,
      ['--retries', '10'],
      shortDeadline,
    );
    world.clearFaults();
    assert.equal(outlasted.code, 1, outlasted.stderr);
    assert.match(
      outlasted.stderr,
      /manifest GET: Docker Hub pull quota exhausted: .* answered HTTP 429 to a manifest request, 0 of 100 pulls left per 6 h(; it resets at [^;]+|; it gave no reset time); the waits outlasted the request's deadline \(wait for .*limits\.timeouts\.manifest bounds how long one manifest request may wait\)/,
    );
    assert.equal(withReset.code, 1, withReset.stderr);
    assert.match(
      withReset.stderr,
      new RegExp(
        `source registry ${world.source.host}, repository hub/throttled, manifest GET: Docker Hub pull quota exhausted: ${world.source.host} answered HTTP 429 to a manifest request, 0 of 100 pulls left per 6 h; it resets at \\d{4}-[^ ]+ \\(in \\d+ s\\) \\(wait for the quota to refill, or pull with a Docker Hub account`,
      ),
    );
    assert.equal(noReset.code, 1, noReset.stderr);
    assert.match(
      noReset.stderr,
      /Docker Hub pull quota exhausted: .* answered HTTP 429 to a manifest request; it gave no reset time \(wait for/,
    );
    // Nothing reached the target.
    assert.equal(world.open.proxy.count({ method: 'PUT' }), 0);
  });
});
