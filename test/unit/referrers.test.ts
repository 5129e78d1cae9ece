// The pure referrer functions (tag names, descriptors, merging, filters) and the per-registry referrers
// mode, which decides once per registry and makes concurrent first requests wait for the first answer.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { specsFrom } from '../../src/cli/commands/sync.js';
import type { ResolvedMirror } from '../../src/config/resolve.js';
import { digestOf, referrersTagFor } from '../../src/oci/digest.js';
import { type Descriptor, parseManifest } from '../../src/oci/manifest.js';
import { OCI_EMPTY, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import {
  artifactTypeMatches,
  buildReferrersIndex,
  cosignTag,
  isArtifactTypePattern,
  isCopyableReferrer,
  isFallbackTag,
  isReferrerTag,
  keepsReferrer,
  mergeReferrers,
  parseCosignTag,
  printableArtifactType,
  referrerDescriptor,
  referrersOf,
  serverFilterFor,
} from '../../src/oci/referrers.js';
import { ReferrersModes } from '../../src/registry/referrers-mode.js';

const HEX = 'ab'.repeat(32);
const D = `sha256:${HEX}`;
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 3));

const desc = (n: number, artifactType?: string, annotations?: Record<string, string>): Descriptor => ({
  mediaType: OCI_MANIFEST,
  digest: `sha256:${String(n).padStart(64, '0')}`,
  size: 100 + n,
  ...(artifactType ? { artifactType } : {}),
  ...(annotations ? { annotations } : {}),
});

describe('referrer tag names', () => {
  it('names the fallback tag and cosign tags of a digest, and recognises them', () => {
    assert.equal(referrersTagFor(D), `sha256-${HEX}`);
    // sha512: the encoded part is cut to 64 characters, so the tag stays valid.
    assert.equal(referrersTagFor(`sha512:${'c'.repeat(128)}`), `sha512-${'c'.repeat(64)}`);
    assert.equal(cosignTag(D, 'sig'), `sha256-${HEX}.sig`);
    assert.equal(cosignTag(D, 'att'), `sha256-${HEX}.att`);
    assert.equal(cosignTag(D, 'sbom'), `sha256-${HEX}.sbom`);
    assert.equal(cosignTag(`sha512:${'c'.repeat(128)}`, 'sig'), undefined, 'longer than a tag may be');
    assert.equal(cosignTag('nonsense', 'sig'), undefined);
    assert.deepEqual(parseCosignTag(`sha256-${HEX}.att`), { digest: D, suffix: 'att' });
    for (const t of [
      `sha256-${HEX}`,
      `sha256-${HEX}.sig.sig`,
      `sha256-${HEX.slice(2)}.sig`,
      'v1.2.sig',
      `SHA256-${HEX}.sig`,
    ]) {
      assert.equal(parseCosignTag(t), undefined, t);
    }
    assert.equal(isFallbackTag(`sha256-${HEX}`), true);
    assert.equal(isFallbackTag(`sha256-${HEX}.sig`), false);
    assert.equal(isReferrerTag(`sha256-${HEX}`), true);
    assert.equal(isReferrerTag(`sha256-${HEX}.sbom`), true);
    assert.equal(isReferrerTag('sha256-latest'), false);
    assert.equal(isReferrerTag('1.2.3'), false);
  });
});

