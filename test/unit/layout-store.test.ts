// The layout store behind the copy engine: copies into and out of OCI layout directories and archives
// (an in-memory registry on the other side), with the files checked independently — every blob hashed
// against its name, index.json read by hand, archives listed with GNU tar — plus corrupt content,
// leftovers of killed runs, and every kind of bad layout.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { create as tarCreate } from 'tar';
import { type CopyContext, copyImage } from '../../src/copy/copy-image.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { DigestMismatchError, formatError, LayoutError } from '../../src/errors.js';
import { stagingDirFor } from '../../src/layout/archive-writer.js';
import { LayoutStore } from '../../src/layout/layout-store.js';
import { RoutedStore } from '../../src/layout/routed-store.js';
import { readTarEntries } from '../../src/layout/tar-entries.js';
import { parseReference, parseRepository, type Reference } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import {
  type Content,
  dockerManifestList,
  type ManifestNode,
  ociIndexWithAttestations,
} from '../harness/oci-builders.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';
import { MemoryStore } from './memory-store.js';

const SOURCE = parseRepository('src.example/acme/app');
const MULTI = ociIndexWithAttestations({ seed: 'layout-unit-multi' });
const LIST = dockerManifestList({ seed: 'layout-unit-list' });

let dir: string;
before(async () => {
  dir = await makeTempDir('layout-unit');
});
after(async () => {
  await removeDir(dir);
});

function allManifests(node: ManifestNode): ManifestNode[] {
  return [...node.children.flatMap(allManifests), node];
}

function allBlobs(node: ManifestNode): Content[] {
  return allManifests(node).flatMap((m) => m.blobs);
}

function seed(store: MemoryStore, node: ManifestNode, tag: string): void {
  for (const b of allBlobs(node)) store.putBlob(SOURCE, b.bytes);
  for (const m of allManifests(node))
    store.putManifest(SOURCE, m.bytes, m.mediaType, m === node ? tag : undefined);
}

