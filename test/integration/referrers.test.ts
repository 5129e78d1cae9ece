// Signatures, SBOMs and attestations survive the move, against real distribution registries (2.8: no
// referrers API, so fallback tags) and one with the referrers API (a real registry behind a small front
// that implements /referrers/ and OCI-Subject). skopeo witnesses the bytes; a cosign-format verifier
// with a key made here (node:crypto) checks the signatures at every target. Requests are counted at the
// proxies.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AuditEntry } from '../../src/cli/audit.js';
import { syncReportSchema } from '../../src/cli/report.js';
import {
  appendSignature,
  cosignVerify,
  generateSigningKey,
  type SigningKey,
  signatureTag,
  signPayload,
  simpleSigningPayload,
} from '../harness/cosign.js';
import { ALICE, BOB, type Endpoint, startWorld, type World, writeDockerConfig } from '../harness/fixture.js';
import { type RegistryProxy, startProxy } from '../harness/proxy.js';
import { type ReferrersApi, startReferrersApi } from '../harness/referrers-api.js';
import { type Registry, startRegistry } from '../harness/registry.js';
import { ociArtifact, pushManifestTree, RegistryClient as SeedClient } from '../harness/seed.js';
import {
  attachReferrer,
  fallbackTagOf,
  IN_TOTO,
  type SignedImage,
  SPDX,
  seedSignedImage,
} from '../harness/signed-image.js';
import { skopeoInspectRaw, skopeoListTags } from '../harness/skopeo.js';

let world: World;
let env: Record<string, string>;
/** A fourth registry, with the referrers API (token auth, like the source). */
let apiRegistry: Registry;
let apiFront: ReferrersApi;
let apiProxy: RegistryProxy;
let api: Endpoint;
/** The same registry behind a front that has the API but never says OCI-Subject (as Quay does). */
let quietFront: ReferrersApi;
let quietProxy: RegistryProxy;
let quiet: Endpoint;
let key: SigningKey;

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  apiRegistry = await startRegistry({ auth: 'token', tokenServer: world.tokenServer });
  apiFront = await startReferrersApi(apiRegistry.url);
  apiProxy = await startProxy(apiFront.url);
  api = {
    registry: apiRegistry,
    proxy: apiProxy,
    host: apiProxy.host,
    url: apiProxy.url,
    creds: ALICE,
    skopeoCreds: `${ALICE.username}:${ALICE.password}`,
    seedTarget: { url: apiProxy.url, username: ALICE.username, password: ALICE.password },
  };
  quietFront = await startReferrersApi(apiRegistry.url, { announceSubject: false });
  quietProxy = await startProxy(quietFront.url);
  quiet = {
    ...api,
    proxy: quietProxy,
    host: quietProxy.host,
    url: quietProxy.url,
    seedTarget: { url: quietProxy.url, username: ALICE.username, password: ALICE.password },
  };
  await writeDockerConfig(world.dockerConfigDir, [
    [world.source.host, ALICE],
    [world.basic.host, BOB],
    [world.open.host, { username: 'anyone', password: 'unused' }],
    [api.host, ALICE],
    [quiet.host, ALICE],
  ]);
  key = generateSigningKey();
});
after(async () => {
  await quietProxy?.stop();
  await quietFront?.stop();
  await apiProxy?.stop();
  await apiFront?.stop();
  await apiRegistry?.stop();
  await world?.stop();
});

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

const credsOf = (ep: Endpoint) => (ep.skopeoCreds ? { creds: ep.skopeoCreds } : {});
const all = () => [world.source, world.basic, world.open, api];

/** Requests a proxy saw for one repository (every kind, challenges included). */
const requestsFor = (ep: Endpoint, repo: string) => ep.proxy.requests.filter((r) => r.repo === repo).length;

