// Copy one image (a source reference) to any number of targets: the graph walk of DESIGN.md.
//
//  1. HEAD the source and every target; a target whose tag already has the source digest is done.
//  2. Fetch the source graph once (index → children), exact bytes.
//  3. Per target: HEAD each manifest by digest; a manifest the target has is a subtree to skip. The blobs
//     below the rest are checked (known from this run, else HEAD).
//  4. Per blob: targets that lack it mount it from another repository of the same registry when this run
//     knows one, else join one fan-out upload fed by a single streamed source GET.
//  5. Per target, once its blobs are in: manifests children first, the tag last.
//
// With referrers on (referrers.ts), step 2 also finds the referrers of every manifest at the source, step
// 3 compares them with each target's — a target whose tag is already right is compared too, and gets
// what it lacks — and step 5 pushes them after their subjects and before the tag (the root goes by digest
// first when it has referrers to bring), then lists them in the fallback index of a target without the
// referrers API.

import {
  AuthError,
  errorKind,
  formatError,
  ImmutableTagError,
  isAbort,
  isTransient,
  NotFoundError,
  PermissionError,
  RegistryError,
  RegmirrorError,
} from '../errors.js';
import { algorithmOf, type Digest, digestOf } from '../oci/digest.js';
import { childrenOf, type Descriptor, type Manifest } from '../oci/manifest.js';
import { isIndexType, OCI_INDEX } from '../oci/media-types.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import { describeSelector, formatReference, type Reference, withDigest } from '../reference/reference.js';
import type { TransferBudget } from './budget.js';
import { untilSettledOrCongested, type Watched } from './congestion.js';
import type { EventSink } from './events.js';
import { blobsBelow, filterRoot, loadGraph, type ManifestGraph, manifestDigests } from './graph.js';
import type { BlobKnowledge } from './knowledge.js';
import { writeManifest } from './manifest-write.js';
import { ReferrerRun } from './referrer-run.js';
import {
  discoverAtSource,
  hasReferrersApi,
  type MissingReferrer,
  mergeIntoFallbackIndex,
  missingAtTarget,
  type ReferrerOptions,
  referrersOf,
  type SourceReferrers,
} from './referrers.js';
import { type ImageResult, newTargetResult, type ReferrerEntry, type TargetResult } from './result.js';
import type { ManifestInfo, RegistryStore, UploadSink } from './store.js';
import type { TargetTags } from './target-tags.js';
import { FAN_OUT_WINDOW, fanOut, type SinkOutcome, type SinkSpec } from './transfer.js';

export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/** Rounds of one blob transfer for a target whose upload failed with a transient fault. */
const BLOB_ROUNDS = 3;

export interface CopyContext {
  store: RegistryStore;
  knowledge: BlobKnowledge;
  /**
   * Bounds blob streams in flight across the whole run: by number (a Limiter), or by the memory each holds
   * (a TransferBudget, what sync uses) — the fan-out window (16 MiB) and a chunk per chunking target for
   * a large blob, the blob itself for a small one.
   */
  transfers: Limiter | TransferBudget;
  onEvent?: EventSink;
  /** What the images of one run share about referrers (tag lists, fallback-tag locks); else one per image. */
  referrerRun?: ReferrerRun;
  /**
   * The target repositories' tags as listed when the run started (sync): a tag they lack is created
   * without a HEAD first, and a repository that had no tag gets its small blobs without HEADs.
   */
  targetTags?: TargetTags;
}

/**
 * In a target repository that had no tag when the run started, blobs up to this size are uploaded
 * without a HEAD first: they are almost never there (only an earlier run interrupted before its first
 * tag leaves any), and a HEAD is a round trip per blob. Larger ones are still asked about, so that an
 * interrupted migration does not send its big layers again.
 */
export const UNCHECKED_BLOB_MAX = 16 * 1024 * 1024;

/** Give an error the side it happened on, unless it already says. */
function onSide<T>(err: T, side: 'source' | 'target'): T {
  if (err instanceof RegmirrorError && err.context.side === undefined) err.context.side = side;
  return err;
}

interface TargetWork {
  index: number;
  /** The source reference, as printed. */
  sourceName: string;
  ref: Reference;
  result: TargetResult;
  /** Manifests of the image to push, children first (those the target does not have, and the root). */
  manifests: Manifest[];
  /** Push the root under the tag. False for a target whose tag is right but which lacks referrers. */
  pushTag: boolean;
  /** The root manifest is not at the target by digest. */
  rootMissing: boolean;
  /** Referrers the target lacks, each after its subject, with what of each must be pushed. */
  referrers: ReferrerPush[];
  /** Blobs the target lacks (after HEAD), with a promise each that settles when it is there. */
  needs: Map<Digest, Descriptor>;
  /** Blobs already looked at for this target (the image's and its referrers' may share some). */
  checked: Set<Digest>;
  done: Map<Digest, Promise<void>>;
  failed?: unknown;
  /** The target refused our credentials (401/403) for a write: its remaining blobs are not tried. */
  denied?: unknown;
}

/** A referrer a target lacks: its graph at the source and which of its manifests the target has not. */
interface ReferrerPush extends MissingReferrer {
  graph: ManifestGraph;
  missing: Set<Digest>;
}

export type OverwritePolicy = 'changed' | 'never' | 'always';

export interface ImageOptions {
  /** What to do with a target tag that points at another digest (default "changed": move it). */
  overwrite?: OverwritePolicy;
  /** Keep only these platforms of an index (a new index, with its own digest). Undefined = all. */
  platforms?: Platform[];
  /** Plan only: find out what would be uploaded, mounted and pushed; write nothing. */
  dryRun?: boolean;
  /**
   * Trust no manifest the target has: HEAD every blob below every manifest, and bring back what is gone
   * (repairs content that was garbage-collected or half-copied under a tag that looks right).
   */
  verify?: boolean;
  /** Copy referrers (signatures, SBOMs, attestations, cosign tags) too, and compare them. Absent: off. */
  referrers?: ReferrerOptions;
}

