// The copy engine (copyImage) against an in-memory store that counts every call: exact request numbers,
// children before parents, one source read per blob, mounts on the same registry, partial failures.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitCodeFor } from '../../src/cli/commands/copy.js';
import { type CopyContext, copyImage } from '../../src/copy/copy-image.js';
import type { CopyEvent } from '../../src/copy/events.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { NetworkError, PermissionError, UploadInterruptedError } from '../../src/errors.js';
import { type Digest, digestOf } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseReference, type Reference, type Repository } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { type Call, MemoryStore } from './memory-store.js';

// ---- test content, built by hand -----------------------------------------------------------------

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const IN_TOTO = 'application/vnd.in-toto+json';

interface Content {
  bytes: Uint8Array;
  desc: Descriptor;
}

interface Node extends Content {
  blobs: Content[];
  children: Node[];
}

/** Deterministic bytes: `size` bytes that differ with `seed`. */
function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

function content(mediaType: string, bytes: Uint8Array): Content {
  return { bytes, desc: { mediaType, digest: digestOf(bytes), size: bytes.byteLength } };
}

const text = (mediaType: string, s: string) => content(mediaType, new TextEncoder().encode(s));
const layer = (size: number, seed: number) => content(LAYER, bytesOf(size, seed));

/** An image manifest, serialised with a 3-space indent so re-serialising would change the digest. */
function image(config: Content, layers: Content[], extra: Record<string, unknown> = {}): Node {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: config.desc,
    layers: layers.map((l) => l.desc),
    ...extra,
  };
  const c = content(OCI_MANIFEST, new TextEncoder().encode(JSON.stringify(doc, null, 3)));
  return { ...c, blobs: [config, ...layers], children: [] };
}

function index(children: { node: Node; platform?: object; annotations?: Record<string, string> }[]): Node {
  const manifests = children.map((c) => ({
    ...c.node.desc,
    ...(c.platform ? { platform: c.platform } : {}),
    ...(c.annotations ? { annotations: c.annotations } : {}),
  }));
  const doc = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  const c = content(OCI_INDEX, new TextEncoder().encode(JSON.stringify(doc, null, 3)));
  return { ...c, blobs: [], children: children.map((x) => x.node) };
}

/** Every manifest below and including `node`, children first. */
function manifestsOf(node: Node): Node[] {
  return [...node.children.flatMap(manifestsOf), node];
}

/** Every distinct blob below `node`. */
function blobsOf(node: Node): Content[] {
  const seen = new Map<Digest, Content>();
  for (const m of manifestsOf(node))
    for (const b of m.blobs) if (!seen.has(b.desc.digest)) seen.set(b.desc.digest, b);
  return [...seen.values()];
}

/** Store `node` and everything below it in a repository, the root under `tag`. */
function seed(store: MemoryStore, repo: Repository, node: Node, tag?: string): void {
  for (const b of blobsOf(node)) store.putBlob(repo, b.bytes);
  for (const m of manifestsOf(node))
    store.putManifest(repo, m.bytes, m.desc.mediaType, m === node ? tag : undefined);
}

/**
 * A two-platform index with buildx-style attestations: 8 distinct blobs (one layer shared by both
 * platforms, one config shared by both attestations), 5 manifests.
 */
