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

/** A repository on a registry: "docker.io" + "library/ubuntu". */
export interface Repository {
  /** Normalised registry name as the user knows it: "docker.io", "quay.io", "localhost:5000". */
  readonly registry: string;
  /** Repository path inside the registry: "library/ubuntu", "org/app". */
  readonly path: string;
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

/**
 * Parse "ubuntu", "quay.io/org/app:1.2", "localhost:5000/a/b@sha256:...", "host/x:tag@sha256:...".
 * Docker Hub short names are expanded ("ubuntu" → docker.io/library/ubuntu:latest).
 */
export function parseReference(input: string, options: ParseOptions = {}): Reference {
  const raw = input.trim();
  if (raw === '') throw new ReferenceSyntaxError(input, 'it is empty');
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

/** "docker.io/library/ubuntu" */
export function formatRepository(repo: Repository): string {
  return `${repo.registry}/${repo.path}`;
}

/** "docker.io/library/ubuntu:24.04@sha256:..." */
export function formatReference(ref: Reference): string {
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
  return ref.digest !== undefined ? `digest ${ref.digest}` : `tag "${ref.tag}"`;
}

export function withTag(repo: Repository, tag: string): Reference {
  return { registry: repo.registry, path: repo.path, tag };
}

export function withDigest(repo: Repository, digest: string): Reference {
  return { registry: repo.registry, path: repo.path, digest };
}

export function sameRepository(a: Repository, b: Repository): boolean {
  return a.registry === b.registry && a.path === b.path;
}
