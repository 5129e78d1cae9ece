// Air-gapped delivery against real registries, checked with skopeo: a config's selection (a multi-arch
// OCI index with attestations, a Docker manifest list, a Helm chart, a signed image with its cosign .sig
// tags and OCI 1.1 referrers — an SBOM, an in-toto attestation — in fallback indexes) exported into an
// OCI layout and an OCI archive at once, the signatures verified again on the far side; the layout imported into two registries
// at once with every blob file opened once (strace as the witness); check proving a registry holds
// exactly the layout; a skopeo-written layout and archive as sources; kill -9 midway through an export
// and the re-run; a corrupt blob; and every kind of bad layout input.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { syncReportSchema } from '../../src/cli/report.js';
import type { DriftRow } from '../../src/copy/check.js';
import { bundleFileSchema } from '../../src/layout/bundle.js';
import { cosignVerify, generateSigningKey } from '../harness/cosign.js';
import { REPO_ROOT, startWorld, type World } from '../harness/fixture.js';
import {
  type Content,
  descriptorOf,
  type ManifestNode,
  makeContent,
  pushManifestTree,
  RegistryClient as SeedClient,
  type SeededImage,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
import { type SignedImage, seedSignedImage } from '../harness/signed-image.js';
import {
  skopeoCopyToLayout,
  skopeoInspectRaw,
  skopeoInspectRawLayout,
  skopeoListTags,
  skopeoVerifyLayout,
} from '../harness/skopeo.js';

const run = promisify(execFile);

let world: World;
let env: Record<string, string>;
let src: string;
/** The exported images: name in the layout → what was seeded. */
const exported = new Map<string, { repo: string; tag: string; node: ManifestNode; ociTyped: boolean }>();
/** The signed image's referrer tags (fallback indexes, cosign signatures): name in the layout → digest. */
const referrerNames = new Map<string, string>();
const key = generateSigningKey();
let signed: SignedImage;

/** Bytes of a referrer tag's manifest at the source (a fallback index or a cosign signature). */
function referrerBytes(digest: string): Buffer {
  for (const index of signed.fallbackIndexes.values()) if (index.digest === digest) return index.bytes;
  for (const sig of signed.signatures.values()) if (sig.digest === digest) return sig.bytes;
  throw new Error(`no referrer ${digest}`);
}

function manifestNode(bytes: Buffer, mediaType: string, blobs: Content[]): ManifestNode {
  const c = makeContent(bytes, mediaType);
  return { ...c, descriptor: descriptorOf(c), blobs, children: [] };
}

/** A Helm chart as `helm push` stores it: an OCI manifest with Helm's config and chart layer types. */
function helmChart(): ManifestNode {
  const config = makeContent(
    Buffer.from(JSON.stringify({ name: 'demo', version: '0.1.0', apiVersion: 'v2' })),
    'application/vnd.cncf.helm.config.v1+json',
  );
  const chart = makeContent(
    Buffer.from('H4sIAAAAAAAA/+zSQQ6CMBCG4a5Ziot4gAqlFdyyMfE0EgMsjaHh/pY'),
    'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
  );
  const bytes = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: descriptorOf(config),
        layers: [descriptorOf(chart)],
        annotations: { 'org.opencontainers.image.title': 'demo' },
      },
      null,
      3,
    ),
  );
  return manifestNode(bytes, 'application/vnd.oci.image.manifest.v1+json', [config, chart]);
}

function allManifests(node: ManifestNode): ManifestNode[] {
  return [...node.children.flatMap(allManifests), node];
}

/** Config and layer digests below a manifest tree (not manifests). */
function blobDigests(node: ManifestNode): Set<string> {
  return new Set(allManifests(node).flatMap((m) => m.blobs.map((b) => b.digest)));
}

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Independent check of a layout directory: oci-layout, index.json names, every blob file's content
 * matching its name, nothing else in it (no temporary files). Returns name → digest.
 */
