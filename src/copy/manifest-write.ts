// One manifest write, made safe against the run's own concurrent writes. distribution's filesystem
// storage rewrites a manifest's link files in place (truncate, then write), and verifies that every
// manifest an index names exists: an index pushed while another image of the run is writing one of the
// manifests it names can find that manifest missing for an instant, and is refused with
// MANIFEST_BLOB_UNKNOWN (seen with two mirrors of one image filling one target). So a write first waits
// for the run's writes of what it names, and a refusal of that kind, which another process's write can
// cause just the same, is tried once more after a short pause.

import { RegistryError } from '../errors.js';
import { type Digest, digestOf } from '../oci/digest.js';
import type { Repository } from '../reference/reference.js';
import type { BlobKnowledge } from './knowledge.js';
import type { RegistryStore } from './store.js';

const SETTLE_PAUSE_MS = 300;

export interface ManifestWrite {
  repo: Repository;
  /** A tag, or the manifest's digest. */
  selector: string;
  bytes: Uint8Array;
  mediaType: string;
  /** The manifests this one names (an index's children, a referrers index's entries). */
  names: readonly Digest[];
}

export async function writeManifest(
  store: RegistryStore,
  knowledge: BlobKnowledge | undefined,
  write: ManifestWrite,
  signal?: AbortSignal,
): Promise<Digest> {
  const { repo, selector, bytes, mediaType, names } = write;
  const put = () => store.manifestPut(repo, selector, bytes, mediaType);
  if (!knowledge) return put();
  const digest = digestOf(bytes);
  await knowledge.manifestsSettled(repo.registry, repo.path, names);
  try {
    return await knowledge.writingManifest(repo.registry, repo.path, digest, put());
  } catch (err) {
    if (!(err instanceof RegistryError) || !err.codes.includes('MANIFEST_BLOB_UNKNOWN') || names.length === 0)
      throw err;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_PAUSE_MS));
    if (signal?.aborted) throw err;
    return knowledge.writingManifest(repo.registry, repo.path, digest, put());
  }
}