function multiPlatform() {
  const configAmd = text(OCI_CONFIG, '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}');
  const configArm = text(OCI_CONFIG, '{"architecture":"arm64","os":"linux","variant":"v8"}');
  const shared = layer(3000, 1);
  const onlyAmd = layer(2000, 2);
  const onlyArm = layer(2500, 3);
  const attConfig = text(OCI_CONFIG, '{"architecture":"unknown","os":"unknown"}');
  const provAmd = text(IN_TOTO, '{"predicateType":"https://slsa.dev/provenance/v0.2","for":"amd64"}');
  const provArm = text(IN_TOTO, '{"predicateType":"https://slsa.dev/provenance/v0.2","for":"arm64"}');
  const amd64 = image(configAmd, [shared, onlyAmd]);
  const arm64 = image(configArm, [shared, onlyArm]);
  const attAmd = image(attConfig, [provAmd]);
  const attArm = image(attConfig, [provArm]);
  const attestation = (of: Node) => ({
    node: of === amd64 ? attAmd : attArm,
    platform: { architecture: 'unknown', os: 'unknown' },
    annotations: {
      'vnd.docker.reference.digest': of.desc.digest,
      'vnd.docker.reference.type': 'attestation-manifest',
    },
  });
  const root = index([
    { node: amd64, platform: { architecture: 'amd64', os: 'linux' } },
    { node: arm64, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    attestation(amd64),
    attestation(arm64),
  ]);
  return {
    root,
    amd64,
    arm64,
    attAmd,
    attArm,
    configAmd,
    configArm,
    shared,
    onlyAmd,
    onlyArm,
    attConfig,
    provAmd,
    provArm,
  };
}

// ---- helpers ------------------------------------------------------------------------------------

const ref = (s: string): Reference => parseReference(s);

function context(
  store: MemoryStore,
  options: { knowledge?: BlobKnowledge; chunkSize?: (registry: string) => number; transfers?: number } = {},
): CopyContext & { events: CopyEvent[] } {
  const events: CopyEvent[] = [];
  // A real registry's sessions carry their profile's chunk size; the memory store's take it from here.
  store.chunkSize = options.chunkSize ?? (() => 1 << 20);
  return {
    store,
    knowledge: options.knowledge ?? new BlobKnowledge(),
    transfers: createLimiter(options.transfers ?? 4),
    onEvent: (e) => events.push(e),
    events,
  };
}

/** How many times each detail occurs among `calls`. */
function tally(calls: Call[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of calls) out.set(c.detail, (out.get(c.detail) ?? 0) + 1);
  return out;
}

const sorted = (xs: Iterable<string>) => [...xs].sort();
const digests = (cs: Content[]) => sorted(cs.map((c) => c.desc.digest));

/** Byte equality, whatever the view type (Buffer or Uint8Array); undefined for absent content. */
function sameBytes(actual: Uint8Array | undefined, expected: Uint8Array | undefined, message?: string): void {
  assert.deepEqual(actual && Buffer.from(actual), expected && Buffer.from(expected), message);
}

/** The target holds exactly the source's bytes for every manifest and blob, and the tag. */
function assertSameContent(store: MemoryStore, target: Reference, node: Node): void {
  sameBytes(store.manifestBytes(target, target.tag!), node.bytes, `${target.registry}: tag bytes`);
  for (const m of manifestsOf(node)) {
    sameBytes(
      store.manifestBytes(target, m.desc.digest),
      m.bytes,
      `${target.registry}: manifest ${m.desc.digest}`,
    );
  }
  for (const b of blobsOf(node)) {
    sameBytes(store.blob(target, b.desc.digest), b.bytes, `${target.registry}: blob ${b.desc.digest}`);
  }
}

const SOURCE = ref('src.example/team/app:1.0');
const THREE = ['a.example/mirror/app:1.0', 'b.example/mirror/app:1.0', 'c.example/mirror/app:1.0'].map(ref);

// ---- tests --------------------------------------------------------------------------------------

describe('copyImage: fan-out of a multi-platform index', () => {
  it('reads each source blob once and gives every target registry every blob once, children first', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const ctx = context(store, { transfers: 2 });

    const result = await copyImage(SOURCE, THREE, ctx);

    assert.equal(result.error, undefined);
    assert.equal(result.digest, img.root.desc.digest);
    assert.equal(result.mediaType, OCI_INDEX);
    const allBlobs = blobsOf(img.root);
    const totalBytes = allBlobs.reduce((n, b) => n + b.desc.size, 0);
    assert.equal(allBlobs.length, 8);
    for (const t of result.targets) {
      assert.deepEqual(
        {
          status: t.status,
          digest: t.digest,
          up: t.blobsUploaded,
          mounted: t.blobsMounted,
          existing: t.blobsExisting,
        },
        { status: 'copied', digest: img.root.desc.digest, up: 8, mounted: 0, existing: 0 },
        t.target,
      );
      assert.equal(t.bytesUploaded, totalBytes);
      assert.equal(t.manifestsPushed, 5);
    }

    // Source: one HEAD, five manifest GETs (root by digest + 4 children), each blob GET exactly once.
    assert.equal(store.count('manifestHead', 'src.example'), 1);
    assert.equal(store.count('manifestGet', 'src.example'), 5);
    const gets = tally(store.log(['blobGet']));
    assert.deepEqual(sorted(gets.keys()), digests(allBlobs));
    assert.ok(
      [...gets.values()].every((n) => n === 1),
      'a blob was fetched twice',
    );
    for (const op of ['uploadStart', 'mount', 'manifestPut', 'blobHead'] as const) {
      assert.equal(store.count(op, 'src.example'), 0, `source ${op}`);
    }
    // transfers = 2: never more than two blob streams open at once.
    assert.ok(store.maxOpenStreams <= 2, `max open streams ${store.maxOpenStreams}`);

    for (const target of THREE) {
      const reg = target.registry;
      // HEAD tag, HEAD 5 manifests by digest, HEAD 8 blobs.
      assert.equal(store.count('manifestHead', reg), 6, `${reg} manifestHead`);
      assert.equal(store.count('blobHead', reg), 8, `${reg} blobHead`);
      assert.equal(store.count('manifestGet', reg), 0);
      assert.equal(store.count('blobGet', reg), 0);
      // Every blob uploaded once, in one PUT each (chunk size 1 MiB > every blob).
      assert.equal(store.count('uploadStart', reg), 8, `${reg} uploadStart`);
      assert.equal(store.count('mount', reg), 0);
      assert.equal(store.count('patch', reg), 0);
      assert.equal(store.count('cancel', reg), 0);
      const finishes = tally(store.log(['finish'], reg));
      assert.deepEqual(sorted(finishes.keys()), digests(allBlobs));
      assert.ok([...finishes.values()].every((n) => n === 1));

      // Manifests: 4 children by digest, then the index under the tag, last; no blob after a manifest.
      const order = store.log(['finish', 'manifestPut'], reg);
      const puts = order.filter((c) => c.op === 'manifestPut').map((c) => c.detail);
      assert.equal(puts.length, 5);
      assert.deepEqual(sorted(puts.slice(0, 4)), sorted(img.root.children.map((c) => c.desc.digest)));
      assert.equal(puts[4], '1.0');
      const firstPut = order.findIndex((c) => c.op === 'manifestPut');
      assert.ok(
        order.slice(firstPut).every((c) => c.op === 'manifestPut'),
        `${reg}: a blob committed after a manifest`,
      );

      assertSameContent(store, target, img.root);
    }
  });

  it('emits one image-start/image-done, a blob-done per blob and target, a manifest-pushed per manifest', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const ctx = context(store);
    const result = await copyImage(SOURCE, THREE, ctx);

    const of = (type: CopyEvent['type']) => ctx.events.filter((e) => e.type === type);
    assert.equal(of('image-start').length, 1);
    assert.equal(of('image-done').length, 1);
    assert.equal(ctx.events.at(-1)?.type, 'image-done');
    assert.deepEqual(of('image-done')[0], { type: 'image-done', result });
    assert.equal(of('blob-start').length, 8);
    for (const e of of('blob-start')) assert.equal(e.type === 'blob-start' && e.uploads, 3);
    const done = of('blob-done');
    assert.equal(done.length, 24);
    assert.ok(done.every((e) => e.type === 'blob-done' && e.action === 'upload'));
    assert.equal(of('manifest-pushed').length, 15);
    const progress = of('blob-progress').reduce((n, e) => n + (e.type === 'blob-progress' ? e.bytes : 0), 0);
    assert.equal(
      progress,
      blobsOf(img.root).reduce((n, b) => n + b.desc.size, 0),
    );
  });

  it('does nothing but one HEAD per side on a second identical copy', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    await copyImage(SOURCE, THREE, context(store));
    store.resetCalls();

    const ctx = context(store);
    const again = await copyImage(SOURCE, THREE, ctx);

    assert.deepEqual(
      again.targets.map((t) => [t.status, t.digest]),
      THREE.map(() => ['up-to-date', img.root.desc.digest]),
    );
    assert.equal(store.count('blobGet'), 0);
    assert.equal(store.count('uploadStart') + store.count('mount') + store.count('finish'), 0);
    assert.equal(store.count('manifestPut'), 0);
    assert.equal(store.count('manifestGet'), 0);
    assert.equal(store.count('blobHead'), 0);
    for (const reg of ['src.example', 'a.example', 'b.example', 'c.example']) {
      assert.equal(store.count('manifestHead', reg), 1, reg);
    }
    assert.equal(store.calls.length, 4);
    assert.equal(ctx.events.filter((e) => e.type === 'target-up-to-date').length, 3);
    assert.equal(exitCodeFor([again]), 0);
  });

  it('copies only what is missing after one target fell behind', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    // b.example already has the whole image and the tag; a and c have nothing.
    seed(store, THREE[1]!, img.root, '1.0');
    const ctx = context(store);
    const result = await copyImage(SOURCE, THREE, ctx);
    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'up-to-date', 'copied'],
    );
    assert.equal(store.count('blobGet'), 8);
    assert.equal(store.count('blobGet', 'b.example') + store.count('uploadStart', 'b.example'), 0);
    assert.equal(store.count('manifestHead', 'b.example'), 1);
    // One GET per blob feeds the two targets that need it.
    const starts = ctx.events.filter((e) => e.type === 'blob-start');
    assert.equal(starts.length, 8);
    assert.ok(starts.every((e) => e.type === 'blob-start' && e.uploads === 2));
  });
});

