// Image names inside an OCI image layout: the `org.opencontainers.image.ref.name` annotation of a
// descriptor in index.json. Its grammar (image-spec annotations.md) is looser than a registry tag's:
//
//   ref       := component ( "/" component )*
//   component := alphanum ( separator alphanum )*
//   alphanum  := [A-Za-z0-9]+
//   separator := [-._:@+] | "--"
//
// regmirror reads a name as PREFIX ":" TAG when a colon follows its last "/" ("quay.io/acme/app:1.4.2"
// → prefix "quay.io/acme/app", tag "1.4.2"), else as a bare TAG with no prefix ("v1"): one layout can
// then hold the images of many repositories, each under its own prefix, and every name maps to exactly
// one (prefix, tag) pair and back. skopeo addresses the same image as `oci:PATH:<the whole name>`.

/** The image-spec's ref.name grammar. */
const REF_NAME =
  /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Longer names are refused: nothing legitimate comes close, and they end up in messages. */
export const MAX_REF_NAME_LENGTH = 512;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export function isValidRefName(name: string): boolean {
  return name.length <= MAX_REF_NAME_LENGTH && REF_NAME.test(name);
}

/** "quay.io/acme/app:1.4.2" → { prefix: "quay.io/acme/app", tag: "1.4.2" }; "v1" → { prefix: "", tag: "v1" }. */
export function splitRefName(name: string): { prefix: string; tag: string } {
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) return { prefix: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { prefix: '', tag: name };
}

/** The inverse of splitRefName. */
export function joinRefName(prefix: string, tag: string): string {
  return prefix === '' ? tag : `${prefix}:${tag}`;
}
