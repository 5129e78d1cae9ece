// A manifest write waits for the run's own writes of the manifests it names, and tries once more when the
// registry refuses it for a named manifest it could not see for a moment: distribution's filesystem
// storage rewrites a manifest's links in place, so an index verified while a manifest it names is being
// written can be refused with MANIFEST_BLOB_UNKNOWN (seen with two mirrors of one image filling one
// target repository in one sync).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { writeManifest } from '../../src/copy/manifest-write.js';
import { RegistryError } from '../../src/errors.js';
import { type Digest, digestOf } from '../../src/oci/digest.js';
import { parseManifest } from '../../src/oci/manifest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import type { Repository } from '../../src/reference/reference.js';
import { MemoryStore } from './memory-store.js';

/** A memory registry whose manifest writes take a while, during which the manifest is not there to see. */
class RewritingStore extends MemoryStore {
  private readonly writing = new Set<Digest>();
  /** Every manifest PUT that reached the registry, refused or not. */
  attempts = 0;
  override async manifestPut(r: Repository, selector: string, bytes: Uint8Array, mediaType: string) {
    this.attempts++;
    const digest = digestOf(bytes);
    // What an index names is verified as its write begins.
    const m = parseManifest(bytes, mediaType);
    const unseen =
      m.kind === 'index'
        ? m.manifests.find((c) => this.writing.has(c.digest) || !this.repo(r).manifests.has(c.digest))
        : undefined;
    if (unseen) {
      throw new RegistryError(`registry answered HTTP 400: MANIFEST_BLOB_UNKNOWN: ${unseen.digest}`, {
        status: 400,
        codes: ['DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN'],
      });
    }
    this.writing.add(digest);
    try {
      await sleep(30);
      return await super.manifestPut(r, selector, bytes, mediaType);
    } finally {
      this.writing.delete(digest);
    }
  }
}

const REPO: Repository = { registry: 'r.example', path: 'shared' };

function fixture(store: MemoryStore) {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const configDigest = store.putBlob(REPO, config);
  const image = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.byteLength },
      layers: [],
    }),
  );
  const imageDigest = digestOf(image);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: imageDigest, size: image.byteLength }],
    }),
  );
  return { image, imageDigest, index };
}

describe('writeManifest', () => {
  it('an index waits for the run’s own write of a manifest it names', async () => {
    const store = new RewritingStore();
    const knowledge = new BlobKnowledge();
    const { image, imageDigest, index } = fixture(store);
    // Another image of the run is writing the child right now.
    const child = writeManifest(store, knowledge, {
      repo: REPO,
      selector: imageDigest,
      bytes: image,
      mediaType: OCI_MANIFEST,
      names: [],
    });
    await sleep(5);
    const pushed = await writeManifest(store, knowledge, {
      repo: REPO,
      selector: 'v1',
      bytes: index,
      mediaType: OCI_INDEX,
      names: [imageDigest],
    });
    await child;
    assert.equal(pushed, digestOf(index));
    // Waited, not refused and tried again: two PUTs in all.
    assert.equal(store.attempts, 2);
  });

  it('without the run’s knowledge the same moment is refused (what the wait prevents)', async () => {
    const store = new RewritingStore();
    const { image, imageDigest, index } = fixture(store);
    const child = store.manifestPut(REPO, imageDigest, image, OCI_MANIFEST);
    await sleep(5);
    await assert.rejects(store.manifestPut(REPO, 'v1', index, OCI_INDEX), /MANIFEST_BLOB_UNKNOWN/);
    await child;
  });

  it('a refusal caused by a write the run does not know of (another process) is tried once more', async () => {
    const store = new RewritingStore();
    const knowledge = new BlobKnowledge();
    const { image, imageDigest, index } = fixture(store);
    const foreign = store.manifestPut(REPO, imageDigest, image, OCI_MANIFEST);
    await sleep(5);
    const pushed = await writeManifest(store, knowledge, {
      repo: REPO,
      selector: 'v1',
      bytes: index,
      mediaType: OCI_INDEX,
      names: [imageDigest],
    });
    await foreign;
    assert.equal(pushed, digestOf(index));
    assert.equal(store.attempts, 3, 'the foreign write, the refused index, the index again');
  });

  it('a manifest that names something really missing is refused after one more try, not looped', async () => {
    const store = new RewritingStore();
    const knowledge = new BlobKnowledge();
    const { imageDigest, index } = fixture(store);
    await assert.rejects(
      writeManifest(store, knowledge, {
        repo: REPO,
        selector: 'v1',
        bytes: index,
        mediaType: OCI_INDEX,
        names: [imageDigest],
      }),
      /MANIFEST_BLOB_UNKNOWN/,
    );
    assert.equal(store.attempts, 2, 'one more try, then the refusal stands');
  });
});