describe('copyImage: mounts', () => {
  const small = () => image(text(OCI_CONFIG, '{"os":"linux"}'), [layer(1000, 10), layer(1500, 11)]);

  it('uploads once and mounts for the second target on the same registry', async () => {
    const img = small();
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const targets = [ref('a.example/one/app:1.0'), ref('a.example/two/app:1.0')];
    const result = await copyImage(SOURCE, targets, context(store));

    assert.deepEqual(
      result.targets.map((t) => [t.status, t.blobsUploaded, t.blobsMounted]),
      [
        ['copied', 3, 0],
        ['copied', 0, 3],
      ],
    );
    assert.equal(store.count('blobGet'), 3);
    assert.equal(store.count('uploadStart', 'a.example'), 3);
    assert.equal(store.count('finish', 'a.example'), 3);
    const mounts = store.log(['mount'], 'a.example');
    assert.equal(mounts.length, 3);
    assert.ok(mounts.every((m) => m.repository === 'two/app' && m.detail.endsWith(' from one/app')));
    assert.equal(store.count('cancel'), 0);
    for (const t of targets) assertSameContent(store, t, img);
  });

  it('mounts from the source repository when the target is on the source registry', async () => {
    const img = small();
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const target = ref('src.example/mirror/app:1.0');
    const result = await copyImage(SOURCE, [target], context(store));

    assert.equal(result.targets[0]?.blobsMounted, 3);
    assert.equal(store.count('blobGet'), 0);
    assert.equal(store.count('uploadStart'), 0);
    assert.equal(store.log(['mount']).filter((m) => m.detail.endsWith(' from team/app')).length, 3);
    assertSameContent(store, target, img);
  });

  it('mounts the layers two images share when copied one after another with one BlobKnowledge', async () => {
    const shared1 = layer(4000, 20);
    const shared2 = layer(3000, 21);
    const first = image(text(OCI_CONFIG, '{"v":1}'), [shared1, shared2, layer(500, 22)]);
    const second = image(text(OCI_CONFIG, '{"v":2}'), [shared1, shared2, layer(600, 23)]);
    const store = new MemoryStore();
    const src1 = ref('src.example/team/one:1');
    const src2 = ref('src.example/team/two:1');
    seed(store, src1, first, '1');
    seed(store, src2, second, '1');
    const knowledge = new BlobKnowledge();

    await copyImage(src1, [ref('a.example/m/one:1')], context(store, { knowledge }));
    store.resetCalls();
    const result = await copyImage(src2, [ref('a.example/m/two:1')], context(store, { knowledge }));

    const t = result.targets[0]!;
    assert.deepEqual([t.status, t.blobsUploaded, t.blobsMounted, t.blobsExisting], ['copied', 2, 2, 0]);
    const mounts = store.log(['mount']);
    assert.deepEqual(
      sorted(mounts.map((m) => m.detail)),
      sorted([shared1, shared2].map((l) => `${l.desc.digest} from m/one`)),
    );
    assert.equal(store.count('uploadStart'), 2);
    assert.deepEqual(
      sorted(store.log(['blobGet']).map((c) => c.detail)),
      digests(second.blobs.filter((b) => b !== shared1 && b !== shared2)),
    );
    assertSameContent(store, ref('a.example/m/two:1'), second);
  });

  it('uploads shared layers again without that knowledge (the mounts come from the run, not a HEAD)', async () => {
    const shared = layer(4000, 30);
    const first = image(text(OCI_CONFIG, '{"v":1}'), [shared]);
    const second = image(text(OCI_CONFIG, '{"v":2}'), [shared]);
    const store = new MemoryStore();
    seed(store, ref('src.example/team/one:1'), first, '1');
    seed(store, ref('src.example/team/two:1'), second, '1');
    await copyImage(ref('src.example/team/one:1'), [ref('a.example/m/one:1')], context(store));
    store.resetCalls();
    await copyImage(ref('src.example/team/two:1'), [ref('a.example/m/two:1')], context(store));
    assert.equal(store.count('mount'), 0);
    assert.equal(store.count('uploadStart'), 2);
  });

  it('sends a layer shared by two images copied at the same time only once to a registry', async () => {
    const shared = layer(50_000, 40);
    const first = image(text(OCI_CONFIG, '{"v":1}'), [shared]);
    const second = image(text(OCI_CONFIG, '{"v":2}'), [shared]);
    const store = new MemoryStore();
    store.blobPieceSize = 4096;
    seed(store, ref('src.example/team/one:1'), first, '1');
    seed(store, ref('src.example/team/two:1'), second, '1');
    const knowledge = new BlobKnowledge();

    const results = await Promise.all([
      copyImage(ref('src.example/team/one:1'), [ref('a.example/m/one:1')], context(store, { knowledge })),
      copyImage(ref('src.example/team/two:1'), [ref('a.example/m/two:1')], context(store, { knowledge })),
    ]);

    assert.deepEqual(
      results.map((r) => r.targets[0]?.status),
      ['copied', 'copied'],
    );
    const sharedGets = store.log(['blobGet']).filter((c) => c.detail === shared.desc.digest);
    assert.equal(sharedGets.length, 1, 'the shared layer was read from the source twice');
    assert.equal(store.log(['finish']).filter((c) => c.detail === shared.desc.digest).length, 1);
  });

  it('falls back to an upload when the registry declines a mount, and cancels the session it opened', async () => {
    const img = small();
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const knowledge = new BlobKnowledge();
    // The run believes a.example/elsewhere has the blobs; the registry does not (202 + a session).
    for (const b of img.blobs) knowledge.markPresent('a.example', 'elsewhere', b.desc.digest);
    const target = ref('a.example/m/app:1.0');
    const result = await copyImage(SOURCE, [target], context(store, { knowledge }));

    assert.deepEqual([result.targets[0]?.status, result.targets[0]?.blobsUploaded], ['copied', 3]);
    assert.equal(store.count('mount'), 3);
    assert.equal(store.count('cancel'), 3);
    assert.equal(store.count('uploadStart'), 3);
    assertSameContent(store, target, img);
  });
});