/** What the caller that runs many images learns while one is under way. */
export interface ImageHooks {
  /**
   * Every target not yet done is one whose registry is throttling us: the image no longer needs its
   * place among the images in flight, and the run may start another (the throttled targets go on).
   * Called at most once; the result still comes when every target is done.
   */
  detach?: () => void;
}

/**
 * Copy `source` to every target. Failures are reported in the result, per target or for the image; an
 * abort (the run's signal) is too — targets not finished by then are `failed` with kind `interrupted` —
 * so that an interrupted run can still print what it did.
 */
export async function copyImage(
  source: Reference,
  targets: Reference[],
  ctx: CopyContext,
  options: ImageOptions = {},
  hooks: ImageHooks = {},
): Promise<ImageResult> {
  const started = Date.now();
  const image: ImageResult = {
    source: formatReference(source),
    targets: targets.map((t) => newTargetResult(formatReference(t))),
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };
  try {
    return await copyInto(image, source, targets, ctx, options, hooks);
  } catch (err) {
    if (!isAbort(err)) throw err;
    image.error = 'interrupted';
    image.errorKind = 'interrupted';
    for (const r of image.targets) {
      // Finished targets have their digest; the rest did not get their tag.
      if (r.status === 'failed' || r.digest !== undefined) continue;
      r.status = 'failed';
      r.error = 'interrupted before the tag was pushed';
      r.errorKind = 'interrupted';
    }
    image.durationMs = Date.now() - started;
    return image;
  }
}