function context(memory: MemoryStore, reads: string[] = []) {
  const layouts = new LayoutStore({ onRead: (where) => reads.push(where) });
  const ctx: CopyContext = {
    store: new RoutedStore(memory, layouts),
    knowledge: new BlobKnowledge(),
    transfers: createLimiter(4),
  };
  return { ctx, layouts };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Independent check of a layout directory: every blob file's content matches its name; no strays. */
async function assertValidLayout(root: string): Promise<{ names: Map<string, string>; blobs: number }> {
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
  const top = (await readdir(root)).sort();
  assert.deepEqual(
    top.filter((n) => !['blobs', 'index.json', 'oci-layout', 'regmirror-bundle.json'].includes(n)),
    [],
    `stray files in ${root}`,
  );
  assert.deepEqual(await readdir(join(root, 'blobs')), ['sha256'], 'stray files in blobs/');
  const files = await readdir(join(root, 'blobs', 'sha256'));
  for (const hex of files) {
    assert.equal(sha256(await readFile(join(root, 'blobs', 'sha256', hex))), `sha256:${hex}`, hex);
  }
  return { names, blobs: files.length };
}

describe('copying into an OCI layout directory', () => {
  it('an OCI index with attestations and a Docker manifest list, under prefix:tag names; blobs once', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    seed(memory, LIST, 'v2');
    const root = join(dir, 'export');
    const target = parseRepository(`oci:${root}:src.example/acme/app`);
    const { ctx, layouts } = context(memory);
    for (const tag of ['v1', 'v2']) {
      const r = await copyImage({ ...SOURCE, tag }, [{ ...target, tag }], ctx);
      assert.equal(r.targets[0]!.status, 'copied', r.targets[0]!.error);
    }
    await layouts.close(true);
    const { names, blobs } = await assertValidLayout(root);
    assert.deepEqual(
      [...names],
      [
        ['src.example/acme/app:v1', MULTI.digest],
        ['src.example/acme/app:v2', LIST.digest],
      ],
    );
    const distinct = new Set([...allManifests(MULTI), ...allManifests(LIST)].map((m) => m.digest));
    for (const b of [...allBlobs(MULTI), ...allBlobs(LIST)]) distinct.add(b.digest);
    assert.equal(blobs, distinct.size, 'each blob and manifest stored exactly once');
    // Manifests are the exact source bytes.
    assert.ok((await readFile(join(root, 'blobs', 'sha256', LIST.digest.slice(7)))).equals(LIST.bytes));
    const descriptor = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')).manifests[1];
    assert.equal(descriptor.mediaType, LIST.mediaType, 'the descriptor keeps the Docker media type');

    // Again: up to date, nothing written.
    memory.resetCalls();
    const again = context(memory);
    const r = await copyImage({ ...SOURCE, tag: 'v1' }, [{ ...target, tag: 'v1' }], again.ctx);
    assert.equal(r.targets[0]!.status, 'up-to-date');
    assert.equal(memory.count('manifestGet'), 0);
  });

  it('reads a layout back: same bytes, each blob file opened once for two targets', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    const root = join(dir, 'roundtrip');
    const first = context(memory);
    await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], first.ctx);
    await first.layouts.close(true);

    const reads: string[] = [];
    const back = context(memory, reads);
    const targets = [parseReference('a.example/x:v1'), parseReference('b.example/y:v1')];
    const r = await copyImage(parseReference(`oci:${root}:v1`), targets, back.ctx);
    for (const t of r.targets) assert.equal(t.status, 'copied', t.error);
    for (const t of targets) assert.ok(memory.manifestBytes(t, 'v1')?.every((b, i) => b === MULTI.bytes[i]));
    const blobReads = reads.filter((w) => !allManifests(MULTI).some((m) => w.endsWith(m.digest.slice(7))));
    assert.equal(blobReads.length, new Set(allBlobs(MULTI).map((b) => b.digest)).size);
    assert.equal(new Set(blobReads).size, blobReads.length, 'a blob file was read twice');
  });

  it('a blob changed on disk fails the image with an error naming the file and digest; nothing is pushed', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    const root = join(dir, 'corrupt');
    const first = context(memory);
    await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], first.ctx);
    const layer = MULTI.children[0]!.blobs[1]!;
    const file = join(root, 'blobs', 'sha256', layer.digest.slice(7));
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('XX'), 0, 2, 10);
    await handle.close();

    const { ctx } = context(memory);
    const target = parseReference('c.example/z:v1');
    const r = await copyImage(parseReference(`oci:${root}:v1`), [target], ctx);
    const t = r.targets[0]!;
    assert.equal(t.status, 'failed');
    assert.equal(t.errorKind, 'digest-mismatch');
    assert.ok(t.error?.includes(file), t.error);
    assert.ok(t.error?.includes(layer.digest), t.error);
    assert.equal(memory.manifestBytes(target, 'v1'), undefined);
    assert.equal(memory.count('manifestPut', 'c.example'), 0);
  });

  it('a killed run: its temporary files are removed by the next write, a live writer’s are kept', async () => {
    const memory = new MemoryStore();
    seed(memory, LIST, 'v1');
    const root = join(dir, 'killed');
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(root, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    // pid 2^22 + 1 is above Linux's pid_max: never a live process.
    const dead = `.regmirror-${2 ** 22 + 1}-abcdef.tmp`;
    const live = `.regmirror-${process.ppid}-abcdef.tmp`;
    await writeFile(join(root, 'blobs', dead), 'half a blob');
    await writeFile(join(root, `.index.json${dead}`), '{"half');
    await writeFile(join(root, 'blobs', live), 'someone else is writing');
    const { ctx, layouts } = context(memory);
    const r = await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], ctx);
    assert.equal(r.targets[0]!.status, 'copied', r.targets[0]!.error);
    await layouts.close(true);
    assert.deepEqual(await readdir(join(root, 'blobs')), [live, 'sha256'].sort());
    assert.deepEqual((await readdir(root)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });
});

