// Referrers in the copy: found at the source for every manifest of an image and, in turn, for every
// referrer (a signature of an SBOM); compared with what each target lists; and, once pushed, made
// visible at a target without the referrers API by merging them into its fallback index.
//
// Where a registry has the referrers API, one request per manifest lists them. Where it has not, the
// repository's tag list (one per repository per run, and sync has read the source's already) says which
// manifests have a fallback index (`sha256-<hex>`) or cosign tags (`sha256-<hex>.sig|.att|.sbom`), so only
// those cost a request: a repository without any costs nothing per manifest.

import { errorKind, RegmirrorError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor, Manifest } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/media-types.js';
import {
  buildReferrersIndex,
  COSIGN_SUFFIXES,
  cosignTag,
  isCopyableReferrer,
  keepsReferrer,
  mergeReferrers,
  printableArtifactType,
  type ReferrerFilter,
  referrersTagFor,
  serverFilterFor,
} from '../oci/referrers.js';
import { formatRepository, type Repository, withTag } from '../reference/reference.js';
import type { BlobKnowledge } from './knowledge.js';
import { writeManifest } from './manifest-write.js';
import type { ReferrerRun } from './referrer-run.js';
import type { ReferrersAnswer, RegistryStore } from './store.js';

export interface ReferrerOptions extends ReferrerFilter {
  /** Also cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`) of every manifest; they keep their names. */
  cosignTags: boolean;
}

/** A referrer found at the source. */
export interface FoundReferrer {
  /** The manifest it refers to. */
  subject: Digest;
  digest: Digest;
  /** Its entry in the subject's referrers list (OCI 1.1 referrers; absent for cosign tags). */
  descriptor?: Descriptor;
  /** As listed, with anything unprintable escaped (it is shown and logged). */
  artifactType?: string;
  /** The cosign tag it is found under; kept at the target. Absent for an OCI 1.1 referrer. */
  tag?: string;
  /** 1: refers to a manifest of the image; 2: to a referrer of one (a signature of an SBOM); … */
  depth: number;
}

export interface SourceReferrers {
  /** Every referrer, breadth first: each after its subject. */
  found: FoundReferrer[];
  /** The OCI referrers of each subject that has any (after the filter): what a target must list. */
  bySubject: Map<Digest, Descriptor[]>;
  /**
   * The source's own fallback index of a subject, where it has one and the filter kept all of it: pushed
   * byte-exact to a target that holds nothing else, so its digest is the source's.
   */
  fallbackIndex: Map<Digest, Manifest>;
}

/** A referrer a target lacks, and what its cosign tag pointed at there before. */
export interface MissingReferrer {
  found: FoundReferrer;
  previousDigest?: Digest;
}

const MAX_DEPTH = 8;
const MAX_REFERRERS = 1000;
/** Rounds of read-merge-write on one fallback tag before giving up on a writer that keeps changing it. */
const MERGE_ROUNDS = 3;

interface Lookup {
  descriptors: Descriptor[];
  /** The fallback index read, when the filter kept every entry of it. */
  index?: Manifest;
  cosign: { tag: string; digest: Digest }[];
}

/** The store's referrers API; a store without one (an OCI layout) keeps referrers in fallback tags. */
export function referrersOf(
  store: RegistryStore,
  repo: Repository,
  subject: Digest,
  artifactType?: string,
): Promise<ReferrersAnswer> {
  return store.referrers ? store.referrers(repo, subject, artifactType) : Promise.resolve({ api: false });
}

/** Whether the store is known to have the referrers API (false for a store without the operation). */
export function hasReferrersApi(store: RegistryStore, registry: string): boolean | undefined {
  if (!store.referrers) return false;
  return store.referrersApi?.(registry);
}

function filterKey(o: ReferrerOptions): string {
  return JSON.stringify([o.artifactTypes ?? null, o.exclude ?? null, o.cosignTags]);
}

/** A fallback tag's index; undefined when the tag does not exist. */
async function readIndex(store: RegistryStore, repo: Repository, tag: string): Promise<Manifest | undefined> {
  try {
    return await store.manifestGet(withTag(repo, tag));
  } catch (err) {
    if (errorKind(err) === 'not-found') return undefined;
    throw err;
  }
}

/**
 * The referrers a repository lists for `subject`, through the API or the fallback tag, unfiltered. A
 * fallback tag that holds something other than an index lists nothing (as the spec says to read it).
 */
