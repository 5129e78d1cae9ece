import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import {
  type Content,
  descriptorOf,
  type ManifestNode,
  MediaType,
  makeContent,
  sha256Digest,
} from './oci-builders.js';
import type { RegistryClient } from './raw-client.js';

/**
 * Signatures in cosign's format, made and checked here with node:crypto (Debian's skopeo 1.9.3 has its
 * sigstore support compiled out, so it can witness the bytes but not the signature), written from
 * cosign's documented layout, independently of src/:
 *
 *  - the payload is a "simple signing" document naming the signed manifest's digest
 *    (`critical.image["docker-manifest-digest"]`);
 *  - the signature is ECDSA P-256 over SHA-256 of the payload bytes, ASN.1 DER, base64, in the layer
 *    annotation `dev.cosignproject.cosign/signature`;
 *  - the signature manifest is an OCI image manifest whose layers are such payloads
 *    (`application/vnd.dev.cosign.simplesigning.v1+json`), pushed under the tag `sha256-<hex>.sig` in the
 *    signed image's repository.
 *
 * The verifier does what `cosign verify --key` does with the transparency log left out: resolve the
 * reference to a digest, fetch `sha256-<hex>.sig` of that digest, and accept it when one layer's payload
 * names that digest and its signature verifies with the public key.
 */

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PEM, as `cosign generate-key-pair` writes cosign.pub. */
  publicPem: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** cosign's simple-signing payload for `digest`, as `cosign sign` writes it (compact JSON). */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

/** One layer of a signature manifest: a payload and its signature (base64 DER). */
export interface SignedPayload {
  payload: Buffer;
  signature: string;
}

export function signPayload(key: SigningKey, payload: Buffer): SignedPayload {
  return { payload, signature: sign('sha256', payload, key.privateKey).toString('base64') };
}

/** The signature manifest holding these signed payloads, one layer each (cosign appends a layer per signature). */
export function cosignSignatureManifest(entries: SignedPayload[]): ManifestNode {
  const layers = entries.map((e) => makeContent(e.payload, SIMPLE_SIGNING));
  const config = makeContent(
    Buffer.from(
      JSON.stringify({
        architecture: '',
        created: '0001-01-01T00:00:00Z',
        history: [{ created: '0001-01-01T00:00:00Z' }],
        os: '',
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        config: {},
      }),
    ),
    MediaType.ociConfig,
  );
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: descriptorOf(config),
      layers: layers.map((l, i) =>
        descriptorOf(l, { annotations: { [SIGNATURE_ANNOTATION]: entries[i]!.signature } }),
      ),
    }),
  );
  const content = makeContent(bytes, MediaType.ociManifest);
  return { ...content, descriptor: descriptorOf(content), blobs: [config, ...layers], children: [] };
}

/** What `cosign sign` does to an image signed before: the same layers, and one more for the new signature. */
export function appendSignature(existing: ManifestNode, added: SignedPayload): ManifestNode {
  const doc = JSON.parse(existing.bytes.toString('utf8')) as {
    layers: { digest: string; annotations?: Record<string, string> }[];
  };
  const entries = doc.layers.map((l) => ({
    payload: existing.blobs.find((b) => b.digest === l.digest)!.bytes,
    signature: l.annotations?.[SIGNATURE_ANNOTATION] ?? '',
  }));
  return cosignSignatureManifest([...entries, added]);
}

/** Sign `signed` (a manifest in `repo`) and push the signature under its cosign tag. */
export async function cosignSign(
  client: RegistryClient,
  repo: string,
  dockerReference: string,
  signed: Content,
  key: SigningKey,
): Promise<ManifestNode> {
  const sig = cosignSignatureManifest([
    signPayload(key, simpleSigningPayload(dockerReference, signed.digest)),
  ]);
  for (const b of sig.blobs) await client.pushBlob(repo, b);
  await client.pushManifest(repo, signatureTag(signed.digest), sig);
  return sig;
}

export interface Verification {
  ok: boolean;
  /** The digest the reference resolved to. */
  digest: string;
  reason?: string;
}

/**
 * Verify `reference` (a tag or a digest) in `repo` the way cosign does. Never throws for a signature
 * that is missing or wrong: says why instead.
 */
export async function cosignVerify(
  client: RegistryClient,
  repo: string,
  reference: string,
  publicKey: KeyObject | string,
): Promise<Verification> {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const manifest = await client.getManifest(repo, reference);
  const digest = sha256Digest(manifest.bytes);
  let sig: Awaited<ReturnType<RegistryClient['getManifest']>>;
  try {
    sig = await client.getManifest(repo, signatureTag(digest));
  } catch (err) {
    return { ok: false, digest, reason: `no signature ${signatureTag(digest)}: ${(err as Error).message}` };
  }
  const doc = JSON.parse(sig.bytes.toString('utf8')) as {
    layers?: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
  };
  const reasons: string[] = [];
  for (const layer of doc.layers ?? []) {
    if (layer.mediaType !== SIMPLE_SIGNING) continue;
    const payload = await client.getBlob(repo, layer.digest);
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (!signature) {
      reasons.push(`layer ${layer.digest} has no signature annotation`);
      continue;
    }
    if (!verify('sha256', payload, key, Buffer.from(signature, 'base64'))) {
      reasons.push(`layer ${layer.digest}: the signature does not verify with the key`);
      continue;
    }
    const named = (JSON.parse(payload.toString('utf8')) as { critical?: { image?: Record<string, string> } })
      .critical?.image?.['docker-manifest-digest'];
    if (named !== digest) {
      reasons.push(`layer ${layer.digest} signs ${named}, not ${digest}`);
      continue;
    }
    return { ok: true, digest };
  }
  return { ok: false, digest, reason: reasons.join('; ') || 'no simple-signing layer' };
}
