// One parser for image references. Everything else in regmirror receives a parsed, normalised value
// and never handles raw reference strings.
//
// Grammar (after distribution/reference):
//   reference  := name [ ":" tag ] [ "@" digest ]
//   name       := [ registry "/" ] path
//   registry   := the first component when it contains "." or ":" or is "localhost"
//   path       := component ( "/" component )*
//   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest     := algorithm ":" hex
//
// and, instead of a registry, an OCI image layout (a directory) or an OCI archive (the same as a tar):
//   layout     := ( "oci:" | "oci-archive:" ) PATH [ ":" NAME ] [ "@" digest ]
// PATH ends at its first ":" (as in skopeo, so a path cannot hold one); NAME is an image's
// org.opencontainers.image.ref.name in the layout (ref-name.ts), or, for a repository, the prefix its
// image names share ("oci:bundle:quay.io/acme/app" holds "quay.io/acme/app:1.4.2", ...).

import { posix } from 'node:path';
import { isValidRefName, joinRefName, splitRefName } from './ref-name.js';

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST_LABEL = /^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;
const MAX_NAME_LENGTH = 255;

export class ReferenceSyntaxError extends Error {
  readonly input: string;
  constructor(input: string, reason: string) {
    super(`invalid reference "${input}": ${reason}`);
    this.name = 'ReferenceSyntaxError';
    this.input = input;
  }
}

export type LayoutKind = 'oci' | 'oci-archive';

/** Where an OCI image layout lives: a directory (oci:) or a tar file (oci-archive:). */
export interface LayoutLocation {
  readonly kind: LayoutKind;
  /** The directory or file, as given (normalised; relative to the working directory unless absolute). */
  readonly path: string;
}

/** A repository on a registry: "docker.io" + "library/ubuntu". */
export interface Repository {
  /**
   * Normalised registry name as the user knows it: "docker.io", "quay.io", "localhost:5000". For a
   * layout, "oci:<path>" or "oci-archive:<path>": never a host name, so nothing keyed by registry (blob
   * knowledge, mounts, settings) can take a layout for a registry or one layout for another.
   */
  readonly registry: string;
  /**
   * Repository path inside the registry: "library/ubuntu", "org/app". For a layout: the prefix of the
   * image names ("quay.io/acme/app" for "quay.io/acme/app:1.4.2"), "" for bare names ("v1").
   */
  readonly path: string;
  /** Set when this is an OCI image layout or archive, not a registry. */
  readonly layout?: LayoutLocation;
}

/** A repository plus a tag and/or a digest. */
export interface Reference extends Repository {
  readonly tag?: string;
  readonly digest?: string;
}

export interface ParseOptions {
  /** Tag to use when the input has neither tag nor digest (default "latest"; null keeps it absent). */
  defaultTag?: string | null;
}

/** Normalise a registry host: lower-case, Docker Hub aliases folded into "docker.io". */
export function normaliseRegistry(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/** The host the HTTP API is served from ("docker.io" is served by registry-1.docker.io). */
export function apiHost(registry: string): string {
  return normaliseRegistry(registry) === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase());
}

function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function validateRegistry(input: string, host: string): void {
  let name = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) throw new ReferenceSyntaxError(input, `registry "${host}" has an unclosed IPv6 bracket`);
    const rest = host.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) {
      throw new ReferenceSyntaxError(input, `registry "${host}" is not host[:port]`);
    }
    port = rest ? rest.slice(1) : undefined;
    name = host.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(name))
      throw new ReferenceSyntaxError(input, `"${name}" is not an IPv6 address`);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      port = host.slice(colon + 1);
      name = host.slice(0, colon);
    }
    if (!name.split('.').every((label) => HOST_LABEL.test(label))) {
      throw new ReferenceSyntaxError(input, `registry "${host}" is not a valid host name`);
    }
  }
  if (port !== undefined && (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0)) {
    throw new ReferenceSyntaxError(input, `registry "${host}" has an invalid port`);
  }
}