async function listed(
  store: RegistryStore,
  run: ReferrerRun,
  repo: Repository,
  subject: Digest,
  artifactType?: string,
): Promise<{ descriptors: Descriptor[]; filtered: boolean; index?: Manifest }> {
  const answer = await referrersOf(store, repo, subject, artifactType);
  if (answer.api === true) return { descriptors: answer.descriptors, filtered: answer.filtered };
  if (answer.api === undefined) return { descriptors: [], filtered: false };
  const tag = referrersTagFor(subject);
  if (!(await run.referrerTags(store, repo)).has(tag)) return { descriptors: [], filtered: false };
  const index = await readIndex(store, repo, tag);
  if (index?.kind !== 'index') return { descriptors: [], filtered: false };
  return { descriptors: index.manifests, filtered: false, index };
}

/** cosign's tags of `subject` in a repository, with the digest each points at (one HEAD per tag present). */
async function cosignTagsOf(
  store: RegistryStore,
  run: ReferrerRun,
  repo: Repository,
  subject: Digest,
): Promise<{ tag: string; digest: Digest }[]> {
  const tags = await run.referrerTags(store, repo);
  const out: { tag: string; digest: Digest }[] = [];
  for (const suffix of COSIGN_SUFFIXES) {
    const tag = cosignTag(subject, suffix);
    if (tag === undefined || !tags.has(tag)) continue;
    const head = await store.manifestHead(withTag(repo, tag));
    if (head) out.push({ tag, digest: head.digest });
  }
  return out;
}

/** Referrers of one subject at the source, filtered; looked up once per run. */
function lookupAtSource(
  store: RegistryStore,
  run: ReferrerRun,
  repo: Repository,
  subject: Digest,
  options: ReferrerOptions,
): Promise<Lookup> {
  return run.memo(`${formatRepository(repo)}@${subject} ${filterKey(options)}`, async () => {
    const asked = serverFilterFor(options);
    const list = await listed(store, run, repo, subject, asked);
    // A registry that says it applied the artifactType filter is trusted on it; exclusions are ours.
    const filter: ReferrerFilter = list.filtered ? { exclude: options.exclude ?? [] } : options;
    const descriptors = list.descriptors.filter((d) => isCopyableReferrer(d) && keepsReferrer(filter, d));
    const complete = list.index !== undefined && descriptors.length === list.descriptors.length;
    const cosign = options.cosignTags ? await cosignTagsOf(store, run, repo, subject) : [];
    return { descriptors, cosign, ...(complete ? { index: list.index } : {}) };
  });
}

/**
 * Every referrer of the image at the source, breadth first from its manifests. `root` is probed first:
 * on a registry without the referrers API whose repository has no referrer tag at all, nothing of the
 * image can have referrers, and `subjects` (which may read the image) is never called.
 */
export async function discoverAtSource(
  store: RegistryStore,
  run: ReferrerRun,
  repo: Repository,
  root: Digest,
  subjects: () => Promise<Digest[]>,
  options: ReferrerOptions,
): Promise<SourceReferrers> {
  const out: SourceReferrers = { found: [], bySubject: new Map(), fallbackIndex: new Map() };
  await lookupAtSource(store, run, repo, root, options);
  if (hasReferrersApi(store, repo.registry) !== true && (await run.referrerTags(store, repo)).size === 0) {
    return out;
  }
  let level = await subjects();
  const seen = new Set<Digest>(level);
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > MAX_DEPTH) {
      throw new RegmirrorError(`referrers nested deeper than ${MAX_DEPTH} levels below ${root}`, {
        context: { registry: repo.registry, repository: repo.path, step: 'referrers' },
      });
    }
    const lookups = await Promise.all(level.map((s) => lookupAtSource(store, run, repo, s, options)));
    const next: Digest[] = [];
    const add = (f: FoundReferrer) => {
      out.found.push(f);
      if (!seen.has(f.digest)) {
        seen.add(f.digest);
        next.push(f.digest);
      }
    };
    lookups.forEach((l, i) => {
      const subject = level[i]!;
      if (l.descriptors.length > 0) out.bySubject.set(subject, l.descriptors);
      if (l.index) out.fallbackIndex.set(subject, l.index);
      for (const d of l.descriptors) {
        add({
          subject,
          digest: d.digest,
          descriptor: d,
          // Shown and logged: a registry's text, made safe for a terminal.
          ...(d.artifactType !== undefined ? { artifactType: printableArtifactType(d.artifactType) } : {}),
          depth,
        });
      }
      for (const c of l.cosign) add({ subject, digest: c.digest, tag: c.tag, depth });
    });
    if (out.found.length > MAX_REFERRERS) {
      throw new RegmirrorError(`more than ${MAX_REFERRERS} referrers below ${root}`, {
        context: { registry: repo.registry, repository: repo.path, step: 'referrers' },
      });
    }
    level = next;
  }
  return out;
}

