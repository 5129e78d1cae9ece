import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidRefName, joinRefName, splitRefName } from '../../src/reference/ref-name.js';
import {
  formatReference,
  formatRepository,
  isLayoutInput,
  isLayoutKey,
  parseReference,
  parseRepository,
  ReferenceSyntaxError,
  refNameOf,
  withDigest,
  withTag,
} from '../../src/reference/reference.js';

const DIGEST = `sha256:${'b'.repeat(64)}`;

describe('layout references: oci:PATH[:NAME][@digest]', () => {
  it('a bare name is the whole ref.name, with no prefix (skopeo: oci:dir:v1 is the image named "v1")', () => {
    assert.deepEqual(parseReference('oci:/media/bundle:v1'), {
      registry: 'oci:/media/bundle',
      path: '',
      layout: { kind: 'oci', path: '/media/bundle' },
      tag: 'v1',
    });
  });

  it('a name with a colon after its last "/" is prefix + tag', () => {
    const ref = parseReference('oci:bundle:127.0.0.1:5000/acme/app:1.4.2');
    assert.equal(ref.registry, 'oci:bundle');
    assert.equal(ref.path, '127.0.0.1:5000/acme/app');
    assert.equal(ref.tag, '1.4.2');
    assert.equal(refNameOf(ref), '127.0.0.1:5000/acme/app:1.4.2');
    assert.equal(formatReference(ref), 'oci:bundle:127.0.0.1:5000/acme/app:1.4.2');
  });

  it('a name without a tag part stays one name ("acme/app" is the image named so)', () => {
    const ref = parseReference('oci:bundle:acme/app');
    assert.equal(ref.path, '');
    assert.equal(ref.tag, 'acme/app');
    assert.equal(refNameOf(ref), 'acme/app');
  });

  it('no name: neither tag nor digest (no "latest" is made up for a layout)', () => {
    const ref = parseReference('oci:./out/');
    assert.deepEqual(ref, { registry: 'oci:out', path: '', layout: { kind: 'oci', path: 'out' } });
    assert.equal(formatReference(ref), 'oci:out');
  });

  it('a trailing @digest, with or without a name', () => {
    assert.equal(parseReference(`oci:/x@${DIGEST}`).digest, DIGEST);
    const named = parseReference(`oci-archive:/x.tar:v2@${DIGEST}`);
    assert.equal(named.layout?.kind, 'oci-archive');
    assert.equal(named.tag, 'v2');
    assert.equal(named.digest, DIGEST);
  });

  it('archives: oci-archive:FILE[:NAME]', () => {
    const ref = parseReference('oci-archive:/tmp/images.tar:quay.io/acme/app:1.0');
    assert.equal(ref.registry, 'oci-archive:/tmp/images.tar');
    assert.deepEqual(ref.layout, { kind: 'oci-archive', path: '/tmp/images.tar' });
    assert.equal(ref.path, 'quay.io/acme/app');
  });

  it('refuses an empty path, a bad name, a bad digest', () => {
    for (const [input, pattern] of [
      ['oci::v1', /no path: write oci:PATH/],
      ['oci:/x:../../etc', /not a valid image name in a layout/],
      ['oci:/x:a//b', /not a valid image name/],
      ['oci:/x:-v1', /not a valid image name/],
      ['oci:/x@sha256:abc', /is not a digest/],
    ] as const) {
      assert.throws(
        () => parseReference(input),
        (err: unknown) => err instanceof ReferenceSyntaxError && pattern.test(err.message),
        input,
      );
    }
  });

  it('repositories: the name is a prefix; a tag or digest is refused', () => {
    const repo = parseRepository('oci:/media/bundle:quay.io/acme/app');
    assert.equal(repo.path, 'quay.io/acme/app');
    assert.equal(formatRepository(repo), 'oci:/media/bundle:quay.io/acme/app');
    assert.equal(parseRepository('oci:/media/bundle').path, '');
    assert.throws(() => parseRepository('oci:/media/bundle:quay.io/acme/app:1.0'), /without tag or digest/);
    assert.throws(() => parseRepository(`oci:/media/bundle@${DIGEST}`), /without tag or digest/);
  });

  it('withTag / withDigest keep the layout', () => {
    const repo = parseRepository('oci:/b:acme/app');
    assert.equal(formatReference(withTag(repo, 'v1')), 'oci:/b:acme/app:v1');
    assert.deepEqual(withDigest(repo, DIGEST).layout, { kind: 'oci', path: '/b' });
  });

  it('keys never look like registries; registry references are untouched', () => {
    assert.ok(isLayoutKey('oci:/b'));
    assert.ok(!isLayoutKey('localhost:5000'));
    assert.ok(isLayoutInput(' oci-archive:x.tar'));
    assert.ok(!isLayoutInput('ocir.io/acme/app'));
    assert.deepEqual(parseReference('localhost:5000/oci:v1'), {
      registry: 'localhost:5000',
      path: 'oci',
      tag: 'v1',
    });
  });
});

describe('ref names', () => {
  it('follow the image-spec grammar', () => {
    for (const ok of ['v1', '1.0_beta', 'a--b', 'quay.io/acme/app:1.4.2', 'x@y+z', 'sha256-abc.sig']) {
      assert.ok(isValidRefName(ok), ok);
    }
    for (const bad of ['', '.v1', 'v1.', 'a..b', 'a/../b', '../x', 'a b', 'a/', '/a', 'x'.repeat(513)]) {
      assert.ok(!isValidRefName(bad), bad);
    }
  });

  it('split and join are inverses', () => {
    for (const name of ['v1', 'acme/app', 'quay.io/acme/app:1.4.2', 'localhost:5000/app:v1']) {
      const { prefix, tag } = splitRefName(name);
      assert.equal(joinRefName(prefix, tag), name);
    }
    assert.deepEqual(splitRefName('localhost:5000/app:v1'), { prefix: 'localhost:5000/app', tag: 'v1' });
  });
});