describe('copyImage: a mount the registry refuses (Harbor: 401 when the robot cannot read the from project)', () => {
  it('uploads instead, and asks for no more mounts from that repository in the run', async () => {
    const shared1 = layer(4000, 50);
    const shared2 = layer(3000, 51);
    const first = image(text(OCI_CONFIG, '{"v":1}'), [shared1, shared2]);
    const second = image(text(OCI_CONFIG, '{"v":2}'), [shared1, shared2, layer(700, 52)]);
    const store = new MemoryStore();
    const src1 = ref('src.example/team/one:1');
    const src2 = ref('src.example/team/two:1');
    seed(store, src1, first, '1');
    seed(store, src2, second, '1');
    store.fault = (call) =>
      call.op === 'mount' && call.detail.endsWith(' from proja/one')
        ? new PermissionError('access denied: the credentials were not granted proja/one:pull')
        : undefined;
    const knowledge = new BlobKnowledge();

    const one = await copyImage(
      src1,
      [ref('h.example/proja/one:1'), ref('h.example/projb/one:1')],
      context(store, { knowledge }),
    );
    assert.deepEqual(
      one.targets.map((t) => [t.status, t.blobsUploaded, t.blobsMounted]),
      [
        ['copied', 3, 0],
        ['copied', 3, 0],
      ],
    );
    // Each blob's mount was asked once and refused; nothing was asked twice.
    const refused = store.log(['mount']);
    assert.equal(refused.length, 3);
    assert.deepEqual(
      sorted(refused.map((m) => m.detail)),
      sorted(first.blobs.map((b) => `${b.desc.digest} from proja/one`)),
    );
    assertSameContent(store, ref('h.example/projb/one:1'), first);

    // A later image mounts the shared layers from the repository that allows it, never from proja/one.
    store.resetCalls();
    const two = await copyImage(src2, [ref('h.example/projc/two:1')], context(store, { knowledge }));
    assert.deepEqual(
      [two.targets[0]?.status, two.targets[0]?.blobsMounted, two.targets[0]?.blobsUploaded],
      ['copied', 2, 2],
    );
    assert.deepEqual(
      sorted(store.log(['mount']).map((m) => m.detail)),
      sorted([shared1, shared2].map((l) => `${l.desc.digest} from projb/one`)),
    );
    assertSameContent(store, ref('h.example/projc/two:1'), second);
  });

  it('a target whose leader is a refused mount source joins the same upload (one source read)', async () => {
    const img = small2();
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const knowledge = new BlobKnowledge();
    knowledge.refuseMountsFrom('h.example', 'proja/app');
    const targets = [ref('h.example/proja/app:1.0'), ref('h.example/projb/app:1.0')];
    const result = await copyImage(SOURCE, targets, context(store, { knowledge }));
    assert.deepEqual(
      result.targets.map((t) => [t.status, t.blobsUploaded, t.blobsMounted]),
      [
        ['copied', 3, 0],
        ['copied', 3, 0],
      ],
    );
    assert.equal(store.count('mount'), 0);
    assert.equal(store.count('blobGet'), 3, 'one source GET per blob feeds both uploads');
    for (const t of targets) assertSameContent(store, t, img);
  });
});

