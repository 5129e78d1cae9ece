import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  algorithmOf,
  Digester,
  digestOf,
  isDigest,
  parseDigest,
  referrersTagFor,
  shortDigest,
} from '../../src/oci/digest.js';
import {
  blobsOf,
  childrenOf,
  descriptorOf,
  filterIndex,
  type IndexManifest,
  isAttestation,
  ManifestParseError,
  parseManifest,
} from '../../src/oci/manifest.js';
import {
  baseMediaType,
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V1_SIGNED,
  isImageManifestType,
  isIndexType,
  MANIFEST_ACCEPT,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/oci/media-types.js';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/oci/platform.js';

const enc = (text: string) => new TextEncoder().encode(text);
const json = (doc: unknown) => enc(JSON.stringify(doc));
/** A descriptor for some content, with a real digest. */
const desc = (mediaType: string, content: string, extra: Record<string, unknown> = {}) => ({
  mediaType,
  digest: digestOf(enc(content)),
  size: enc(content).byteLength,
  ...extra,
});

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const config = desc(OCI_CONFIG, '{"architecture":"amd64","os":"linux"}');
const layer = desc(LAYER, 'layer-bytes');

function rejectsParse(bytes: Uint8Array, pattern: RegExp, contentType?: string): void {
  assert.throws(
    () => parseManifest(bytes, contentType),
    (err: unknown) => {
      assert.ok(err instanceof ManifestParseError, `expected ManifestParseError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('parseManifest', () => {
  it('parses an OCI image manifest and computes the digest from the exact bytes', () => {
    const bytes = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'image');
    assert.equal(m.mediaType, OCI_MANIFEST);
    assert.equal(m.digest, digestOf(bytes));
    assert.equal(m.bytes, bytes);
    assert.deepEqual(blobsOf(m), [config, layer]);
    assert.deepEqual(childrenOf(m), []);
    assert.deepEqual(descriptorOf(m), { mediaType: OCI_MANIFEST, digest: m.digest, size: bytes.byteLength });
  });

  it('parses an OCI index with platforms on its descriptors', () => {
    const child = desc(OCI_MANIFEST, 'child', {
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    const bytes = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'index');
    assert.equal(m.mediaType, OCI_INDEX);
    assert.deepEqual(childrenOf(m), [child]);
    assert.deepEqual(blobsOf(m), []);
  });

  it('detects an OCI manifest without a mediaType field by its shape', () => {
    const bytes = json({ schemaVersion: 2, config, layers: [layer] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'image');
    assert.equal(m.mediaType, OCI_MANIFEST);
    const viaJson = parseManifest(bytes, 'application/json');
    assert.equal(viaJson.mediaType, OCI_MANIFEST);
  });

  it('detects an OCI index without a mediaType field by its shape', () => {
    const bytes = json({ schemaVersion: 2, manifests: [desc(OCI_MANIFEST, 'c')] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'index');
    assert.equal(m.mediaType, OCI_INDEX);
  });

  it('takes the media type from Content-Type when the document has none', () => {
    const bytes = json({ schemaVersion: 2, manifests: [] });
    assert.equal(parseManifest(bytes, DOCKER_MANIFEST_LIST).mediaType, DOCKER_MANIFEST_LIST);
  });

  it('parses a Docker schema 2 manifest', () => {
    const cfg = desc(DOCKER_CONFIG, '{}');
    const l = desc('application/vnd.docker.image.rootfs.diff.tar.gzip', 'x');
    const bytes = json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: cfg, layers: [l] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'image');
    assert.equal(m.mediaType, DOCKER_MANIFEST);
    assert.deepEqual(blobsOf(m), [cfg, l]);
  });

  it('parses a Docker manifest list, keeping os.version and features', () => {
    const child = desc(DOCKER_MANIFEST, 'win', {
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.1', features: ['sse4'] },
    });
    const bytes = json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [child] });
    const m = parseManifest(bytes);
    assert.equal(m.kind, 'index');
    assert.equal(m.mediaType, DOCKER_MANIFEST_LIST);
    assert.deepEqual(childrenOf(m)[0], child);
  });

  it('keeps artifactType, subject and annotations of an artifact manifest', () => {
    const subject = desc(OCI_MANIFEST, 'the image');
    const empty = desc(OCI_EMPTY, '{}');
    const sbom = desc('application/spdx+json', '{"spdx":1}');
    const bytes = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/spdx+json',
      config: empty,
      layers: [sbom],
      subject,
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    const m = parseManifest(bytes);
    assert.equal(m.artifactType, 'application/spdx+json');
    assert.deepEqual(m.subject, subject);
    assert.deepEqual(m.annotations, { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
    assert.deepEqual(blobsOf(m), [empty, sbom]);
  });

  it('keeps unknown descriptor fields (data, urls) instead of dropping them', () => {
    const withData = desc(LAYER, 'inline', { data: 'aW5saW5l', urls: ['https://example.com/l'] });
    const m = parseManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [withData] }));
    assert.deepEqual(blobsOf(m)[1], withData);
  });

  it('rejects Docker schema 1 with a clear message, by media type or by schemaVersion', () => {
    const v1 = json({ schemaVersion: 1, name: 'a', tag: 'b', fsLayers: [], history: [] });
    rejectsParse(v1, /schema 1 .*not supported/);
    rejectsParse(v1, /schema 1 .*not supported/, DOCKER_MANIFEST_V1_SIGNED);
    rejectsParse(json({ schemaVersion: 2, config, layers: [] }), /schema 1/, DOCKER_MANIFEST_V1_SIGNED);
  });

  it('rejects invalid JSON and non-objects', () => {
    rejectsParse(enc('{"schemaVersion": 2,'), /not valid JSON/);
    rejectsParse(enc('[1,2]'), /not a JSON object/);
    rejectsParse(enc('null'), /not a JSON object/);
  });

  it('rejects an image manifest without layers, naming the field', () => {
    rejectsParse(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config }),
      /invalid image manifest: layers/,
    );
  });

  it('rejects an index without manifests, naming the field', () => {
    rejectsParse(json({ schemaVersion: 2, mediaType: OCI_INDEX }), /invalid index: manifests/);
  });

  it('rejects a descriptor with a bad digest, naming where it is', () => {
    const bad = { ...layer, digest: `sha256:${'A'.repeat(64)}` };
    rejectsParse(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [bad] }),
      /layers\.0\.digest: not a valid digest/,
    );
    const short = { ...layer, digest: 'sha256:abc' };
    rejectsParse(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: short, layers: [] }),
      /config\.digest/,
    );
  });

  it('rejects a negative or fractional size', () => {
    rejectsParse(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, size: -1 }, layers: [] }),
      /size/,
    );
    rejectsParse(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...config, size: 1.5 }, layers: [] }),
      /size/,
    );
  });

  it('rejects an unknown media type by name', () => {
    rejectsParse(
      json({ schemaVersion: 2, mediaType: 'application/x-other', layers: [] }),
      /"application\/x-other"/,
    );
  });

  it('is whitespace-sensitive: the same document formatted differently has another digest', () => {
    const doc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
    const compact = json(doc);
    const pretty = enc(JSON.stringify(doc, null, 3));
    const a = parseManifest(compact);
    const b = parseManifest(pretty);
    assert.notEqual(a.digest, b.digest);
    assert.equal(b.digest, digestOf(pretty));
    assert.deepEqual(Buffer.from(b.bytes), Buffer.from(pretty));
  });
});

describe('filterIndex', () => {
  const amd64 = desc(OCI_MANIFEST, 'amd64', { platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = desc(OCI_MANIFEST, 'arm64', {
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    annotations: { 'org.example.note': 'kept' },
  });
  const s390x = desc(OCI_MANIFEST, 's390x', { platform: { os: 'linux', architecture: 's390x' } });
  const attestationFor = (target: { digest: string }, name: string) =>
    desc(OCI_MANIFEST, name, {
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: {
        'vnd.docker.reference.digest': target.digest,
        'vnd.docker.reference.type': 'attestation-manifest',
      },
    });
  const attAmd64 = attestationFor(amd64, 'att-amd64');
  const attS390x = attestationFor(s390x, 'att-s390x');
  const source = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [amd64, arm64, s390x, attAmd64, attS390x],
    annotations: { 'org.opencontainers.image.source': 'https://example.com' },
    'x-vendor': 'kept too',
  };
  const index = parseManifest(enc(JSON.stringify(source, null, 2))) as IndexManifest;
  const want = ['linux/amd64', 'linux/arm64'].map((p) => parsePlatform(p)!);
  const keep = (p: Parameters<typeof platformMatches>[0]) => want.some((w) => platformMatches(p, w));

  it('recognises attestation manifests by their annotation', () => {
    assert.equal(isAttestation(attAmd64), true);
    assert.equal(isAttestation(amd64), false);
  });

  it('keeps the chosen platforms and the attestations of kept platforms, in the source order', () => {
    const filtered = filterIndex(index, keep);
    assert.deepEqual(
      filtered.manifests.map((d) => d.digest),
      [amd64.digest, arm64.digest, attAmd64.digest],
    );
  });

  it('leaves the kept child descriptors and the other index fields unchanged', () => {
    const filtered = filterIndex(index, keep);
    const doc = JSON.parse(Buffer.from(filtered.bytes).toString('utf8'));
    assert.deepEqual(doc.manifests, [amd64, arm64, attAmd64]);
    assert.equal(doc.mediaType, OCI_INDEX);
    assert.equal(doc.schemaVersion, 2);
    assert.deepEqual(doc.annotations, source.annotations);
    assert.equal(doc['x-vendor'], 'kept too');
  });

  it('computes a new digest from the new bytes and keeps the media type', () => {
    const filtered = filterIndex(index, keep);
    assert.notEqual(filtered.digest, index.digest);
    assert.equal(filtered.digest, digestOf(filtered.bytes));
    assert.equal(filtered.mediaType, OCI_INDEX);
    assert.equal(filtered.kind, 'index');
    // The result parses back to the same index.
    const again = parseManifest(filtered.bytes);
    assert.equal(again.digest, filtered.digest);
    assert.deepEqual(childrenOf(again), filtered.manifests);
  });

  it('drops every attestation when no platform is kept', () => {
    const filtered = filterIndex(index, () => false);
    assert.deepEqual(filtered.manifests, []);
  });

  it('does not modify the source index', () => {
    const before = Buffer.from(index.bytes);
    filterIndex(index, keep);
    assert.deepEqual(Buffer.from(index.bytes), before);
    assert.equal(index.manifests.length, 5);
  });
});

describe('platforms', () => {
  it('parses os/arch and os/arch/variant', () => {
    assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });

  it('refuses anything that is not os/arch[/variant]', () => {
    for (const text of ['linux', 'linux/', 'linux/arm64/', 'a/b/c/d', '', 'linux/amd 64', '/amd64']) {
      assert.equal(parsePlatform(text), undefined, text);
    }
  });

  it('formats platforms, with "unknown" for none', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64', variant: '' }), 'linux/amd64');
    assert.equal(formatPlatform(undefined), 'unknown');
  });

  it('round-trips parse and format', () => {
    for (const text of ['linux/amd64', 'linux/arm/v6', 'windows/amd64']) {
      assert.equal(formatPlatform(parsePlatform(text)), text);
    }
  });

  it('matches any variant when the wanted platform has none, else only that variant', () => {
    const v7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
    const v6 = { os: 'linux', architecture: 'arm', variant: 'v6' };
    assert.equal(platformMatches(v7, parsePlatform('linux/arm')!), true);
    assert.equal(platformMatches(v7, parsePlatform('linux/arm/v7')!), true);
    assert.equal(platformMatches(v6, parsePlatform('linux/arm/v7')!), false);
    assert.equal(
      platformMatches({ os: 'linux', architecture: 'arm' }, parsePlatform('linux/arm/v7')!),
      false,
    );
  });

  it('does not match another os or architecture, nor a descriptor without a platform', () => {
    const want = parsePlatform('linux/amd64')!;
    assert.equal(platformMatches({ os: 'windows', architecture: 'amd64' }, want), false);
    assert.equal(platformMatches({ os: 'linux', architecture: 'arm64' }, want), false);
    assert.equal(platformMatches(undefined, want), false);
  });
});

describe('digests', () => {
  it('computes sha256 of the known empty input', () => {
    assert.equal(
      digestOf(new Uint8Array(0)),
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    assert.equal(
      digestOf(enc('{}')),
      'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    );
  });

  it('gives the same digest from a Digester fed in pieces as digestOf on the whole', () => {
    const bytes = enc('the quick brown fox jumps over the lazy dog'.repeat(100));
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const d = new Digester(algorithm);
      for (let i = 0; i < bytes.byteLength; i += 7) d.update(bytes.subarray(i, i + 7));
      assert.equal(d.size, bytes.byteLength);
      assert.equal(d.digest(), digestOf(bytes, algorithm));
    }
  });

  it('parses and validates digests by algorithm and hex length', () => {
    const hex = 'b'.repeat(64);
    assert.deepEqual(parseDigest(`sha256:${hex}`), { algorithm: 'sha256', hex });
    assert.equal(parseDigest(`sha256:${'b'.repeat(128)}`), undefined);
    assert.equal(parseDigest(`sha512:${hex}`), undefined);
    assert.equal(parseDigest(`sha256:${hex.toUpperCase()}`), undefined);
    assert.equal(isDigest(`sha512:${'c'.repeat(128)}`), true);
    assert.equal(isDigest(42), false);
    assert.equal(algorithmOf(`sha512:${'c'.repeat(128)}`), 'sha512');
  });

  it('shortens digests for display and derives the referrers tag', () => {
    const d = `sha256:0123456789ab${'f'.repeat(52)}`;
    assert.equal(shortDigest(d), 'sha256:0123456789ab');
    assert.equal(shortDigest('not-a-digest'), 'not-a-digest');
    assert.equal(referrersTagFor(d), `sha256-0123456789ab${'f'.repeat(52)}`);
  });
});

describe('media types', () => {
  it('sorts index and image manifest types', () => {
    assert.equal(isIndexType(OCI_INDEX), true);
    assert.equal(isIndexType(DOCKER_MANIFEST_LIST), true);
    assert.equal(isIndexType(OCI_MANIFEST), false);
    assert.equal(isImageManifestType(DOCKER_MANIFEST), true);
    assert.equal(isImageManifestType(undefined), false);
  });

  it('lists every manifest type in the Accept header', () => {
    for (const t of [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST]) {
      assert.ok(MANIFEST_ACCEPT.split(', ').includes(t), t);
    }
  });

  it('strips parameters from a Content-Type', () => {
    assert.equal(baseMediaType('application/json; charset=utf-8'), 'application/json');
    assert.equal(baseMediaType(''), undefined);
    assert.equal(baseMediaType(null), undefined);
  });
});
