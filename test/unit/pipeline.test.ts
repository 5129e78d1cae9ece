// Each target goes at its own pace: streamed uploads (one PATCH per blob where the registry takes one),
// targets of a throttling registry that hold nobody else up, declined mounts that go on as uploads.
// Against the counting in-memory store; no timing is asserted, only what happened in which order.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { transferBudget } from '../../src/copy/budget.js';
import type { CopyContext } from '../../src/copy/copy-image.js';
import { copyImage } from '../../src/copy/copy-image.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { type ImageJob, type MirrorResult, type MirrorSpec, runJobs } from '../../src/copy/run.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseReference, type Reference, type Repository, withTag } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { type Call, MemoryStore } from './memory-store.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const encode = (s: string) => new TextEncoder().encode(s);
const ref = (s: string): Reference => parseReference(s);
const SOURCE: Repository = { registry: 'src.example', path: 'team/app' };

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

/** An image of a config and one layer of `size` bytes, tagged `tag` in the source. */
function seedImage(store: MemoryStore, tag: string, size: number, seed: number): { layer: string } {
  const config = encode(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const layer = bytes(size, seed);
  store.putBlob(SOURCE, config);
  store.putBlob(SOURCE, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.byteLength },
    layers: [{ mediaType: LAYER, digest: digestOf(layer), size: layer.byteLength }],
  };
  store.putManifest(SOURCE, encode(JSON.stringify(manifest)), OCI_MANIFEST, tag);
  return { layer: digestOf(layer) };
}

function context(store: MemoryStore, chunkSize = 4096): CopyContext {
  store.chunkSize = () => chunkSize;
  return { store, knowledge: new BlobKnowledge(), transfers: createLimiter(8) };
}