const small2 = () => image(text(OCI_CONFIG, '{"os":"linux","n":2}'), [layer(1000, 60), layer(1500, 61)]);

describe('copyImage: failures', () => {
  it('fails every target of a corrupt source blob, names the digest, and pushes no manifest', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const bad = img.onlyArm;
    // Same size, other bytes.
    store.putCorruptBlob(SOURCE, bad.desc.digest, bytesOf(bad.desc.size, 99));
    const targets = THREE.slice(0, 2);
    const result = await copyImage(SOURCE, targets, context(store));

    for (const t of result.targets) {
      assert.equal(t.status, 'failed', t.target);
      assert.equal(t.errorKind, 'digest-mismatch');
      assert.ok(t.error?.includes(bad.desc.digest), t.error);
    }
    assert.equal(store.count('manifestPut'), 0);
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === bad.desc.digest).length, 1);
    for (const t of targets) {
      assert.equal(store.blob(t, bad.desc.digest), undefined);
      assert.equal(store.log(['finish'], t.registry).filter((c) => c.detail === bad.desc.digest).length, 0);
      assert.equal(store.manifestBytes(t, '1.0'), undefined);
    }
    assert.ok(
      store.sessions.every((s) => s.state !== 'open'),
      'an upload session was left open',
    );
    assert.equal(exitCodeFor([result]), 1);
  });

  it('detects a source blob longer than its descriptor, after chunks were sent, and commits nothing of it', async () => {
    const big = layer(10_000, 50);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    store.blobPieceSize = 1000;
    seed(store, SOURCE, img, '1.0');
    store.putCorruptBlob(SOURCE, big.desc.digest, bytesOf(12_000, 50));
    const target = ref('a.example/m/app:1.0');
    const result = await copyImage(SOURCE, [target], context(store, { chunkSize: () => 4096 }));

    const t = result.targets[0]!;
    assert.equal(t.status, 'failed');
    assert.ok(t.error?.includes(big.desc.digest), t.error);
    assert.match(t.error ?? '', /the descriptor says 10000/);
    assert.ok(store.count('patch', 'a.example') >= 2, 'expected chunks before the mismatch was found');
    assert.equal(store.log(['finish']).filter((c) => c.detail === big.desc.digest).length, 0);
    assert.equal(store.blob(target, big.desc.digest), undefined);
    assert.equal(store.count('manifestPut'), 0);
  });

  it('keeps going for the other targets when one registry refuses uploads', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    store.fault = (c) =>
      c.op === 'uploadStart' && c.registry === 'b.example'
        ? new PermissionError('DENIED: requested access to the resource is denied', {
            context: { registry: 'b.example', repository: c.repository, step: 'upload start' },
          })
        : undefined;
    const result = await copyImage(SOURCE, THREE, context(store));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'failed', 'copied'],
    );
    const failed = result.targets[1]!;
    assert.equal(failed.errorKind, 'permission');
    assert.match(failed.error ?? '', /target registry b\.example.*DENIED/);
    assert.equal(store.count('manifestPut', 'b.example'), 0);
    assert.equal(store.count('blobGet'), 8);
    assertSameContent(store, THREE[0]!, img.root);
    assertSameContent(store, THREE[2]!, img.root);
    assert.equal(exitCodeFor([result]), 1);
  });

  it('asks a registry that refused an upload for no more of that image (one refusal, not one per blob)', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    store.fault = (c) =>
      c.op === 'uploadStart' && c.registry === 'b.example'
        ? new PermissionError('DENIED', { context: { registry: 'b.example', step: 'upload start' } })
        : undefined;
    const result = await copyImage(SOURCE, THREE, context(store, { transfers: 1 }));

    assert.equal(result.targets[1]!.errorKind, 'permission');
    assert.equal(store.count('uploadStart', 'b.example'), 1);
    assert.equal(store.count('mount', 'b.example'), 0);
    assertSameContent(store, THREE[0]!, img.root);
  });

  it('fails only the target whose PATCH fails mid-stream; the others commit from the same GET', async () => {
    const big = layer(20_000, 60);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    let patches = 0;
    store.fault = (c) =>
      c.op === 'patch' && c.registry === 'b.example' && ++patches === 2
        ? new Error('connection reset')
        : undefined;
    const targets = THREE;
    const result = await copyImage(SOURCE, targets, context(store, { chunkSize: () => 4096 }));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'failed', 'copied'],
    );
    assert.match(result.targets[1]?.error ?? '', /connection reset/);
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === big.desc.digest).length, 1);
    assert.equal(store.count('manifestPut', 'b.example'), 0);
    assert.equal(store.blob(targets[1]!, big.desc.digest), undefined);
    assertSameContent(store, targets[0]!, img);
    assertSameContent(store, targets[2]!, img);
  });

  it('starts a blob again (new GET, new session) for a target whose upload hit a transient fault', async () => {
    const big = layer(20_000, 61);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    let patches = 0;
    store.fault = (c) =>
      c.op === 'patch' && c.registry === 'b.example' && ++patches === 2
        ? new UploadInterruptedError('upload interrupted (the registry no longer knows the session)')
        : undefined;
    const result = await copyImage(SOURCE, THREE, context(store, { chunkSize: () => 4096 }));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'copied', 'copied'],
    );
    // One GET for the fan-out, one for the restart of b.example alone, which HEADs the blob first.
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === big.desc.digest).length, 2);
    assert.equal(store.log(['blobHead'], 'b.example').filter((c) => c.detail === big.desc.digest).length, 2);
    assert.equal(result.targets[1]!.blobsUploaded, 2);
    for (const t of THREE) assertSameContent(store, t, img);
  });

  it('gives up after three rounds of transient faults and fails only that target', async () => {
    const big = layer(20_000, 62);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    store.fault = (c) =>
      c.op === 'patch' && c.registry === 'b.example' ? new NetworkError('connection reset') : undefined;
    const result = await copyImage(SOURCE, THREE, context(store, { chunkSize: () => 4096 }));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'failed', 'copied'],
    );
    assert.equal(result.targets[1]!.errorKind, 'network');
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === big.desc.digest).length, 3);
    assert.equal(store.count('manifestPut', 'b.example'), 0);
  });

  it('reports a missing source as the image error, fails every target, and touches no target further', async () => {
    const store = new MemoryStore();
    const result = await copyImage(ref('src.example/team/app:nope'), THREE, context(store));
    assert.match(result.error ?? '', /tag "nope" not found/);
    assert.match(result.error ?? '', /source registry src\.example/);
    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['failed', 'failed', 'failed'],
    );
    for (const t of THREE) assert.equal(store.calls.filter((c) => c.registry === t.registry).length, 1);
    assert.equal(exitCodeFor([result]), 1);
  });

  it('fails every target when a source blob cannot be read, and pushes no manifest', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(100, 70)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    store.fault = (c) => (c.op === 'blobGet' ? new Error('storage backend unavailable') : undefined);
    const result = await copyImage(SOURCE, THREE.slice(0, 2), context(store));
    for (const t of result.targets) {
      assert.equal(t.status, 'failed');
      assert.match(t.error ?? '', /storage backend unavailable/);
    }
    assert.equal(store.count('manifestPut'), 0);
    assert.ok(store.sessions.every((s) => s.state === 'cancelled'));
  });

  it('fails one target whose tag HEAD fails and copies to the rest', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(100, 80)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    store.fault = (c) =>
      c.op === 'manifestHead' && c.registry === 'c.example' ? new PermissionError('unauthorized') : undefined;
    const result = await copyImage(SOURCE, THREE, context(store));
    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'copied', 'failed'],
    );
    assert.equal(store.calls.filter((c) => c.registry === 'c.example').length, 1);
  });
});

