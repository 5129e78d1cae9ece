// The copy engine with referrers, against the in-memory store that counts every call: what is found at
// the source (fallback indexes, cosign tags, a signature of an SBOM), what reaches a target without the
// referrers API (fallback indexes, byte-exact) and one with it (no fallback tags), push order, exact
// request counts of a no-op run, filters, merging with what a target holds, and concurrent writers.

import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { type CopyContext, copyImage, type ImageOptions } from '../../src/copy/copy-image.js';
import type { CopyEvent } from '../../src/copy/events.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { ReferrerRun } from '../../src/copy/referrer-run.js';
import { RegistryError } from '../../src/errors.js';
import { digestOf } from '../../src/oci/digest.js';
import { type Descriptor, parseManifest } from '../../src/oci/manifest.js';
import { OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseReference, type Reference, type Repository, withTag } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { MemoryStore } from './memory-store.js';

// ---- content, built by hand (the test oracle: no code under test makes these bytes) -----------------

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 3));

interface Content {
  bytes: Uint8Array;
  desc: Descriptor;
}
interface Node extends Content {
  blobs: Content[];
  children: Node[];
}

const content = (mediaType: string, bytes: Uint8Array): Content => ({
  bytes,
  desc: { mediaType, digest: digestOf(bytes), size: bytes.byteLength },
});
const EMPTY = content(OCI_EMPTY, new TextEncoder().encode('{}'));

function manifest(doc: Record<string, unknown>, blobs: Content[]): Node {
  return {
    ...content(OCI_MANIFEST, enc({ schemaVersion: 2, mediaType: OCI_MANIFEST, ...doc })),
    blobs,
    children: [],
  };
}

function platformImage(arch: string): Node {
  const config = content(OCI_CONFIG, enc({ architecture: arch, os: 'linux' }));
  const layer = content('application/vnd.oci.image.layer.v1.tar', enc({ layer: arch }));
  return manifest({ config: config.desc, layers: [layer.desc] }, [config, layer]);
}

function multiArch(): { root: Node; amd64: Node; arm64: Node } {
  const amd64 = platformImage('amd64');
  const arm64 = platformImage('arm64');
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...amd64.desc, platform: { architecture: 'amd64', os: 'linux' } },
      { ...arm64.desc, platform: { architecture: 'arm64', os: 'linux' } },
    ],
  };
  return { root: { ...content(OCI_INDEX, enc(doc)), blobs: [], children: [amd64, arm64] }, amd64, arm64 };
}

/** An OCI 1.1 artifact referring to `subject`; with the spec's descriptor for a referrers list. */
function artifact(subject: Content, artifactType: string, text: string): Node & { listed: Descriptor } {
  const payload = content(artifactType, new TextEncoder().encode(text));
  const annotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'test.what': text };
  const node = manifest(
    { artifactType, config: EMPTY.desc, layers: [payload.desc], subject: subject.desc, annotations },
    [EMPTY, payload],
  );
  return { ...node, listed: { ...node.desc, artifactType, annotations } };
}

/** A cosign signature manifest (no subject: found by its tag sha256-<hex>.sig). */
function cosignSignature(subject: Content, seed: string): Node {
  const payload = content(
    'application/vnd.dev.cosign.simplesigning.v1+json',
    enc({ critical: { image: { 'docker-manifest-digest': subject.desc.digest } }, seed }),
  );
  const config = content(OCI_CONFIG, enc({ rootfs: { type: 'layers', diff_ids: [payload.desc.digest] } }));
  return manifest(
    {
      config: config.desc,
      layers: [{ ...payload.desc, annotations: { 'dev.cosignproject.cosign/signature': `sig-${seed}` } }],
    },
    [config, payload],
  );
}

const fallbackTag = (c: Content) => c.desc.digest.replace(':', '-');
const sigTag = (c: Content) => `${fallbackTag(c)}.sig`;
/** A fallback index as another client (oras) writes it: indented, so re-serialising would show. */
const fallbackIndex = (listed: Descriptor[]) =>
  enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: listed });

function manifestsOf(node: Node): Node[] {
  return [...node.children.flatMap(manifestsOf), node];
}

