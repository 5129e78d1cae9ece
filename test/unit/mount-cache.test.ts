// The cache of where earlier runs left blobs (mounts across runs): what it keeps, what it refuses to
// read, how it merges with another run's writes; and how the copy engine uses its hints.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MountCache, mountCachePath } from '../../src/cli/mount-cache.js';
import { copyImage } from '../../src/copy/copy-image.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { TargetTags } from '../../src/copy/target-tags.js';
import { type Digest, digestOf } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseReference } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';
import { MemoryStore } from './memory-store.js';

const D1 = digestOf(new TextEncoder().encode('one'));
const D2 = digestOf(new TextEncoder().encode('two'));

let dir: string;
before(async () => {
  dir = await makeTempDir('mount-cache-unit');
});
after(async () => {
  await removeDir(dir);
});

describe('MountCache', () => {
  it('lives under $XDG_CACHE_HOME/regmirror, else ~/.cache/regmirror', () => {
    assert.equal(mountCachePath({ XDG_CACHE_HOME: '/x/cache' }, '/home/u'), '/x/cache/regmirror/mounts.json');
    assert.equal(mountCachePath({}, '/home/u'), '/home/u/.cache/regmirror/mounts.json');
    // A relative XDG path is ignored, as the XDG spec says.
    assert.equal(
      mountCachePath({ XDG_CACHE_HOME: 'rel' }, '/home/u'),
      '/home/u/.cache/regmirror/mounts.json',
    );
  });

  it('remembers blobs seen on target registries only, most recent repository first, across runs', async () => {
    const file = join(dir, 'a', 'mounts.json');
    const run1 = await MountCache.open(file, ['t.example']);
    run1.record('t.example', 'team/one', D1);
    run1.record('t.example', 'team/two', D1);
    run1.record('src.example', 'team/src', D2);
    await run1.save();
    const run2 = await MountCache.open(file, ['t.example']);
    assert.deepEqual(run2.candidates('t.example', D1), ['team/two', 'team/one']);
    assert.deepEqual(run2.candidates('src.example', D2), [], 'a source registry is not remembered');
  });

  it('merges with what another run wrote meanwhile', async () => {
    const file = join(dir, 'b', 'mounts.json');
    const mine = await MountCache.open(file, ['t.example']);
    const theirs = await MountCache.open(file, ['t.example']);
    theirs.record('t.example', 'other/repo', D2);
    await theirs.save();
    mine.record('t.example', 'my/repo', D1);
    await mine.save();
    const next = await MountCache.open(file, ['t.example']);
    assert.deepEqual(next.candidates('t.example', D1), ['my/repo']);
    assert.deepEqual(next.candidates('t.example', D2), ['other/repo']);
  });

  it('reads nothing it cannot trust: bad JSON, another version, bad digests or names', async () => {
    const file = join(dir, 'c', 'mounts.json');
    await mkdir(join(dir, 'c'), { recursive: true });
    await writeFile(file, '{ not json');
    assert.deepEqual((await MountCache.open(file, ['t.example'])).candidates('t.example', D1), []);
    await writeFile(file, JSON.stringify({ version: 2, registries: { 't.example': { [D1]: ['a/b'] } } }));
    assert.deepEqual((await MountCache.open(file, ['t.example'])).candidates('t.example', D1), []);
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        registries: {
          't.example': { [D1]: ['ok/repo', '../../etc', 'UPPER/case', 7], 'sha256:short': ['x/y'] },
          'bad host/x': { [D2]: ['a/b'] },
        },
      }),
    );
    const cache = await MountCache.open(file, ['t.example']);
    assert.deepEqual(cache.candidates('t.example', D1), ['ok/repo']);
    assert.deepEqual(cache.candidates('bad host/x', D2), []);
  });

  it('keeps a bounded number of repositories per digest', async () => {
    const cache = await MountCache.open(join(dir, 'd', 'mounts.json'), ['t.example']);
    for (let i = 0; i < 10; i++) cache.record('t.example', `r/${i}`, D1);
    assert.deepEqual(cache.candidates('t.example', D1), ['r/9', 'r/8', 'r/7', 'r/6']);
  });

  it('writes nothing when the run learned nothing', async () => {
    const file = join(dir, 'e', 'mounts.json');
    await (await MountCache.open(file, ['t.example'])).save();
    await assert.rejects(readFile(file), /ENOENT/);
  });
});

describe('copyImage with mount hints from earlier runs', () => {
  const encode = (s: string) => new TextEncoder().encode(s);
  const seed = (store: MemoryStore) => {
    const repo = { registry: 'src.example', path: 'team/app' };
    const config = encode('{"architecture":"amd64","os":"linux"}');
    const layer = new Uint8Array(5000).map((_, i) => (i * 13) & 0xff);
    store.putBlob(repo, config);
    store.putBlob(repo, layer);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: 5000 }],
    };
    store.putManifest(repo, encode(JSON.stringify(manifest)), OCI_MANIFEST, '1.0');
    return { config: digestOf(config), layer: digestOf(layer), bytes: layer };
  };
  const hintsFor = (map: Record<string, string[]>) => ({
    candidates: (_registry: string, digest: Digest) => map[digest] ?? [],
    record: () => {},
  });

  it('mounts from the repository a hint names, and reads nothing from the source for it', async () => {
    const store = new MemoryStore();
    const { layer, bytes } = seed(store);
    store.repo({ registry: 't.example', path: 'earlier/repo' }).blobs.set(layer, bytes);
    const knowledge = new BlobKnowledge({ hints: hintsFor({ [layer]: ['earlier/repo'] }) });
    const target = parseReference('t.example/new/repo:1.0');
    const result = await copyImage(parseReference('src.example/team/app:1.0'), [target], {
      store,
      knowledge,
      transfers: createLimiter(4),
    });
    assert.equal(result.targets[0]!.status, 'copied');
    assert.equal(result.targets[0]!.blobsMounted, 1);
    assert.equal(store.log(['blobGet']).filter((c) => c.detail === layer).length, 0);
    assert.deepEqual(
      store.log(['mount']).map((c) => c.detail),
      [`${layer} from earlier/repo`],
    );
  });

  it('HEADs a blob a hint says an earlier run left in this very repository, even in a repository without tags', async () => {
    const store = new MemoryStore();
    const { config, layer, bytes } = seed(store);
    // An earlier run uploaded the layer here and was interrupted before its first tag.
    store.repo({ registry: 't.example', path: 'new/repo' }).blobs.set(layer, bytes);
    const tags = new TargetTags();
    await tags.load(store, { registry: 't.example', path: 'new/repo' });
    store.resetCalls();
    const knowledge = new BlobKnowledge({ hints: hintsFor({ [layer]: ['new/repo'] }) });
    const result = await copyImage(
      parseReference('src.example/team/app:1.0'),
      [parseReference('t.example/new/repo:1.0')],
      {
        store,
        knowledge,
        transfers: createLimiter(4),
        targetTags: tags,
      },
    );
    assert.equal(result.targets[0]!.status, 'copied');
    // The layer: HEADed, found, not uploaded. The config: no HEAD (the repository had no tag), uploaded.
    assert.deepEqual(
      store.log(['blobHead']).map((c) => c.detail),
      [layer],
    );
    assert.equal(result.targets[0]!.blobsExisting, 1);
    assert.deepEqual(
      store.log(['finish']).map((c) => c.detail),
      [config],
    );
  });
});