async function copyInto(
  image: ImageResult,
  source: Reference,
  targets: Reference[],
  ctx: CopyContext,
  options: ImageOptions,
  hooks: ImageHooks,
): Promise<ImageResult> {
  const started = Date.now();
  const sourceName = image.source;
  const results = image.targets;
  ctx.onEvent?.({ type: 'image-start', source: sourceName, targets: results.map((r) => r.target) });
  const finish = (): ImageResult => {
    image.durationMs = Date.now() - started;
    ctx.onEvent?.({ type: 'image-done', result: image });
    return image;
  };
  const failTarget = (r: TargetResult, err: unknown) => {
    r.status = 'failed';
    r.error ??= formatError(onSide(err, 'target'));
    r.errorKind ??= errorKind(err);
  };
  const upToDate = (r: TargetResult, digest: Digest) =>
    ctx.onEvent?.({ type: 'target-up-to-date', source: sourceName, target: r.target, digest });
  const overwrite = options.overwrite ?? 'changed';
  const referrers = options.referrers;
  const verify = options.verify ?? false;

  let root: Manifest | undefined;
  let graph: ManifestGraph | undefined;
  let found: SourceReferrers | undefined;
  let wanted: Digest;
  let work: TargetWork[];
  let surveyed: Promise<void>[];
  let interrupted: unknown;
  try {
    // 1. Cheapest check first: HEADs on both sides. A target tag the run's listing showed absent needs
    // none (except under "never", where only a fresh answer may allow a write); when every target lacks
    // the tag, the source manifest is needed anyway and one GET gives its digest too.
    const listed = (t: Reference) =>
      overwrite !== 'never' && t.tag !== undefined && ctx.targetTags?.lacks(t, t.tag) === true;
    const direct = targets.length > 0 && targets.every(listed);
    let fetched: Manifest | undefined;
    const sourceHead = async (): Promise<ManifestInfo | undefined> => {
      try {
        if (!direct) return await ctx.store.manifestHead(source);
        fetched = await ctx.store.manifestGet(source);
        return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.bytes.byteLength };
      } catch (err) {
        if (direct && errorKind(err) === 'not-found') return undefined;
        throw onSide(err, 'source');
      }
    };
    const [src, ...heads] = await Promise.all([
      sourceHead(),
      ...targets.map((t, i) =>
        listed(t)
          ? Promise.resolve(undefined)
          : ctx.store.manifestHead(t).catch((err) => {
              if (isAbort(err)) throw err;
              failTarget(results[i]!, err);
              return undefined;
            }),
      ),
    ]);
    if (!src) {
      throw new NotFoundError(`${describeSelector(source)} not found`, {
        context: {
          side: 'source',
          registry: source.registry,
          repository: source.path,
          step: 'manifest HEAD',
        },
      });
    }
    image.digest = src.digest;
    image.mediaType = src.mediaType;

    // A platform filter makes a new index: its digest, not the source's, is what targets should hold.
    // That needs the source index itself: one GET; its children only once a target needs work.
    wanted = src.digest;
    root = fetched;
    if (options.platforms && (src.mediaType === undefined || isIndexType(src.mediaType))) {
      const sourceRoot =
        fetched ??
        (await ctx.store.manifestGet(withDigest(source, src.digest)).catch((err) => {
          throw onSide(err, 'source');
        }));
      root = filterRoot(sourceRoot, options.platforms, source);
      if (root.digest !== src.digest) {
        wanted = root.digest;
        image.filteredDigest = wanted;
        image.platforms = options.platforms.map(formatPlatform);
      }
    }

    const pending: number[] = [];
    // Targets whose tag is right: with referrers on, still compared for referrers.
    const current: number[] = [];
    heads.forEach((head, i) => {
      const r = results[i]!;
      if (r.status === 'failed') return;
      if (head) r.previousDigest = head.digest;
      if (head?.digest === wanted && overwrite !== 'always') {
        r.status = 'up-to-date';
        r.tagAction = 'none';
        r.digest = wanted;
        delete r.previousDigest;
        if (referrers) current.push(i);
        else upToDate(r, wanted);
        return;
      }
      if (head && head.digest !== wanted && overwrite === 'never') {
        // Immutable releases: a tag that points elsewhere is left alone, and said so.
        r.status = 'kept';
        r.tagAction = 'keep';
        r.digest = head.digest;
        r.refusedBy = 'overwrite-never';
        return;
      }
      r.tagAction = !head ? 'create' : head.digest === wanted ? 'none' : 'move';
      pending.push(i);
    });
    if (pending.length === 0 && current.length === 0) return finish();

    // 2. The source graph, fetched once whatever the number of targets; only when some target needs it.
    if (pending.length > 0) {
      graph = await loadGraph(ctx.store, withDigest(source, src.digest), root).catch((err) => {
        throw onSide(err, 'source');
      });
      image.mediaType = graph.root.mediaType;
      // The source repository holds every blob: a target on the same registry can mount from it.
      for (const b of blobsBelow(graph.order).keys())
        ctx.knowledge.markPresent(source.registry, source.path, b);
    }
    // ... and the referrers of every manifest in it (a filtered index, being new, has none at the source).
    if (referrers) {
      const g = graph;
      const subjects = async () =>
        (g
          ? g.order.map((m) => m.digest)
          : await manifestDigests(ctx.store, withDigest(source, src.digest), root)
        ).filter((d) => d === src.digest || d !== wanted);
      found = await discoverAtSource(
        ctx.store,
        referrerRunOf(ctx),
        source,
        src.digest,
        subjects,
        referrers,
      ).catch((err) => {
        throw onSide(err, 'source');
      });
    }

    // 3. What each target lacks.
    const sourceGraphs = new Map<Digest, Promise<ManifestGraph>>();
    const referrerGraph = (digest: Digest): Promise<ManifestGraph> => {
      let p = sourceGraphs.get(digest);
      if (!p) {
        p = loadGraph(ctx.store, withDigest(source, digest)).then((g) => {
          for (const b of blobsBelow(g.order).keys())
            ctx.knowledge.markPresent(source.registry, source.path, b);
          return g;
        });
        p.catch(() => {});
        sourceGraphs.set(digest, p);
      }
      return p.catch((err) => {
        throw onSide(err, 'source');
      });
    };
    const candidates = [
      ...pending.map((i) => ({ i, pushTag: true })),
      ...current.map((i) => ({ i, pushTag: false })),
    ];
    work = candidates.map(({ i, pushTag }) => ({
      index: i,
      sourceName,
      ref: targets[i]!,
      result: results[i]!,
      manifests: [],
      pushTag,
      rootMissing: false,
      referrers: [],
      needs: new Map(),
      checked: new Set(),
      done: new Map(),
    }));
    surveyed = work.map(async (w) => {
      if (interrupted !== undefined) return;
      try {
        if (w.pushTag) await surveyTarget(w, graph!, ctx, verify);
        if (found && found.found.length > 0) await surveyReferrers(w, found, referrerGraph, ctx, verify);
        if (options.dryRun && isLive(w)) {
          // A plan says which repositories a sync would create (it asks; it does not create).
          if ((await ctx.store.repositoryState?.(w.ref)) === 'missing') w.result.repositoryCreated = true;
        } else if (isLive(w) && (await ctx.store.ensureRepository?.(w.ref)) === 'created') {
          // Registries that need a repository before the first write (ECR) get it now, once per run.
          w.result.repositoryCreated = true;
          ctx.onEvent?.({
            type: 'write',
            action: 'repository-create',
            source: sourceName,
            registry: w.ref.registry,
            repository: w.ref.path,
            settings: ctx.store.repositorySettings?.(w.ref) ?? '',
          });
        }
      } catch (err) {
        // Errors of a survey are the target's; an interrupt is the image's (thrown once all have settled).
        if (isAbort(err)) {
          interrupted ??= err;
          return;
        }
        w.failed = err;
        failTarget(w.result, err);
      }
      if (!w.pushTag && !w.failed && w.referrers.length === 0) upToDate(w.result, wanted);
    });
  } catch (err) {
    if (isAbort(err)) throw err;
    image.error = formatError(onSide(err, 'source'));
    image.errorKind = errorKind(err);
    for (const r of results) {
      if (r.status === 'failed' || r.status === 'kept') continue;
      if (r.status === 'up-to-date' && !referrers) continue;
      r.status = 'failed';
      r.error = 'not copied: the source failed';
      r.errorKind = image.errorKind;
    }
    return finish();
  }

  const rootDigest = wanted;
  if (options.dryRun) {
    await Promise.all(surveyed);
    if (interrupted !== undefined) throw interrupted;
    planTransfers(work.filter(isLive), rootDigest, ctx);
    return finish();
  }
  // From here each target goes on its own: survey → blobs → manifests. Targets whose surveys are in
  // share one fan-out per blob; a target whose registry is throttling us is not waited for — it joins
  // with transfers of its own once its survey is in, and slows nobody else.
  const watched = (w: TargetWork, promise: Promise<unknown>): Watched => ({
    promise,
    registry: w.ref.registry,
  });
  const inTime = await untilSettledOrCongested(
    work.map((w, k) => watched(w, surveyed[k]!)),
    ctx.store,
  );
  if (interrupted !== undefined) throw interrupted;
  const together = work.filter((w, k) => inTime[k] && isLive(w));
  transferBlobs(source, together, ctx);
  const pipelines = work.map((w, k): Promise<void> => {
    if (inTime[k])
      return isLive(w) ? pushManifests(w, graph, rootDigest, found, ctx, overwrite) : Promise.resolve();
    return surveyed[k]!.then(() => {
      if (interrupted !== undefined) throw interrupted;
      if (!isLive(w)) return;
      transferBlobs(source, [w], ctx);
      return pushManifests(w, graph, rootDigest, found, ctx, overwrite);
    });
  });
  for (const p of pipelines) p.catch(() => {});
  const finished = await untilSettledOrCongested(
    work.map((w, k) => watched(w, pipelines[k]!)),
    ctx.store,
  );
  // Only throttled targets are left: the run may start another image meanwhile (its bound allowing).
  if (finished.some((f) => !f)) hooks.detach?.();
  await Promise.all(pipelines);
  return finish();
}

/** A target with something to do: the image, or only referrers. */
function isLive(w: TargetWork): boolean {
  return !w.failed && (w.pushTag || w.referrers.length > 0);
}