describe('copyImage: chunked uploads', () => {
  it('sends contiguous PATCHes of the target chunk size and commits the exact bytes', async () => {
    const big = layer(10_000, 90);
    const img = image(text(OCI_CONFIG, '{"chunked":true}'), [big]);
    const store = new MemoryStore();
    store.blobPieceSize = 1000; // source pieces do not line up with the chunks
    seed(store, SOURCE, img, '1.0');
    const chunked = ref('a.example/m/app:1.0');
    const whole = ref('b.example/m/app:1.0');
    const sizes: Record<string, number> = { 'a.example': 4096, 'b.example': 1 << 20 };
    const result = await copyImage(SOURCE, [chunked, whole], context(store, { chunkSize: (r) => sizes[r]! }));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'copied'],
    );
    const sessionFor = (registry: string, digest: Digest) =>
      store.sessions.find((s) => s.repository.registry === registry && s.committed === digest);

    const a = sessionFor('a.example', big.desc.digest)!;
    assert.deepEqual(a.ranges, ['0-4095', '4096-8191']);
    assert.equal(a.lastBytes, 10_000 - 8192);
    sameBytes(store.blob(chunked, big.desc.digest), big.bytes);
    assert.deepEqual(
      store.log(['patch'], 'a.example').map((c) => c.detail),
      ['0-4095', '4096-8191'],
    );

    const b = sessionFor('b.example', big.desc.digest)!;
    assert.deepEqual(b.ranges, []);
    assert.equal(b.lastBytes, 10_000);
    assert.equal(store.count('patch', 'b.example'), 0);
    assert.equal(store.count('finish', 'b.example'), 2);
    sameBytes(store.blob(whole, big.desc.digest), big.bytes);

    // The small config goes in one PUT even to the chunked target; one source GET per blob.
    const config = img.blobs[0]!;
    assert.deepEqual(sessionFor('a.example', config.desc.digest)?.ranges, []);
    assert.equal(store.count('blobGet'), 2);
  });

  it('sends a blob of exactly N chunks as N PATCHes and an empty closing PUT', async () => {
    const big = layer(8192, 91);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    store.blobPieceSize = 3000;
    seed(store, SOURCE, img, '1.0');
    const target = ref('a.example/m/app:1.0');
    await copyImage(SOURCE, [target], context(store, { chunkSize: () => 4096 }));
    const s = store.sessions.find((x) => x.committed === big.desc.digest)!;
    assert.deepEqual(s.ranges, ['0-4095', '4096-8191']);
    assert.equal(s.lastBytes, 0);
    sameBytes(store.blob(target, big.desc.digest), big.bytes);
  });

  it('sends a blob no larger than the chunk size in exactly one PUT and no PATCH', async () => {
    const big = layer(4096, 92);
    const img = image(text(OCI_CONFIG, '{}'), [big]);
    const store = new MemoryStore();
    store.blobPieceSize = 100;
    seed(store, SOURCE, img, '1.0');
    const target = ref('a.example/m/app:1.0');
    await copyImage(SOURCE, [target], context(store, { chunkSize: () => 4096 }));
    assert.equal(store.count('patch'), 0);
    assert.equal(store.log(['finish']).filter((c) => c.detail === big.desc.digest).length, 1);
    assert.equal(store.sessions.find((x) => x.committed === big.desc.digest)?.lastBytes, 4096);
    sameBytes(store.blob(target, big.desc.digest), big.bytes);
  });

  it('copies an empty blob', async () => {
    const empty = content(LAYER, new Uint8Array(0));
    const img = image(text(OCI_CONFIG, '{}'), [empty]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const target = ref('a.example/m/app:1.0');
    const result = await copyImage(SOURCE, [target], context(store, { chunkSize: () => 4096 }));
    assert.equal(result.targets[0]?.status, 'copied');
    sameBytes(store.blob(target, empty.desc.digest), new Uint8Array(0));
  });
});