function put(store: MemoryStore, repo: Repository, node: Node, tag?: string): void {
  for (const m of manifestsOf(node)) {
    for (const b of m.blobs) store.putBlob(repo, b.bytes);
    store.putManifest(repo, m.bytes, m.desc.mediaType, m === node ? tag : undefined);
  }
}

// ---- the scene ----------------------------------------------------------------------------------

const ref = (s: string): Reference => parseReference(s);
const SOURCE = ref('src.example/team/app:1.0');
/** a.example has no referrers API (like distribution 2.8, GHCR); b.example has it (answers OCI-Subject). */
const TAG_SCHEMA = ref('a.example/mirror/app:1.0');
const API = ref('b.example/mirror/app:1.0');

interface Scene {
  store: MemoryStore;
  image: ReturnType<typeof multiArch>;
  sbom: ReturnType<typeof artifact>;
  intoto: ReturnType<typeof artifact>;
  /** A Notation signature of the SBOM: a referrer of a referrer. */
  sbomSig: ReturnType<typeof artifact>;
  /** cosign's signature of the index. */
  sig: Node;
}

/**
 * The source: a two-platform index; an SPDX SBOM of the index and an in-toto attestation of the amd64
 * image, listed in fallback indexes (distribution 2.8 has no referrers API); a Notation signature of the
 * SBOM, listed in the SBOM's fallback index; a cosign signature of the index under sha256-<hex>.sig.
 */
function scene(): Scene {
  const store = new MemoryStore();
  store.referrersApiRegistries.add('b.example');
  const image = multiArch();
  const sbom = artifact(image.root, 'application/spdx+json', 'sbom');
  const intoto = artifact(image.amd64, 'application/vnd.in-toto+json', 'provenance');
  const sbomSig = artifact(sbom, 'application/vnd.cncf.notary.signature', 'notation');
  const sig = cosignSignature(image.root, 'index');
  put(store, SOURCE, image.root, '1.0');
  for (const a of [sbom, intoto, sbomSig]) put(store, SOURCE, a);
  put(store, SOURCE, sig, sigTag(image.root));
  store.putManifest(SOURCE, fallbackIndex([sbom.listed]), OCI_INDEX, fallbackTag(image.root));
  store.putManifest(SOURCE, fallbackIndex([intoto.listed]), OCI_INDEX, fallbackTag(image.amd64));
  store.putManifest(SOURCE, fallbackIndex([sbomSig.listed]), OCI_INDEX, fallbackTag(sbom));
  return { store, image, sbom, intoto, sbomSig, sig };
}

const ALL: ImageOptions = { referrers: { cosignTags: true } };

function context(store: MemoryStore, run = new ReferrerRun()): CopyContext & { events: CopyEvent[] } {
  const events: CopyEvent[] = [];
  return {
    store,
    knowledge: new BlobKnowledge(),
    transfers: createLimiter(4),
    onEvent: (e) => events.push(e),
    referrerRun: run,
    events,
  };
}

const bytesAt = (s: MemoryStore, r: Repository, sel: string) => {
  const b = s.manifestBytes(r, sel);
  return b && Buffer.from(b);
};

/** The digests a target's referrers list holds for `subject` (the fallback index, or the API). */
async function listedAt(s: MemoryStore, r: Repository, subject: Content): Promise<string[]> {
  if (s.referrersApiRegistries.has(r.registry)) {
    const answer = await s.referrers(r, subject.desc.digest);
    return answer.api ? answer.descriptors.map((d) => d.digest).sort() : [];
  }
  const b = s.manifestBytes(r, fallbackTag(subject));
  if (!b) return [];
  const m = parseManifest(b);
  return m.kind === 'index' ? m.manifests.map((d) => d.digest).sort() : [];
}

// ---- tests --------------------------------------------------------------------------------------