async function assertValidLayout(root: string): Promise<Map<string, string>> {
  assert.deepEqual(JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8')), {
    imageLayoutVersion: '1.0.0',
  });
  const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const names = new Map<string, string>();
  for (const d of index.manifests) {
    const name = d.annotations?.['org.opencontainers.image.ref.name'];
    if (name) names.set(name, d.digest);
  }
  const extra = (await readdir(root)).filter(
    (n) => !['blobs', 'index.json', 'oci-layout', 'regmirror-bundle.json'].includes(n),
  );
  assert.deepEqual(extra, [], `stray files in ${root}`);
  assert.deepEqual(await readdir(join(root, 'blobs')), ['sha256'], `stray files in ${root}/blobs`);
  for (const hex of await readdir(join(root, 'blobs', 'sha256'))) {
    assert.equal(
      sha256(await readFile(join(root, 'blobs', 'sha256', hex))),
      `sha256:${hex}`,
      `${root}: ${hex}`,
    );
  }
  return names;
}

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  src = world.source.host;
  const client = new SeedClient(world.source.seedTarget);
  const app = await seedImage(client, 'bundle/app', 'v1', 'oci-index-with-attestations');
  const legacy = await seedImage(client, 'bundle/legacy', 'v1', 'docker-manifest-list');
  const chart = helmChart();
  await pushManifestTree(client, 'bundle/chart', chart, '0.1.0');
  signed = await seedSignedImage(world.source.seedTarget, src, 'bundle/signed', 'v1', key);
  const add = (repo: string, tag: string, node: ManifestNode, ociTyped = true) =>
    exported.set(`${src}/${repo}:${tag}`, { repo, tag, node, ociTyped });
  const rootOf = (s: SeededImage): ManifestNode => s.root;
  add('bundle/app', 'v1', rootOf(app));
  add('bundle/legacy', 'v1', rootOf(legacy), false);
  add('bundle/chart', '0.1.0', chart);
  add('bundle/signed', 'v1', signed.image.root);
  // The referrers travel with their subject, under the tags they have at the source.
  for (const [tag, digest] of signed.referrerTags) referrerNames.set(`${src}/bundle/signed:${tag}`, digest);
});
after(async () => {
  await world?.stop();
});

function exportConfig(targets: string[]) {
  return {
    mirrors: [
      { source: `${src}/bundle/app`, tags: ['v1'], targets },
      { source: `${src}/bundle/legacy`, tags: ['v1'], targets },
      { source: `${src}/bundle/chart`, tags: ['0.1.0'], targets },
      // Every tag: referrers are on (the default), so the signature and fallback tags come with v1.
      { source: `${src}/bundle/signed`, targets },
    ],
  };
}

/** Config and layer digests of everything exported: images and referrers. */
function allBlobDigests(): Set<string> {
  const all = new Set<string>();
  for (const { node } of exported.values()) for (const d of blobDigests(node)) all.add(d);
  for (const r of signed.referrers) for (const d of blobDigests(r)) all.add(d);
  return all;
}