describe('copyImage: what the target already has', () => {
  it('skips the blob HEADs below a child manifest the target already has', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const target = THREE[0]!;
    seed(store, target, img.amd64); // the amd64 image (and its blobs, among them the shared layer)
    const result = await copyImage(SOURCE, [target], context(store));

    const t = result.targets[0]!;
    assert.equal(t.status, 'copied');
    // HEAD tag, HEAD index and its 4 children; no manifest below amd64 to look at.
    assert.equal(store.count('manifestHead', 'a.example'), 6);
    const heads = store.log(['blobHead'], 'a.example').map((c) => c.detail);
    const below = [img.configArm, img.shared, img.onlyArm, img.attConfig, img.provAmd, img.provArm];
    assert.deepEqual(sorted(heads), digests(below));
    assert.ok(!heads.includes(img.configAmd.desc.digest) && !heads.includes(img.onlyAmd.desc.digest));
    // The shared layer was found by HEAD; the other 5 uploaded.
    assert.deepEqual([t.blobsExisting, t.blobsUploaded], [1, 5]);
    assert.equal(store.count('blobGet'), 5);
    const puts = store.log(['manifestPut'], 'a.example').map((c) => c.detail);
    assert.equal(puts.length, 4);
    assert.ok(!puts.includes(img.amd64.desc.digest));
    assert.equal(puts[3], '1.0');
    assertSameContent(store, target, img.root);
  });

  it('only tags when the target has the root manifest by digest', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const target = THREE[0]!;
    seed(store, target, img.root); // everything, but no tag
    const result = await copyImage(SOURCE, [target], context(store));

    assert.deepEqual([result.targets[0]?.status, result.targets[0]?.manifestsPushed], ['copied', 1]);
    assert.equal(store.count('manifestHead', 'a.example'), 2);
    assert.equal(store.count('blobHead'), 0);
    assert.equal(store.count('blobGet'), 0);
    assert.deepEqual(
      store.log(['manifestPut']).map((c) => c.detail),
      ['1.0'],
    );
    sameBytes(store.manifestBytes(target, '1.0'), img.root.bytes);
  });

  it('moves a tag that pointed elsewhere and reports the previous digest', async () => {
    const old = image(text(OCI_CONFIG, '{"old":true}'), [layer(10, 1)]);
    const img = image(text(OCI_CONFIG, '{"new":true}'), [layer(10, 2)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const target = THREE[0]!;
    seed(store, target, old, '1.0');
    const result = await copyImage(SOURCE, [target], context(store));
    assert.deepEqual(
      [result.targets[0]?.status, result.targets[0]?.previousDigest, result.targets[0]?.digest],
      ['copied', old.desc.digest, img.desc.digest],
    );
    sameBytes(store.manifestBytes(target, '1.0'), img.bytes);
  });

  it('pushes a digest-only copy without a tag', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(10, 3)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const source = ref(`src.example/team/app@${img.desc.digest}`);
    const target = ref(`a.example/m/app@${img.desc.digest}`);
    const result = await copyImage(source, [target], context(store));
    assert.equal(result.targets[0]?.status, 'copied');
    assert.deepEqual(
      store.log(['manifestPut']).map((c) => c.detail),
      [img.desc.digest],
    );
  });

  it('copies two tags of one target repository with a single upload per blob', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(1000, 4), layer(2000, 5)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const targets = [ref('a.example/m/app:1.0'), ref('a.example/m/app:latest')];
    const result = await copyImage(SOURCE, targets, context(store));
    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'copied'],
    );
    assert.equal(store.count('finish'), 3);
    assert.equal(store.count('blobGet'), 3);
    sameBytes(store.manifestBytes(targets[0]!, 'latest'), img.bytes);
    sameBytes(store.manifestBytes(targets[0]!, '1.0'), img.bytes);
  });
});

