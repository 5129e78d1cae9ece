import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  apiHost,
  formatReference,
  formatRepository,
  isDockerHub,
  isValidDigest,
  isValidTag,
  normaliseRegistry,
  parseReference,
  parseRepository,
  type Reference,
  ReferenceSyntaxError,
  referenceSelector,
  sameRepository,
  withDigest,
  withTag,
} from '../../src/reference/reference.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

/** Asserts that parsing fails with a ReferenceSyntaxError whose message matches `pattern`. */
function rejects(input: string, pattern: RegExp): void {
  assert.throws(
    () => parseReference(input),
    (err: unknown) => {
      assert.ok(err instanceof ReferenceSyntaxError, `expected ReferenceSyntaxError, got ${String(err)}`);
      assert.equal(err.input, input);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('parseReference: Docker Hub', () => {
  it('expands a short name to docker.io/library/<name>:latest', () => {
    assert.deepEqual(parseReference('ubuntu'), {
      registry: 'docker.io',
      path: 'library/ubuntu',
      tag: 'latest',
    });
  });

  it('keeps an organisation path on Docker Hub without adding library/', () => {
    assert.deepEqual(parseReference('bitnami/redis:7.2'), {
      registry: 'docker.io',
      path: 'bitnami/redis',
      tag: '7.2',
    });
  });

  it('folds index.docker.io and registry-1.docker.io into docker.io', () => {
    assert.deepEqual(parseReference('index.docker.io/x'), {
      registry: 'docker.io',
      path: 'library/x',
      tag: 'latest',
    });
    assert.deepEqual(parseReference('registry-1.docker.io/library/x'), {
      registry: 'docker.io',
      path: 'library/x',
      tag: 'latest',
    });
    assert.equal(parseReference('registry.hub.docker.com/org/x:1').registry, 'docker.io');
  });

  it('serves the API for docker.io (and its aliases) from registry-1.docker.io, others from themselves', () => {
    assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(apiHost('quay.io'), 'quay.io');
    assert.equal(apiHost('localhost:5000'), 'localhost:5000');
  });

  it('normalises registry names: lower-case and Docker Hub aliases', () => {
    assert.equal(normaliseRegistry('Quay.IO'), 'quay.io');
    assert.equal(normaliseRegistry('INDEX.DOCKER.IO'), 'docker.io');
    assert.equal(parseReference('QUAY.io/org/app').registry, 'quay.io');
    assert.equal(isDockerHub('registry-1.docker.io'), true);
    assert.equal(isDockerHub('quay.io'), false);
  });
});

describe('parseReference: registries, tags and digests', () => {
  it('splits localhost:5000/a/b:t@sha256:… into all its parts', () => {
    assert.deepEqual(parseReference(`localhost:5000/a/b:t@${DIGEST}`), {
      registry: 'localhost:5000',
      path: 'a/b',
      tag: 't',
      digest: DIGEST,
    });
  });

  it('treats "localhost" without a port as a registry', () => {
    assert.deepEqual(parseReference('localhost/app'), { registry: 'localhost', path: 'app', tag: 'latest' });
  });

  it('accepts a bracketed IPv6 registry with a port', () => {
    assert.deepEqual(parseReference('[::1]:5000/x'), { registry: '[::1]:5000', path: 'x', tag: 'latest' });
    assert.deepEqual(parseReference('[::1]/x:v1'), { registry: '[::1]', path: 'x', tag: 'v1' });
  });

  it('accepts an IPv4 registry with a port, and its tag', () => {
    assert.deepEqual(parseReference('10.0.0.7:5000/team/app:1.0'), {
      registry: '10.0.0.7:5000',
      path: 'team/app',
      tag: '1.0',
    });
  });

  it('does not mistake the port for a tag, nor the tag for a port', () => {
    const ref = parseReference('registry.internal:5000/app');
    assert.equal(ref.registry, 'registry.internal:5000');
    assert.equal(ref.tag, 'latest');
  });

  it('does not add a tag when a digest is given', () => {
    assert.deepEqual(parseReference(`quay.io/org/app@${DIGEST}`), {
      registry: 'quay.io',
      path: 'org/app',
      digest: DIGEST,
    });
  });

  it('accepts sha512 digests', () => {
    const d = `sha512:${'0'.repeat(128)}`;
    assert.equal(parseReference(`quay.io/a@${d}`).digest, d);
  });

  it('keeps tag case and accepts the longest tag (128 characters)', () => {
    assert.equal(parseReference('a:Latest_1.0-RC').tag, 'Latest_1.0-RC');
    const tag = `v${'x'.repeat(127)}`;
    assert.equal(parseReference(`a:${tag}`).tag, tag);
  });

  it('ignores surrounding whitespace', () => {
    assert.deepEqual(parseReference('  quay.io/a:b \n'), { registry: 'quay.io', path: 'a', tag: 'b' });
  });
});

describe('parseReference: defaultTag', () => {
  it('uses the given default tag', () => {
    assert.equal(parseReference('quay.io/a', { defaultTag: 'stable' }).tag, 'stable');
  });

  it('leaves the tag absent with defaultTag null', () => {
    const ref = parseReference('quay.io/a', { defaultTag: null });
    assert.deepEqual(ref, { registry: 'quay.io', path: 'a' });
    assert.equal('tag' in ref, false);
  });

  it('keeps an explicit tag whatever the default', () => {
    assert.equal(parseReference('quay.io/a:1', { defaultTag: null }).tag, '1');
  });
});

describe('parseReference: errors', () => {
  it('rejects an upper-case repository with a message about lower-case', () => {
    rejects('quay.io/Org/app', /lower-case/);
    rejects('MyImage', /lower-case \("MyImage"\)/);
  });

  it('rejects bad tags', () => {
    rejects('quay.io/a:-bad', /not a valid tag/);
    rejects('quay.io/a:.bad', /not a valid tag/);
    rejects('quay.io/a:bad!', /not a valid tag/);
    rejects(`quay.io/a:${'x'.repeat(129)}`, /not a valid tag/);
    rejects('quay.io/a:', /not a valid tag/);
  });

  it('rejects a digest of the wrong length', () => {
    rejects(`quay.io/a@sha256:${'a'.repeat(63)}`, /is not a digest/);
    rejects(`quay.io/a@sha256:${'a'.repeat(65)}`, /is not a digest/);
  });

  it('rejects a digest with upper-case hex', () => {
    rejects(`quay.io/a@sha256:${'A'.repeat(64)}`, /lower-case hex/);
  });

  it('rejects an unknown digest algorithm and an empty digest', () => {
    rejects(`quay.io/a@md5:${'a'.repeat(32)}`, /is not a digest/);
    rejects('quay.io/a@', /is not a digest/);
  });

  it('rejects a URL and says to leave out the scheme', () => {
    rejects('https://quay.io/org/app:1', /leave out the scheme/);
    rejects('docker://ubuntu', /leave out the scheme/);
  });

  it('rejects empty and blank input', () => {
    rejects('', /empty/);
    rejects('   ', /empty/);
  });

  it('rejects a trailing slash and empty path components', () => {
    rejects('quay.io/org/', /empty component/);
    rejects('ubuntu/', /empty component/);
    rejects('quay.io//app', /empty component/);
  });

  it('rejects a registry with nothing after it', () => {
    rejects('quay.io/', /empty component/);
  });

  it('rejects invalid ports and host names', () => {
    rejects('localhost:0/a', /invalid port/);
    rejects('localhost:65536/a', /invalid port/);
    rejects('quay.io:/a', /invalid port/);
    rejects('bad_host.io/a', /not a valid host name/);
    rejects('[::1/a', /unclosed IPv6 bracket/);
    rejects('[zz::1]:5000/a', /not an IPv6 address/);
  });

  it('rejects a repository path longer than 255 characters', () => {
    rejects(`quay.io/${'a'.repeat(256)}`, /longer than 255/);
  });
});

describe('parseReference: path components', () => {
  it('accepts ., _, __ and runs of - between alphanumerics', () => {
    for (const c of ['a__b', 'a--b', 'a---b', 'a.b', 'a_b', 'a-b', 'a1', '0']) {
      assert.equal(parseReference(`quay.io/${c}`).path, c, c);
    }
  });

  it('rejects doubled dots, leading or trailing separators, and ___', () => {
    for (const c of ['a..b', '-a', 'a-', '.a', '_a', 'a___b', 'a._b', 'a b']) {
      assert.throws(
        () => parseReference(`quay.io/${c}`),
        (err: unknown) =>
          err instanceof ReferenceSyntaxError && /not a valid repository path/.test(err.message),
        c,
      );
    }
  });
});

describe('parseRepository', () => {
  it('parses a repository without adding a tag', () => {
    assert.deepEqual(parseRepository('ubuntu'), { registry: 'docker.io', path: 'library/ubuntu' });
    assert.deepEqual(parseRepository('localhost:5000/a/b'), { registry: 'localhost:5000', path: 'a/b' });
  });

  it('rejects a tag or a digest', () => {
    assert.throws(() => parseRepository('quay.io/a:1'), /without tag or digest/);
    assert.throws(() => parseRepository(`quay.io/a@${DIGEST}`), /without tag or digest/);
  });
});

describe('formatting and helpers', () => {
  it('round-trips through formatReference', () => {
    const inputs = [
      'docker.io/library/ubuntu:latest',
      `localhost:5000/a/b:t@${DIGEST}`,
      `quay.io/org/app@${DIGEST}`,
      '[::1]:5000/x:v1',
      '10.0.0.7:5000/team/app:1.0',
    ];
    for (const input of inputs) {
      const ref = parseReference(input);
      assert.equal(formatReference(ref), input);
      assert.deepEqual(parseReference(formatReference(ref)), ref);
    }
  });

  it('formats the normalised form of short names', () => {
    assert.equal(formatReference(parseReference('ubuntu')), 'docker.io/library/ubuntu:latest');
    assert.equal(formatRepository(parseRepository('index.docker.io/x')), 'docker.io/library/x');
  });

  it('selects the digest over the tag, and refuses a reference with neither', () => {
    assert.equal(referenceSelector(parseReference(`a:1@${DIGEST}`)), DIGEST);
    assert.equal(referenceSelector(parseReference('a:1')), '1');
    const bare: Reference = { registry: 'quay.io', path: 'a' };
    assert.throws(() => referenceSelector(bare), /neither tag nor digest/);
  });

  it('builds tagged and digested references from a repository, dropping the other selector', () => {
    const ref = parseReference(`quay.io/a:1@${DIGEST}`);
    assert.deepEqual(withTag(ref, '2'), { registry: 'quay.io', path: 'a', tag: '2' });
    assert.deepEqual(withDigest(ref, DIGEST), { registry: 'quay.io', path: 'a', digest: DIGEST });
  });

  it('compares repositories by registry and path only', () => {
    assert.equal(sameRepository(parseReference('a:1'), parseReference('docker.io/library/a:2')), true);
    assert.equal(sameRepository(parseReference('quay.io/a'), parseReference('ghcr.io/a')), false);
  });

  it('validates tags and digests on their own', () => {
    assert.equal(isValidTag('v1.0'), true);
    assert.equal(isValidTag('-v1'), false);
    assert.equal(isValidDigest(DIGEST), true);
    assert.equal(isValidDigest(`sha256:${HEX.toUpperCase()}`), false);
  });
});