describe('referrer descriptors', () => {
  it('takes artifactType from the manifest, else its config media type; copies every annotation', () => {
    const withType = parseManifest(
      enc({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/spdx+json',
        config: { mediaType: OCI_EMPTY, digest: digestOf(enc({})), size: 2 },
        layers: [],
        subject: { mediaType: OCI_INDEX, digest: D, size: 10 },
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
      }),
    );
    assert.deepEqual(referrerDescriptor(withType), {
      mediaType: OCI_MANIFEST,
      digest: withType.digest,
      size: withType.bytes.byteLength,
      artifactType: 'application/spdx+json',
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    const cosignStyle = parseManifest(
      enc({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 3 },
        layers: [],
      }),
    );
    assert.equal(referrerDescriptor(cosignStyle).artifactType, 'application/vnd.oci.image.config.v1+json');
    assert.equal('annotations' in referrerDescriptor(cosignStyle), false);
    // An index without artifactType has none in its descriptor (the spec: omitted).
    const index = parseManifest(enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    assert.equal('artifactType' in referrerDescriptor(index), false);
  });

  it('reads a referrers index and refuses anything else as one', () => {
    const bytes = buildReferrersIndex([desc(1, 'a/b', { k: 'v' }), desc(2)]);
    const parsed = parseManifest(bytes);
    assert.equal(parsed.mediaType, OCI_INDEX);
    assert.deepEqual(referrersOf(parsed), [desc(1, 'a/b', { k: 'v' }), desc(2)]);
    const image = parseManifest(
      enc({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc(3), layers: [] }),
    );
    assert.throws(() => referrersOf(image), /must be an image index/);
    assert.equal(isCopyableReferrer(desc(1)), true);
    assert.equal(
      isCopyableReferrer({ ...desc(1), mediaType: 'application/vnd.oci.artifact.manifest.v1+json' }),
      false,
    );
  });
});

describe('mergeReferrers', () => {
  it('keeps what is there first, appends what is new, never twice the same digest', () => {
    const theirs = desc(1, 'application/vnd.theirs', { who: 'them' });
    const mineAgain = { ...desc(1, 'application/vnd.other') };
    const { merged, added } = mergeReferrers([theirs, desc(2)], [mineAgain, desc(3, 'a/b'), desc(3, 'a/b')]);
    assert.deepEqual(merged, [theirs, desc(2), desc(3, 'a/b')]);
    assert.deepEqual(added, [desc(3, 'a/b')]);
  });

  it('adds nothing when everything is listed, and drops duplicates already there', () => {
    const { merged, added } = mergeReferrers([desc(1), desc(1), desc(2)], [desc(2), desc(1)]);
    assert.deepEqual(merged, [desc(1), desc(2)]);
    assert.deepEqual(added, []);
  });
});

describe('artifactType filters', () => {
  it('matches exact types and * wildcards', () => {
    assert.equal(artifactTypeMatches('application/spdx+json', 'application/spdx+json'), true);
    assert.equal(artifactTypeMatches('application/spdx+json', 'application/spdx+jsonx'), false);
    assert.equal(artifactTypeMatches('application/vnd.in-toto*', 'application/vnd.in-toto+json'), true);
    assert.equal(artifactTypeMatches('*', 'anything/at.all'), true);
    assert.equal(artifactTypeMatches('application/*.sig', 'application/vnd.x.sig'), true);
    assert.equal(artifactTypeMatches('application/*.sig', 'application/vnd.x.sig.v1'), false);
  });

  it('keeps what artifactTypes names and exclude does not', () => {
    const sbom = desc(1, 'application/spdx+json');
    const intoto = desc(2, 'application/vnd.in-toto+json');
    const untyped = desc(3);
    assert.deepEqual(
      [sbom, intoto, untyped].filter((d) => keepsReferrer({}, d)),
      [sbom, intoto, untyped],
    );
    const only = { artifactTypes: ['application/spdx+json'] };
    assert.deepEqual(
      [sbom, intoto, untyped].filter((d) => keepsReferrer(only, d)),
      [sbom],
    );
    const not = { exclude: ['application/vnd.in-toto*'] };
    assert.deepEqual(
      [sbom, intoto, untyped].filter((d) => keepsReferrer(not, d)),
      [sbom, untyped],
    );
    const both = { artifactTypes: ['application/*'], exclude: ['application/spdx+json'] };
    assert.deepEqual(
      [sbom, intoto, untyped].filter((d) => keepsReferrer(both, d)),
      [intoto],
    );
  });

  it('asks the registry to filter only for one exact type', () => {
    assert.equal(serverFilterFor({}), undefined);
    assert.equal(serverFilterFor({ artifactTypes: ['a/b'] }), 'a/b');
    assert.equal(serverFilterFor({ artifactTypes: ['a/b', 'c/d'] }), undefined);
    assert.equal(serverFilterFor({ artifactTypes: ['a/*'] }), undefined);
  });

  it('accepts media types and wildcards as patterns, nothing else', () => {
    for (const ok of ['application/spdx+json', 'application/vnd.in-toto*', '*', '*/*', 'text/plain']) {
      assert.equal(isArtifactTypePattern(ok), true, ok);
    }
    for (const bad of ['spdx', '', 'a/b/c', 'application/ spdx', '/x']) {
      assert.equal(isArtifactTypePattern(bad), false, bad);
    }
  });

  it('makes a registry-sent artifact type safe to print', () => {
    assert.equal(printableArtifactType('application/spdx+json'), 'application/spdx+json');
    assert.equal(printableArtifactType('evil\u001b[31m/red\n'), 'evil\\u001b[31m/red\\n');
    assert.equal(printableArtifactType(`a/${'x'.repeat(400)}`).length, 255);
  });
});

describe('ReferrersModes', () => {
  it('lets one request per registry find out; the others wait for its answer, then go side by side', async () => {
    const modes = new ReferrersModes();
    let probing = 0;
    let probesAtOnce = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const ask = async () => {
      const unknown = modes.get('r.example') === undefined;
      if (unknown) probesAtOnce = Math.max(probesAtOnce, ++probing);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      if (unknown) {
        probing--;
        modes.learn('r.example', 'tag-schema');
      }
      return modes.get('r.example');
    };
    const answers = await Promise.all(Array.from({ length: 5 }, () => modes.once('r.example', ask)));
    assert.deepEqual(answers, Array(5).fill('tag-schema'));
    assert.equal(probesAtOnce, 1, 'two requests asked while the mode was unknown');
    // After the first answer the four that waited run together: nothing to find out any more.
    assert.equal(maxInFlight, 4);
  });

  it('keeps the first answer; an undecided probe lets the next request probe again', async () => {
    const modes = new ReferrersModes();
    await modes.once('a.example', async () => undefined);
    assert.equal(modes.get('a.example'), undefined);
    modes.learn('a.example', 'api');
    modes.learn('a.example', 'tag-schema');
    assert.equal(modes.get('a.example'), 'api');
    assert.equal(modes.get('b.example'), undefined);
  });
});

describe('sync tag selection with referrers', () => {
  const mirror = (referrers: ResolvedMirror['referrers']): ResolvedMirror => ({
    name: 'm',
    source: { registry: 'src.example', path: 'app' },
    targets: [{ registry: 'dst.example', path: 'app' }],
    tags: undefined,
    platforms: 'all',
    overwrite: 'changed',
    concurrency: 1,
    referrers,
    cosignTags: true,
  });
  const tags = ['v1', `sha256-${HEX}`, `sha256-${HEX}.sig`, `sha256-${HEX}.att`, 'sha256-latest'];

  it('leaves fallback and cosign tags to travel with their subjects when referrers are on', () => {
    const [spec] = specsFrom([mirror({})], false);
    assert.deepEqual(
      spec!
        .select(tags)
        .map((t) => t.tag)
        .sort(),
      ['sha256-latest', 'v1'],
    );
    assert.deepEqual(spec!.options.referrers, { cosignTags: true });
  });

  it('selects them as ordinary tags when referrers are off', () => {
    const [spec] = specsFrom([mirror(false)], false);
    assert.deepEqual(
      spec!
        .select(tags)
        .map((t) => t.tag)
        .sort(),
      [...tags].sort(),
    );
    assert.equal(spec!.options.referrers, undefined);
  });
});