describe('export a config into an OCI layout and an OCI archive, import it into two registries', () => {
  let layoutDir: string;
  let archive: string;

  test('sync exports the selection into oci: and oci-archive: at once, reading the source once', async () => {
    const config = await writeConfig('export.json', exportConfig(['oci:export', 'oci-archive:export.tar']));
    layoutDir = join(world.workDir, 'export');
    archive = join(world.workDir, 'export.tar');
    world.resetCounts();
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, exported.size * 2);
    // One GET per source blob, whatever the number of targets.
    assert.equal(world.source.proxy.count({ method: 'GET', kind: 'blob' }), allBlobDigests().size);

    const names = await assertValidLayout(layoutDir);
    assert.deepEqual([...names.keys()].sort(), [...exported.keys(), ...referrerNames.keys()].sort());
    for (const [name, { node }] of exported) assert.equal(names.get(name), node.digest, name);
    // Fallback indexes byte-exact (their digests are the source's), cosign signatures under their tags.
    for (const [name, digest] of referrerNames) assert.equal(names.get(name), digest, name);
    const copied = report.mirrors.flatMap((m) => m.images).flatMap((i) => i.targets);
    assert.ok(
      copied.some((t) => t.referrersCopied >= signed.referrers.length),
      'no referrers reported',
    );
    // The bundle file lists each source reference, name and digest.
    const bundle = bundleFileSchema.parse(
      JSON.parse(await readFile(join(layoutDir, 'regmirror-bundle.json'), 'utf8')),
    );
    assert.deepEqual(
      bundle.images.map((i) => [i.name, i.source, i.digest]),
      [...exported]
        .map(([name, { node }]) => [name, name, node.digest])
        .sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
    // The archive is written, its staging directory gone.
    assert.ok((await stat(archive)).size > 0);
    assert.ok(
      !(await readdir(world.workDir)).some((n) => n.includes('regmirror')),
      'staging or temp files left',
    );
  });

  test('skopeo reads the same bytes from the layout and the archive, and verifies every blob', async () => {
    for (const [name, { node, ociTyped }] of exported) {
      if (!ociTyped) continue;
      for (const ref of [`oci:${layoutDir}:${name}`, `oci-archive:${archive}:${name}`]) {
        const raw = await skopeoInspectRawLayout(ref);
        assert.ok(raw.equals(node.bytes), `${ref}: other bytes`);
        assert.equal(sha256(raw), node.digest);
        await skopeoVerifyLayout(ref);
      }
    }
    // The signatures and referrers lists too: skopeo finds them under their tags, byte-exact.
    for (const [name, digest] of referrerNames) {
      for (const ref of [`oci:${layoutDir}:${name}`, `oci-archive:${archive}:${name}`]) {
        assert.ok((await skopeoInspectRawLayout(ref)).equals(referrerBytes(digest)), `${ref}: other bytes`);
      }
    }
    for (const sig of signed.signatures.values()) {
      await skopeoVerifyLayout(
        `oci:${layoutDir}:${src}/bundle/signed:${[...signed.referrerTags].find(([, d]) => d === sig.digest)![0]}`,
      );
    }
  });

  test('a Docker manifest list: skopeo addresses it in a single-image layout (by name it takes OCI types only)', async () => {
    const [name, legacy] = [...exported].find(([, e]) => !e.ociTyped)!;
    // skopeo (1.9 and later) refuses Docker media types looked up by name in index.json, and regmirror
    // keeps the descriptor's true media type; an unnamed single-image layout is read as "the only image".
    await assert.rejects(skopeoInspectRawLayout(`oci:${layoutDir}:${name}`));
    const single = join(world.workDir, 'legacy-only');
    const res = await world.runCli(['copy', `oci:${layoutDir}:${name}`, `oci:${single}:legacy`], { env });
    assert.equal(res.code, 0, res.stderr);
    const raw = await skopeoInspectRawLayout(`oci:${single}`);
    assert.ok(raw.equals(legacy.node.bytes));
    await skopeoVerifyLayout(`oci:${single}`);
    const archived = join(world.workDir, 'legacy-only.tar');
    const res2 = await world.runCli(
      ['copy', `oci-archive:${archive}:${name}`, `oci-archive:${archived}:legacy`],
      {
        env,
      },
    );
    assert.equal(res2.code, 0, res2.stderr);
    assert.ok((await skopeoInspectRawLayout(`oci-archive:${archived}`)).equals(legacy.node.bytes));
    await skopeoVerifyLayout(`oci-archive:${archived}`);
  });

  test('a second export is up to date and rewrites nothing', async () => {
    const config = join(world.workDir, 'export.json');
    const before = await stat(archive);
    const index = await readFile(join(layoutDir, 'index.json'));
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(syncReportSchema.parse(JSON.parse(res.stdout)).summary.upToDate, exported.size * 2);
    assert.equal((await stat(archive)).mtimeMs, before.mtimeMs, 'the archive was rewritten');
    assert.ok((await readFile(join(layoutDir, 'index.json'))).equals(index));
  });

  test('import the layout into two registries at once: skopeo sees the same digests; each blob file opened once', async () => {
    const config = await writeConfig('import.json', {
      mirrors: [
        {
          source: 'oci:export',
          targets: [`${world.basic.host}/imported/{path}`, `${world.open.host}/imported/{path}`],
        },
      ],
    });
    const traceDir = join(world.workDir, 'import-strace');
    await mkdir(traceDir);
    // strace, not regmirror, counts the opens: every openat(2) of the process and its threads, one file
    // per thread (-ff) so that no call is split across lines by another thread's.
    const res = await runTraced(join(traceDir, 'trace'), ['sync', '--config', config, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, exported.size * 2);
    const opens = new Map<string, number>();
    const lines: string[] = [];
    for (const f of await readdir(traceDir))
      lines.push(...(await readFile(join(traceDir, f), 'utf8')).split('\n'));
    for (const line of lines) {
      const m = /openat\(.*"([^"]*\/blobs\/sha256\/([0-9a-f]{64}))".*= \d+$/.exec(line);
      if (m?.[1]?.startsWith(layoutDir)) opens.set(m[2]!, (opens.get(m[2]!) ?? 0) + 1);
    }
    for (const digest of allBlobDigests()) {
      assert.equal(
        opens.get(digest.slice(7)),
        1,
        `blob ${digest} opened ${opens.get(digest.slice(7)) ?? 0} times`,
      );
    }
    for (const [name, { repo, tag, node }] of exported) {
      for (const ep of [world.basic, world.open]) {
        const path = repo.replace(/^/, 'imported/');
        const raw = await skopeoInspectRaw(
          `${ep.host}/${path}:${tag}`,
          ep.skopeoCreds ? { creds: ep.skopeoCreds } : {},
        );
        assert.ok(raw.equals(node.bytes), `${ep.host}/${path}:${tag} (${name})`);
      }
    }
    // On the far side: every signature and referrers list under its tag, and the signatures verify with
    // the publisher's public key, as cosign verify --key does.
    for (const ep of [world.basic, world.open]) {
      const opts = ep.skopeoCreds ? { creds: ep.skopeoCreds } : {};
      for (const [name, digest] of referrerNames) {
        const tag = name.slice(name.lastIndexOf(':') + 1);
        const raw = await skopeoInspectRaw(`${ep.host}/imported/bundle/signed:${tag}`, opts);
        assert.ok(raw.equals(referrerBytes(digest)), `${ep.host}: ${tag}`);
      }
      const client = new SeedClient(ep.seedTarget);
      for (const reference of ['v1', ...signed.signatures.keys()]) {
        const verified = await cosignVerify(client, 'imported/bundle/signed', reference, key.publicPem);
        assert.ok(verified.ok, `${ep.host}: ${reference}: ${verified.reason}`);
      }
    }
  });

  test('check against the layout: the registry holds exactly it; an extra tag is found', async () => {
    const config = join(world.workDir, 'import.json');
    const ok = await world.runCli(
      ['check', '--config', config, '--deep', '--fail-on', 'missing,stale,extra,incomplete', '--json'],
      {
        env,
      },
    );
    assert.equal(ok.code, 0, ok.stderr);
    const rows = (JSON.parse(ok.stdout) as { rows: DriftRow[] }).rows;
    assert.equal(rows.length, exported.size * 2);
    assert.ok(
      rows.every((r) => r.state === 'ok'),
      JSON.stringify(rows.filter((r) => r.state !== 'ok')),
    );
    await seedImage(world.open.seedTarget, 'imported/bundle/chart', '0.2.0', 'oci-image');
    const drift = await world.runCli(
      ['check', '--config', config, '--fail-on', 'missing,stale,extra', '--json'],
      { env },
    );
    assert.equal(drift.code, 1, drift.stderr);
    const extra = (JSON.parse(drift.stdout) as { rows: DriftRow[] }).rows.filter((r) => r.state === 'extra');
    assert.deepEqual(
      extra.map((r) => [r.target, r.tag]),
      [[`${world.open.host}/imported/bundle/chart`, '0.2.0']],
    );
  });

  test('the archive imports the same way', async () => {
    const config = await writeConfig('import-archive.json', {
      mirrors: [{ source: 'oci-archive:export.tar', targets: [`${world.open.host}/from-archive/{path}`] }],
    });
    const res = await world.runCli(['sync', '--config', config], { env });
    assert.equal(res.code, 0, res.stderr);
    for (const { repo, tag, node } of exported.values()) {
      const raw = await skopeoInspectRaw(`${world.open.host}/from-archive/${repo}:${tag}`);
      assert.ok(raw.equals(node.bytes), `${repo}:${tag}`);
    }
  });

  test('inspect and tags read a layout', async () => {
    const name = `${src}/bundle/app:v1`;
    const inspect = await world.runCli(['inspect', `oci:${layoutDir}:${name}`, '--json'], { env });
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(JSON.parse(inspect.stdout).digest, exported.get(name)!.node.digest);
    const all = await world.runCli(['tags', `oci-archive:${archive}`], { env });
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual(
      all.stdout.trim().split('\n').sort(),
      [...exported.keys(), ...referrerNames.keys()].sort(),
    );
    const tags = await world.runCli(['tags', `oci:${layoutDir}:${src}/bundle/signed`, '--json'], { env });
    assert.deepEqual(JSON.parse(tags.stdout).tags.sort(), ['v1', ...signed.referrerTags.keys()].sort());
  });

  test('a corrupt blob fails that image, naming the file and digest; nothing referring to it is pushed', async () => {
    const damaged = join(world.workDir, 'damaged');
    await cp(layoutDir, damaged, { recursive: true });
    const chart = exported.get(`${src}/bundle/chart:0.1.0`)!.node;
    const layer = chart.blobs[1]!;
    const file = join(damaged, 'blobs', 'sha256', layer.digest.slice(7));
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('!'), 0, 1, 3);
    await handle.close();
    world.resetCounts();
    const res = await world.runCli(
      [
        'sync',
        '--config',
        await writeConfig('damaged.json', {
          mirrors: [{ source: 'oci:damaged', targets: [`${world.open.host}/damaged/{path}`] }],
        }),
      ],
      { env },
    );
    assert.equal(res.code, 1, res.stderr);
    assert.ok(res.stderr.includes(file), res.stderr);
    assert.ok(res.stderr.includes(layer.digest), res.stderr);
    const chartPuts = world.open.proxy.requests.filter(
      (r) => r.method === 'PUT' && r.kind === 'manifest' && r.repo === 'damaged/bundle/chart',
    );
    assert.equal(chartPuts.length, 0);
    assert.deepEqual(await skopeoListTags(`${world.open.host}/damaged/bundle/chart`).catch(() => []), []);
    // The other images went through.
    const app = exported.get(`${src}/bundle/app:v1`)!;
    assert.ok((await skopeoInspectRaw(`${world.open.host}/damaged/bundle/app:v1`)).equals(app.node.bytes));
  });
});