describe('copyImage with referrers', () => {
  let s: Scene;
  beforeEach(() => {
    s = scene();
  });

  it('brings every referrer, recursively, to a target with and one without the referrers API', async () => {
    const ctx = context(s.store);
    const result = await copyImage(SOURCE, [TAG_SCHEMA, API], ctx, ALL);
    assert.deepEqual(
      result.targets.map((t) => [t.status, t.referrersCopied]),
      [
        ['copied', 4],
        ['copied', 4],
      ],
    );
    for (const target of [TAG_SCHEMA, API]) {
      for (const m of [s.sbom, s.intoto, s.sbomSig]) {
        assert.deepEqual(
          bytesAt(s.store, target, m.desc.digest),
          Buffer.from(m.bytes),
          `${target.registry} ${m.desc.digest}`,
        );
        for (const b of m.blobs) assert.ok(s.store.blob(target, b.desc.digest), `${target.registry} blob`);
      }
      // cosign's tag keeps its name, and its bytes.
      assert.deepEqual(bytesAt(s.store, target, sigTag(s.image.root)), Buffer.from(s.sig.bytes));
      assert.deepEqual(await listedAt(s.store, target, s.image.root), [s.sbom.desc.digest]);
      assert.deepEqual(await listedAt(s.store, target, s.image.amd64), [s.intoto.desc.digest]);
      assert.deepEqual(await listedAt(s.store, target, s.sbom), [s.sbomSig.desc.digest]);
    }
    // Without the API: the source's own fallback indexes, byte for byte (same digests at both ends).
    for (const subject of [s.image.root, s.image.amd64, s.sbom]) {
      assert.deepEqual(
        bytesAt(s.store, TAG_SCHEMA, fallbackTag(subject)),
        bytesAt(s.store, SOURCE, fallbackTag(subject)),
      );
    }
    // With the API: no fallback tag at all.
    for (const subject of [s.image.root, s.image.amd64, s.sbom]) {
      assert.equal(s.store.manifestBytes(API, fallbackTag(subject)), undefined);
    }
    // Each referrer manifest read once from the source, whatever the number of targets.
    for (const m of [s.sbom, s.intoto, s.sbomSig, s.sig]) {
      assert.equal(
        s.store.log(['manifestGet'], 'src.example').filter((c) => c.detail === m.desc.digest).length,
        1,
      );
    }
  });

  it('pushes each referrer after its subject, lists it after pushing it, and the tag last', async () => {
    await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), ALL);
    for (const target of [TAG_SCHEMA, API]) {
      const puts = s.store.log(['manifestPut'], target.registry).map((c) => c.detail);
      const at = (sel: string) => {
        const i = puts.indexOf(sel);
        assert.ok(i >= 0, `${target.registry}: ${sel} was not pushed`);
        return i;
      };
      const root = at(s.image.root.desc.digest);
      assert.ok(at(s.image.amd64.desc.digest) < root && at(s.image.arm64.desc.digest) < root);
      for (const r of [s.sbom, s.intoto, s.sig])
        assert.ok(root < at(r === s.sig ? sigTag(s.image.root) : r.desc.digest));
      assert.ok(at(s.sbom.desc.digest) < at(s.sbomSig.desc.digest), 'the SBOM before its signature');
      if (target === TAG_SCHEMA) {
        assert.ok(at(s.sbomSig.desc.digest) < at(fallbackTag(s.sbom)));
        assert.ok(at(s.sbom.desc.digest) < at(fallbackTag(s.image.root)));
      }
      assert.equal(puts.at(-1), '1.0', `${target.registry}: the tag is not last`);
      assert.equal(puts.filter((p) => p === '1.0').length, 1);
    }
  });

  it('a no-op run: exact requests per side (the tag HEAD of before, then only where referrers are)', async () => {
    await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), ALL);
    s.store.resetCalls();
    s.store.forgetReferrersModes();
    const ctx = context(s.store);
    const again = await copyImage(SOURCE, [TAG_SCHEMA, API], ctx, ALL);
    assert.deepEqual(
      again.targets.map((t) => [t.status, t.referrersCopied]),
      [
        ['up-to-date', 0],
        ['up-to-date', 0],
      ],
    );
    assert.equal(ctx.events.filter((e) => e.type === 'target-up-to-date').length, 2);
    const ops = (registry: string) => {
      const out: Record<string, number> = {};
      for (const c of s.store.calls.filter((c) => c.registry === registry)) out[c.op] = (out[c.op] ?? 0) + 1;
      return out;
    };
    // Source: the tag HEAD (as without referrers); one referrers probe (404: no API, learned for the run);
    // the tag list; the index (its children's digests); the fallback indexes of the three manifests that
    // have one (index, amd64, SBOM); a HEAD of the one cosign tag. 7 manifests (3 of the image, 4
    // referrers): 8 requests beyond the tag HEAD, within 2 per manifest.
    assert.deepEqual(ops('src.example'), { manifestHead: 2, referrers: 1, tagList: 1, manifestGet: 4 });
    // Target without the API: tag HEAD; probe; tag list; the three fallback indexes; the cosign tag HEAD.
    assert.deepEqual(ops('a.example'), { manifestHead: 2, referrers: 1, tagList: 1, manifestGet: 3 });
    // Target with the API: tag HEAD; one referrers request per subject with referrers (3); the tag list and
    // the HEAD for cosign's tag.
    assert.deepEqual(ops('b.example'), { manifestHead: 2, referrers: 3, tagList: 1 });
    for (const op of ['blobGet', 'blobHead', 'uploadStart', 'manifestPut'] as const)
      assert.equal(s.store.count(op), 0, op);
  });

  it('an image without referrers in a repository without referrer tags costs a probe and the tag list', async () => {
    const store = new MemoryStore();
    const image = multiArch();
    put(store, SOURCE, image.root, '1.0');
    await copyImage(SOURCE, [TAG_SCHEMA], context(store), ALL);
    store.resetCalls();
    store.forgetReferrersModes();
    await copyImage(SOURCE, [TAG_SCHEMA], context(store), ALL);
    // No manifest GET at all: the tag list shows no manifest of this repository has referrers.
    assert.deepEqual(store.calls.map((c) => `${c.registry} ${c.op}`).sort(), [
      'a.example manifestHead',
      'src.example manifestHead',
      'src.example referrers',
      'src.example tagList',
    ]);
  });

  it('referrers off: no referrer is copied and no referrer request made', async () => {
    const result = await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), {});
    assert.deepEqual(
      result.targets.map((t) => [t.status, t.referrersCopied]),
      [
        ['copied', 0],
        ['copied', 0],
      ],
    );
    assert.equal(s.store.count('referrers'), 0);
    assert.equal(s.store.count('tagList'), 0);
    assert.deepEqual(
      s.store.log(['manifestGet', 'manifestHead']).filter((c) => c.detail.startsWith('sha256-')),
      [],
    );
    for (const target of [TAG_SCHEMA, API]) {
      assert.equal(s.store.manifestBytes(target, s.sbom.desc.digest), undefined);
      assert.equal(s.store.manifestBytes(target, sigTag(s.image.root)), undefined);
    }
  });

  it('artifactTypes keeps only those types; cosignTags false leaves cosign tags', async () => {
    const result = await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), {
      referrers: { artifactTypes: ['application/spdx+json'], cosignTags: false },
    });
    for (const [i, target] of [TAG_SCHEMA, API].entries()) {
      assert.deepEqual(
        result.targets[i]!.referrers?.map((r) => r.digest),
        [s.sbom.desc.digest],
      );
      assert.ok(s.store.manifestBytes(target, s.sbom.desc.digest));
      for (const other of [s.intoto, s.sbomSig, s.sig])
        assert.equal(s.store.manifestBytes(target, other.desc.digest), undefined);
      assert.equal(s.store.manifestBytes(target, sigTag(s.image.root)), undefined);
    }
    // The filter kept the whole of the index's fallback list: still the source's bytes.
    assert.deepEqual(
      bytesAt(s.store, TAG_SCHEMA, fallbackTag(s.image.root)),
      bytesAt(s.store, SOURCE, fallbackTag(s.image.root)),
    );
    // exclude: everything but in-toto.
    const s2 = scene();
    await copyImage(SOURCE, [TAG_SCHEMA], context(s2.store), {
      referrers: { exclude: ['application/vnd.in-toto*'], cosignTags: true },
    });
    assert.equal(s2.store.manifestBytes(TAG_SCHEMA, s2.intoto.desc.digest), undefined);
    assert.ok(s2.store.manifestBytes(TAG_SCHEMA, s2.sbomSig.desc.digest));
    assert.ok(s2.store.manifestBytes(TAG_SCHEMA, sigTag(s2.image.root)));
  });

  it('merges into a fallback index the target already has: its entry kept, ours added', async () => {
    const theirs = artifact(s.image.root, 'application/vnd.example.theirs', 'theirs');
    put(s.store, TAG_SCHEMA, theirs);
    s.store.putManifest(TAG_SCHEMA, fallbackIndex([theirs.listed]), OCI_INDEX, fallbackTag(s.image.root));
    const ctx = context(s.store);
    await copyImage(SOURCE, [TAG_SCHEMA], ctx, ALL);
    const index = parseManifest(s.store.manifestBytes(TAG_SCHEMA, fallbackTag(s.image.root))!);
    assert.equal(index.kind, 'index');
    assert.deepEqual(index.kind === 'index' && index.manifests, [theirs.listed, s.sbom.listed]);
    const writes = ctx.events.filter(
      (e) => e.type === 'write' && e.action !== 'repository-create' && e.tag === fallbackTag(s.image.root),
    );
    assert.deepEqual(
      writes.map(
        (e) =>
          e.type === 'write' && e.action !== 'repository-create' && [e.action, e.subject, e.previousDigest],
      ),
      [['tag-move', s.image.root.desc.digest, digestOf(fallbackIndex([theirs.listed]))]],
    );
  });

  it('a signature added at the source for an unchanged tag: the next run copies it alone', async () => {
    await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), ALL);
    const late = cosignSignature(s.image.amd64, 'late');
    put(s.store, SOURCE, late, sigTag(s.image.amd64));
    s.store.resetCalls();
    const result = await copyImage(SOURCE, [TAG_SCHEMA, API], context(s.store), ALL);
    for (const [i, target] of [TAG_SCHEMA, API].entries()) {
      const t = result.targets[i]!;
      assert.deepEqual(
        [t.status, t.tagAction, t.manifestsPushed, t.referrersCopied],
        ['copied', 'none', 0, 1],
      );
      assert.deepEqual(t.referrers, [
        { digest: late.desc.digest, subject: s.image.amd64.desc.digest, tag: sigTag(s.image.amd64) },
      ]);
      assert.deepEqual(bytesAt(s.store, target, sigTag(s.image.amd64)), Buffer.from(late.bytes));
      // Only the new signature was written: its two blobs and its tag.
      assert.deepEqual(
        s.store.log(['manifestPut'], target.registry).map((c) => c.detail),
        [sigTag(s.image.amd64)],
      );
      assert.equal(s.store.count('finish', target.registry), 2);
    }
  });

  it('a referrer pushed by an interrupted run but not listed yet is listed, not pushed again', async () => {
    put(s.store, TAG_SCHEMA, s.image.root, '1.0');
    put(s.store, TAG_SCHEMA, s.sbom);
    const result = await copyImage(SOURCE, [TAG_SCHEMA], context(s.store), ALL);
    assert.equal(result.targets[0]!.status, 'copied');
    const puts = s.store.log(['manifestPut'], 'a.example').map((c) => c.detail);
    assert.ok(!puts.includes(s.sbom.desc.digest), 'the SBOM was pushed again');
    assert.deepEqual(await listedAt(s.store, TAG_SCHEMA, s.image.root), [s.sbom.desc.digest]);
  });

  it('a dry run lists the referrers it would copy and writes nothing', async () => {
    const result = await copyImage(SOURCE, [TAG_SCHEMA], context(s.store), { ...ALL, dryRun: true });
    const t = result.targets[0]!;
    assert.equal(t.status, 'planned');
    assert.equal(t.referrersCopied, 4);
    // Each after its subject, in the order of the image's manifests (children first), then one level down.
    assert.deepEqual(
      t.referrers?.map((r) => [r.digest, r.subject, r.artifactType, r.tag]),
      [
        [s.intoto.desc.digest, s.image.amd64.desc.digest, 'application/vnd.in-toto+json', undefined],
        [s.sbom.desc.digest, s.image.root.desc.digest, 'application/spdx+json', undefined],
        [s.sig.desc.digest, s.image.root.desc.digest, undefined, sigTag(s.image.root)],
        [s.sbomSig.desc.digest, s.sbom.desc.digest, 'application/vnd.cncf.notary.signature', undefined],
      ],
    );
    assert.equal(s.store.count('manifestPut') + s.store.count('uploadStart') + s.store.count('mount'), 0);
  });

  it('a registry refusing a referrer fails the target with what it was and how to leave it out; no tag', async () => {
    s.store.fault = (call) =>
      call.op === 'manifestPut' && call.detail === s.sbom.desc.digest
        ? new RegistryError('registry answered HTTP 400: MANIFEST_INVALID: unknown config media type', {
            status: 400,
            codes: ['MANIFEST_INVALID'],
            context: {
              registry: call.registry,
              repository: call.repository,
              step: `manifest PUT ${call.detail}`,
            },
          })
        : undefined;
    const result = await copyImage(SOURCE, [TAG_SCHEMA], context(s.store), ALL);
    const t = result.targets[0]!;
    assert.equal(t.status, 'failed');
    assert.match(
      t.error!,
      new RegExp(
        `MANIFEST_INVALID: unknown config media type; it was application/spdx\\+json ${s.sbom.desc.digest} of ${s.image.root.desc.digest}`,
      ),
    );
    assert.match(t.error!, /leave that artifact type out with "referrers": \{ "exclude": \[\.\.\.\] \}/);
    assert.equal(s.store.manifestBytes(TAG_SCHEMA, '1.0'), undefined, 'the tag was pushed without its SBOM');
  });

  it('refuses to overwrite a fallback tag that holds something other than an index; the tag is not pushed', async () => {
    const stranger = platformImage('s390x');
    put(s.store, TAG_SCHEMA, stranger, fallbackTag(s.image.root));
    const result = await copyImage(SOURCE, [TAG_SCHEMA], context(s.store), ALL);
    const t = result.targets[0]!;
    assert.equal(t.status, 'failed');
    assert.match(
      t.error!,
      /a\.example, repository mirror\/app, referrers index sha256-[0-9a-f]{64}: the tag sha256-[0-9a-f]{64} holds a application\/vnd\.oci\.image\.manifest\.v1\+json, not a referrers index/,
    );
    assert.match(t.error!, /remove that tag, or turn referrers off for this mirror/);
    assert.equal(s.store.manifestBytes(TAG_SCHEMA, '1.0'), undefined);
    assert.deepEqual(bytesAt(s.store, TAG_SCHEMA, fallbackTag(s.image.root)), Buffer.from(stranger.bytes));
  });
});

