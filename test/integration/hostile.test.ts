// A hostile or broken registry cannot steal credentials, write elsewhere, exhaust memory or hang the run
// (issue 10). Scripted attacker registries (test/harness/hostile-registry.ts) play one trick each, next
// to real distribution registries (the world); every test asserts what reached which host, counted by
// the servers themselves. One test per finding of the issue (1–7) and per rule of README "Security".

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ALICE, BOB, type CliResult, startWorld, type World } from '../harness/fixture.js';
import {
  HOSTILE_REFRESH_TOKEN,
  HOSTILE_USER,
  type HostileRegistry,
  type OriginName,
  startHostileRegistry,
} from '../harness/hostile-registry.js';
import { runCliMeasured } from '../harness/measure.js';
import {
  descriptorOf,
  MediaType,
  makeContent,
  ociImage,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
import { makeTestCertificate } from '../harness/tls-cert.js';

let world: World;
/** Basic auth, plain HTTP. */
let hb: HostileRegistry;
/** Bearer tokens from its own realm, plain HTTP. */
let hx: HostileRegistry;
/** Bearer, logged in with an identity (refresh) token. */
let hi: HostileRegistry;
/** Basic auth over HTTPS. */
let hs: HostileRegistry;
/** HTTPS, but its challenge names a token realm on plain HTTP. */
let hsr: HostileRegistry;
let caFile: string;
let dockerDir: string;

const ALL_HOSTILE = () => [hb, hx, hi, hs, hsr];
/** Raw terminal control characters: C0 but newline and tab, DEL, C1 (0x9b is CSI). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const RAW_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const NASTY = '\u001b]0;pwned\u0007\u001b[2J\rforged: ✓ copied\b\b\u009b31m';

before(async () => {
  world = await startWorld();
  const tls = await makeTestCertificate(join(world.workDir, 'hostile-tls'), 'hostile registry');
  caFile = tls.certFile;
  [hb, hx, hi, hs, hsr] = await Promise.all([
    startHostileRegistry({ auth: 'basic' }),
    startHostileRegistry({ auth: 'bearer' }),
    startHostileRegistry({ auth: 'bearer' }),
    startHostileRegistry({ auth: 'basic', tls }),
    startHostileRegistry({ auth: 'bearer', tls, realm: 'third' }),
  ]);
  await seedImage(world.source.seedTarget, 'hostile/base', 'v1', 'oci-image');
  // Larger than one 8 MiB chunk: uploaded in chunks of the size the target asks for.
  await seedLargeBlobImage(world.source.seedTarget, 'hostile/large', 'v1', 20 * 1024 * 1024);
  // One docker config for every run: the world's logins and the hostile registries'.
  dockerDir = join(world.workDir, 'hostile-docker');
  await mkdir(dockerDir, { recursive: true });
  const b64 = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString('base64');
  const auths: Record<string, Record<string, string>> = {
    [world.source.host]: { auth: b64(ALICE.username, ALICE.password) },
    [world.basic.host]: { auth: b64(BOB.username, BOB.password) },
    [hi.host]: { identitytoken: HOSTILE_REFRESH_TOKEN },
  };
  for (const h of [hb, hx, hs, hsr])
    auths[h.host] = { auth: b64(HOSTILE_USER.username, HOSTILE_USER.password) };
  await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths }));
});

after(async () => {
  await Promise.all(ALL_HOSTILE().map((h) => h?.stop()));
  await world?.stop();
});

function cli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return world.runCli(args, { env: { DOCKER_CONFIG: dockerDir }, timeoutMs });
}

const env = () => ({ HOME: world.homeDir, DOCKER_CONFIG: dockerDir });

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, `${name}.json`);
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** Every request that carried credentials to an origin that is neither the registry nor its realm. */
function leaks(h: HostileRegistry, from = 0): string[] {
  return h
    .credentialed({ from })
    .filter((r) => r.at !== 'registry' && r.at !== 'realm')
    .map((r) => `${r.at} ${r.method} ${r.path}`);
}

/** Requests `h`'s origin `at` received (for `repo`; from record number `from` on: this test's only). */
function requestsAt(h: HostileRegistry, at: OriginName, repo?: string, from = 0): number {
  return h.records.slice(from).filter((r) => r.at === at && (repo === undefined || r.repo === repo)).length;
}

function assertNoRawControls(res: CliResult): void {
  assert.ok(
    !RAW_CONTROLS.test(res.stderr),
    `raw control characters on stderr: ${JSON.stringify(res.stderr)}`,
  );
  assert.ok(
    !RAW_CONTROLS.test(res.stdout),
    `raw control characters on stdout: ${JSON.stringify(res.stdout)}`,
  );
}

/** An image manifest written by hand, so its descriptors can claim anything; served under repo:tag. */
function handMadeImage(
  h: HostileRegistry,
  repo: string,
  tag: string,
  layers: Array<{ mediaType?: string; digest?: string; size: number; bytes?: Buffer }>,
  configOverride?: { mediaType: string; size: number },
): { digest: string; layerDigests: string[] } {
  const config = makeContent(
    Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    ),
    MediaType.ociConfig,
  );
  h.addContent(repo, config.digest, config.bytes, config.mediaType);
  const layerDescs = layers.map((l, i) => {
    const bytes = l.bytes ?? Buffer.from(`layer ${repo} ${i}`);
    const digest = l.digest ?? `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (l.bytes) h.addContent(repo, digest, bytes, 'application/octet-stream');
    return { mediaType: l.mediaType ?? MediaType.ociLayer, digest, size: l.size };
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { ...descriptorOf(config), ...(configOverride ?? {}) },
      layers: layerDescs,
    }),
  );
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  h.addContent(repo, digest, manifest, MediaType.ociManifest);
  h.tag(repo, tag, digest);
  return { digest, layerDigests: layerDescs.map((l) => l.digest) };
}

describe('hostile registries', { concurrency: 1 }, () => {
  // ---- finding 1 ---------------------------------------------------------------------------------

  test('finding 1: tags from a tag list are validated; a path trick cannot write to another repository', async () => {
    const image = ociImage({ seed: 'f1' });
    hb.addImage('f1/app', 'v1', image);
    // Where the traversal would land at the source: the attacker serves it too.
    hb.addImage('f1/victim', 'prod', image);
    const traversal = 'x/../../../victim/manifests/prod';
    hb.serve('f1/app', {
      tags: ['v1', traversal, '../../victim:prod', `v2${NASTY}`, `${'a'.repeat(200)}`],
    });
    const audit = join(world.workDir, 'f1-audit.jsonl');
    const config = await writeConfig('f1', {
      mirrors: [{ source: `${hb.host}/f1/app`, targets: [`${world.basic.host}/mirror/app`] }],
    });
    const res = await cli(['sync', '--config', config, '--audit-log', audit]);
    // Nothing outside the configured repository, on either side.
    assert.equal(
      world.basic.proxy.count({ repo: 'mirror/victim' }),
      0,
      'the target was asked about mirror/victim',
    );
    assert.equal(requestsAt(hb, 'registry', 'f1/victim'), 0, 'the source was asked about f1/victim');
    assert.equal(res.code, 0, res.stderr);
    // Skipped with a warning that names them, escaped.
    assert.match(
      res.stderr,
      /warning: registry 127\.0\.0\.1:\d+, repository f1\/app, tag list: skipped 4 tags/,
    );
    assert.ok(res.stderr.includes(`"${traversal}"`), res.stderr);
    assert.ok(res.stderr.includes('"v2\\u001b]0;pwned\\u0007\\u001b[2J\\rforged'), res.stderr);
    assertNoRawControls(res);
    assert.equal(world.basic.proxy.count({ method: 'PUT', kind: 'manifest', repo: 'mirror/app' }), 1);
    const victim = await fetch(`${world.basic.registry.url}/v2/mirror/victim/tags/list`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${BOB.username}:${BOB.password}`).toString('base64')}`,
      },
    });
    assert.equal(victim.status, 404);
    // The audit log records what was written, and it was written where the config said.
    const entries = (await readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { repository: string; tag?: string });
    assert.ok(entries.length > 0);
    for (const e of entries) assert.equal(e.repository, 'mirror/app');
    assert.deepEqual(
      entries.filter((e) => e.tag !== undefined).map((e) => e.tag),
      ['v1'],
    );
  });

  // ---- finding 2 ---------------------------------------------------------------------------------

  test('finding 2a: an upload Location on another origin is refused; nothing reaches that origin', async () => {
    hb.serve('f2/upload', { uploadLocation: 'storage' });
    const mark = hb.records.length;
    const res = await cli(['copy', `${world.source.host}/hostile/base:v1`, `${hb.host}/f2/upload`]);
    assert.equal(requestsAt(hb, 'storage', undefined, mark), 0, 'a request reached the upload Location');
    assert.deepEqual(leaks(hb, mark), []);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /upload Location points at another origin \(http:\/\/127\.0\.0\.2:\d+/);
    assert.match(res.stderr, /refused: an upload session must stay on the registry/);
  });

  test('finding 2a (HTTPS): an HTTPS registry cannot send an upload to a plain-HTTP host', async () => {
    hs.serve('f2/upload', { uploadLocation: 'third' });
    const mark = hs.records.length;
    const res = await cli([
      'copy',
      '--ca-file',
      `${hs.host}=${caFile}`,
      `${world.source.host}/hostile/base:v1`,
      `${hs.host}/f2/upload`,
    ]);
    assert.equal(requestsAt(hs, 'third', undefined, mark), 0, 'a request reached the plain-HTTP Location');
    assert.deepEqual(leaks(hs, mark), []);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /upload Location points at another origin \(http:\/\/127\.0\.0\.3:\d+/);
  });

  test('finding 2b: a tag-list Link to another host is followed without credentials (Basic and Bearer)', async () => {
    for (const h of [hb, hx]) {
      h.serve('f2/link', { tags: ['v1'], linkElsewhere: ['from-elsewhere'] });
      const mark = h.records.length;
      const res = await cli(['tags', `${h.host}/f2/link`]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(requestsAt(h, 'third', 'f2/link', mark), 1, 'the Link was followed once');
      assert.equal(
        h.credentialed({ at: 'third', from: mark }).length,
        0,
        'credentials went to the Link host',
      );
      // Both pages' tags, in the version order `tags` prints (non-versions in natural order).
      assert.match(res.stdout, /^from-elsewhere\nv1\n$/);
      assert.ok(
        h.credentialed({ at: 'registry', repo: 'f2/link', from: mark }).length > 0,
        'the registry itself got them',
      );
      assert.deepEqual(leaks(h, mark), []);
    }
  });

  test('finding 2b (HTTPS): a tag-list Link from HTTPS to plain HTTP is refused, not followed', async () => {
    hs.serve('f2/link-downgrade', { tags: ['v1'], linkElsewhere: ['planted'] });
    const mark = hs.records.length;
    const res = await cli(['tags', '--ca-file', `${hs.host}=${caFile}`, `${hs.host}/f2/link-downgrade`]);
    assert.equal(requestsAt(hs, 'third', undefined, mark), 0, 'the plain-HTTP page was asked for');
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /registry 127\.0\.0\.1:\d+, repository f2\/link-downgrade, tag list: the tag list's next-page Link leads from HTTPS to plain HTTP \(http:\/\/127\.0\.0\.3:\d+\/v2\/f2\/link-downgrade\/tags\/list\); refused/,
    );
    assert.ok(!res.stderr.includes('last=x'), `the Link's query is shown: ${res.stderr}`);
    assert.ok(!res.stdout.includes('planted'), res.stdout);
    assert.deepEqual(leaks(hs, mark), []);
  });

  // ---- finding 3 ---------------------------------------------------------------------------------

  test("finding 3: a storage host's challenge is never adopted; no credential reaches the realm it names", async () => {
    hx.addImage('f3/app', 'v1', ociImage({ seed: 'f3' }));
    hx.serve('f3/app', { redirectBlob: 'storage-401' });
    const mark = hx.records.length;
    const res = await cli(['copy', `${hx.host}/f3/app:v1`, `${world.open.host}/hostile/f3`]);
    assert.equal(
      requestsAt(hx, 'third', undefined, mark),
      0,
      'the realm named by the storage host was asked',
    );
    assert.deepEqual(leaks(hx, mark), []);
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /http:\/\/127\.0\.0\.2:\d+ \(not the registry: reached by a redirect\) answered 401/,
    );
    // Not retried: one storage request per blob GET at most.
    const asked = requestsAt(hx, 'storage', undefined, mark);
    assert.ok(asked >= 1 && asked <= 3, `storage asked ${asked} times`);
  });

  // ---- finding 4 ---------------------------------------------------------------------------------

  test('finding 4: endless pagination ends by itself at the default bounds, in bounded memory', async () => {
    hb.serve('f4/endless', { endlessTags: { pageSize: 1000 } });
    const res = await runCliMeasured(['tags', `${hb.host}/f4/endless`], { env: env(), timeoutMs: 120_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /registry 127\.0\.0\.1:\d+, repository f4\/endless, tag list: the tag list holds more than 100000 tags \(limits\.maxTags\)/,
    );
    const pages = requestsAt(hb, 'registry', 'f4/endless');
    assert.ok(pages <= 102, `${pages} pages read`);
    assert.ok(res.maxRssMiB < 250, `peak RSS ${res.maxRssMiB.toFixed(1)} MiB`);
    console.log(
      `endless pagination (defaults): ${pages} pages, ${res.wallMs} ms, peak RSS ${res.maxRssMiB.toFixed(1)} MiB`,
    );
  });

  // ---- finding 5 ---------------------------------------------------------------------------------

  test('finding 5a: a manifest dripped at 1 byte/s ends at its deadline', async () => {
    hb.addImage('f5/drip', 'v1', ociImage({ seed: 'f5-drip' }));
    hb.serve('f5/drip', { dripManifest: 1 });
    const config = await writeConfig('f5-drip', {
      registries: { [hb.host]: { limits: { timeouts: { manifest: '2s' } } } },
      mirrors: [
        { source: `${hb.host}/f5/drip`, tags: ['v1'], targets: [`${world.open.host}/hostile/f5-drip`] },
      ],
    });
    const started = Date.now();
    const res = await cli(['sync', '--config', config], 30_000);
    const took = Date.now() - started;
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /repository f5\/drip, manifest GET: the request did not finish within 2 s/);
    assert.match(res.stderr, /raise limits\.timeouts\.manifest/);
    assert.ok(took < 20_000, `took ${took} ms`);
  });

  test('finding 5b: a token dripped at 1 byte/s ends at its deadline', async () => {
    hx.addImage('f5/token', 'v1', ociImage({ seed: 'f5-token' }));
    hx.serve('f5/token', { dripToken: 1 });
    const config = await writeConfig('f5-token', {
      registries: { [hx.host]: { limits: { timeouts: { token: '2s' } } } },
      mirrors: [
        { source: `${hx.host}/f5/token`, tags: ['v1'], targets: [`${world.open.host}/hostile/f5-token`] },
      ],
    });
    const started = Date.now();
    const res = await cli(['sync', '--config', config], 30_000);
    const took = Date.now() - started;
    assert.notEqual(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /repository f5\/token, token request: the token request did not finish within 2 s/,
    );
    assert.ok(took < 20_000, `took ${took} ms`);
  });

  test('finding 5c: a blob claiming 2^52 bytes is refused before a byte is read; nothing reaches the target', async () => {
    const { layerDigests } = handMadeImage(hb, 'f5/huge', 'v1', [
      { size: 2 ** 52, digest: `sha256:${'ab'.repeat(32)}` },
    ]);
    const res = await runCliMeasured(
      ['copy', `${hb.host}/f5/huge:v1`, `${world.open.host}/hostile/f5-huge`],
      {
        env: env(),
        timeoutMs: 60_000,
      },
    );
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /claims 4503599627370496 bytes, more than limits\.maxBlobSize \(107374182400\); refused before reading any of it/,
    );
    assert.equal(hb.blobBytesServed.get(layerDigests[0]!) ?? 0, 0);
    assert.equal(
      hb.records.filter((r) => r.repo === 'f5/huge' && r.path.includes('/blobs/')).length,
      0,
      'a blob of the image was asked for',
    );
    assert.equal(world.open.proxy.count({ repo: 'hostile/f5-huge', method: 'POST' }), 0);
    assert.equal(world.open.proxy.count({ repo: 'hostile/f5-huge', method: 'PATCH' }), 0);
    assert.ok(res.maxRssMiB < 250, `peak RSS ${res.maxRssMiB.toFixed(1)} MiB`);
  });

  test('finding 5c: a config claiming 1 GiB is absurd for its media type and refused', async () => {
    handMadeImage(hb, 'f5/hugeconfig', 'v1', [{ size: 10, bytes: Buffer.from('0123456789') }], {
      mediaType: MediaType.ociConfig,
      size: 1024 ** 3,
    });
    const res = await cli([
      'copy',
      `${hb.host}/f5/hugeconfig:v1`,
      `${world.open.host}/hostile/f5-hugeconfig`,
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /claims 1073741824 bytes, more than limits\.maxManifestSize \(16777216\) allows for a config/,
    );
    assert.equal(world.open.proxy.count({ repo: 'hostile/f5-hugeconfig', method: 'POST' }), 0);
  });

  test('finding 5d: a stalled blob is not resumed for half an hour: it ends at its deadline', async () => {
    const layer = Buffer.alloc(1024 * 1024, 7);
    const { layerDigests } = handMadeImage(hb, 'f5/stall', 'v1', [{ size: layer.length, bytes: layer }]);
    hb.serve('f5/stall', { stallBlobAfter: 64 * 1024 });
    const config = await writeConfig('f5-stall', {
      registries: {
        [hb.host]: { limits: { timeouts: { blob: '3s', idle: '1s' }, minThroughput: '1MiB' } },
      },
      mirrors: [
        { source: `${hb.host}/f5/stall`, tags: ['v1'], targets: [`${world.open.host}/hostile/f5-stall`] },
      ],
    });
    const started = Date.now();
    const res = await cli(['sync', '--config', config], 60_000);
    const took = Date.now() - started;
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /repository f5\/stall, blob GET/);
    const gets = hb.records.filter(
      (r) => r.at === 'registry' && r.method === 'GET' && r.path.endsWith(layerDigests[0]!),
    );
    assert.ok(gets.length >= 1 && gets.length <= 5, `${gets.length} GETs of the stalled blob`);
    assert.ok(took < 20_000, `took ${took} ms`);
    // Nothing was committed at the target.
    assert.equal(world.open.proxy.count({ repo: 'hostile/f5-stall', method: 'PUT', kind: 'manifest' }), 0);
  });

  test('a referrers answer naming more referrers than limits.maxReferrers is refused', async () => {
    hb.addImage('f5/referrers', 'v1', ociImage({ seed: 'f5-referrers' }));
    hb.serve('f5/referrers', { referrersCount: 12 });
    const config = await writeConfig('f5-referrers', {
      registries: { [hb.host]: { limits: { maxReferrers: 5 } } },
      mirrors: [
        {
          source: `${hb.host}/f5/referrers`,
          tags: ['v1'],
          targets: [`${world.open.host}/hostile/f5-referrers`],
        },
      ],
    });
    const res = await cli(['sync', '--config', config]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /names more than 5 referrers \(limits\.maxReferrers\); refused/);
    assert.equal(
      world.open.proxy.count({ repo: 'hostile/f5-referrers', method: 'PUT', kind: 'manifest' }),
      0,
    );
  });

  test('a target cannot make regmirror buffer gigabytes: an absurd OCI-Chunk-Min-Length is refused', async () => {
    hb.serve('f5/chunk-min', { chunkMinLength: 10 * 1024 ** 3 });
    const res = await runCliMeasured(
      ['copy', `${world.source.host}/hostile/large:v1`, `${hb.host}/f5/chunk-min`],
      {
        env: env(),
        timeoutMs: 60_000,
      },
    );
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /asks for upload chunks of at least 10737418240 bytes \(OCI-Chunk-Min-Length\)/);
    assert.ok(res.maxRssMiB < 250, `peak RSS ${res.maxRssMiB.toFixed(1)} MiB`);
    assert.equal(hb.records.filter((r) => r.repo === 'f5/chunk-min' && r.method === 'PATCH').length, 0);
  });

  // ---- finding 6 ---------------------------------------------------------------------------------

  test('finding 6: control characters from registries are escaped on the terminal, in JSON and Markdown', async () => {
    hb.addImage('f6/err', 'v1', ociImage({ seed: 'f6' }));
    hb.serve('f6/err', { manifestError: { status: 403, message: NASTY } });
    const res = await cli(['copy', '--json', `${hb.host}/f6/err:v1`, `${world.open.host}/hostile/f6`]);
    assert.equal(res.code, 2, res.stderr);
    assertNoRawControls(res);
    assert.ok(
      res.stderr.includes('\\u001b]0;pwned\\u0007\\u001b[2J\\rforged: ✓ copied\\b\\b\\u009b31m'),
      res.stderr,
    );
    JSON.parse(res.stdout);

    // The Markdown summary of a drift check: escaped, and no link, image or HTML from the registry.
    hb.serve('f6/tags', {
      tagsError: { status: 403, message: `${NASTY} ![x](http://127.0.0.3/pixel) <img src=x> | cell` },
    });
    const config = await writeConfig('f6-check', {
      mirrors: [
        {
          source: `${hb.host}/f6/tags`,
          tags: { include: ['.*'] },
          targets: [`${world.open.host}/hostile/f6`],
        },
      ],
    });
    const md = await cli(['check', '--config', config, '--format', 'markdown']);
    assert.equal(md.code, 2, md.stderr);
    assertNoRawControls(md);
    assert.ok(md.stdout.includes('\\!\\[x\\](http://127.0.0.3/pixel) \\<img src=x\\> \\| cell'), md.stdout);
    assert.ok(!/(^|[^\\])<img/.test(md.stdout), md.stdout);
  });

  test('finding 6: media types from a registry reach inspect and the audit log escaped, losslessly in JSON', async () => {
    const weird = `application/vnd.oci.image.layer.v1.tar\u009b2J\u001b]8;;http://x\u0007`;
    const layer = Buffer.from('weird layer');
    handMadeImage(hb, 'f6/mediatype', 'v1', [{ size: layer.length, bytes: layer, mediaType: weird }]);
    const shown = await cli(['inspect', `${hb.host}/f6/mediatype:v1`]);
    assert.equal(shown.code, 0, shown.stderr);
    assertNoRawControls(shown);
    assert.ok(
      shown.stdout.includes('application/vnd.oci.image.layer.v1.tar\\u009b2J\\u001b]8;;http://x\\u0007'),
      shown.stdout,
    );

    const audit = join(world.workDir, 'f6-audit.jsonl');
    const res = await cli([
      'copy',
      '--audit-log',
      audit,
      `${hb.host}/f6/mediatype:v1`,
      `${hb.host}/f6/mediatype-copy`,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const text = await readFile(audit, 'utf8');
    assert.ok(!RAW_CONTROLS.test(text), JSON.stringify(text));
    const types = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { mediaType?: string }).mediaType);
    assert.ok(types.includes(weird), 'the JSON still means the same media type');
  });

  // ---- finding 7 ---------------------------------------------------------------------------------

  test('finding 7: a sha512 child manifest is inspected and copied byte-exact, or refused with a clear message', async () => {
    const child = ociImage({ seed: 'f7-sha512' });
    hb.addImage('f7/sha512', 'child-by-sha256', child);
    const child512 = `sha512:${createHash('sha512').update(child.bytes).digest('hex')}`;
    hb.addContent('f7/sha512', child512, child.bytes, child.mediaType);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          {
            mediaType: child.mediaType,
            digest: child512,
            size: child.size,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    const indexDigest = `sha256:${createHash('sha256').update(index).digest('hex')}`;
    hb.addContent('f7/sha512', indexDigest, index, MediaType.ociIndex);
    hb.tag('f7/sha512', 'v1', indexDigest);

    const shown = await cli(['inspect', `${hb.host}/f7/sha512:v1`]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(shown.stdout.includes(child512), shown.stdout);

    hb.serve('f7/sha512-copy', { acceptSha512: true });
    const copied = await cli(['copy', `${hb.host}/f7/sha512:v1`, `${hb.host}/f7/sha512-copy`]);
    assert.equal(copied.code, 0, copied.stderr);
    assert.deepEqual(hb.stored.get(child512), child.bytes);
    assert.equal(hb.storedTags.get('f7/sha512-copy:v1'), indexDigest);

    // distribution stores manifests under sha256 only: a clear refusal, not a crash.
    const refused = await cli(['copy', `${hb.host}/f7/sha512:v1`, `${world.open.host}/hostile/f7-sha512`]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /this registry does not store manifests under sha512 digests/);
    assert.ok(!refused.stderr.includes('Cannot read properties'), refused.stderr);
  });

  test('finding 7: redirect loops, too many redirects, file: and data: are registry errors, not retried', async () => {
    // Requests with credentials: the first one and its hops once, no retries.
    const cases: Array<[string, 'loop' | 'too-many' | 'file' | 'data', RegExp, number]> = [
      [
        'f7/loop',
        'loop',
        /manifest HEAD: redirect loop: 127\.0\.0\.2:\d+ redirected back to http:\/\/127\.0\.0\.1/,
        1,
      ],
      ['f7/many', 'too-many', /manifest HEAD: too many redirects \(more than 5\)/, 6],
      [
        'f7/file',
        'file',
        /manifest HEAD: 127\.0\.0\.1:\d+ redirected to a file: URL \(file:\/\/\/etc\/passwd\); only http and https are followed/,
        1,
      ],
      [
        'f7/data',
        'data',
        /manifest HEAD: 127\.0\.0\.1:\d+ redirected to a data: URL \(data:text\/plain;base64,aGVsbG8=\)/,
        1,
      ],
    ];
    for (const [repo, trick, message, requests] of cases) {
      hb.addImage(repo, 'v1', ociImage({ seed: repo }));
      hb.serve(repo, { redirectManifest: trick });
      const res = await cli(['copy', `${hb.host}/${repo}:v1`, `${world.open.host}/hostile/${trick}`]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, message);
      assert.ok(!res.stderr.includes('cannot reach'), res.stderr);
      const heads = hb.records.filter(
        (r) => r.at === 'registry' && r.repo === repo && r.method === 'HEAD' && r.authorization !== undefined,
      ).length;
      assert.equal(heads, requests, `${repo}: ${heads} HEADs`);
    }
  });

  test('finding 7: a token realm on plain HTTP named by an HTTPS registry is refused; no credential in clear text', async () => {
    hsr.serve('f7/realm', { tags: ['v1'] });
    const mark = hsr.records.length;
    const res = await cli(['tags', '--ca-file', `${hsr.host}=${caFile}`, `${hsr.host}/f7/realm`]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /is HTTPS but named a token realm on plain HTTP \(http:\/\/127\.0\.0\.3:\d+\); regmirror refuses to send credentials there in clear text/,
    );
    assert.equal(requestsAt(hsr, 'third', undefined, mark), 0);
    assert.deepEqual(leaks(hsr, mark), []);
  });

  test('finding 7: --debug redacts verify=, ticket= and _state= query values', async () => {
    hb.addImage('f7/debug', 'v1', ociImage({ seed: 'f7-debug' }));
    hb.serve('f7/debug', { redirectBlob: 'storage' });
    const mark = hb.records.length;
    const res = await cli(['copy', '--debug', `${hb.host}/f7/debug:v1`, `${hb.host}/f7/debug-copy`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /\[debug\] GET http:\/\/127\.0\.0\.2:\d+\/blob\/[0-9a-f-]+\?verify=REDACTED&ticket=REDACTED&X-Amz-Signature=REDACTED → 200/,
    );
    assert.match(
      res.stderr,
      /\[debug\] PUT http:\/\/127\.0\.0\.1:\d+\/v2\/f7\/debug-copy\/blobs\/uploads\/[0-9a-f-]+\?_state=REDACTED&digest=sha256/,
    );
    for (const secret of ['VERIFY-SECRET', 'TICKET-SECRET', 'state-', 'sig-']) {
      assert.ok(!res.stderr.includes(secret), `--debug shows ${secret}`);
    }
    // The storage host served the blobs without credentials (it refuses any).
    assert.equal(hb.credentialed({ at: 'storage', from: mark }).length, 0);
  });

  test('finding 7: an oversized manifest is refused with the registry, repository and setting named', async () => {
    const big = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: descriptorOf(makeContent(Buffer.from('{}'), MediaType.ociConfig)),
        layers: [],
        annotations: { padding: 'x'.repeat(17 * 1024 * 1024) },
      }),
    );
    const digest = `sha256:${createHash('sha256').update(big).digest('hex')}`;
    hb.addContent('f7/big', digest, big, MediaType.ociManifest);
    hb.tag('f7/big', 'v1', digest);
    const res = await cli(['copy', `${hb.host}/f7/big:v1`, `${world.open.host}/hostile/f7-big`]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(
      res.stderr,
      /source registry 127\.0\.0\.1:\d+, repository f7\/big, manifest GET: the answer is larger than 16777216 bytes \(limits\.maxManifestSize\)/,
    );
  });

  // ---- the credential rule, one test per way it could be broken ------------------------------------

  test('rule: Basic credentials go to the registry only, not to the storage host a blob redirects to', async () => {
    hb.addImage('r/basic', 'v1', ociImage({ seed: 'r-basic' }));
    hb.serve('r/basic', { redirectBlob: 'storage' });
    const mark = hb.records.length;
    const res = await cli(['copy', `${hb.host}/r/basic:v1`, `${world.open.host}/hostile/r-basic`]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(requestsAt(hb, 'storage', undefined, mark) > 0);
    assert.equal(hb.credentialed({ at: 'storage', from: mark }).length, 0);
    for (const r of hb.credentialed({ at: 'registry', from: mark }))
      assert.match(r.authorization!, /^Basic /);
  });

  test('rule: a Bearer token goes to the registry only; the Basic login only to its own realm; not to a sibling port', async () => {
    hx.addImage('r/bearer', 'v1', ociImage({ seed: 'r-bearer' }));
    hx.serve('r/bearer', { redirectBlob: 'sibling' });
    const mark = hx.records.length;
    const res = await cli(['copy', `${hx.host}/r/bearer:v1`, `${world.open.host}/hostile/r-bearer`]);
    // The sibling answers 404: the copy fails, but nothing of the registry's went there.
    assert.equal(res.code, 1, res.stderr);
    assert.ok(requestsAt(hx, 'sibling', undefined, mark) > 0, 'the redirect was followed');
    assert.equal(hx.credentialed({ at: 'sibling', from: mark }).length, 0);
    for (const r of hx.credentialed({ at: 'realm', from: mark })) assert.match(r.authorization!, /^Basic /);
    for (const r of hx.credentialed({ at: 'registry', from: mark }))
      assert.match(r.authorization!, /^Bearer tok-/);
    assert.deepEqual(leaks(hx, mark), []);
  });

  test('rule: an identity token travels only in the form posted to the realm', async () => {
    hi.addImage('r/identity', 'v1', ociImage({ seed: 'r-identity' }));
    hi.serve('r/identity', { redirectBlob: 'storage' });
    const mark = hi.records.length;
    const res = await cli(['copy', `${hi.host}/r/identity:v1`, `${world.open.host}/hostile/r-identity`]);
    assert.equal(res.code, 0, res.stderr);
    const bodies = hi.records.slice(mark).filter((r) => r.bodyCredential);
    assert.ok(bodies.length > 0);
    for (const r of bodies) assert.equal(r.at, 'realm');
    assert.ok(requestsAt(hi, 'storage', undefined, mark) > 0, 'the storage redirect was followed');
    assert.deepEqual(leaks(hi, mark), []);
  });

  test('rule: never from HTTPS to plain HTTP: a downgrading redirect is refused and not followed', async () => {
    hs.addImage('r/downgrade', 'v1', ociImage({ seed: 'r-downgrade' }));
    hs.serve('r/downgrade', { redirectBlob: 'downgrade' });
    const mark = hs.records.length;
    const res = await cli([
      'copy',
      '--ca-file',
      `${hs.host}=${caFile}`,
      `${hs.host}/r/downgrade:v1`,
      `${world.open.host}/hostile/r-downgrade`,
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /refusing to follow a redirect from HTTPS to plain HTTP/);
    assert.equal(requestsAt(hs, 'third', undefined, mark), 0);
    assert.deepEqual(leaks(hs, mark), []);
  });

  // ---- acceptance: every trick at once -----------------------------------------------------------

  test('every trick in one sync: the run ends by itself, bounded in memory, other images complete, the report is written, and no credential leaves its origin', async () => {
    // Only this run's records count below (earlier tests' stay for the last test).
    const marks = new Map(ALL_HOSTILE().map((h) => [h, h.records.length]));
    const perOrigin = (h: HostileRegistry) => {
      const mine = h.records.slice(marks.get(h));
      const out = {} as Record<OriginName, { requests: number; withCredentials: number }>;
      for (const at of ['registry', 'realm', 'storage', 'third', 'sibling'] as const) {
        const here = mine.filter((r) => r.at === at);
        out[at] = {
          requests: here.length,
          withCredentials: here.filter((r) => r.authorization !== undefined || r.bodyCredential).length,
        };
      }
      return out;
    };
    // Endless blob with a modest descriptor: read to the descriptor's size, then refused.
    handMadeImage(hb, 'all/endless-blob', 'v1', [
      { size: 64 * 1024 * 1024, digest: `sha256:${'cd'.repeat(32)}` },
    ]);
    hb.serve('all/endless-blob', { endlessBlob: `sha256:${'cd'.repeat(32)}` });
    handMadeImage(hb, 'all/huge-blob', 'v1', [{ size: 2 ** 52, digest: `sha256:${'ef'.repeat(32)}` }]);
    hb.serve('all/huge-blob', { endlessBlob: `sha256:${'ef'.repeat(32)}` });
    hb.serve('all/endless-tags', { endlessTags: { pageSize: 1000 } });
    hb.addImage('all/traversal', 'v1', ociImage({ seed: 'all-traversal' }));
    hb.serve('all/traversal', { tags: ['v1', 'x/../../../victim/manifests/prod'] });
    hx.addImage('all/storage-401', 'v1', ociImage({ seed: 'all-401' }));
    hx.serve('all/storage-401', { redirectBlob: 'storage-401' });
    hx.serve('all/link', { tags: ['v1'], linkElsewhere: ['elsewhere'] });
    hx.addImage('all/link', 'v1', ociImage({ seed: 'all-link' }));
    hi.addImage('all/identity', 'v1', ociImage({ seed: 'all-identity' }));
    hi.serve('all/identity', { redirectBlob: 'sibling' });
    hs.addImage('all/downgrade', 'v1', ociImage({ seed: 'all-downgrade' }));
    hs.serve('all/downgrade', { redirectBlob: 'downgrade' });
    hsr.addImage('all/realm', 'v1', ociImage({ seed: 'all-realm' }));
    hb.serve('all/upload-elsewhere', { uploadLocation: 'third' });
    hs.serve('all/upload-elsewhere', { uploadLocation: 'third' });

    const open = world.open.host;
    const config = await writeConfig('all-tricks', {
      defaults: { concurrency: 4, limits: { maxTagPages: 50 } },
      registries: {
        [hs.host]: { tls: { caFile } },
        [hsr.host]: { tls: { caFile } },
        [hb.host]: { limits: { timeouts: { blob: '10s' } } },
      },
      mirrors: [
        { source: `${hb.host}/all/endless-tags`, targets: [`${open}/all/endless-tags`] },
        { source: `${hb.host}/all/endless-blob`, tags: ['v1'], targets: [`${open}/all/endless-blob`] },
        { source: `${hb.host}/all/huge-blob`, tags: ['v1'], targets: [`${open}/all/huge-blob`] },
        { source: `${hb.host}/all/traversal`, targets: [`${world.basic.host}/all/traversal`] },
        { source: `${hx.host}/all/storage-401`, tags: ['v1'], targets: [`${open}/all/storage-401`] },
        { source: `${hx.host}/all/link`, targets: [`${open}/all/link`] },
        { source: `${hi.host}/all/identity`, tags: ['v1'], targets: [`${open}/all/identity`] },
        { source: `${hs.host}/all/downgrade`, tags: ['v1'], targets: [`${open}/all/downgrade`] },
        { source: `${hsr.host}/all/realm`, tags: ['v1'], targets: [`${open}/all/realm`] },
        {
          source: `${world.source.host}/hostile/base`,
          tags: ['v1'],
          targets: [`${hb.host}/all/upload-elsewhere`, `${hs.host}/all/upload-elsewhere`, `${open}/all/fine`],
        },
      ],
    });
    const res = await runCliMeasured(['sync', '--config', config, '--json'], {
      env: env(),
      timeoutMs: 180_000,
    });
    console.log(`every trick: exit ${res.code}, ${res.wallMs} ms, peak RSS ${res.maxRssMiB.toFixed(1)} MiB`);
    assert.equal(res.code, 1, res.stderr);
    assert.ok(res.maxRssMiB < 250, `peak RSS ${res.maxRssMiB.toFixed(1)} MiB`);
    assert.ok(!RAW_CONTROLS.test(res.stderr));

    // The report is written, and says what happened to each mirror.
    const report = JSON.parse(res.stdout) as {
      mirrors: Array<{
        source: string;
        error?: string;
        images: Array<{ error?: string; targets: Array<{ target: string; status: string; error?: string }> }>;
      }>;
    };
    const mirror = (source: string) => report.mirrors.find((m) => m.source.endsWith(source))!;
    assert.match(mirror('all/endless-tags').error ?? '', /more than 50 pages \(limits\.maxTagPages\)/);
    assert.match(
      JSON.stringify(mirror('all/endless-blob').images[0]),
      /read \d+ bytes, the descriptor says 67108864/,
    );
    assert.match(mirror('all/huge-blob').images[0]!.error ?? '', /refused before reading any of it/);
    const fine = mirror('hostile/base').images[0]!.targets;
    assert.equal(fine.find((t) => t.target.startsWith(open))?.status, 'copied');
    for (const t of fine.filter((t) => !t.target.startsWith(open))) {
      assert.equal(t.status, 'failed');
      assert.match(t.error ?? '', /upload Location points at another origin/);
    }
    assert.equal(mirror('all/traversal').images.length, 1, 'only the valid tag was copied');
    assert.equal(mirror('all/traversal').images[0]!.targets[0]!.status, 'copied');
    assert.equal(world.basic.proxy.count({ repo: 'all/victim' }), 0);
    // Bounded reads: the endless blob was read to its descriptor's size (and a little more), no further.
    const endlessRead = hb.blobBytesServed.get(`sha256:${'cd'.repeat(32)}`) ?? 0;
    assert.ok(
      endlessRead < 64 * 1024 * 1024 + 16 * 1024 * 1024,
      `${endlessRead} bytes of the endless blob read`,
    );
    assert.equal(hb.blobBytesServed.get(`sha256:${'ef'.repeat(32)}`) ?? 0, 0);

    // The acceptance: counted per origin by the servers, credentials only at the registry and its realm.
    for (const h of ALL_HOSTILE()) {
      const per = perOrigin(h);
      console.log(`  ${h.host}: ${JSON.stringify(per)}`);
      for (const at of ['storage', 'third', 'sibling'] as const) {
        assert.equal(per[at].withCredentials, 0, `${h.host} ${at}: ${JSON.stringify(per)}`);
      }
      assert.deepEqual(leaks(h, marks.get(h)), []);
    }
    // The tricks were actually played: the other origins were asked, without credentials.
    assert.equal(perOrigin(hb).third.requests, 0, 'an upload went to its foreign Location');
    assert.equal(perOrigin(hs).third.requests, 0, 'an upload or a downgrade went to plain HTTP');
    assert.equal(perOrigin(hsr).third.requests, 0, 'the plain-HTTP realm was asked');
    assert.ok(perOrigin(hx).third.requests >= 1, 'the Link was not followed');
    assert.ok(perOrigin(hx).storage.requests >= 1, 'the storage redirect was not followed');
    assert.ok(perOrigin(hi).sibling.requests >= 1, 'the sibling redirect was not followed');
  });

  test('across every run above, no credential reached any origin but the registry and its own realm', () => {
    for (const h of ALL_HOSTILE()) assert.deepEqual(leaks(h), [], h.host);
  });
});