/** The run's shared referrer state, or one for this image alone. */
function referrerRunOf(ctx: CopyContext): ReferrerRun {
  ctx.referrerRun ??= new ReferrerRun();
  return ctx.referrerRun;
}

/** What the result lists for a referrer. */
function entryOf(r: MissingReferrer): ReferrerEntry {
  const f = r.found;
  return {
    digest: f.digest,
    subject: f.subject,
    ...(f.artifactType !== undefined ? { artifactType: f.artifactType } : {}),
    ...(f.tag !== undefined ? { tag: f.tag } : {}),
  };
}

/**
 * Dry run of steps 4 and 5: count what would be mounted or uploaded, with the same rules, and let the
 * run's knowledge believe it happened so later images of the plan count their mounts right.
 */
function planTransfers(work: TargetWork[], rootDigest: Digest, ctx: CopyContext): void {
  const uploadedTo = new Set<string>();
  for (const w of work) {
    for (const [digest, desc] of w.needs) {
      const registryKey = `${w.ref.registry} ${digest}`;
      const mountable = ctx.store.supportsMounts?.(w.ref.registry) ?? true;
      if (
        mountable &&
        // A layout's unprefixed names have the repository path "": a mount source, though falsy.
        (ctx.knowledge.mountSource(w.ref.registry, w.ref.path, digest, { certain: true }) !== undefined ||
          uploadedTo.has(registryKey))
      ) {
        w.result.blobsMounted++;
        w.result.bytesMounted += desc.size;
      } else {
        w.result.blobsUploaded++;
        w.result.bytesUploaded += desc.size;
        uploadedTo.add(registryKey);
      }
      ctx.knowledge.markPresent(w.ref.registry, w.ref.path, digest);
    }
    w.result.manifestsPushed = w.manifests.length;
    w.result.referrersCopied = w.referrers.length;
    if (w.referrers.length > 0) w.result.referrers = w.referrers.map(entryOf);
    w.result.status = 'planned';
    w.result.digest = rootDigest;
  }
}

/** HEAD the target's manifests (skip what it has, subtree and all) and the blobs below the rest. */
async function surveyTarget(
  w: TargetWork,
  graph: ManifestGraph,
  ctx: CopyContext,
  verify: boolean,
): Promise<void> {
  // An image manifest under a tag the target lacks: a HEAD by digest could only find it untagged (an
  // interrupted push), which would spare nothing but the blob HEADs below it. An index is asked about:
  // the same index under another tag (latest = 1.4.2) spares its whole tree.
  const untagged = w.result.tagAction === 'create' && graph.root.kind === 'image' && !verify;
  const missing = untagged
    ? new Set<Digest>([graph.root.digest])
    : await missingManifests(w.ref, graph, ctx, verify);
  w.rootMissing = missing.has(graph.root.digest);
  w.manifests = graph.order.filter((m) => missing.has(m.digest) || m === graph.root);
  const blobs = blobsBelow(verify ? graph.order : w.manifests.filter((m) => missing.has(m.digest)));
  await needBlobs(w, blobs.values(), ctx);
}

/** The manifests of `graph` the target does not have (by digest); a manifest it has stands for its subtree. */
async function missingManifests(
  repo: Reference,
  graph: ManifestGraph,
  ctx: CopyContext,
  verify: boolean,
): Promise<Set<Digest>> {
  const missing = new Set<Digest>();
  const { knowledge } = ctx;
  const check = async (m: Manifest): Promise<void> => {
    // Pushed there by this run: there, subtree and all. In a repository that had no tag when the run
    // started, anything else is missing (unless an earlier run left it, as the mount cache may say).
    if (!verify && knowledge.hasManifest(repo.registry, repo.path, m.digest)) return;
    const unasked =
      !verify && ctx.targetTags?.wasEmpty(repo) && !knowledge.hinted(repo.registry, repo.path, m.digest);
    const head = unasked ? undefined : await ctx.store.manifestHead(withDigest(repo, m.digest));
    if (!head) missing.add(m.digest);
    // A manifest the target has stands for its whole subtree — unless told to trust nothing.
    else if (!verify) return;
    await Promise.all(childrenOf(m).map((c) => check(graph.manifests.get(c.digest)!)));
  };
  await check(graph.root);
  return missing;
}

/** HEAD each blob the target may lack (unless this run knows it is there); note the ones it needs. */
async function needBlobs(w: TargetWork, blobs: Iterable<Descriptor>, ctx: CopyContext): Promise<void> {
  const { store, knowledge } = ctx;
  await Promise.all(
    [...blobs].map(async (b) => {
      if (w.checked.has(b.digest)) return;
      w.checked.add(b.digest);
      if (knowledge.isPresent(w.ref.registry, w.ref.path, b.digest)) {
        w.result.blobsExisting++;
        return;
      }
      if (
        b.size <= UNCHECKED_BLOB_MAX &&
        ctx.targetTags?.wasEmpty(w.ref) &&
        // An earlier run that pushed it here and was interrupted before its first tag: worth the HEAD.
        !knowledge.hinted(w.ref.registry, w.ref.path, b.digest)
      ) {
        // A repository with no tag when the run started: uploading is what a HEAD would lead to.
        w.needs.set(b.digest, b);
        return;
      }
      const size = await store.blobHead(w.ref, b.digest);
      if (size === undefined) {
        w.needs.set(b.digest, b);
        return;
      }
      knowledge.markPresent(w.ref.registry, w.ref.path, b.digest);
      w.result.blobsExisting++;
      ctx.onEvent?.({
        type: 'blob-done',
        target: w.result.target,
        digest: b.digest,
        size: b.size,
        action: 'exists',
      });
    }),
  );
}

/**
 * The referrers this target lacks: compared with the source's (one request per subject that has some),
 * then, for each, its manifests HEADed by digest (a referrer pushed by an interrupted run may be there,
 * only not listed yet) and the blobs below the missing ones.
 */
