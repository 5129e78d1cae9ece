import { cosignSign, type SigningKey, signatureTag } from './cosign.js';
import {
  type Content,
  type Descriptor,
  type ManifestNode,
  MediaType,
  makeContent,
  ociArtifact,
} from './oci-builders.js';
import { RegistryClient, type SeedTarget } from './raw-client.js';
import { pushManifestTree, type SeededImage, seedImage } from './seed.js';

/**
 * A released image the way a careful publisher leaves it: a multi-arch OCI index (two platforms and
 * their buildx attestations), a cosign signature of the index and of each platform image, an SPDX SBOM
 * of the index and an in-toto attestation of the amd64 image attached as OCI 1.1 referrers (on a
 * registry without the referrers API, so listed in fallback indexes under `sha256-<hex>`, as oras and
 * cosign's OCI 1.1 mode write them), and a cosign signature of the SBOM.
 */

export const SPDX = 'application/spdx+json';
export const IN_TOTO = 'application/vnd.in-toto+json';

export interface SignedImage {
  image: SeededImage;
  repo: string;
  tag: string;
  sbom: ManifestNode;
  intoto: ManifestNode;
  /** cosign signature manifests by the digest they sign (index, amd64, arm64, SBOM). */
  signatures: Map<string, ManifestNode>;
  /** The fallback indexes pushed, by tag (`sha256-<hex>` of the index and of the amd64 image). */
  fallbackIndexes: Map<string, Content>;
  /** Every referrer manifest (OCI referrers and cosign signatures). */
  referrers: ManifestNode[];
  /** Every tag that carries a referrer or a referrers list, with the digest it points at. */
  referrerTags: Map<string, string>;
  /** The manifests of the image itself (index, platform images, attestations). */
  imageManifests: ManifestNode[];
}

export function fallbackTagOf(digest: string): string {
  return digest.replace(':', '-');
}

/** A referrers index as another client writes it (indented: re-serialising it would change its digest). */
export function fallbackIndexOf(descriptors: Descriptor[]): Content {
  return makeContent(
    Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: descriptors }, null, 3),
    ),
    MediaType.ociIndex,
  );
}

/** Push an OCI 1.1 referrer and list it in its subject's fallback index (read, merge, push: like oras). */
export async function attachReferrer(
  target: SeedTarget | RegistryClient,
  repo: string,
  referrer: ManifestNode,
  subject: string,
): Promise<Content> {
  const client = target instanceof RegistryClient ? target : new RegistryClient(target);
  await pushManifestTree(client, repo, referrer);
  const tag = fallbackTagOf(subject);
  let listed: Descriptor[] = [];
  try {
    const current = await client.getManifest(repo, tag);
    listed = (JSON.parse(current.bytes.toString('utf8')) as { manifests: Descriptor[] }).manifests;
  } catch {
    // No fallback index yet.
  }
  const index = fallbackIndexOf([...listed.filter((d) => d.digest !== referrer.digest), referrer.descriptor]);
  await client.pushManifest(repo, tag, index);
  return index;
}

export async function seedSignedImage(
  target: SeedTarget,
  host: string,
  repo: string,
  tag: string,
  key: SigningKey,
  seed = `${repo}:${tag}:signed`,
): Promise<SignedImage> {
  const client = new RegistryClient(target);
  const image = await seedImage(client, repo, tag, 'oci-index-with-attestations', { seed });
  const amd64 = image.children.find((c) => c.descriptor.platform?.architecture === 'amd64')!;
  const arm64 = image.children.find((c) => c.descriptor.platform?.architecture === 'arm64')!;
  const sbom = ociArtifact({
    seed: `${seed}/sbom`,
    subject: image.root.descriptor,
    artifactType: SPDX,
    payloadMediaType: SPDX,
    annotations: { 'org.example.sbom.format': 'spdx-2.3' },
  });
  const intoto = ociArtifact({
    seed: `${seed}/provenance`,
    subject: amd64.descriptor,
    artifactType: IN_TOTO,
    payloadMediaType: IN_TOTO,
    annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' },
  });
  const fallbackIndexes = new Map<string, Content>();
  fallbackIndexes.set(fallbackTagOf(image.digest), await attachReferrer(client, repo, sbom, image.digest));
  fallbackIndexes.set(fallbackTagOf(amd64.digest), await attachReferrer(client, repo, intoto, amd64.digest));
  const signatures = new Map<string, ManifestNode>();
  for (const signed of [image.root, amd64, arm64, sbom]) {
    signatures.set(signed.digest, await cosignSign(client, repo, `${host}/${repo}`, signed, key));
  }
  const referrerTags = new Map<string, string>();
  for (const [t, index] of fallbackIndexes) referrerTags.set(t, index.digest);
  for (const [signed, sig] of signatures) referrerTags.set(signatureTag(signed), sig.digest);
  return {
    image,
    repo,
    tag,
    sbom,
    intoto,
    signatures,
    fallbackIndexes,
    referrers: [sbom, intoto, ...signatures.values()],
    referrerTags,
    imageManifests: image.manifests,
  };
}