describe('fallback index writers that meet', () => {
  /** One image in two source repositories with a different referrer each, both mirrored to one target. */
  function twoSources() {
    const store = new MemoryStore();
    const image = multiArch();
    const one = ref('src.example/team/one:1.0');
    const two = ref('src.example/team/two:1.0');
    const sbom = artifact(image.root, 'application/spdx+json', 'sbom');
    const prov = artifact(image.root, 'application/vnd.in-toto+json', 'provenance');
    for (const [src, a] of [
      [one, sbom],
      [two, prov],
    ] as const) {
      put(store, src, image.root, '1.0');
      put(store, src, a);
      store.putManifest(src, fallbackIndex([a.listed]), OCI_INDEX, fallbackTag(image.root));
    }
    const target = ref('a.example/mirror/shared:1.0');
    return { store, image, one, two, sbom, prov, target };
  }

  it('two images of one run writing the same fallback tag take turns: both entries kept', async () => {
    const { store, image, one, two, sbom, prov, target } = twoSources();
    const run = new ReferrerRun();
    await Promise.all([
      copyImage(one, [target], context(store, run), ALL),
      copyImage(two, [withTag(target, '2.0')], context(store, run), ALL),
    ]);
    assert.deepEqual(await listedAt(store, target, image.root), [sbom.desc.digest, prov.desc.digest].sort());
    // One after the other: the second read what the first wrote, so two writes, none lost and redone.
    const writes = store
      .log(['manifestPut'], 'a.example')
      .filter((c) => c.detail === fallbackTag(image.root));
    assert.equal(writes.length, 2);
  });

  it('two runs (separate processes) writing it at once: the read-back after each write keeps both', async () => {
    const { store, image, one, two, sbom, prov, target } = twoSources();
    await Promise.all([
      copyImage(one, [target], context(store, new ReferrerRun()), ALL),
      copyImage(two, [withTag(target, '2.0')], context(store, new ReferrerRun()), ALL),
    ]);
    assert.deepEqual(await listedAt(store, target, image.root), [sbom.desc.digest, prov.desc.digest].sort());
  });
});