/** Run the CLI under strace, recording every file open of every thread. */
async function runTraced(
  traceFile: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      'strace',
      [
        '-ff',
        '-qq',
        '-e',
        'trace=openat',
        '-o',
        traceFile,
        process.execPath,
        join(REPO_ROOT, 'bin', 'regmirror.js'),
        ...args,
      ],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 300_000,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? String(err),
    };
  }
}

describe('layouts written by skopeo are sources', () => {
  test('skopeo copy docker://… oci:… and oci-archive:…, then regmirror copies from them', async () => {
    const image = await seedImage(
      world.open.seedTarget,
      'by-skopeo/app',
      'v1',
      'oci-index-with-attestations',
    );
    const dir = join(world.workDir, 'skopeo-layout');
    const file = join(world.workDir, 'skopeo.tar');
    await skopeoCopyToLayout(`${world.open.host}/by-skopeo/app:v1`, `oci:${dir}:v1`);
    await skopeoCopyToLayout(`${world.open.host}/by-skopeo/app:v1`, `oci-archive:${file}:v1`);
    for (const ref of [`oci:${dir}:v1`, `oci-archive:${file}:v1`, `oci:${dir}`]) {
      const target = `${world.basic.host}/from-skopeo/${ref.startsWith('oci-archive') ? 'archive' : 'dir'}`;
      const res = await world.runCli(['copy', ref, target, '--json'], { env });
      assert.equal(res.code, 0, res.stderr);
      const raw = await skopeoInspectRaw(`${target}:v1`, { creds: world.basic.skopeoCreds! });
      assert.ok(raw.equals(image.bytes), `${ref}: other bytes at the target`);
    }
    const tags = await world.runCli(['tags', `oci:${dir}`], { env });
    assert.equal(tags.stdout.trim(), 'v1');
  });
});