/**
 * The source referrers a target lacks: an OCI referrer its subject's list (API or fallback index) does
 * not hold; a cosign tag that is absent or points elsewhere. One request per subject that has referrers
 * at the source (none on a registry without the API where the fallback tag is absent), one HEAD per
 * cosign tag the target has. `verify` trusts nothing: every referrer is returned, to be checked by digest.
 */
export async function missingAtTarget(
  store: RegistryStore,
  run: ReferrerRun,
  target: Repository,
  source: SourceReferrers,
  verify: boolean,
): Promise<MissingReferrer[]> {
  if (source.found.length === 0) return [];
  const listedThere = new Map<Digest, Set<Digest>>();
  await Promise.all(
    [...source.bySubject.keys()].map(async (subject) => {
      const l = await listed(store, run, target, subject);
      listedThere.set(subject, new Set(l.descriptors.map((d) => d.digest)));
    }),
  );
  const cosign = new Map<string, Digest>();
  const wantTags = source.found.filter((f) => f.tag !== undefined);
  if (wantTags.length > 0) {
    const tags = await run.referrerTags(store, target);
    await Promise.all(
      wantTags
        .filter((f) => tags.has(f.tag!))
        .map(async (f) => {
          const head = await store.manifestHead(withTag(target, f.tag!));
          if (head) cosign.set(f.tag!, head.digest);
        }),
    );
  }
  const out: MissingReferrer[] = [];
  for (const f of source.found) {
    if (f.tag !== undefined) {
      const there = cosign.get(f.tag);
      if (verify || there !== f.digest) out.push({ found: f, ...(there ? { previousDigest: there } : {}) });
    } else if (verify || !listedThere.get(f.subject)?.has(f.digest)) {
      out.push({ found: f });
    }
  }
  return out;
}

/** A write to a fallback tag, for the audit log. */
export interface IndexWrite {
  tag: string;
  digest: Digest;
  size: number;
  previousDigest?: Digest;
}

/**
 * Make `wanted` (every OCI referrer of `subject` at the source) listed in the target's fallback index:
 * read what is there, merge (no duplicates; entries others put there are kept), write, and read again to
 * confirm, merging again if another writer got in between. Within a run the tag is written by one image
 * at a time. Byte-exact: where the target holds nothing the source's index lacks, the source's own index
 * is pushed, so the digests match. Returns the writes made (none when everything was listed already).
 */
export async function mergeIntoFallbackIndex(
  store: RegistryStore,
  run: ReferrerRun,
  target: Repository,
  subject: Digest,
  wanted: readonly Descriptor[],
  sourceIndex: Manifest | undefined,
  knowledge?: BlobKnowledge,
): Promise<IndexWrite[]> {
  const tag = referrersTagFor(subject);
  const context = { registry: target.registry, repository: target.path, step: `referrers index ${tag}` };
  return run.exclusive(`${formatRepository(target)}:${tag}`, async () => {
    const writes: IndexWrite[] = [];
    for (let round = 1; ; round++) {
      const current = await readIndex(store, target, tag);
      if (current && current.kind !== 'index') {
        throw new RegmirrorError(
          `the tag ${tag} holds a ${current.mediaType}, not a referrers index; it is left as it is`,
          { context, hint: 'remove that tag, or turn referrers off for this mirror' },
        );
      }
      const existing = current?.kind === 'index' ? current.manifests : [];
      const { merged, added } = mergeReferrers(existing, wanted);
      if (added.length === 0) return writes;
      if (round > MERGE_ROUNDS) {
        throw new RegmirrorError(
          `the referrers index ${tag} changed under every one of ${MERGE_ROUNDS} writes (another writer at work?)`,
          { context, hint: 'run again once the other writer is done' },
        );
      }
      const sourceDigests = new Set(
        sourceIndex?.kind === 'index' ? sourceIndex.manifests.map((d) => d.digest) : [],
      );
      const exact = sourceIndex !== undefined && merged.every((d) => sourceDigests.has(d.digest));
      const bytes = exact ? sourceIndex.bytes : buildReferrersIndex(merged);
      const digest = await writeManifest(store, knowledge, {
        repo: target,
        selector: tag,
        bytes,
        mediaType: OCI_INDEX,
        names: merged.map((d) => d.digest),
      });
      await run.noteTag(target, tag);
      writes.push({
        tag,
        digest,
        size: bytes.byteLength,
        ...(current ? { previousDigest: current.digest } : {}),
      });
    }
  });
}