/** Every referrer, fallback index and cosign tag of `signed` is at `ep/repo`, byte-identical (skopeo). */
async function assertReferrersAt(signed: SignedImage, ep: Endpoint, repo: string, withFallback: boolean) {
  const opts = credsOf(ep);
  for (const r of signed.referrers) {
    const raw = await skopeoInspectRaw(`${ep.host}/${repo}@${r.digest}`, opts);
    assert.ok(raw.equals(r.bytes), `${ep.host}/${repo}@${r.digest} differs from the source`);
  }
  for (const [tag, digest] of signed.referrerTags) {
    if (!withFallback && !tag.endsWith('.sig')) continue;
    const raw = await skopeoInspectRaw(`${ep.host}/${repo}:${tag}`, opts);
    const expected =
      signed.fallbackIndexes.get(tag)?.bytes ??
      [...signed.signatures.values()].find((s) => s.digest === digest)!.bytes;
    assert.ok(raw.equals(expected), `${ep.host}/${repo}:${tag} differs from the source`);
  }
  const tags = await skopeoListTags(`${ep.host}/${repo}`, opts);
  const expected = [
    signed.tag,
    ...[...signed.referrerTags.keys()].filter((t) => withFallback || t.endsWith('.sig')),
  ];
  assert.deepEqual([...tags].sort(), expected.sort(), `${ep.host}/${repo} tags`);
}

/** The digests a signed image's signatures cover, with the verifier's answer at `ep/repo`. */
async function verifyAll(signed: SignedImage, ep: Endpoint, repo: string, publicPem = key.publicPem) {
  const client = new SeedClient(ep.seedTarget);
  const out = new Map<string, Awaited<ReturnType<typeof cosignVerify>>>();
  for (const digest of signed.signatures.keys()) {
    out.set(digest, await cosignVerify(client, repo, digest, publicPem));
  }
  out.set(signed.tag, await cosignVerify(client, repo, signed.tag, publicPem));
  return out;
}