async function surveyReferrers(
  w: TargetWork,
  found: SourceReferrers,
  sourceGraph: (digest: Digest) => Promise<ManifestGraph>,
  ctx: CopyContext,
  verify: boolean,
): Promise<void> {
  const lacking = await missingAtTarget(ctx.store, referrerRunOf(ctx), w.ref, found, verify);
  w.referrers = await Promise.all(
    lacking.map(async (r): Promise<ReferrerPush> => {
      const graph = await sourceGraph(r.found.digest);
      const missing = await missingManifests(w.ref, graph, ctx, verify);
      return { ...r, graph, missing };
    }),
  );
  const manifests = w.referrers.flatMap((r) =>
    verify ? r.graph.order : r.graph.order.filter((m) => r.missing.has(m.digest)),
  );
  await needBlobs(w, blobsBelow(manifests).values(), ctx);
}

/** Start, for every blob some target needs, its mount-or-upload; fills each target's `done` map. */
function transferBlobs(source: Reference, work: TargetWork[], ctx: CopyContext): void {
  const byDigest = new Map<Digest, { desc: Descriptor; targets: TargetWork[] }>();
  for (const w of work) {
    for (const [digest, desc] of w.needs) {
      if (w.done.has(digest)) continue;
      let entry = byDigest.get(digest);
      if (!entry) {
        entry = { desc, targets: [] };
        byDigest.set(digest, entry);
      }
      entry.targets.push(w);
    }
  }
  for (const [digest, { desc, targets }] of byDigest) {
    const outcomes = transferBlob(source, desc, targets, ctx);
    targets.forEach((w, i) => {
      const p = outcomes[i]!.then((err) => {
        if (err !== undefined) throw err;
      });
      p.catch(() => {});
      w.done.set(digest, p);
    });
  }
}

/**
 * Bring one blob to every target in `targets`. One promise per target, settling (never rejecting) when
 * that target has the blob (undefined) or has failed (the error) — each on its own, whatever the others
 * do. A source failure (unreadable, corrupt) settles every target's with that error.
 *
 * Cheapest first: a target that this run knows has the blob is done; one whose registry holds it in
 * another repository mounts it. Of the rest, one target per registry (the leader) joins a single
 * fan-out upload fed by one source GET; the others on that registry mount from it once it is done.
 */
function transferBlob(
  source: Reference,
  desc: Descriptor,
  targets: TargetWork[],
  ctx: CopyContext,
): Promise<unknown>[] {
  // Claim the registries nobody is sending this digest to yet, before the first await: JavaScript runs
  // one thing at a time, so no other image can slip in between the check and the claim. A registry's
  // claim ends when this transfer is done there (another registry's slowness does not hold it).
  const { knowledge } = ctx;
  const foreign = targets.map((w) => knowledge.pending(w.ref.registry, desc.digest));
  const claims = new Map<string, { release: () => void; count: number }>();
  for (const w of targets) {
    const registry = w.ref.registry;
    if (claims.has(registry) || knowledge.pending(registry, desc.digest)) {
      const c = claims.get(registry);
      if (c) c.count++;
      continue;
    }
    let release!: () => void;
    knowledge.track(
      registry,
      desc.digest,
      new Promise<void>((resolve) => {
        release = resolve;
      }),
    );
    claims.set(registry, { release, count: 1 });
  }
  const outcomes = transferClaimed(source, desc, targets, ctx, { allowMount: true, round: 1 }, foreign);
  targets.forEach((w, i) => {
    void outcomes[i]!.then(() => {
      const c = claims.get(w.ref.registry);
      if (c && --c.count === 0) c.release();
    });
  });
  return outcomes;
}

/**
 * Run a blob transfer in its slot: a count, or a share of the memory budget — the blob itself when it is
 * small, else the fan-out window and a chunk (what a large transfer holds at most).
 */
function inTransferSlot<T>(ctx: CopyContext, size: number, fn: () => Promise<T>): Promise<T> {
  const t = ctx.transfers;
  if (typeof t === 'function') return t(fn);
  return t.run(Math.min(size, FAN_OUT_WINDOW + 8 * 1024 * 1024) + 64 * 1024, fn);
}

/** A promise and the functions that settle it. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** What a target's first look at a blob decided: done (there, or failed), or to be uploaded. */
type BlobStart = { done: true; outcome: unknown } | { done: false; session?: UploadSink };

/**
 * The transfer of one blob, after the claim. `sessions`: upload sessions some targets already hold (a
 * declined mount opened one): they are used, not abandoned.
 */
