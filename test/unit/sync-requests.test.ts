// Requests per tag of a whole sync (resolve + image jobs, the code path `regmirror sync` runs) against
// the counting in-memory store. These numbers are the acceptance of issue 14 at migration scale: a later
// change that adds a request per tag fails here, not only in the benchmark.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { specsFrom } from '../../src/cli/commands/sync.js';
import type { ResolvedMirror } from '../../src/config/resolve.js';
import type { CopyContext } from '../../src/copy/copy-image.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { ReferrerRun } from '../../src/copy/referrer-run.js';
import { syncMirrors } from '../../src/copy/run.js';
import { TargetTags } from '../../src/copy/target-tags.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import type { Repository } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { MemoryStore, type Op } from './memory-store.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const SOURCE: Repository = { registry: 'src.example', path: 'team/app' };
const TARGET: Repository = { registry: 'dst.example', path: 'mirror/app' };

const encode = (s: string) => new TextEncoder().encode(s);

/** Tag `tag`: a config and one small layer of its own (the benchmark's migration images). */
function seedImage(store: MemoryStore, repo: Repository, tag: string, size = 600): void {
  const config = encode(JSON.stringify({ architecture: 'amd64', os: 'linux', created: tag }));
  const layer = new Uint8Array(size).map(
    (_, i) => (i * 7 + tag.length * 13 + tag.charCodeAt(tag.length - 1)) & 0xff,
  );
  layer.set(encode(tag), 0);
  store.putBlob(repo, config);
  store.putBlob(repo, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.byteLength },
    layers: [{ mediaType: LAYER, digest: digestOf(layer), size: layer.byteLength }],
  };
  store.putManifest(repo, encode(JSON.stringify(manifest)), OCI_MANIFEST, tag);
}

function mirror(overrides: Partial<ResolvedMirror> = {}): ResolvedMirror {
  return {
    name: 'app',
    source: SOURCE,
    targets: [TARGET],
    tags: undefined,
    platforms: 'all',
    overwrite: 'changed',
    referrers: {},
    cosignTags: true,
    ...overrides,
  };
}

function context(store: MemoryStore): CopyContext {
  return {
    store,
    knowledge: new BlobKnowledge(),
    transfers: createLimiter(16),
    referrerRun: new ReferrerRun(),
    targetTags: new TargetTags(),
  };
}

/** One sync run as the CLI makes it: a fresh context (a new process), every tag of every mirror. */
async function sync(store: MemoryStore, mirrors: ResolvedMirror[], images = 16) {
  const { results } = await syncMirrors(specsFrom(mirrors, false), context(store), createLimiter(images));
  return results;
}

function counts(store: MemoryStore, registry: string): Partial<Record<Op, number>> {
  const out: Partial<Record<Op, number>> = {};
  for (const c of store.calls) if (c.registry === registry) out[c.op] = (out[c.op] ?? 0) + 1;
  return out;
}

const TAGS = Array.from({ length: 40 }, (_, i) => `r${String(i).padStart(4, '0')}`);

describe('sync: requests per tag', () => {
  it('copies a new tag to a new repository in 8 requests: GET manifest + 2 blob GETs; 2 × (POST + PUT) + manifest PUT', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS) seedImage(store, SOURCE, tag);

    const [result] = await sync(store, [mirror()]);

    assert.equal(result!.images.length, TAGS.length);
    assert.ok(result!.images.every((i) => i.targets.every((t) => t.status === 'copied')));
    const n = TAGS.length;
    // Source: its tag list, one referrers probe (answered "no API": the tag schema, whose tags the list
    // already showed), then per tag the manifest by GET (no HEAD: the target lacks the tag) and two blobs.
    assert.deepEqual(counts(store, SOURCE.registry), {
      tagList: 1,
      referrers: 1,
      manifestGet: n,
      blobGet: 2 * n,
    });
    // Target: its tag list (the repository does not exist yet), then per tag two uploads (POST + PUT,
    // no HEAD: nothing is in a repository that had no tag) and the manifest under its tag.
    assert.deepEqual(counts(store, TARGET.registry), {
      tagList: 1,
      uploadStart: 2 * n,
      finish: 2 * n,
      manifestPut: n,
    });
    const perTag = (store.calls.length - 3) / n;
    assert.equal(perTag, 8);
  });

  it('re-syncs without change in one manifest HEAD per tag per side, and no GET', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS) seedImage(store, SOURCE, tag);
    await sync(store, [mirror()]);
    store.resetCalls();
    store.forgetReferrersModes();

    const [result] = await sync(store, [mirror()]);

    assert.ok(result!.images.every((i) => i.targets.every((t) => t.status === 'up-to-date')));
    const n = TAGS.length;
    assert.deepEqual(counts(store, SOURCE.registry), { tagList: 1, referrers: 1, manifestHead: n });
    assert.deepEqual(counts(store, TARGET.registry), { tagList: 1, manifestHead: n });
  });

  it('HEADs the tags a target already has and the blobs of a repository that has tags', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS) seedImage(store, SOURCE, tag);
    // The target holds the first 10 tags already (an earlier, interrupted migration).
    await sync(store, [mirror({ tags: { list: TAGS.slice(0, 10) } })]);
    store.resetCalls();
    store.forgetReferrersModes();

    await sync(store, [mirror()]);

    const n = TAGS.length;
    const target = counts(store, TARGET.registry);
    // Only the 10 listed tags are HEADed; the 30 others are created without asking.
    assert.equal(target.manifestHead, 10);
    // The repository had tags: the new tags' blobs are HEADed (2 each) before their uploads.
    assert.equal(target.blobHead, 2 * 30);
    assert.equal(target.uploadStart, 2 * 30);
    assert.equal(target.manifestPut, 30);
    // The source: a HEAD for each tag some target has (10), a GET for each it lacks everywhere (30).
    const source = counts(store, SOURCE.registry);
    assert.equal(source.manifestHead, 10);
    assert.equal(source.manifestGet, 30);
    assert.equal(source.blobGet, 2 * (n - 10));
  });

  it('HEADs every target tag under overwrite "never" (only a fresh answer may allow a write)', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS.slice(0, 5)) seedImage(store, SOURCE, tag);
    await sync(store, [mirror({ overwrite: 'never' })]);
    const target = counts(store, TARGET.registry);
    assert.equal(target.manifestHead, 5);
    assert.equal(counts(store, SOURCE.registry).manifestHead, 5);
  });

  it('compares a tag this run has pushed, though the listing at the start lacked it', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS.slice(0, 6)) seedImage(store, SOURCE, tag);
    const other: Repository = { registry: 'src.example', path: 'team/other' };
    for (const tag of TAGS.slice(0, 6)) seedImage(store, other, tag);
    // Two mirrors write the same tags (same content) to one repository, one image at a time: the
    // second mirror's images must find the tags the first pushed, not create them blindly again.
    const [first, second] = await sync(store, [mirror(), mirror({ name: 'other', source: other })], 1);
    assert.ok(first!.images.every((i) => i.targets.every((t) => t.status === 'copied')));
    assert.ok(second!.images.every((i) => i.targets.every((t) => t.status === 'up-to-date')));
    const target = counts(store, TARGET.registry);
    assert.equal(target.manifestPut, 6);
    assert.equal(target.manifestHead, 6);
  });
});

