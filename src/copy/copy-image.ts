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
import type { RegistryStore, UploadSink } from './store.js';
import { fanOut, type SinkSpec } from './transfer.js';

export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/** Rounds of one blob transfer for a target whose upload failed with a transient fault. */
const BLOB_ROUNDS = 3;

export interface CopyContext {
  store: RegistryStore;
  knowledge: BlobKnowledge;
  /** Bounds blob streams in flight across the whole run (memory is ~2 × chunk × targets per stream). */
  transfers: Limiter;
  onEvent?: EventSink;
  /** What the images of one run share about referrers (tag lists, fallback-tag locks); else one per image. */
  referrerRun?: ReferrerRun;
}

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
): Promise<ImageResult> {
  const started = Date.now();
  const image: ImageResult = {
    source: formatReference(source),
    targets: targets.map((t) => newTargetResult(formatReference(t))),
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };
  try {
    return await copyInto(image, source, targets, ctx, options);
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
  try {
    // 1. Cheapest check first: HEADs on both sides.
    const [src, ...heads] = await Promise.all([
      ctx.store.manifestHead(source).catch((err) => {
        throw onSide(err, 'source');
      }),
      ...targets.map((t, i) =>
        ctx.store.manifestHead(t).catch((err) => {
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
    if (options.platforms && (src.mediaType === undefined || isIndexType(src.mediaType))) {
      const sourceRoot = await ctx.store.manifestGet(withDigest(source, src.digest)).catch((err) => {
        throw onSide(err, 'source');
      });
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
    work = await Promise.all(
      candidates.map(async ({ i, pushTag }) => {
        const w: TargetWork = {
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
        };
        try {
          if (pushTag) await surveyTarget(w, graph!, ctx, verify);
          if (found && found.found.length > 0) await surveyReferrers(w, found, referrerGraph, ctx, verify);
        } catch (err) {
          if (isAbort(err)) throw err;
          w.failed = err;
          failTarget(w.result, err);
        }
        if (!pushTag && !w.failed && w.referrers.length === 0) upToDate(w.result, wanted);
        return w;
      }),
    );
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

  // Targets with something to do: the image, or only referrers.
  const live = work.filter((w) => !w.failed && (w.pushTag || w.referrers.length > 0));
  const rootDigest = wanted;
  if (options.dryRun) {
    // A plan says which repositories a sync would create (it asks; it does not create).
    await Promise.all(
      live.map(async (w) => {
        try {
          if ((await ctx.store.repositoryState?.(w.ref)) === 'missing') w.result.repositoryCreated = true;
        } catch (err) {
          if (isAbort(err)) throw err;
          w.failed = err;
          failTarget(w.result, err);
        }
      }),
    );
    planTransfers(
      live.filter((w) => !w.failed),
      rootDigest,
      ctx,
    );
    return finish();
  }
  // Registries that need a repository before the first write (ECR) get it now, once per run.
  await Promise.all(
    live.map(async (w) => {
      try {
        if ((await ctx.store.ensureRepository?.(w.ref)) !== 'created') return;
        w.result.repositoryCreated = true;
        ctx.onEvent?.({
          type: 'write',
          action: 'repository-create',
          source: sourceName,
          registry: w.ref.registry,
          repository: w.ref.path,
          settings: ctx.store.repositorySettings?.(w.ref) ?? '',
        });
      } catch (err) {
        if (isAbort(err)) throw err;
        w.failed = err;
        failTarget(w.result, err);
      }
    }),
  );
  const ready = live.filter((w) => !w.failed);
  // 4. Blobs: mount or one fan-out upload per digest. 5. Manifests per target as soon as its blobs are in.
  transferBlobs(source, ready, ctx);
  await Promise.all(ready.map((w) => pushManifests(w, graph, rootDigest, found, ctx, overwrite)));
  return finish();
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
        (ctx.knowledge.mountSource(w.ref.registry, w.ref.path, digest) !== undefined ||
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
  const missing = await missingManifests(w.ref, graph, ctx, verify);
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
  const check = async (m: Manifest): Promise<void> => {
    const head = await ctx.store.manifestHead(withDigest(repo, m.digest));
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
      let entry = byDigest.get(digest);
      if (!entry) {
        entry = { desc, targets: [] };
        byDigest.set(digest, entry);
      }
      entry.targets.push(w);
    }
  }
  for (const [digest, { desc, targets }] of byDigest) {
    const all = transferBlob(source, desc, targets, ctx);
    targets.forEach((w, i) => {
      const p = all.then((outcomes) => {
        if (outcomes[i] !== undefined) throw outcomes[i];
      });
      p.catch(() => {});
      w.done.set(digest, p);
    });
  }
}

/**
 * Bring one blob to every target in `targets`. Resolves with one outcome per target (undefined = there);
 * rejects only for a failure that concerns every target (the source, a digest mismatch).
 *
 * Cheapest first: a target that this run knows has the blob is done; one whose registry holds it in
 * another repository mounts it. Of the rest, one target per registry (the leader) joins a single
 * fan-out upload fed by one source GET; the others on that registry mount from the leader afterwards.
 */
async function transferBlob(
  source: Reference,
  desc: Descriptor,
  targets: TargetWork[],
  ctx: CopyContext,
): Promise<unknown[]> {
  // Claim the registries nobody is sending this digest to yet, before the first await: JavaScript runs
  // one thing at a time, so no other image can slip in between the check and the claim.
  const { knowledge } = ctx;
  const foreign = targets.map((w) => knowledge.pending(w.ref.registry, desc.digest));
  let release!: () => void;
  const claim = new Promise<void>((resolve) => {
    release = resolve;
  });
  for (const w of targets) {
    if (!knowledge.pending(w.ref.registry, desc.digest)) knowledge.track(w.ref.registry, desc.digest, claim);
  }
  try {
    return await transferClaimed(source, desc, targets, ctx, { allowMount: true, round: 1 }, foreign);
  } finally {
    release();
  }
}

async function transferClaimed(
  source: Reference,
  desc: Descriptor,
  targets: TargetWork[],
  ctx: CopyContext,
  how: { allowMount: boolean; round: number },
  foreign: (Promise<void> | undefined)[],
): Promise<unknown[]> {
  const { allowMount, round } = how;
  const { store, knowledge } = ctx;
  const outcomes: unknown[] = targets.map(() => undefined);
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
  const mounted = (w: TargetWork, from?: string) => {
    knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
    w.result.blobsMounted++;
    w.result.bytesMounted += desc.size;
    written(w, 'blob-mount', from);
    emit(w, 'mount');
  };
  const existing = (w: TargetWork) => {
    w.result.blobsExisting++;
    emit(w, 'exists');
  };
  /** Registries where a mount cannot succeed (ECR without blob mounting) are not asked. */
  const mountable = (w: TargetWork) => store.supportsMounts?.(w.ref.registry) ?? true;
  /**
   * Try a mount; true when the registry linked the blob. A refusal (202, or Harbor's 401) is no failure:
   * the blob is uploaded instead. A refusal of our credentials for `from` is remembered, so that the run
   * does not ask for mounts from that repository again.
   */
  const tryMount = async (w: TargetWork, from: string): Promise<boolean> => {
    if (knowledge.mountRefused(w.ref.registry, from)) return false;
    try {
      const opened = await store.uploadStart(w.ref, { digest: desc.digest, from });
      if (opened.mounted) return true;
      await opened.session.cancel();
    } catch (err) {
      if (isAbort(err)) throw err;
      if (err instanceof AuthError || err instanceof PermissionError)
        knowledge.refuseMountsFrom(w.ref.registry, from);
    }
    return false;
  };

  /** A target that refused our credentials once will refuse them for its other blobs: ask no more. */
  const failed = (i: number, err: unknown) => {
    outcomes[i] = err;
    if (err instanceof AuthError || err instanceof PermissionError) targets[i]!.denied ??= err;
  };
  const toUpload: number[] = [];
  await Promise.all(
    targets.map(async (w, i) => {
      try {
        const inflight = foreign[i];
        if (inflight) await inflight.catch(() => {});
        if (knowledge.isPresent(w.ref.registry, w.ref.path, desc.digest)) return existing(w);
        if (w.denied) {
          outcomes[i] = w.denied;
          return;
        }
        // A restarted transfer: the failed commit may have landed after all.
        if (round > 1 && (await store.blobHead(w.ref, desc.digest)) === desc.size) {
          knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
          return existing(w);
        }
        const from =
          allowMount && mountable(w)
            ? knowledge.mountSource(w.ref.registry, w.ref.path, desc.digest)
            : undefined;
        if (from !== undefined && (await tryMount(w, from))) return mounted(w, from);
        toUpload.push(i);
      } catch (err) {
        failed(i, err);
      }
    }),
  );
  if (toUpload.length === 0) return outcomes;

  // One leader per registry uploads; the others mount from it once it is done. Without mounts (a retry
  // after a refused mount), every target uploads.
  // A target that could not mount from its registry's leader (the registry refused that repository
  // before) is a leader too: it joins the same fan-out instead of waiting for a mount that will fail.
  const leaderOf = new Map<string, number>();
  const leaders: number[] = [];
  const followers: number[] = [];
  for (const i of toUpload) {
    const registry = targets[i]!.ref.registry;
    const leader = leaderOf.get(registry);
    const canFollow =
      allowMount &&
      mountable(targets[i]!) &&
      leader !== undefined &&
      !knowledge.mountRefused(registry, targets[leader]!.ref.path);
    if (canFollow) followers.push(i);
    else {
      if (leader === undefined) leaderOf.set(registry, i);
      leaders.push(i);
    }
  }
  const sessions: { i: number; session: UploadSink }[] = [];
  const transfer = ctx.transfers(async () => {
    // Sessions are opened once this blob's turn has come, not while it waits for a slot: no idle
    // sessions to expire, and fewer to abandon on an interrupt.
    await Promise.all(
      leaders.map(async (i) => {
        const w = targets[i]!;
        if (w.denied) {
          outcomes[i] = w.denied;
          return;
        }
        try {
          const opened = await store.uploadStart(w.ref);
          if (opened.mounted) return mounted(w);
          sessions.push({ i, session: opened.session });
        } catch (err) {
          failed(i, err);
        }
      }),
    );
    if (sessions.length === 0) return;
    ctx.onEvent?.({
      type: 'blob-start',
      source: formatReference(source),
      digest: desc.digest,
      size: desc.size,
      uploads: sessions.length,
    });
    let body: Awaited<ReturnType<RegistryStore['blobGet']>>;
    try {
      body = await store.blobGet(source, desc.digest, desc.size);
    } catch (err) {
      await Promise.all(sessions.map((s) => s.session.cancel().catch(() => {})));
      throw onSide(err, 'source');
    }
    const sinks: SinkSpec[] = sessions.map((s) => ({ session: s.session }));
    const { outcomes: sent } = await fanOut(body, desc.digest, desc.size, sinks, (bytes) =>
      ctx.onEvent?.({ type: 'blob-progress', digest: desc.digest, bytes }),
    ).catch((err) => {
      // A source failure (corrupt or unreadable blob): say which registry and repository served it.
      if (err instanceof RegmirrorError && err.context.side === 'source') {
        err.context.registry ??= source.registry;
        err.context.repository ??= source.path;
      }
      throw err;
    });
    sent.forEach((err, k) => {
      const i = sessions[k]!.i;
      const w = targets[i]!;
      if (err !== undefined) {
        failed(i, err);
        return;
      }
      knowledge.markPresent(w.ref.registry, w.ref.path, desc.digest);
      w.result.blobsUploaded++;
      w.result.bytesUploaded += desc.size;
      written(w, 'blob-upload');
      emit(w, 'upload');
    });
  });
  await transfer;

  // Followers: mount from their registry's leader; where that is refused, a plain upload of their own.
  // Targets whose upload hit a transient fault (a connection lost, a session the registry dropped) go
  // again, from a fresh source GET and a new session.
  const retry: number[] = [];
  await Promise.all(
    followers.map(async (i) => {
      const w = targets[i]!;
      const leader = leaderOf.get(w.ref.registry)!;
      const leaderOk = outcomes[leader] === undefined;
      try {
        if (leaderOk && knowledge.isPresent(w.ref.registry, w.ref.path, desc.digest)) return existing(w);
        const leaderPath = targets[leader]!.ref.path;
        if (leaderOk && (await tryMount(w, leaderPath))) return mounted(w, leaderPath);
        retry.push(i);
      } catch (err) {
        failed(i, err);
      }
    }),
  );
  for (const { i } of sessions) {
    if (outcomes[i] !== undefined && isTransient(outcomes[i]) && round < BLOB_ROUNDS) {
      outcomes[i] = undefined;
      retry.push(i);
    }
  }
  if (retry.length > 0) {
    // Still under this call's claim: no waiting on in-flight transfers (that would be waiting on itself).
    const again = await transferClaimed(
      source,
      desc,
      retry.map((i) => targets[i]!),
      ctx,
      { allowMount: false, round: round + 1 },
      retry.map(() => undefined),
    );
    again.forEach((err, k) => {
      outcomes[retry[k]!] = err;
    });
  }
  return outcomes;
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