function transferClaimed(
  source: Reference,
  desc: Descriptor,
  targets: TargetWork[],
  ctx: CopyContext,
  how: { allowMount: boolean; round: number },
  foreign: (Promise<void> | undefined)[],
  sessions: (UploadSink | undefined)[] = [],
): Promise<unknown>[] {
  const { allowMount, round } = how;
  const { store, knowledge } = ctx;
  const emit = (w: TargetWork, action: 'mount' | 'upload' | 'exists') =>
    ctx.onEvent?.({
      type: 'blob-done',
      target: w.result.target,
      digest: desc.digest,
      size: desc.size,
      action,
    });
  const written = (w: TargetWork, action: 'blob-upload' | 'blob-mount', from?: string) =>
    ctx.onEvent?.({
      type: 'write',
      action,
      source: formatReference(source),
      registry: w.ref.registry,
      repository: w.ref.path,
      digest: desc.digest,
      size: desc.size,
      mediaType: desc.mediaType,
      ...(from !== undefined ? { from } : {}),
    });
  const mounted = (w: TargetWork, from?: string): BlobStart => {
    knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
    w.result.blobsMounted++;
    w.result.bytesMounted += desc.size;
    written(w, 'blob-mount', from);
    emit(w, 'mount');
    return { done: true, outcome: undefined };
  };
  const existing = (w: TargetWork): BlobStart => {
    w.result.blobsExisting++;
    emit(w, 'exists');
    return { done: true, outcome: undefined };
  };
  const uploaded = (w: TargetWork): undefined => {
    knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
    w.result.blobsUploaded++;
    w.result.bytesUploaded += desc.size;
    written(w, 'blob-upload');
    emit(w, 'upload');
    return undefined;
  };
  /** Registries where a mount cannot succeed (ECR without blob mounting) are not asked. */
  const mountable = (w: TargetWork) => store.supportsMounts?.(w.ref.registry) ?? true;
  /**
   * Try a mount. Linked: true. Declined with a session opened (202): that session, to upload into — a
   * stale mount source then costs nothing more than the POST an upload needs anyway. Refused otherwise
   * (Harbor's 401 for a `from` it will not read): false, and a refusal of our credentials for `from` is
   * remembered, so that the run does not ask for mounts from that repository again.
   */
  const tryMount = async (w: TargetWork, from: string): Promise<true | UploadSink | false> => {
    if (knowledge.mountRefused(w.ref.registry, from)) return false;
    try {
      const opened = await store.uploadStart(w.ref, { digest: desc.digest, from });
      return opened.mounted ? true : opened.session;
    } catch (err) {
      if (isAbort(err)) throw err;
      if (err instanceof AuthError || err instanceof PermissionError)
        knowledge.refuseMountsFrom(w.ref.registry, from);
      return false;
    }
  };
  /** A target that refused our credentials once will refuse them for its other blobs: ask no more. */
  const failed = (w: TargetWork, err: unknown): BlobStart => {
    if (err instanceof AuthError || err instanceof PermissionError) w.denied ??= err;
    return { done: true, outcome: err };
  };

  // 1. Each target on its own: known there, refused before, found by a HEAD (a restart), or mounted.
  const start = async (w: TargetWork, i: number): Promise<BlobStart> => {
    try {
      const inflight = foreign[i];
      if (inflight) await inflight.catch(() => {});
      if (knowledge.isPresent(w.ref.registry, w.ref.path, desc.digest)) return existing(w);
      if (w.denied) return { done: true, outcome: w.denied };
      const held = sessions[i];
      if (held) return { done: false, session: held };
      // A restarted transfer: the failed commit may have landed after all.
      if (round > 1 && (await store.blobHead(w.ref, desc.digest)) === desc.size) {
        knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
        return existing(w);
      }
      const from =
        allowMount && mountable(w)
          ? knowledge.mountSource(w.ref.registry, w.ref.path, desc.digest)
          : undefined;
      // A layout's unprefixed names have the repository path "": a mount source, though falsy.
      if (from !== undefined) {
        const tried = await tryMount(w, from);
        if (tried === true) return mounted(w, from);
        if (tried !== false) return { done: false, session: tried };
      }
      return { done: false };
    } catch (err) {
      if (isAbort(err)) throw err;
      return failed(w, err);
    }
  };
  const starts = targets.map((w, i) => start(w, i));
  const results = targets.map(() => deferred<unknown>());
  const settle = (i: number, outcome: unknown) => results[i]!.resolve(outcome);
  /** A target that has to upload after the fan-out went without it: a transfer of its own. */
  const alone = (i: number, again: { allowMount: boolean; round: number }, session?: UploadSink) => {
    const [p] = transferClaimed(source, desc, [targets[i]!], ctx, again, [undefined], [session]);
    void p!.then((o) => settle(i, o));
  };

  void (async () => {
    // 2. Wait for every target's decision, except those of registries that are throttling us.
    const inTime = await untilSettledOrCongested(
      starts.map((p, i) => ({ promise: p, registry: targets[i]!.ref.registry })),
      store,
    );
    const decided: (BlobStart | undefined)[] = targets.map(() => undefined);
    await Promise.all(
      starts.map(async (p, i) => {
        if (!inTime[i]) return;
        try {
          decided[i] = await p;
        } catch (err) {
          decided[i] = { done: true, outcome: err };
        }
      }),
    );
    starts.forEach((p, i) => {
      if (inTime[i]) return;
      // Late: it goes alone once it knows what it needs.
      p.then(
        (d) => (d.done ? settle(i, d.outcome) : alone(i, how, d.session)),
        (err) => settle(i, err),
      );
    });

    // 3. One leader per registry uploads; the others mount from it once it is done. A registry that
    // declined a mount (it answered with a session) declines the next too: all its targets upload.
    const toUpload: number[] = [];
    decided.forEach((d, i) => {
      if (!d) return;
      if (d.done) settle(i, d.outcome);
      else toUpload.push(i);
    });
    if (toUpload.length === 0) return;
    const declined = new Set(
      toUpload
        .filter((i) => (decided[i] as { session?: UploadSink }).session)
        .map((i) => targets[i]!.ref.registry),
    );
    const leaderOf = new Map<string, number>();
    const leaders: number[] = [];
    const followers: number[] = [];
    for (const i of toUpload) {
      const w = targets[i]!;
      const registry = w.ref.registry;
      // A target that could not mount from its registry's leader (the registry refused that repository
      // before) is a leader too: it joins the same fan-out instead of waiting for a mount that will fail.
      const leader = leaderOf.get(registry);
      const follow =
        allowMount &&
        mountable(w) &&
        leader !== undefined &&
        !declined.has(registry) &&
        !knowledge.mountRefused(registry, targets[leader]!.ref.path);
      if (follow) followers.push(i);
      else {
        if (!leaderOf.has(registry)) leaderOf.set(registry, i);
        leaders.push(i);
      }
    }

    // 4. The fan-out: one source GET for every leader, their sessions opening beside it once the blob's
    // turn has come (not while it waits for a slot: no idle sessions to expire, fewer to abandon).
    const leaderDone = new Map<number, Promise<unknown>>();
    const sent = leaders.map(() => deferred<SinkOutcome>());
    for (const [k, i] of leaders.entries()) leaderDone.set(i, sent[k]!.promise);
    if (leaders.length > 0) {
      void inTransferSlot(ctx, desc.size, async () => {
        // A registry that refused our credentials meanwhile (another blob of the image) is not asked.
        const running: number[] = [];
        leaders.forEach((i, k) => {
          const w = targets[i]!;
          if (!w.denied) running.push(k);
          else {
            void (decided[i] as { session?: UploadSink }).session?.cancel();
            sent[k]!.resolve({ error: w.denied, source: false });
          }
        });
        if (running.length === 0) return;
        const specs: SinkSpec[] = running.map((k) => {
          const w = targets[leaders[k]!]!;
          const held = (decided[leaders[k]!] as { session?: UploadSink }).session;
          return {
            session:
              held ??
              store.uploadStart(w.ref).then((opened) => {
                if (opened.mounted) throw new Error('internal: a plain upload start answered with a mount');
                return opened.session;
              }),
            congested: () => store.congested?.(w.ref.registry) ?? false,
          };
        });
        ctx.onEvent?.({
          type: 'blob-start',
          source: formatReference(source),
          digest: desc.digest,
          size: desc.size,
          uploads: running.length,
        });
        const f = fanOut(
          () =>
            store.blobGet(source, desc.digest, desc.size).catch((err) => {
              throw onSide(err, 'source');
            }),
          desc.digest,
          desc.size,
          specs,
          (bytes) => ctx.onEvent?.({ type: 'blob-progress', digest: desc.digest, bytes }),
        );
        running.forEach((k, n) => {
          void f.outcomes[n]!.then((o) => {
            if (o !== undefined && !o.source) failed(targets[leaders[k]!]!, o.error);
            sent[k]!.resolve(o);
          });
        });
        // The slot bounds open source streams and the memory they hold: held until the source is
        // read and every target of registries that are not throttling us has taken the blob.
        await f.read;
        await untilSettledOrCongested(
          f.outcomes.map((o, n) => ({
            promise: o,
            registry: targets[leaders[running[n]!]!]!.ref.registry,
          })),
          store,
        );
      }).catch((err) => {
        // The slot itself failed (an interrupt): every sink still waiting ends with it.
        for (const d of sent) d.resolve({ error: err, source: true });
      });
    }
    leaders.forEach((i, k) => {
      const w = targets[i]!;
      void sent[k]!.promise.then((o) => {
        if (o === undefined) return settle(i, uploaded(w));
        if (o.source) {
          // A source failure (corrupt or unreadable blob): say which registry and repository served it.
          const err = o.error;
          if (err instanceof RegmirrorError && err.context.side === 'source') {
            err.context.registry ??= source.registry;
            err.context.repository ??= source.path;
          }
          return settle(i, onSide(err, 'source'));
        }
        // A transient fault (a connection lost, a session the registry dropped): the blob goes again, from
        // a fresh source GET and a new session.
        if (isTransient(o.error) && round < BLOB_ROUNDS)
          return alone(i, { allowMount: false, round: round + 1 });
        failed(w, o.error);
        settle(i, o.error);
      });
    });

    // 5. Followers: mount from their registry's leader; where that is declined, an upload of their own
    // (in the session the declined mount opened).
    for (const i of followers) {
      const w = targets[i]!;
      const leader = leaderOf.get(w.ref.registry)!;
      void leaderDone.get(leader)!.then(async (o) => {
        try {
          const leaderOk = o === undefined;
          if (leaderOk && knowledge.isPresent(w.ref.registry, w.ref.path, desc.digest)) {
            existing(w);
            return settle(i, undefined);
          }
          if (o !== undefined && (o as { source?: boolean }).source)
            return settle(i, (o as { error: unknown }).error);
          const leaderPath = targets[leader]!.ref.path;
          if (leaderOk) {
            const tried = await tryMount(w, leaderPath);
            if (tried === true) {
              mounted(w, leaderPath);
              return settle(i, undefined);
            }
            if (tried !== false) return alone(i, { allowMount: false, round }, tried);
          }
          alone(i, { allowMount: false, round });
        } catch (err) {
          settle(i, err);
        }
      });
    }
  })().catch((err) => {
    for (const r of results) r.resolve(err);
  });
  return results.map((r) => r.promise);
}