/** A gate: calls it holds wait until it opens. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

describe('streamed uploads', () => {
  it('sends a large layer in one PATCH to registries that take one, in chunks to the others, from one GET', async () => {
    const store = new MemoryStore();
    store.blobPieceSize = 1500;
    const { layer } = seedImage(store, '1.0', 50_000, 1);
    store.streaming.add('a.example');
    store.streaming.add('b.example');
    const targets = ['a.example/m/app:1.0', 'b.example/m/app:1.0', 'c.example/m/app:1.0'].map(ref);

    const result = await copyImage(ref('src.example/team/app:1.0'), targets, context(store));

    assert.deepEqual(
      result.targets.map((t) => t.status),
      ['copied', 'copied', 'copied'],
    );
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === layer).length, 1);
    for (const registry of ['a.example', 'b.example']) {
      const session = store.sessions.find(
        (s) => s.repository.registry === registry && s.committed === layer,
      )!;
      assert.deepEqual(session.ranges, ['0-49999'], registry);
      assert.equal(session.streamedBytes, 50_000);
      // The closing PUT carries no bytes: it commits what the PATCH sent, after the digest was verified.
      assert.equal(session.lastBytes, 0);
    }
    const chunked = store.sessions.find(
      (s) => s.repository.registry === 'c.example' && s.committed === layer,
    )!;
    assert.equal(chunked.ranges.length, 12);
    assert.equal(chunked.lastBytes, 50_000 - 12 * 4096);
    for (const t of targets) {
      assert.deepEqual(
        Buffer.from(store.blob(t, layer as `sha256:${string}`)!),
        Buffer.from(bytes(50_000, 1)),
      );
    }
  });

  it('commits nothing when the streamed bytes turn out corrupt', async () => {
    const store = new MemoryStore();
    store.blobPieceSize = 1000;
    const { layer } = seedImage(store, '1.0', 20_000, 2);
    store.putCorruptBlob(SOURCE, layer as `sha256:${string}`, bytes(20_000, 3));
    store.streaming.add('a.example');
    const target = ref('a.example/m/app:1.0');
    const result = await copyImage(ref('src.example/team/app:1.0'), [target], context(store));
    assert.equal(result.targets[0]!.errorKind, 'digest-mismatch');
    assert.equal(store.log(['finish']).filter((c) => c.detail === layer).length, 0);
    assert.equal(store.blob(target, layer as `sha256:${string}`), undefined);
    assert.ok(store.sessions.every((s) => s.state !== 'open' || s.committed !== undefined));
  });
});

describe('a throttling registry slows only its own targets', () => {
  it('pushes the other targets of an image while the throttled one waits, and lets the next image start', async () => {
    const store = new MemoryStore();
    const tags = ['1', '2', '3', '4'];
    for (const [i, t] of tags.entries()) seedImage(store, t, 3000, 10 + i);
    // a.example throttles us: every write to it waits until the gate opens.
    store.setCongested('a.example', true);
    const held = gate();
    store.hold = (c: Call) =>
      c.registry === 'a.example' && ['uploadStart', 'finish', 'manifestPut'].includes(c.op)
        ? held.wait
        : undefined;
    const spec: MirrorSpec = {
      name: 'app',
      source: SOURCE,
      targets: [
        { registry: 'a.example', path: 'm/app' },
        { registry: 'b.example', path: 'm/app' },
      ],
      select: () => [],
      needsTagList: false,
      options: {},
    };
    const jobs: ImageJob[] = tags.map((tag) => ({
      mirror: spec,
      tag,
      source: withTag(SOURCE, tag),
      targets: spec.targets.map((t) => withTag(t, tag)),
    }));
    const results = new Map<MirrorSpec, MirrorResult>([
      [spec, { name: 'app', source: 'src', targets: [], tags, images: [] }],
    ]);
    // One image in flight: without detaching, image 2 could not start before a.example answered.
    const run = runJobs(jobs, results, context(store), createLimiter(1));

    // b.example gets every tag while a.example has answered none of its writes.
    const deadline = Date.now() + 10_000;
    while (store.log(['manifestPut'], 'b.example').length < tags.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(
      store.log(['manifestPut'], 'b.example').map((c) => c.detail),
      tags,
    );
    assert.equal(store.blob({ registry: 'a.example', path: 'm/app' }, digestOf(bytes(3000, 10))), undefined);

    store.setCongested('a.example', false);
    held.open();
    await run;
    const images = results.get(spec)!.images;
    assert.equal(images.length, tags.length);
    for (const image of images) {
      assert.deepEqual(
        image.targets.map((t) => t.status),
        ['copied', 'copied'],
      );
    }
    // Each blob read once per image: a.example had joined the fan-out; its upload just took longer.
    assert.equal(store.count('blobGet'), 2 * tags.length);
  });

  it('waits for every target when no registry throttles (the image keeps its place)', async () => {
    const store = new MemoryStore();
    seedImage(store, '1', 3000, 20);
    seedImage(store, '2', 3000, 21);
    const held = gate();
    store.hold = (c: Call) => (c.registry === 'a.example' && c.op === 'manifestPut' ? held.wait : undefined);
    const order: string[] = [];
    const ctx = context(store);
    const images = createLimiter(1);
    const first = images(() =>
      copyImage(
        ref('src.example/team/app:1'),
        [ref('a.example/m/app:1'), ref('b.example/m/app:1')],
        ctx,
        {},
        {
          detach: () => order.push('detached'),
        },
      ).then(() => order.push('image 1')),
    );
    const second = images(() =>
      copyImage(ref('src.example/team/app:2'), [ref('b.example/m/app:2')], ctx).then(() =>
        order.push('image 2'),
      ),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(order, []);
    held.open();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['image 1', 'image 2']);
  });
});

describe('transferBudget', () => {
  it('bounds transfers by the bytes they hold and their number, first come first served', async () => {
    const budget = transferBudget(100, 3);
    const running = new Set<string>();
    const log: string[] = [];
    const gates = new Map<string, () => void>();
    const job = (name: string, weight: number) =>
      budget.run(weight, async () => {
        running.add(name);
        log.push(`${name}+${[...running].sort().join(',')}`);
        await new Promise<void>((r) => gates.set(name, r));
        running.delete(name);
      });
    const tick = () => new Promise((r) => setImmediate(r));
    const all = [job('a', 60), job('b', 30), job('big', 500), job('c', 5), job('d', 5)];
    await tick();
    // a and b fit (90 of 100); big waits at the head; c and d, though small, do not pass it.
    assert.deepEqual(log, ['a+a', 'b+a,b']);
    gates.get('a')!();
    gates.get('b')!();
    await tick();
    await tick();
    // Alone, the oversized transfer runs (it cannot wait for more than the whole budget).
    assert.deepEqual(log.slice(2), ['big+big']);
    gates.get('big')!();
    await tick();
    await tick();
    assert.deepEqual(log.slice(3), ['c+c', 'd+c,d']);
    gates.get('c')!();
    gates.get('d')!();
    await Promise.all(all);
  });
});