describe('OCI archives', () => {
  it('writes a tar (staging removed), adds to it without unpacking it, and reads it back', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    seed(memory, LIST, 'v2');
    const file = join(dir, 'bundle.tar');
    const first = context(memory);
    await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci-archive:${file}:v1`)], first.ctx);
    await first.layouts.close(true);
    await assert.rejects(readdir(stagingDirFor(file)), /ENOENT/);

    const second = context(memory);
    const up = await copyImage(
      { ...SOURCE, tag: 'v1' },
      [parseReference(`oci-archive:${file}:v1`)],
      second.ctx,
    );
    assert.equal(up.targets[0]!.status, 'up-to-date');
    const r = await copyImage(
      { ...SOURCE, tag: 'v2' },
      [parseReference(`oci-archive:${file}:v2`)],
      second.ctx,
    );
    assert.equal(r.targets[0]!.status, 'copied', r.targets[0]!.error);
    await second.layouts.close(true);

    // GNU tar's view: every blob once, index.json and oci-layout.
    const listed = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const blobFiles = listed.filter((p) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(p));
    assert.equal(new Set(blobFiles).size, blobFiles.length, 'a blob twice in the archive');
    assert.ok(listed.includes('index.json') && listed.includes('oci-layout'));
    const extracted = join(dir, 'extracted');
    await mkdir(extracted);
    execFileSync('tar', ['-xf', file, '-C', extracted]);
    const { names } = await assertValidLayout(extracted);
    assert.deepEqual([...names.keys()], ['v1', 'v2']);

    const reads: string[] = [];
    const back = context(memory, reads);
    const target = parseReference('d.example/w:v2');
    const out = await copyImage(parseReference(`oci-archive:${file}:v2`), [target], back.ctx);
    assert.equal(out.targets[0]!.status, 'copied', out.targets[0]!.error);
    assert.ok(Buffer.from(memory.manifestBytes(target, 'v2')!).equals(LIST.bytes));
    assert.ok(
      reads.every((w) => w.startsWith(`${file}:blobs/sha256/`)),
      'read from the archive in place',
    );
  });

  it('finds entries behind PAX long names and "./" prefixes', async () => {
    const src = join(dir, 'tar-src');
    const long = `${'d'.repeat(120)}/file.txt`;
    await mkdir(join(src, 'd'.repeat(120)), { recursive: true });
    await writeFile(join(src, long), 'long-named');
    await writeFile(join(src, 'short.txt'), 'short');
    const file = join(dir, 'long.tar');
    await tarCreate({ file, cwd: src }, [long, 'short.txt']);
    const gnu = join(dir, 'dot.tar');
    execFileSync('tar', ['-cf', gnu, '-C', src, '.']);
    for (const f of [file, gnu]) {
      const handle = await open(f, 'r');
      const entries = await readTarEntries(handle, f);
      await handle.close();
      const e = entries.get(long)!;
      assert.ok(e, `${f}: ${[...entries.keys()].join(', ')}`);
      const content = Buffer.alloc(e.size);
      const h = await open(f, 'r');
      await h.read(content, 0, e.size, e.offset);
      await h.close();
      assert.equal(content.toString(), 'long-named');
      assert.equal(entries.get('short.txt')?.size, 5);
    }
  });
});

describe('bad layouts: each refused with what and where', () => {
  const layouts = new LayoutStore();
  const check = async (ref: string, pattern: RegExp, kind: 'source' | 'target' = 'source') => {
    const repo = parseRepository(ref);
    await assert.rejects(
      kind === 'source' ? layouts.checkSource(repo) : layouts.checkTarget(repo),
      (err: unknown) => {
        assert.ok(err instanceof LayoutError, String(err));
        assert.match(formatError(err), pattern);
        return true;
      },
    );
  };

  it('a missing path, a file, a directory that is not a layout, a broken index.json', async () => {
    await check(`oci:${dir}/nowhere`, /nowhere does not exist/);
    await writeFile(join(dir, 'plain.txt'), 'x');
    await check(`oci:${dir}/plain.txt`, /plain\.txt is a file, not a layout directory.*oci-archive:PATH/);
    await mkdir(join(dir, 'notalayout'));
    await writeFile(join(dir, 'notalayout', 'readme'), 'x');
    await check(
      `oci:${dir}/notalayout`,
      /notalayout is not an OCI image layout \(it has no oci-layout file\)/,
    );
    await check(`oci:${dir}/notalayout`, /exists and is not an OCI image layout/, 'target');
    const broken = join(dir, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(broken, 'index.json'), '{"schemaVersion":2,"manifests":[{"digest":"../x"}]');
    await check(`oci:${broken}`, /broken\/index\.json is not valid JSON/);
    await writeFile(
      join(broken, 'index.json'),
      '{"schemaVersion":2,"manifests":[{"mediaType":"x","size":1,"digest":"sha256:../../etc"}]}',
    );
    await check(`oci:${broken}`, /index\.json is not an OCI image index \(manifests\.0\.digest/);
  });

  it('archives: not a tar, a tar that is not an OCI archive, a gzip file', async () => {
    await writeFile(join(dir, 'text.tar'), 'just some text, not a tar archive at all'.repeat(20));
    await check(`oci-archive:${dir}/text.tar`, /text\.tar is not a tar archive/);
    const src = join(dir, 'other');
    await mkdir(src);
    await writeFile(join(src, 'notes.txt'), 'x');
    await tarCreate({ file: join(dir, 'other.tar'), cwd: src }, ['notes.txt']);
    await check(
      `oci-archive:${dir}/other.tar`,
      /other\.tar is a tar archive but not an OCI archive: it has no oci-layout entry \(entries: notes\.txt\)/,
    );
    await tarCreate({ file: join(dir, 'other.tar.gz'), cwd: src, gzip: true }, ['notes.txt']);
    await check(`oci-archive:${dir}/other.tar.gz`, /gzip-compressed/);
    await check(`oci-archive:${dir}/other.tar`, /exists and cannot be added to/, 'target');
    // Entry names come from the file: escaped before they reach a message (no terminal escapes, no lines).
    const evil = join(dir, 'evil');
    await mkdir(evil);
    await writeFile(join(evil, 'x\u001b[2J\nforged line'), 'x');
    await tarCreate({ file: join(dir, 'evil.tar'), cwd: evil }, ['x\u001b[2J\nforged line']);
    await check(`oci-archive:${dir}/evil.tar`, /entries: x\\u001b\[2J\\nforged line\)/);
  });

  it('a name the layout does not hold is not found; an unnamed reference to a many-image layout says to name one', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    seed(memory, LIST, 'v2');
    const root = join(dir, 'two');
    const { ctx, layouts: l } = context(memory);
    for (const tag of ['v1', 'v2'])
      await copyImage({ ...SOURCE, tag }, [parseReference(`oci:${root}:${tag}`)], ctx);
    await l.close(true);
    const { ctx: readCtx } = context(memory);
    const missing = await copyImage(
      parseReference(`oci:${root}:v9`),
      [parseReference('e.example/q:v9')],
      readCtx,
    );
    assert.equal(missing.errorKind, 'not-found');
    assert.match(missing.error!, /image name "v9" not found/);
    const unnamed: Reference = parseReference(`oci:${root}`);
    const many = await copyImage(unnamed, [parseReference('e.example/q:x')], readCtx);
    assert.equal(many.errorKind, 'layout');
    assert.match(many.error!, /holds 2 images; name one/);
  });

  it('corrupt manifest bytes are named too', async () => {
    const memory = new MemoryStore();
    seed(memory, LIST, 'v1');
    const root = join(dir, 'corrupt-manifest');
    const { ctx } = context(memory);
    await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], ctx);
    const file = join(root, 'blobs', 'sha256', LIST.digest.slice(7));
    await writeFile(file, LIST.bytes.toString().replace('amd64', 'AMD64'));
    const { ctx: readCtx } = context(memory);
    const r = await copyImage(parseReference(`oci:${root}:v1`), [parseReference('e.example/q:v1')], readCtx);
    assert.equal(r.errorKind, 'digest-mismatch');
    assert.ok(r.error?.includes(file), r.error);
    assert.ok(DigestMismatchError);
  });
});

describe('layout blobs are plain files', () => {
  it('a symbolic link in blobs/ is never followed', async () => {
    const memory = new MemoryStore();
    seed(memory, LIST, 'v1');
    const root = join(dir, 'linked');
    const { ctx } = context(memory);
    await copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], ctx);
    const layer = LIST.children[0]!.blobs[1]!;
    const file = join(root, 'blobs', 'sha256', layer.digest.slice(7));
    await writeFile(join(dir, 'secret'), 'not for the registry');
    await unlink(file);
    await symlink(join(dir, 'secret'), file);
    const { ctx: readCtx } = context(memory);
    const target = parseReference('f.example/s:v1');
    const r = await copyImage(parseReference(`oci:${root}:v1`), [target], readCtx);
    assert.equal(r.targets[0]!.status, 'failed');
    assert.match(r.targets[0]!.error!, /is a symbolic link; the blobs of a layout must be plain files/);
    assert.equal(memory.manifestBytes(target, 'v1'), undefined);
  });
});

describe('one layout, many name prefixes', () => {
  it('two images into one layout at once, unprefixed and prefixed: each blob read from the source once', async () => {
    const memory = new MemoryStore();
    seed(memory, MULTI, 'v1');
    const root = join(dir, 'prefixes');
    const { ctx } = context(memory);
    // Both surveyed before either transfers: the second waits for the first, then finds the blob in the
    // layout under the other prefix — the unprefixed one, whose repository path is "".
    const results = await Promise.all([
      copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:v1`)], ctx),
      copyImage({ ...SOURCE, tag: 'v1' }, [parseReference(`oci:${root}:src.example/acme/app:v1`)], ctx),
    ]);
    for (const r of results) assert.equal(r.targets[0]!.status, 'copied', r.targets[0]!.error);
    assert.equal(
      memory.count('blobGet'),
      new Set(allBlobs(MULTI).map((b) => b.digest)).size,
      'a blob was read twice',
    );
    const { names } = await assertValidLayout(root);
    assert.deepEqual([...names.keys()].sort(), ['src.example/acme/app:v1', 'v1']);
  });
});