/**
 * Once a target's blobs are in: the image's manifests children first; then its referrers, each after its
 * subject (the root by digest first when it must be pushed and has referrers to bring), listed in the
 * fallback index where the target has no referrers API; the root under the tag last.
 */
async function pushManifests(
  w: TargetWork,
  graph: ManifestGraph | undefined,
  rootDigest: Digest,
  found: SourceReferrers | undefined,
  ctx: CopyContext,
  overwrite: OverwritePolicy,
): Promise<void> {
  const put = async (m: Manifest, selector: string, extra: WriteExtra = {}): Promise<void> => {
    const pushed = await writeManifest(ctx.store, ctx.knowledge, {
      repo: w.ref,
      selector,
      bytes: m.bytes,
      mediaType: m.mediaType,
      names: childrenOf(m).map((c) => c.digest),
    });
    ctx.knowledge.markManifest(w.ref.registry, w.ref.path, m.digest);
    // Under a tag the registry names it by sha256 even when the source named it by sha512: the same
    // bytes either way, which is what counts.
    if (pushed !== m.digest && digestOf(m.bytes, algorithmOf(pushed)) !== pushed) {
      throw new RegmirrorError(`pushed manifest has digest ${pushed}, expected ${m.digest}`, {
        context: { registry: w.ref.registry, repository: w.ref.path, step: `manifest PUT ${selector}` },
      });
    }
    const tag = selector === m.digest ? undefined : selector;
    const previous = extra.previousDigest;
    ctx.onEvent?.({
      type: 'write',
      action: !tag
        ? 'manifest-put'
        : previous === undefined
          ? 'tag-create'
          : previous === m.digest
            ? 'tag-rewrite'
            : 'tag-move',
      source: w.sourceName,
      registry: w.ref.registry,
      repository: w.ref.path,
      digest: m.digest,
      size: m.bytes.byteLength,
      mediaType: m.mediaType,
      ...(tag !== undefined ? { tag } : {}),
      ...(tag !== undefined && previous !== undefined && previous !== m.digest
        ? { previousDigest: previous }
        : {}),
      ...(extra.subject !== undefined ? { subject: extra.subject } : {}),
      ...(extra.artifactType !== undefined ? { artifactType: extra.artifactType } : {}),
    });
    ctx.onEvent?.({ type: 'manifest-pushed', target: w.result.target, digest: m.digest, selector });
  };
  try {
    // allSettled first, so every transfer has finished before this target is judged.
    const settled = await Promise.allSettled(w.done.values());
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const root = graph?.root;
    for (const m of w.manifests) {
      if (m === root) continue;
      await put(m, m.digest);
      w.result.manifestsPushed++;
    }
    // The subject before its referrers, and the tag only once they are there: a tag never shows an
    // image whose signatures have not arrived yet.
    let rootPushed = false;
    if (root && w.pushTag && w.rootMissing && w.referrers.length > 0) {
      await put(root, root.digest);
      w.result.manifestsPushed++;
      rootPushed = true;
    }
    // Referrers of one depth go side by side; a depth starts once the one above (their subjects) is in.
    const pushReferrer = async (r: ReferrerPush): Promise<void> => {
      const f = r.found;
      for (const m of r.graph.order) {
        const top = m === r.graph.root;
        // A cosign tag is (re)pointed even when its manifest is there; an OCI referrer is listed below.
        if (!r.missing.has(m.digest) && !(top && f.tag !== undefined)) continue;
        const about = top
          ? { subject: f.subject, ...(f.artifactType ? { artifactType: f.artifactType } : {}) }
          : {};
        try {
          await put(m, top && f.tag !== undefined ? f.tag : m.digest, {
            ...about,
            ...(top && r.previousDigest !== undefined ? { previousDigest: r.previousDigest } : {}),
          });
        } catch (err) {
          // A registry that refuses a kind of artifact (its config or artifact type) refuses it for every
          // image: say which referrer it was and how to leave that kind out.
          if (!(err instanceof RegistryError)) throw err;
          const what = f.tag ?? f.artifactType ?? 'referrer';
          throw new RegistryError(`${err.message}; it was ${what} ${f.digest} of ${f.subject}`, {
            context: err.context,
            status: err.status,
            codes: err.codes,
            cause: err,
            hint: f.tag
              ? 'set "cosignTags": false for this mirror to leave cosign\'s tags out'
              : 'leave that artifact type out with "referrers": { "exclude": [...] }, or set "referrers": false',
          });
        }
      }
    };
    const depths = [...new Set(w.referrers.map((r) => r.found.depth))].sort((a, b) => a - b);
    for (const depth of depths) {
      // allSettled: every write of the depth has answered before this target is judged.
      const settled = await Promise.allSettled(
        w.referrers.filter((r) => r.found.depth === depth).map(pushReferrer),
      );
      const refused = settled.find((x) => x.status === 'rejected');
      if (refused) throw (refused as PromiseRejectedResult).reason;
    }
    const listed = new Set<Digest>();
    for (const r of w.referrers) if (r.found.tag === undefined) listed.add(r.found.subject);
    w.result.referrersCopied += w.referrers.length;
    if (w.referrers.length > 0) w.result.referrers = w.referrers.map(entryOf);
    if (found && listed.size > 0) await listReferrers(w, [...listed], found, ctx);
    if (w.pushTag && root && !(rootPushed && w.ref.tag === undefined)) {
      try {
        await put(root, w.ref.tag ?? root.digest, {
          ...(w.result.previousDigest !== undefined ? { previousDigest: w.result.previousDigest } : {}),
        });
      } catch (err) {
        // The repository will not move the tag. With overwrite "never" that is what was wanted anyway.
        if (!(err instanceof ImmutableTagError) || overwrite !== 'never') throw err;
        w.result.status = 'kept';
        w.result.tagAction = 'keep';
        w.result.refusedBy = 'immutable-tags';
        if (err.current !== undefined) w.result.digest = err.current as Digest;
        return;
      }
      if (w.ref.tag !== undefined) ctx.targetTags?.noteTag(w.ref, w.ref.tag);
      if (!rootPushed) w.result.manifestsPushed++;
    }
    w.result.status = 'copied';
    w.result.digest = rootDigest;
  } catch (err) {
    if (isAbort(err)) throw err;
    w.result.status = 'failed';
    w.result.error = formatError(onSide(err, 'target'));
    w.result.errorKind = errorKind(err);
    if (err instanceof ImmutableTagError) w.result.refusedBy = 'immutable-tags';
  }
}