describe('copyImage: overwrite policies, platform filter, dry run', () => {
  it('leaves a tag that points elsewhere alone with overwrite "never"', async () => {
    const old = image(text(OCI_CONFIG, '{"old":true}'), [layer(10, 1)]);
    const img = image(text(OCI_CONFIG, '{"new":true}'), [layer(10, 2)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const target = THREE[0]!;
    seed(store, target, old, '1.0');
    store.resetCalls();
    const result = await copyImage(SOURCE, [target], context(store), { overwrite: 'never' });
    const t = result.targets[0]!;
    assert.deepEqual([t.status, t.tagAction, t.digest], ['kept', 'keep', old.desc.digest]);
    assert.equal(store.count('manifestPut') + store.count('uploadStart') + store.count('blobGet'), 0);
    assert.equal(store.count('manifestGet'), 0);
    sameBytes(store.manifestBytes(target, '1.0'), old.bytes);
    assert.equal(exitCodeFor([result]), 0);
  });

  it('still creates a missing tag with overwrite "never"', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(10, 2)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const result = await copyImage(SOURCE, [THREE[0]!], context(store), { overwrite: 'never' });
    assert.deepEqual([result.targets[0]?.status, result.targets[0]?.tagAction], ['copied', 'create']);
  });

  it('re-pushes only the tag of an up-to-date target with overwrite "always"', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    seed(store, THREE[0]!, img.root, '1.0');
    store.resetCalls();
    const result = await copyImage(SOURCE, [THREE[0]!], context(store), { overwrite: 'always' });
    assert.equal(result.targets[0]?.status, 'copied');
    assert.deepEqual(
      store.log(['manifestPut']).map((c) => c.detail),
      ['1.0'],
    );
    assert.equal(store.count('blobHead') + store.count('blobGet') + store.count('uploadStart'), 0);
  });

  it('copies a platform-filtered index: only the chosen platforms, their attestations, and a new digest', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const target = THREE[0]!;
    const result = await copyImage(SOURCE, [target], context(store), {
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });

    assert.equal(result.targets[0]?.status, 'copied');
    assert.equal(result.digest, img.root.desc.digest);
    assert.ok(result.filteredDigest && result.filteredDigest !== img.root.desc.digest);
    assert.deepEqual(result.platforms, ['linux/amd64']);
    assert.equal(result.targets[0]?.digest, result.filteredDigest);
    const tagged = store.manifestBytes(target, '1.0')!;
    assert.equal(digestOf(tagged), result.filteredDigest);
    const doc = JSON.parse(Buffer.from(tagged).toString('utf8')) as { manifests: Descriptor[] };
    assert.deepEqual(
      doc.manifests.map((d) => d.digest),
      [img.amd64.desc.digest, img.attAmd.desc.digest],
    );
    // Children keep their exact bytes; nothing of arm64 was sent.
    sameBytes(store.manifestBytes(target, img.amd64.desc.digest), img.amd64.bytes);
    sameBytes(store.manifestBytes(target, img.attAmd.desc.digest), img.attAmd.bytes);
    assert.equal(store.manifestBytes(target, img.arm64.desc.digest), undefined);
    const sent = store.log(['finish'], 'a.example').map((c) => c.detail);
    assert.deepEqual(
      sorted(sent),
      digests([img.configAmd, img.shared, img.onlyAmd, img.attConfig, img.provAmd]),
    );
  });

  it('finds a platform-filtered copy up to date on the second run', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const options = { platforms: [{ os: 'linux', architecture: 'amd64' }] };
    await copyImage(SOURCE, [THREE[0]!], context(store), options);
    store.resetCalls();
    const again = await copyImage(SOURCE, [THREE[0]!], context(store), options);
    assert.equal(again.targets[0]?.status, 'up-to-date');
    assert.equal(store.count('manifestPut') + store.count('blobGet') + store.count('uploadStart'), 0);
    assert.equal(store.count('manifestHead', 'a.example'), 1);
  });

  it('needs only the source index (one GET) to compare a platform-filtered copy', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const options = { platforms: [{ os: 'linux', architecture: 'amd64' }] };
    await copyImage(SOURCE, [THREE[0]!], context(store), options);
    store.resetCalls();
    await copyImage(SOURCE, [THREE[0]!], context(store), options);
    assert.equal(store.count('manifestGet', 'src.example'), 1);
  });

  it('fails the image when no platform matches', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const result = await copyImage(SOURCE, [THREE[0]!], context(store), {
      platforms: [{ os: 'linux', architecture: 's390x' }],
    });
    assert.match(result.error ?? '', /none of the platforms linux\/s390x/);
    assert.equal(result.targets[0]?.status, 'failed');
    assert.equal(store.count('manifestPut'), 0);
  });

  it('plans without writing: uploads and mounts counted, no upload, no manifest PUT, no blob GET', async () => {
    const img = multiPlatform();
    const store = new MemoryStore();
    seed(store, SOURCE, img.root, '1.0');
    const targets = [ref('a.example/one/app:1.0'), ref('a.example/two/app:1.0'), ref('b.example/m/app:1.0')];
    const result = await copyImage(SOURCE, targets, context(store), { dryRun: true });

    assert.deepEqual(
      result.targets.map((t) => [t.status, t.blobsUploaded, t.blobsMounted, t.manifestsPushed]),
      [
        ['planned', 8, 0, 5],
        ['planned', 0, 8, 5],
        ['planned', 8, 0, 5],
      ],
    );
    for (const op of ['uploadStart', 'mount', 'patch', 'finish', 'manifestPut', 'blobGet'] as const) {
      assert.equal(store.count(op), 0, op);
    }
    assert.equal(store.manifestBytes(targets[0]!, '1.0'), undefined);
  });
});

describe('copyImage: two tags of one repository', () => {
  it('sends no mount request from a repository to itself', async () => {
    const img = image(text(OCI_CONFIG, '{}'), [layer(1000, 4), layer(2000, 5)]);
    const store = new MemoryStore();
    seed(store, SOURCE, img, '1.0');
    const targets = [ref('a.example/m/app:1.0'), ref('a.example/m/app:latest')];
    const result = await copyImage(SOURCE, targets, context(store));
    assert.equal(store.count('mount'), 0);
    assert.equal(result.targets[1]?.blobsMounted, 0);
  });
});

describe('memory store (the test double itself)', () => {
  it('refuses a manifest whose blobs are missing and an out-of-order PATCH', async () => {
    const store = new MemoryStore();
    const repo = ref('a.example/m/app:1');
    const img = image(text(OCI_CONFIG, '{}'), [layer(10, 1)]);
    await assert.rejects(store.manifestPut(repo, '1', img.bytes, OCI_MANIFEST), /MANIFEST_BLOB_UNKNOWN/);
    const opened = await store.uploadStart(repo);
    assert.equal(opened.mounted, false);
    if (opened.mounted) return;
    const first = opened.session.patch(new Uint8Array(4));
    await assert.rejects(opened.session.patch(new Uint8Array(4)), /416/);
    await first;
    await assert.rejects(opened.session.finish(digestOf(new Uint8Array(5))), /DIGEST_INVALID/);
  });
});
