// Mounts across runs: a small file that remembers in which repository of each target registry this tool
// last saw each blob (pushed, mounted, or found there), so that a later `copy` or `sync` into another
// repository of that registry mounts the blob instead of uploading it again.
//
// Where: $XDG_CACHE_HOME/regmirror/mounts.json, else ~/.cache/regmirror/mounts.json; `--no-mount-cache`
// neither reads nor writes it. Keyed by registry, then digest → repositories, most recent first.
//
// It holds hints only: a mount from a repository that no longer has the blob is declined by the
// registry (202), and the upload goes on in the session that answer opened — a stale entry costs no
// request. Deleting the file is always safe. Everything read from it is checked (digests, repository
// names, sizes) and bounded; writing merges with what another run may have written meanwhile, then
// replaces the file atomically.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { MountHints } from '../copy/knowledge.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { isValidRepositoryPath } from '../reference/reference.js';

/** Digests remembered per registry; the oldest go first. */
export const MOUNT_CACHE_DIGESTS = 50_000;
/** Repositories remembered per digest. */
const REPOSITORIES_PER_DIGEST = 4;
/** A file larger than this is not read (it cannot have been written by this tool). */
const FILE_LIMIT = 64 * 1024 * 1024;

interface FileShape {
  version: 1;
  registries: Record<string, Record<string, string[]>>;
}

/** The cache file's path for this environment. */
export function mountCachePath(env: NodeJS.ProcessEnv, home: string = homedir()): string {
  const base = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(base, 'regmirror', 'mounts.json');
}

export class MountCache implements MountHints {
  /** registry → digest → repositories (most recent first). Map order: oldest digest first. */
  private readonly entries = new Map<string, Map<string, string[]>>();
  /** What this run learned, to merge into the file. */
  private readonly learned: { registry: string; repository: string; digest: Digest }[] = [];

  private constructor(
    readonly file: string,
    /** Only blobs on these registries are remembered (the run's targets): sources are not ours to note. */
    private readonly registries: ReadonlySet<string>,
  ) {}

  /** Open the cache at `file` (a missing or unreadable file is an empty cache; never an error). */
  static async open(file: string, registries: Iterable<string>): Promise<MountCache> {
    const cache = new MountCache(file, new Set(registries));
    cache.merge(await readCacheFile(file));
    return cache;
  }

  candidates(registry: string, digest: Digest): readonly string[] {
    return this.entries.get(registry)?.get(digest) ?? [];
  }

  record(registry: string, repository: string, digest: Digest): void {
    if (!this.registries.has(registry)) return;
    this.add(registry, repository, digest);
    this.learned.push({ registry, repository, digest });
  }

  /** Write what this run learned, merged into the file as it is now. Failures are the caller's to report. */
  async save(): Promise<void> {
    if (this.learned.length === 0) return;
    const now = new MountCache(this.file, this.registries);
    now.merge(await readCacheFile(this.file));
    for (const l of this.learned) now.add(l.registry, l.repository, l.digest);
    const shape: FileShape = { version: 1, registries: {} };
    for (const [registry, digests] of now.entries) shape.registries[registry] = Object.fromEntries(digests);
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(shape), { mode: 0o600 });
    await rename(tmp, this.file);
  }

  private merge(shape: FileShape | undefined): void {
    for (const [registry, digests] of Object.entries(shape?.registries ?? {})) {
      for (const [digest, repositories] of Object.entries(digests)) {
        // Oldest first in the file's lists' reverse: add the least recent repository first.
        for (const repository of [...repositories].reverse())
          this.add(registry, repository, digest as Digest);
      }
    }
  }

  private add(registry: string, repository: string, digest: Digest): void {
    let digests = this.entries.get(registry);
    if (!digests) {
      digests = new Map();
      this.entries.set(registry, digests);
    }
    const before = digests.get(digest) ?? [];
    // Re-inserted: now the most recent digest, and this repository the most recent for it.
    digests.delete(digest);
    digests.set(
      digest,
      [repository, ...before.filter((r) => r !== repository)].slice(0, REPOSITORIES_PER_DIGEST),
    );
    while (digests.size > MOUNT_CACHE_DIGESTS) digests.delete(digests.keys().next().value!);
  }
}

/** The file's content, checked entry by entry (anything malformed is left out); undefined when absent. */
async function readCacheFile(file: string): Promise<FileShape | undefined> {
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.byteLength > FILE_LIMIT) return undefined;
    text = buf.toString('utf8');
  } catch {
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || (raw as { version?: unknown }).version !== 1)
    return undefined;
  const registries = (raw as { registries?: unknown }).registries;
  if (typeof registries !== 'object' || registries === null) return undefined;
  const out: FileShape = { version: 1, registries: {} };
  for (const [registry, digests] of Object.entries(registries)) {
    if (!/^[A-Za-z0-9.\-[\]:]+$/.test(registry) || typeof digests !== 'object' || digests === null) continue;
    const kept: Record<string, string[]> = {};
    let n = 0;
    for (const [digest, repositories] of Object.entries(digests)) {
      if (++n > MOUNT_CACHE_DIGESTS) break;
      if (!isDigest(digest) || !Array.isArray(repositories)) continue;
      const names = repositories
        .filter((r): r is string => typeof r === 'string' && isValidRepositoryPath(r))
        .slice(0, REPOSITORIES_PER_DIGEST);
      if (names.length > 0) kept[digest] = names;
    }
    out.registries[registry] = kept;
  }
  return out;
}

/** Save what the run learned; a cache that cannot be written is worth a warning, never a failure. */
export async function saveMountCache(
  cache: MountCache | undefined,
  out: { warn(line: string): void },
): Promise<void> {
  try {
    await cache?.save();
  } catch (err) {
    out.warn(
      `the mount cache ${cache?.file} was not updated: ${(err as Error).message} (the run is not affected)`,
    );
  }
}