interface WriteExtra {
  previousDigest?: Digest;
  subject?: Digest;
  artifactType?: string;
}

/**
 * Make the target list the referrers just pushed for these subjects. A registry with the referrers API
 * indexes them itself; one without gets each subject's fallback index merged. A target whose API support
 * is not known yet (its repository did not exist before this copy) is asked once now.
 */
async function listReferrers(
  w: TargetWork,
  subjects: Digest[],
  found: SourceReferrers,
  ctx: CopyContext,
): Promise<void> {
  const run = referrerRunOf(ctx);
  let api = hasReferrersApi(ctx.store, w.ref.registry);
  if (api === undefined) api = (await referrersOf(ctx.store, w.ref, subjects[0]!)).api;
  if (api === true) return;
  for (const subject of subjects) {
    const writes = await mergeIntoFallbackIndex(
      ctx.store,
      run,
      w.ref,
      subject,
      found.bySubject.get(subject) ?? [],
      found.fallbackIndex.get(subject),
      ctx.knowledge,
    );
    for (const write of writes) {
      ctx.onEvent?.({
        type: 'write',
        action: write.previousDigest === undefined ? 'tag-create' : 'tag-move',
        source: w.sourceName,
        registry: w.ref.registry,
        repository: w.ref.path,
        digest: write.digest,
        size: write.size,
        mediaType: OCI_INDEX,
        tag: write.tag,
        ...(write.previousDigest !== undefined ? { previousDigest: write.previousDigest } : {}),
        subject,
      });
    }
  }
}