describe('kill -9 midway through an export, then run again', () => {
  test('the layout and the archive end complete and valid, with no temporary files left', async () => {
    const repos = ['killed/a', 'killed/b', 'killed/c'];
    const images = new Map<string, string>();
    for (const repo of repos) {
      const img = await seedLargeBlobImage(world.source.seedTarget, repo, 'v1', 6 * 1024 * 1024);
      images.set(`${src}/${repo}:v1`, img.digest);
    }
    const config = await writeConfig('killed.json', {
      defaults: { concurrency: 1 },
      mirrors: repos.map((r) => ({
        source: `${src}/${r}`,
        tags: ['v1'],
        targets: ['oci:killed', 'oci-archive:killed.tar'],
      })),
    });
    const dir = join(world.workDir, 'killed');
    // A slow source (each blob answer waits 1 s, images one at a time): the kill, as soon as the first
    // blobs are in, lands with at least two images still to come, whatever the load on the machine.
    world.source.proxy.settings.fault = (req) =>
      req.kind === 'blob' && req.method === 'GET' ? { delayMs: 1000 } : undefined;
    const running = world.startCli(['sync', '--config', config], { env });
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const files = await readdir(join(dir, 'blobs', 'sha256')).catch(() => []);
        if (files.length >= 2) break;
        assert.ok(Date.now() < deadline, 'the export never started writing blobs');
        await new Promise((r) => setTimeout(r, 20));
      }
      running.child.kill('SIGKILL');
      const killed = await running.result;
      assert.equal(killed.signal, 'SIGKILL');
    } finally {
      world.clearFaults();
    }
    const names = await readFile(join(dir, 'index.json'), 'utf8').catch(() => '');
    assert.ok(![...images.keys()].every((n) => names.includes(n)), 'the kill came too late to test anything');

    const again = await world.runCli(['sync', '--config', config], { env });
    assert.equal(again.code, 0, again.stderr);
    const found = await assertValidLayout(dir);
    for (const [name, digest] of images) {
      assert.equal(found.get(name), digest, name);
      await skopeoVerifyLayout(`oci:${dir}:${name}`);
      await skopeoVerifyLayout(`oci-archive:${join(world.workDir, 'killed.tar')}:${name}`);
    }
    assert.ok(
      !(await readdir(world.workDir)).some((n) => n.includes('regmirror')),
      'staging or temp files left',
    );
  });
});

