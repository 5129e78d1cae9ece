// URLs of the distribution API, built from typed parts: the repository path (checked against the
// reference grammar) and segments that are each checked and percent-encoded. Nothing a registry sent is
// ever concatenated into a path: a tag such as "x/../../victim/manifests/prod" from a hostile tag list is
// refused here even if it slipped past the tag-list check, instead of becoming a request to another
// repository.

import { InvalidReferenceError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { isValidRepositoryPath, isValidTag, type Repository } from '../reference/reference.js';
import { quoted } from '../sanitize.js';

/** A path under /v2/<repository>/, and its query. */
export interface ApiPath {
  readonly segments: readonly string[];
  readonly query?: Readonly<Record<string, string>>;
}

/** manifests/<tag or digest> */
export function manifestPath(selector: string): ApiPath {
  if (!isValidTag(selector) && !isDigest(selector)) {
    throw new InvalidReferenceError(
      `${quoted(selector)} is neither a tag nor a digest; it is never used in a request`,
    );
  }
  return { segments: ['manifests', selector] };
}

/** blobs/<digest> */
export function blobPath(digest: string): ApiPath {
  if (!isDigest(digest)) throw new InvalidReferenceError(`${quoted(digest)} is not a digest`);
  return { segments: ['blobs', digest] };
}

/** tags/list?n=<page size> */
export function tagsPath(pageSize: number): ApiPath {
  return { segments: ['tags', 'list'], query: { n: String(pageSize) } };
}

/** blobs/uploads/ (with ?mount=&from= for a cross-repository mount) */
export function uploadsPath(mount?: { digest: string; from: string }): ApiPath {
  if (mount) {
    if (!isDigest(mount.digest)) throw new InvalidReferenceError(`${quoted(mount.digest)} is not a digest`);
    if (!isValidRepositoryPath(mount.from)) {
      throw new InvalidReferenceError(`${quoted(mount.from)} is not a repository path`);
    }
  }
  // The trailing empty segment is the slash the spec writes: POST /v2/<name>/blobs/uploads/
  return {
    segments: ['blobs', 'uploads', ''],
    ...(mount ? { query: { mount: mount.digest, from: mount.from } } : {}),
  };
}

/** referrers/<digest>, optionally filtered by artifact type (?artifactType=) */
export function referrersPath(digest: string, artifactType?: string): ApiPath {
  if (!isDigest(digest)) throw new InvalidReferenceError(`${quoted(digest)} is not a digest`);
  return { segments: ['referrers', digest], ...(artifactType ? { query: { artifactType } } : {}) };
}

/**
 * Percent-encode a path segment, leaving ":" and "@" as they are: RFC 3986 allows them in a segment,
 * registries expect "sha256:..." unencoded, and "/", "?", "#", "%" and ".." can do no harm once encoded.
 */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/%3A/gi, ':').replace(/%40/gi, '@');
}

/** The absolute URL of `path` in `repo` on the registry at `base` ("https://quay.io"). */
export function apiUrl(base: URL, repo: Repository, path: ApiPath): URL {
  if (!isValidRepositoryPath(repo.path)) {
    throw new InvalidReferenceError(`${quoted(repo.path)} is not a repository path`);
  }
  const segments = path.segments.map((segment, i) => {
    const last = i === path.segments.length - 1;
    // "." and ".." would be resolved away by URL parsing; an empty segment only as the trailing slash.
    if (segment === '.' || segment === '..' || (segment === '' && !last)) {
      throw new InvalidReferenceError(`${quoted(segment)} is not a path segment`);
    }
    return encodeSegment(segment);
  });
  const pathname = `/v2/${repo.path}/${segments.join('/')}`;
  const url = new URL(base.origin);
  url.pathname = pathname;
  for (const [key, value] of Object.entries(path.query ?? {})) url.searchParams.set(key, value);
  // Belt and braces: what goes out is exactly what was built, under this repository.
  if (url.pathname !== pathname) {
    throw new InvalidReferenceError(
      `the request path for ${quoted(repo.path)} would not stay in the repository`,
    );
  }
  return url;
}
