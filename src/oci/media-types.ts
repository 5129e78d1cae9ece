// Media types of the OCI image spec and Docker's schema 2, and how to tell them apart.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** Docker schema 1 is deprecated; we can read it as opaque bytes but not walk it. */
export const DOCKER_MANIFEST_V1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];
export const IMAGE_MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
export const MANIFEST_TYPES: readonly string[] = [...INDEX_TYPES, ...IMAGE_MANIFEST_TYPES];

/**
 * The Accept header for manifest requests. Registries such as ECR and Quay convert a manifest when the
 * client does not list its type, which would change the digest; listing every type gets the stored bytes.
 */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ');

export function isIndexType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_TYPES.includes(mediaType);
}

export function isImageManifestType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_MANIFEST_TYPES.includes(mediaType);
}

export function isManifestType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_TYPES.includes(mediaType);
}

/** "application/json; charset=utf-8" → "application/json" */
export function baseMediaType(contentType: string | undefined | null): string | undefined {
  if (!contentType) return undefined;
  const base = contentType.split(';')[0]!.trim();
  return base === '' ? undefined : base;
}