describe('bad layout inputs: what and where, exit code, nothing written', () => {
  const target = () => `${world.open.host}/bad-layout/app`;
  const cases: [string, () => Promise<string[]>, RegExp, number][] = [
    [
      'a missing path',
      async () => ['copy', `oci:${join(world.workDir, 'no-such-layout')}:v1`, target()],
      /source layout oci:.*no-such-layout.*: .*no-such-layout does not exist/,
      2,
    ],
    [
      'a directory that is not a layout',
      async () => {
        const dir = join(world.workDir, 'not-a-layout');
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'notes.txt'), 'hello');
        return ['copy', `oci:${dir}:v1`, target()];
      },
      /not-a-layout is not an OCI image layout \(it has no oci-layout file\)/,
      2,
    ],
    [
      'an unreadable index.json',
      async () => {
        const dir = join(world.workDir, 'bad-index');
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
        await writeFile(join(dir, 'index.json'), '{"schemaVersion": 2, "manifests": [');
        return ['copy', `oci:${dir}:v1`, target()];
      },
      /bad-index\/index\.json is not valid JSON/,
      2,
    ],
    [
      'a tag not in the layout',
      async () => ['copy', `oci:${join(world.workDir, 'export')}:${src}/bundle/app:v9`, target()],
      /image name ".*bundle\/app:v9" not found/,
      1,
    ],
    [
      'a tar that is not an OCI archive',
      async () => {
        const dir = join(world.workDir, 'plain-tar');
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'README'), 'not an image');
        await run('tar', ['-cf', join(world.workDir, 'plain.tar'), '-C', dir, 'README']);
        return ['copy', `oci-archive:${join(world.workDir, 'plain.tar')}`, target()];
      },
      /plain\.tar is a tar archive but not an OCI archive: it has no oci-layout entry \(entries: README\)/,
      2,
    ],
    [
      'a layout of many images with no name',
      async () => ['inspect', `oci:${join(world.workDir, 'export')}`],
      /holds \d+ images; name one/,
      2,
    ],
  ];
  for (const [what, args, pattern, code] of cases) {
    test(what, async () => {
      world.resetCounts();
      const res = await world.runCli(await args(), { env });
      assert.equal(res.code, code, res.stderr);
      assert.match(res.stderr, pattern);
      assert.equal(world.open.proxy.count({ method: 'PUT' }), 0);
      assert.equal(world.open.proxy.count({ kind: 'upload' }), 0);
    });
  }
});