describe('a signed multi-arch image, sync to three targets without the referrers API', () => {
  let signed: SignedImage;
  let config: string;
  const repo = 'signed/app';
  const targets = () => [
    { ep: world.source, repo: `mirror/${repo}` },
    { ep: world.basic, repo },
    { ep: world.open, repo },
  ];
  const auditFile = () => join(world.workDir, 'signed-audit.jsonl');

  before(async () => {
    signed = await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
    config = await writeConfig('signed.json', {
      mirrors: [
        {
          source: `${world.source.host}/${repo}`,
          tags: ['v1'],
          targets: [
            `${world.source.host}/mirror/{path}`,
            `${world.basic.host}/{path}`,
            `${world.open.host}/{path}`,
          ],
        },
      ],
    });
  });

  test('plan lists the six referrers it would copy to each target, and writes nothing', async () => {
    world.resetCounts();
    const res = await world.runCli(['plan', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    for (const t of report.mirrors[0]!.images[0]!.targets) {
      assert.equal(t.status, 'planned');
      assert.equal(t.referrersCopied, 6);
      assert.deepEqual(
        t.referrers!.map((r) => r.digest).sort(),
        signed.referrers.map((r) => r.digest).sort(),
      );
    }
    assert.equal(report.summary.referrersCopied, 18);
    assert.match(res.stderr, /copy 6 referrers/);
    assert.match(res.stderr, new RegExp(`\\+ application/spdx\\+json ${signed.sbom.digest}`));
    assert.match(res.stderr, new RegExp(`\\+ tag ${signatureTag(signed.image.digest)}`));
    for (const ep of [world.source, world.basic, world.open]) {
      assert.equal(ep.proxy.count({ method: 'PUT' }) + ep.proxy.count({ method: 'POST' }), 0, ep.host);
    }
  });

  test('sync copies every referrer and fallback index; skopeo sees identical digests everywhere', async () => {
    const res = await world.runCli(['sync', '--config', config, '--json', '--audit-log', auditFile()], {
      env,
    });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    const image = report.mirrors[0]!.images[0]!;
    assert.deepEqual(
      image.targets.map((t) => [t.status, t.referrersCopied]),
      [
        ['copied', 6],
        ['copied', 6],
        ['copied', 6],
      ],
    );
    assert.equal(report.summary.referrersCopied, 18);
    for (const { ep, repo: r } of targets()) {
      const raw = await skopeoInspectRaw(`${ep.host}/${r}:v1`, credsOf(ep));
      assert.ok(raw.equals(signed.image.bytes));
      await assertReferrersAt(signed, ep, r, true);
    }
    // The audit log names every referrer write with the manifest it is about.
    const entries = (await readFile(auditFile(), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry);
    for (const { ep, repo: r } of targets()) {
      const mine = entries.filter(
        (e) => e.registry === ep.host && e.repository === r && e.subject !== undefined,
      );
      const key = (e: AuditEntry) => `${e.action} ${e.tag ?? e.digest} ${e.subject}`;
      assert.deepEqual(
        mine.map(key).sort(),
        [
          `manifest-put ${signed.sbom.digest} ${signed.image.digest}`,
          `manifest-put ${signed.intoto.digest} ${signed.image.children[0]!.digest}`,
          ...[...signed.signatures.keys()].map((d) => `tag-create ${signatureTag(d)} ${d}`),
          `tag-create ${fallbackTagOf(signed.image.digest)} ${signed.image.digest}`,
          `tag-create ${fallbackTagOf(signed.image.children[0]!.digest)} ${signed.image.children[0]!.digest}`,
        ].sort(),
        `${ep.host}/${r}`,
      );
      const sbomWrite = mine.find((e) => e.digest === signed.sbom.digest)!;
      assert.equal(sbomWrite.artifactType, SPDX);
    }
  });

  test('a no-op re-sync costs at most 2 requests per manifest per side more than without referrers', async () => {
    // 5 manifests in the image (index, 2 platforms, 2 buildx attestations) + 6 referrers (SBOM, in-toto,
    // 4 cosign signatures) = 11 manifests; the fallback indexes are the lists, not counted as manifests.
    const manifests = signed.imageManifests.length + signed.referrers.length;
    assert.equal(manifests, 11);
    const off = await writeConfig('signed-off.json', {
      defaults: { referrers: false },
      mirrors: JSON.parse(await readFile(config, 'utf8')).mirrors,
    });
    const sides = () => [
      { name: 'source', ep: world.source, repo },
      ...targets().map((t) => ({ name: `${t.ep.host}/${t.repo}`, ...t })),
    ];
    const measure = async (file: string) => {
      world.resetCounts();
      const res = await world.runCli(['sync', '--config', file, '--json'], { env });
      assert.equal(res.code, 0, res.stderr);
      const report = syncReportSchema.parse(JSON.parse(res.stdout));
      assert.equal(report.summary.upToDate, 3);
      assert.equal(report.summary.referrersCopied, 0);
      // Referrer probes go to /v2/<repo>/referrers/: counted with their repository like everything else.
      return sides().map((s) => requestsFor(s.ep, s.repo));
    };
    const without = await measure(off);
    const withReferrers = await measure(config);
    const extra = withReferrers.map((n, i) => n - without[i]!);
    process.stderr.write(
      `no-op re-sync requests per side, referrers off → on: ${sides()
        .map((s, i) => `${s.name} ${without[i]} → ${withReferrers[i]} (+${extra[i]})`)
        .join('; ')}\n`,
    );
    for (const [i, s] of sides().entries()) {
      assert.ok(
        extra[i]! <= 2 * manifests,
        `${s.name}: ${extra[i]} more requests for ${manifests} manifests`,
      );
    }
    // Exactly, as the README says. Source: the tag list (this mirror lists its tags, so nothing else
    // needs it), one referrers probe (404: no API, learned for the run), the index (its children's
    // digests), the two fallback indexes (index, amd64), a HEAD of each of the four cosign tags = 9.
    // Each target: the tag list, the two fallback indexes, four cosign HEADs = 7, and the first target
    // on a registry also that registry's one probe: the mirror/ target shares the source's registry.
    // (One tag named: sync HEADs it rather than list a target's tags, so the list is the referrers'.)
    assert.deepEqual(extra, [9, 7, 8, 8]);
    // No blob was read, nothing written.
    for (const ep of [world.source, world.basic, world.open]) {
      assert.equal(ep.proxy.count({ kind: 'blob' }) + ep.proxy.count({ kind: 'upload' }), 0);
      assert.equal(ep.proxy.count({ method: 'PUT' }), 0);
    }
  });

  test('the signatures verify at every target, and not where the .sig was deleted', async () => {
    for (const { ep, repo: r } of targets()) {
      for (const [what, v] of await verifyAll(signed, ep, r))
        assert.ok(v.ok, `${ep.host}/${r} ${what}: ${v.reason}`);
    }
    // Another key does not verify: the verifier is not a rubber stamp.
    const stranger = generateSigningKey();
    const wrong = await cosignVerify(new SeedClient(world.open.seedTarget), repo, 'v1', stranger.publicPem);
    assert.equal(wrong.ok, false);
    assert.match(wrong.reason!, /does not verify with the key/);
    // Delete the index's signature at one target.
    const sig = signed.signatures.get(signed.image.digest)!;
    const del = await fetch(`${world.open.url}/v2/${repo}/manifests/${sig.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const gone = await cosignVerify(new SeedClient(world.open.seedTarget), repo, 'v1', key.publicPem);
    assert.equal(gone.ok, false);
    assert.match(gone.reason!, new RegExp(`no signature ${signatureTag(signed.image.digest)}`));
    // The others still verify.
    for (const ep of [world.source, world.basic]) {
      const r = ep === world.source ? `mirror/${repo}` : repo;
      assert.ok((await cosignVerify(new SeedClient(ep.seedTarget), r, 'v1', key.publicPem)).ok);
    }
    // check sees the missing signature; check --fix brings it back; then it verifies again.
    const check = await world.runCli(['check', '--config', config, '--json'], { env });
    assert.equal(check.code, 1, check.stderr);
    const rows = (
      JSON.parse(check.stdout) as { rows: { target: string; state: string; missingReferrers?: string[] }[] }
    ).rows;
    assert.deepEqual(
      rows.filter((r) => r.state !== 'ok').map((r) => [r.target, r.state, r.missingReferrers]),
      [
        [
          `${world.open.host}/${repo}`,
          'incomplete',
          [`cosign tag ${signatureTag(signed.image.digest)} (${sig.digest})`],
        ],
      ],
    );
    const fix = await world.runCli(['check', '--config', config, '--fix'], { env });
    assert.equal(fix.code, 0, fix.stderr);
    assert.ok((await cosignVerify(new SeedClient(world.open.seedTarget), repo, 'v1', key.publicPem)).ok);
  });

  test('inspect --referrers shows the tree: signatures under what they sign, the SBOM and its signature', async () => {
    const res = await world.runCli(['inspect', `${world.open.host}/${repo}:v1`, '--referrers'], { env });
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const sbom = at(new RegExp(`← application/spdx\\+json  ${signed.sbom.digest}`));
    const sbomSig = at(new RegExp(`← cosign tag ${signatureTag(signed.sbom.digest).replace(/\./g, '\\.')}`));
    assert.ok(sbom > 0 && sbomSig > sbom, res.stdout);
    const indent = (i: number) => lines[i]!.search(/\S/);
    assert.ok(indent(sbomSig) > indent(sbom), 'the SBOM signature is not under the SBOM');
    assert.ok(at(new RegExp(`← application/vnd\\.in-toto\\+json  ${signed.intoto.digest}`)) > 0);
    assert.match(res.stdout, /6 referrers .*found through fallback tags/);
    const json = await world.runCli(['inspect', `${world.open.host}/${repo}:v1`, '--referrers', '--json'], {
      env,
    });
    const tree = JSON.parse(json.stdout) as {
      referrers: { digest: string; referrers?: { tag?: string }[] }[];
    };
    const sbomNode = tree.referrers.find((r) => r.digest === signed.sbom.digest)!;
    assert.deepEqual(
      sbomNode.referrers?.map((r) => r.tag),
      [signatureTag(signed.sbom.digest)],
    );
  });
});

describe('targets with and without the referrers API', () => {
  let signed: SignedImage;
  const repo = 'both/app';
  before(async () => {
    signed = await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
  });

  test('a target with the referrers API gets the referrers and no fallback tag', async () => {
    world.resetCounts();
    apiProxy.reset();
    const res = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${api.host}/${repo}`, '--json'],
      {
        env,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as { targets: { status: string; referrersCopied: number }[] };
    assert.deepEqual(
      report.targets.map((t) => [t.status, t.referrersCopied]),
      [['copied', 6]],
    );
    // Every referrer and cosign tag, byte-identical; no sha256-<hex> fallback tag at all.
    await assertReferrersAt(signed, api, repo, false);
    // The registry lists them (the client followed its pages of two).
    const client = new SeedClient(api.seedTarget);
    const listed = async (digest: string) => {
      const r = await client.request('GET', `/v2/${repo}/referrers/${digest}`, { repo });
      return ((await r.json()) as { manifests: { digest: string; artifactType?: string }[] }).manifests;
    };
    assert.deepEqual(
      (await listed(signed.image.digest)).map((d) => [d.digest, d.artifactType]),
      [[signed.sbom.digest, SPDX]],
    );
    assert.deepEqual(
      (await listed(signed.image.children[0]!.digest)).map((d) => d.digest),
      [signed.intoto.digest],
    );
    assert.ok(apiProxy.count({ kind: 'referrers', status: 200 }) >= 1);
    for (const [what, v] of await verifyAll(signed, api, repo)) assert.ok(v.ok, `${what}: ${v.reason}`);
  });

  test('a target with the API but no OCI-Subject (Quay): its referrers endpoint answering is enough, no fallback tag', async () => {
    quietProxy.reset();
    const res = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${quiet.host}/quiet/app`, '--json'],
      {
        env,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    await assertReferrersAt(signed, quiet, 'quiet/app', false);
    // The repository did not exist when the target was surveyed (404 NAME_UNKNOWN decides nothing); no
    // PUT said OCI-Subject; after the pushes one referrers request found the API.
    const asked = quietProxy.requests.filter((r) => r.kind === 'referrers').map((r) => r.status);
    assert.ok(asked.includes(404) && asked.at(-1) === 200, JSON.stringify(asked));
    assert.deepEqual(
      quietFront.index
        .get('quiet/app')
        ?.get(signed.image.digest)
        ?.map((d) => d.digest),
      [signed.sbom.digest],
    );
  });

  test('a target without it gets the fallback index merged with the one it had: both referrers kept', async () => {
    // The target already holds the image and, listed in its fallback index, a scan report of its own.
    const target = 'merge/app';
    await pushManifestTree(world.open.seedTarget, target, signed.image.root, 'v1');
    const scan = ociArtifact({
      seed: 'scan',
      subject: signed.image.root.descriptor,
      artifactType: 'application/vnd.example.vuln-report+json',
      annotations: { 'org.example.scanner': 'trivy' },
    });
    await attachReferrer(world.open.seedTarget, target, scan, signed.image.digest);
    const res = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/${target}`, '--json'],
      {
        env,
      },
    );
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as {
      targets: { status: string; tagAction: string; referrersCopied: number }[];
    };
    assert.deepEqual(
      report.targets.map((t) => [t.status, t.tagAction, t.referrersCopied]),
      [['copied', 'none', 6]],
    );
    const raw = await skopeoInspectRaw(`${world.open.host}/${target}:${fallbackTagOf(signed.image.digest)}`);
    const index = JSON.parse(raw.toString('utf8')) as {
      manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
    };
    assert.deepEqual(index.manifests, [scan.descriptor, signed.sbom.descriptor]);
    // Merged, so no longer the source's bytes; every entry still what its manifest says.
    assert.ok(!raw.equals(signed.fallbackIndexes.get(fallbackTagOf(signed.image.digest))!.bytes));
    // The amd64 fallback index had nothing else: the source's, byte for byte.
    const amd64 = fallbackTagOf(signed.image.children[0]!.digest);
    assert.ok(
      (await skopeoInspectRaw(`${world.open.host}/${target}:${amd64}`)).equals(
        signed.fallbackIndexes.get(amd64)!.bytes,
      ),
    );
  });

  test('from a source with the referrers API to one without: the same digests, fallback indexes made', async () => {
    // The API registry now holds both/app (copied above); copy it on to a registry without the API.
    const res = await world.runCli(
      ['copy', `${api.host}/${repo}:v1`, `${world.basic.host}/from-api/app`, '--json'],
      { env },
    );
    assert.equal(res.code, 0, res.stderr);
    const opts = credsOf(world.basic);
    for (const r of signed.referrers) {
      const raw = await skopeoInspectRaw(`${world.basic.host}/from-api/app@${r.digest}`, opts);
      assert.ok(raw.equals(r.bytes), r.digest);
    }
    const raw = await skopeoInspectRaw(
      `${world.basic.host}/from-api/app:${fallbackTagOf(signed.image.digest)}`,
      opts,
    );
    const index = JSON.parse(raw.toString('utf8')) as { manifests: unknown[] };
    assert.deepEqual(index.manifests, [signed.sbom.descriptor]);
    for (const [what, v] of await verifyAll(signed, world.basic, 'from-api/app'))
      assert.ok(v.ok, `${what}: ${v.reason}`);
  });
});

describe('a signature added later, filters, and referrers off', () => {
  test('a new signature for an unchanged tag: check reports it missing, sync copies it, check is ok', async () => {
    const repo = 'late/app';
    const signed = await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
    const config = await writeConfig('late.json', {
      mirrors: [
        {
          source: `${world.source.host}/${repo}`,
          tags: ['v1'],
          targets: [`${world.open.host}/{path}`, `${world.basic.host}/{path}`],
        },
      ],
    });
    const first = await world.runCli(['sync', '--config', config], { env });
    assert.equal(first.code, 0, first.stderr);
    const okFirst = await world.runCli(['check', '--config', config], { env });
    assert.equal(okFirst.code, 0, okFirst.stderr + okFirst.stdout);

    // A second signer signs the index: cosign appends a layer, so the .sig tag moves to a new manifest.
    const second = generateSigningKey();
    const reference = `${world.source.host}/${repo}`;
    const appended = appendSignature(
      signed.signatures.get(signed.image.digest)!,
      signPayload(second, simpleSigningPayload(reference, signed.image.digest)),
    );
    const client = new SeedClient(world.source.seedTarget);
    for (const b of appended.blobs) await client.pushBlob(repo, b);
    await client.pushManifest(repo, signatureTag(signed.image.digest), appended);
    // And a vulnerability report attached as an OCI referrer.
    const report = ociArtifact({
      seed: 'late-report',
      subject: signed.image.root.descriptor,
      artifactType: 'application/vnd.example.vuln-report+json',
    });
    await attachReferrer(client, repo, report, signed.image.digest);

    const check = await world.runCli(['check', '--config', config, '--json'], { env });
    assert.equal(check.code, 1, check.stderr);
    const rows = (
      JSON.parse(check.stdout) as { rows: { target: string; state: string; missingReferrers?: string[] }[] }
    ).rows;
    for (const row of rows) {
      assert.equal(row.state, 'incomplete', row.target);
      assert.deepEqual(row.missingReferrers, [
        `referrer ${report.digest} (application/vnd.example.vuln-report+json) of ${signed.image.digest.slice(0, 19)}`,
        `cosign tag ${signatureTag(signed.image.digest)} (${appended.digest})`,
      ]);
    }
    const table = await world.runCli(['check', '--config', config], { env });
    assert.match(table.stdout, /incomplete .* cosign tag sha256-/);

    world.resetCounts();
    const sync = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(sync.code, 0, sync.stderr);
    const result = syncReportSchema.parse(JSON.parse(sync.stdout)).mirrors[0]!.images[0]!;
    assert.deepEqual(
      result.targets.map((t) => [t.status, t.tagAction, t.manifestsPushed, t.referrersCopied]),
      [
        ['copied', 'none', 0, 2],
        ['copied', 'none', 0, 2],
      ],
    );
    // The image itself was not pushed again: only the report, its fallback index, the moved .sig.
    for (const ep of [world.open, world.basic]) {
      const puts = ep.proxy.requests
        .filter((r) => r.method === 'PUT' && r.kind === 'manifest')
        .map((r) => r.path.split('/').at(-1));
      assert.deepEqual(
        puts.sort(),
        [report.digest, fallbackTagOf(signed.image.digest), signatureTag(signed.image.digest)].sort(),
        ep.host,
      );
    }
    const after = await world.runCli(['check', '--config', config], { env });
    assert.equal(after.code, 0, after.stdout);
    for (const ep of [world.open, world.basic]) {
      const c = new SeedClient(ep.seedTarget);
      assert.ok((await cosignVerify(c, repo, 'v1', second.publicPem)).ok, `${ep.host}: the second signer`);
      assert.ok((await cosignVerify(c, repo, 'v1', key.publicPem)).ok, `${ep.host}: the first signer`);
    }
  });

  test('artifactTypes copies only the chosen types', async () => {
    const repo = 'filter/app';
    const signed = await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
    const config = await writeConfig('filter.json', {
      mirrors: [
        {
          source: `${world.source.host}/${repo}`,
          tags: ['v1'],
          targets: [`${world.open.host}/filter/sbom-only`],
          referrers: { artifactTypes: [SPDX] },
          cosignTags: false,
        },
        {
          name: 'no-intoto',
          source: `${world.source.host}/${repo}`,
          tags: ['v1'],
          targets: [`${world.open.host}/filter/no-intoto`],
          referrers: { exclude: ['application/vnd.in-toto*'] },
        },
      ],
    });
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    const [only, noIntoto] = report.mirrors.map((m) => m.images[0]!.targets[0]!);
    assert.deepEqual(
      only!.referrers?.map((r) => r.artifactType),
      [SPDX],
    );
    assert.equal(noIntoto!.referrersCopied, 5);
    assert.ok(!noIntoto!.referrers?.some((r) => r.artifactType === IN_TOTO));
    assert.deepEqual(
      (await skopeoListTags(`${world.open.host}/filter/sbom-only`)).sort(),
      [fallbackTagOf(signed.image.digest), 'v1'].sort(),
    );
    // Nothing filtered out of the index's list: the source's bytes.
    assert.ok(
      (
        await skopeoInspectRaw(`${world.open.host}/filter/sbom-only:${fallbackTagOf(signed.image.digest)}`)
      ).equals(signed.fallbackIndexes.get(fallbackTagOf(signed.image.digest))!.bytes),
    );
    await assert.rejects(skopeoInspectRaw(`${world.open.host}/filter/sbom-only@${signed.intoto.digest}`));
    await assert.rejects(skopeoInspectRaw(`${world.open.host}/filter/no-intoto@${signed.intoto.digest}`));
    assert.ok(
      (await skopeoInspectRaw(`${world.open.host}/filter/no-intoto@${signed.sbom.digest}`)).equals(
        signed.sbom.bytes,
      ),
    );
    assert.ok(
      !(await skopeoListTags(`${world.open.host}/filter/no-intoto`)).includes(
        fallbackTagOf(signed.image.children[0]!.digest),
      ),
    );
  });

  test('referrers: false copies none and makes no referrers request (counted)', async () => {
    const repo = 'off/app';
    await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
    const config = await writeConfig('off.json', {
      defaults: { referrers: false },
      mirrors: [
        {
          source: `${world.source.host}/${repo}`,
          tags: ['v1'],
          targets: [`${world.open.host}/{path}`, `${api.host}/off/app`],
        },
      ],
    });
    world.resetCounts();
    apiProxy.reset();
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.referrersCopied, 0);
    for (const ep of all()) {
      assert.equal(ep.proxy.count({ kind: 'referrers' }), 0, `referrers requests at ${ep.host}`);
      assert.equal(ep.proxy.count({ kind: 'tags' }), 0, `tag lists at ${ep.host}`);
      const referrerTags = ep.proxy.requests.filter((r) => /\/manifests\/sha256-/.test(r.path));
      assert.deepEqual(referrerTags, [], `referrer tags asked of ${ep.host}`);
    }
    assert.deepEqual(await skopeoListTags(`${world.open.host}/${repo}`), ['v1']);
    assert.deepEqual(await skopeoListTags(`${api.host}/off/app`, credsOf(api)), ['v1']);
  });

  test('copy --no-referrers copies the image alone; copy (default) brings the referrers', async () => {
    const repo = 'cli/app';
    const signed = await seedSignedImage(world.source.seedTarget, world.source.host, repo, 'v1', key);
    const without = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/cli/bare`, '--no-referrers'],
      { env },
    );
    assert.equal(without.code, 0, without.stderr);
    assert.deepEqual(await skopeoListTags(`${world.open.host}/cli/bare`), ['v1']);
    const withThem = await world.runCli(
      ['copy', `${world.source.host}/${repo}:v1`, `${world.open.host}/cli/bare`],
      { env },
    );
    assert.equal(withThem.code, 0, withThem.stderr);
    assert.match(withThem.stderr, /6 referrers/);
    await assertReferrersAt(signed, world.open, 'cli/bare', true);
  });

  test('two mirrors of one image writing the same target fallback index in one sync: both referrers kept', async () => {
    // The same image (same bytes, same digest) in two source repositories, each with its own SBOM.
    const seedOf = (r: string) =>
      seedSignedImage(
        world.source.seedTarget,
        world.source.host,
        r,
        r.endsWith('one') ? 'v1' : 'v2',
        key,
        'twin-image',
      );
    const one = await seedOf('twin/one');
    const two = await seedOf('twin/two');
    assert.equal(one.image.digest, two.image.digest);
    // Give twin/two a referrer twin/one does not have.
    const extra = ociArtifact({
      seed: 'twin-extra',
      subject: two.image.root.descriptor,
      artifactType: 'application/vnd.example.extra',
    });
    await attachReferrer(world.source.seedTarget, 'twin/two', extra, two.image.digest);
    const config = await writeConfig('twins.json', {
      defaults: { concurrency: 4 },
      mirrors: [
        {
          source: `${world.source.host}/twin/one`,
          tags: ['v1'],
          targets: [`${world.open.host}/twin/shared`],
        },
        {
          source: `${world.source.host}/twin/two`,
          tags: ['v2'],
          targets: [`${world.open.host}/twin/shared`],
        },
      ],
    });
    const res = await world.runCli(['sync', '--config', config], { env });
    assert.equal(res.code, 0, res.stderr);
    const raw = await skopeoInspectRaw(`${world.open.host}/twin/shared:${fallbackTagOf(one.image.digest)}`);
    const listed = (JSON.parse(raw.toString('utf8')) as { manifests: { digest: string }[] }).manifests.map(
      (d) => d.digest,
    );
    assert.deepEqual(listed.sort(), [one.sbom.digest, extra.digest].sort());
  });
});