function splitName(input: string, name: string): Repository {
  if (name === '') throw new ReferenceSyntaxError(input, 'the repository name is empty');
  const components = name.split('/');
  let registry = DOCKER_HUB;
  if (components.length > 1 && looksLikeRegistry(components[0]!)) {
    const host = components.shift()!;
    validateRegistry(input, host);
    registry = normaliseRegistry(host);
  }
  for (const c of components) {
    if (c === '') throw new ReferenceSyntaxError(input, 'the repository path has an empty component');
    if (!COMPONENT.test(c)) {
      const reason =
        c.toLowerCase() !== c && COMPONENT.test(c.toLowerCase())
          ? `repository names must be lower-case ("${c}")`
          : `"${c}" is not a valid repository path component (lower-case letters, digits, and . _ __ - between them)`;
      throw new ReferenceSyntaxError(input, reason);
    }
  }
  if (registry === DOCKER_HUB && components.length === 1) components.unshift('library');
  const path = components.join('/');
  if (path.length > MAX_NAME_LENGTH) {
    throw new ReferenceSyntaxError(input, `the repository path is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return { registry, path };
}

const LAYOUT_PREFIX = /^(oci|oci-archive):/;
const TRAILING_DIGEST = /@((?:sha256|sha512):[^@]*)$/;

/** Whether `input` names an OCI layout or archive ("oci:..." / "oci-archive:...") rather than a registry. */
export function isLayoutInput(input: string): boolean {
  return LAYOUT_PREFIX.test(input.trim());
}

/** The registry key of a layout: "oci:/media/bundle", "oci-archive:bundle.tar". */
export function layoutKey(location: LayoutLocation): string {
  return `${location.kind}:${location.path}`;
}

/** Whether a registry name (Repository.registry) is a layout's key, not a host. */
export function isLayoutKey(registry: string): boolean {
  return LAYOUT_PREFIX.test(registry);
}

/** A repository in a layout: `prefix` is the name prefix ("" for bare names). */
export function layoutRepository(location: LayoutLocation, prefix: string): Repository {
  return { registry: layoutKey(location), path: prefix, layout: location };
}

/**
 * "oci:PATH[:NAME][@digest]" and "oci-archive:FILE[:NAME][@digest]". As a reference, NAME is the whole
 * ref.name of one image (skopeo's meaning: "oci:dir:v1" is the image named "v1"), kept as prefix + tag;
 * as a repository, NAME is the prefix shared by the image names and may not end in ":TAG".
 */
function parseLayout(input: string, raw: string, repositoryOnly: boolean): Reference {
  const kind = LAYOUT_PREFIX.exec(raw)![1] as LayoutKind;
  let rest = raw.slice(kind.length + 1);
  let digest: string | undefined;
  const d = TRAILING_DIGEST.exec(rest);
  if (d) {
    digest = d[1]!;
    if (!DIGEST.test(digest)) {
      throw new ReferenceSyntaxError(
        input,
        `"${digest}" is not a digest (expected sha256: and 64 lower-case hex digits)`,
      );
    }
    rest = rest.slice(0, d.index);
  }
  const colon = rest.indexOf(':');
  const rawPath = colon < 0 ? rest : rest.slice(0, colon);
  const name = colon < 0 ? '' : rest.slice(colon + 1);
  if (rawPath === '') {
    const what = kind === 'oci' ? 'directory' : 'tar file';
    throw new ReferenceSyntaxError(input, `no path: write ${kind}:PATH, where PATH is the layout's ${what}`);
  }
  let path = posix.normalize(rawPath);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const location: LayoutLocation = { kind, path };
  if (name !== '' && !isValidRefName(name)) {
    throw new ReferenceSyntaxError(
      input,
      `"${name}" is not a valid image name in a layout (letters and digits, separated by one of - . _ : @ + or "--", in "/"-separated components)`,
    );
  }
  if (repositoryOnly) {
    if (digest !== undefined || (name !== '' && splitRefName(name).prefix !== '')) {
      throw new ReferenceSyntaxError(
        input,
        `expected a layout and a name prefix without tag or digest, e.g. "${kind}:${path}:quay.io/acme/app"`,
      );
    }
    return layoutRepository(location, name);
  }
  const { prefix, tag } = splitRefName(name);
  return {
    ...layoutRepository(location, prefix),
    ...(name !== '' ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/**
 * Parse "ubuntu", "quay.io/org/app:1.2", "localhost:5000/a/b@sha256:...", "host/x:tag@sha256:...".
 * Docker Hub short names are expanded ("ubuntu" → docker.io/library/ubuntu:latest). "oci:PATH..." and
 * "oci-archive:FILE..." name a layout; no default tag is added to those (a layout holding one image
 * needs no name).
 */
export function parseReference(input: string, options: ParseOptions = {}): Reference {
  const raw = input.trim();
  if (raw === '') throw new ReferenceSyntaxError(input, 'it is empty');
  if (LAYOUT_PREFIX.test(raw)) return parseLayout(input, raw, false);
  if (/^[a-z]+:\/\//i.test(raw)) {
    throw new ReferenceSyntaxError(input, 'leave out the scheme (write "host/repo:tag", not a URL)');
  }
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new ReferenceSyntaxError(
        input,
        `"${digest}" is not a digest (expected sha256: and 64 lower-case hex digits)`,
      );
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new ReferenceSyntaxError(
        input,
        `"${tag}" is not a valid tag (letters, digits, _ . -, not starting with . or -, at most 128)`,
      );
    }
  }
  const repo = splitName(input, rest);
  const defaultTag = options.defaultTag === undefined ? 'latest' : options.defaultTag;
  if (tag === undefined && digest === undefined && defaultTag !== null) tag = defaultTag;
  return { ...repo, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Parse a repository (no tag, no digest allowed). */
export function parseRepository(input: string): Repository {
  if (isLayoutInput(input)) return parseLayout(input, input.trim(), true);
  const ref = parseReference(input, { defaultTag: null });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new ReferenceSyntaxError(input, 'expected a repository without tag or digest');
  }
  return { registry: ref.registry, path: ref.path };
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Whether `path` is a repository path of the grammar above ("library/ubuntu", "org/team/app"). */
export function isValidRepositoryPath(path: string): boolean {
  return path.length <= MAX_NAME_LENGTH && path.split('/').every((c) => COMPONENT.test(c));
}

export function isValidDigest(digest: string): boolean {
  return DIGEST.test(digest);
}

/** "docker.io/library/ubuntu"; "oci:bundle:quay.io/acme/app" */
export function formatRepository(repo: Repository): string {
  if (repo.layout) return repo.path === '' ? repo.registry : `${repo.registry}:${repo.path}`;
  return `${repo.registry}/${repo.path}`;
}

/** "docker.io/library/ubuntu:24.04@sha256:..."; "oci:bundle:quay.io/acme/app:1.4.2" */
export function formatReference(ref: Reference): string {
  if (ref.layout) {
    const name = ref.tag !== undefined ? joinRefName(ref.path, ref.tag) : ref.path;
    return `${ref.registry}${name === '' ? '' : `:${name}`}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
  }
  let s = formatRepository(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The tag or digest to ask the registry for: the digest wins when both are present. */
export function referenceSelector(ref: Reference): string {
  const sel = ref.digest ?? ref.tag;
  if (sel === undefined) throw new Error(`reference ${formatRepository(ref)} has neither tag nor digest`);
  return sel;
}

/** 'tag "v1"' or 'digest sha256:...': for messages about what was looked for. */
export function describeSelector(ref: Reference): string {
  if (ref.digest !== undefined) return `digest ${ref.digest}`;
  if (ref.layout) return ref.tag === undefined ? 'the only image' : `image name "${refNameOf(ref)}"`;
  return `tag "${ref.tag}"`;
}

/** The repository part of a reference (or repository): registry, path and, for a layout, where it is. */
export function repositoryOf(repo: Repository): Repository {
  return repo.layout
    ? { registry: repo.registry, path: repo.path, layout: repo.layout }
    : { registry: repo.registry, path: repo.path };
}

export function withTag(repo: Repository, tag: string): Reference {
  return { ...repositoryOf(repo), tag };
}

export function withDigest(repo: Repository, digest: string): Reference {
  return { ...repositoryOf(repo), digest };
}

/** The image name in a layout that a layout reference stands for ("quay.io/acme/app:1.4.2", "v1"). */
export function refNameOf(ref: Reference): string | undefined {
  return ref.tag === undefined ? undefined : joinRefName(ref.path, ref.tag);
}

export function sameRepository(a: Repository, b: Repository): boolean {
  return a.registry === b.registry && a.path === b.path;
}