/** Tag `tag`: an index of two platform images (config + layer each), children under no tag. */
function seedIndex(store: MemoryStore, repo: Repository, tag: string, seed: string): void {
  const children = ['amd64', 'arm64'].map((arch) => {
    const config = encode(JSON.stringify({ architecture: arch, os: 'linux', seed }));
    const layer = encode(`layer ${arch} ${seed}`);
    store.putBlob(repo, config);
    store.putBlob(repo, layer);
    const m = encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.byteLength },
        layers: [{ mediaType: LAYER, digest: digestOf(layer), size: layer.byteLength }],
      }),
    );
    const digest = store.putManifest(repo, m, OCI_MANIFEST);
    return {
      mediaType: OCI_MANIFEST,
      digest,
      size: m.byteLength,
      platform: { architecture: arch, os: 'linux' },
    };
  });
  const index = encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }));
  store.putManifest(repo, index, OCI_INDEX, tag);
}

describe('sync: multi-platform images', () => {
  it('asks a repository that had no tag about no manifest: each index costs 1 GET + 2 child GETs + 4 blob GETs at the source, 4 uploads and 3 manifest PUTs per target', async () => {
    const store = new MemoryStore();
    const tags = ['1.0', '1.1', '2.0'];
    for (const tag of tags) seedIndex(store, SOURCE, tag, tag);
    // A fourth tag on the same index as 2.0: found pushed by this run, only tagged.
    store.repo(SOURCE).tags.set('latest', store.repo(SOURCE).tags.get('2.0')!);
    const [result] = await sync(store, [mirror()], 1);
    assert.ok(result!.images.every((i) => i.targets.every((t) => t.status === 'copied')));
    const target = counts(store, TARGET.registry);
    assert.equal(target.manifestHead ?? 0, 0);
    assert.equal(target.blobHead ?? 0, 0);
    assert.equal(target.uploadStart, 4 * tags.length);
    // 3 manifests per distinct index; of 2.0 and latest (one index), whichever goes second only tags it.
    assert.equal(target.manifestPut, 3 * tags.length + 1);
    const source = counts(store, SOURCE.registry);
    assert.equal(source.blobGet, 4 * tags.length);
  });
});

describe('sync: images in flight', () => {
  it('runs as many images at once as the run allows, with no per-mirror cap unless the mirror sets one', async () => {
    const store = new MemoryStore();
    for (const tag of TAGS.slice(0, 24)) seedImage(store, SOURCE, tag);
    let inFlight = 0;
    let most = 0;
    const start = store.manifestGet.bind(store);
    store.manifestGet = async (ref) => {
      inFlight++;
      most = Math.max(most, inFlight);
      // Long enough for every image the limits allow to reach this point.
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return start(ref);
    };
    await sync(store, [mirror()], 16);
    assert.equal(most, 16);

    const capped = new MemoryStore();
    for (const tag of TAGS.slice(0, 24)) seedImage(capped, SOURCE, tag);
    most = 0;
    const startCapped = capped.manifestGet.bind(capped);
    capped.manifestGet = async (ref) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return startCapped(ref);
    };
    await sync(capped, [mirror({ concurrency: 3 })], 16);
    assert.equal(most, 3);
  });
});
