// Many images: resolve each mirror's tags, then copy with a bound on images in flight. One failing
// image does not stop the others; an interrupt stops scheduling new ones.

import pLimit from 'p-limit';
import { errorKind, formatError, isAbort, RegmirrorError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import {
  formatRepository,
  type Reference,
  type Repository,
  withDigest,
  withTag,
} from '../reference/reference.js';
import { type CopyContext, copyImage, type ImageOptions, type Limiter } from './copy-image.js';
import type { ImageResult } from './result.js';

/** A mirror as the engine sees it: the config's shape is the CLI's business. */
export interface MirrorSpec {
  name: string;
  source: Repository;
  targets: Repository[];
  /** Pick the tags to mirror from the source's tag list (undefined list = the source was not listed). */
  select: (available: string[]) => { tag: string; digest?: Digest }[];
  /** Whether select needs the source's tag list (false for an explicit list of tags). */
  needsTagList: boolean;
  options: ImageOptions;
  /** Limits images in flight for this mirror (on top of the run's limit). */
  limit?: Limiter;
}

export interface ImageJob {
  mirror: MirrorSpec;
  tag: string;
  source: Reference;
  targets: Reference[];
}

export interface MirrorResult {
  name: string;
  source: string;
  targets: string[];
  /** Tags selected for mirroring. */
  tags: string[];
  /** Resolution failed (e.g. the source tag list could not be read): no image of it was tried. */
  error?: string;
  errorKind?: ReturnType<typeof errorKind>;
  images: ImageResult[];
}

/** A mirror of explicit tags lists its targets' tags only from this many tags on. */
export const LIST_TARGETS_FROM = 10;

/**
 * Resolve a mirror's selection into image jobs: one tag list per source repository, and, when the run
 * keeps them (ctx.targetTags), one per target repository — unless the mirror names fewer than
 * LIST_TARGETS_FROM tags and lists no source (a HEAD per tag is then cheaper).
 */
export async function resolveMirror(
  mirror: MirrorSpec,
  ctx: CopyContext,
): Promise<{ jobs: ImageJob[]; result: MirrorResult }> {
  const result: MirrorResult = {
    name: mirror.name,
    source: formatRepository(mirror.source),
    targets: mirror.targets.map(formatRepository),
    tags: [],
    images: [],
  };
  try {
    // The targets' tag lists too, side by side with the source's: a tag a target lacks then costs no HEAD.
    // A few tags named explicitly are cheaper to HEAD than a whole target repository to list.
    const listTargets = (): Promise<(readonly string[] | undefined)[]> =>
      Promise.all(ctx.targetTags ? mirror.targets.map((t) => ctx.targetTags!.load(ctx.store, t)) : []);
    const early =
      mirror.needsTagList || mirror.select([]).length >= LIST_TARGETS_FROM ? listTargets() : undefined;
    const available = mirror.needsTagList ? await ctx.store.tagList(mirror.source) : [];
    // The same list tells which manifests have referrer tags: no need to read it again per image.
    if (mirror.needsTagList) ctx.referrerRun?.seedTags(mirror.source, available);
    const selected = mirror.select(available);
    // A target's list also says which of its manifests have referrer tags (compared with the source's).
    const listed = early ?? (selected.length >= LIST_TARGETS_FROM ? listTargets() : Promise.resolve([]));
    (await listed).forEach((tags, i) => {
      if (tags) ctx.referrerRun?.seedTags(mirror.targets[i]!, tags);
    });
    result.tags = selected.map((s) => s.tag);
    const jobs = selected.map(({ tag, digest }) => ({
      mirror,
      tag,
      // A pinned digest is copied whatever the source tag points at now.
      source: digest ? { ...withDigest(mirror.source, digest), tag } : withTag(mirror.source, tag),
      targets: mirror.targets.map((t) => withTag(t, tag)),
    }));
    return { jobs, result };
  } catch (err) {
    if (isAbort(err)) throw err;
    if (err instanceof RegmirrorError) err.context.side ??= 'source';
    result.error = formatError(err);
    result.errorKind = errorKind(err);
    return { jobs: [], result };
  }
}

/**
 * Images whose only unfinished targets are on registries that throttle us may give their place to the
 * next image; at most this many at a time, so that a registry that throttles for long cannot make the
 * run hold every remaining image in memory.
 */
export const MAX_DETACHED_IMAGES = 64;

/**
 * Run jobs with at most `images` in flight overall (and each mirror's own limit). Results are put in
 * their mirror's result in job order. After an abort, jobs not yet started are left out.
 *
 * An image holds its place until every target is done — except targets on a registry that is
 * throttling us: once only those are left, the place goes to the next image (up to
 * MAX_DETACHED_IMAGES at a time), so one slow registry does not slow the others' images.
 */
export async function runJobs(
  jobs: ImageJob[],
  results: Map<MirrorSpec, MirrorResult>,
  ctx: CopyContext,
  images: Limiter,
  signal?: AbortSignal,
): Promise<void> {
  let detached = 0;
  const settled = await Promise.all(
    jobs.map((job) => {
      let outcome!: Promise<ImageResult | undefined>;
      const run = () =>
        new Promise<void>((release) => {
          if (signal?.aborted) {
            outcome = Promise.resolve(undefined);
            release();
            return;
          }
          let gone = false;
          const hooks = {
            detach: () => {
              if (detached >= MAX_DETACHED_IMAGES) return;
              detached++;
              gone = true;
              release();
            },
          };
          outcome = copyImage(job.source, job.targets, ctx, job.mirror.options, hooks);
          void outcome
            .finally(() => {
              if (gone) detached--;
              release();
            })
            .catch(() => {});
        });
      return images(() => (job.mirror.limit ? job.mirror.limit(run) : run()))
        .then(() => outcome)
        .catch((err) => {
          if (isAbort(err)) return undefined;
          // copyImage reports its own failures; anything reaching here is a bug, still reported per image.
          return {
            source: `${formatRepository(job.source)}:${job.tag}`,
            targets: [],
            error: formatError(err),
            errorKind: errorKind(err),
            durationMs: 0,
          } satisfies ImageResult;
        });
    }),
  );
  settled.forEach((r, i) => {
    if (r) results.get(jobs[i]!.mirror)!.images.push(r);
  });
}

/**
 * A whole sync: every mirror resolved (tag lists, at most 8 at a time), then every image job with at most
 * `images` in flight. Returns the mirrors' results (in the order given) and how many jobs there were.
 */
export async function syncMirrors(
  specs: MirrorSpec[],
  ctx: CopyContext,
  images: Limiter,
  options: {
    signal?: AbortSignal;
    onResolved?: (result: MirrorResult, jobs: ImageJob[]) => void;
    /** Awaited once every mirror is resolved, before the first image starts. */
    beforeImages?: Promise<unknown>;
  } = {},
): Promise<{ results: MirrorResult[]; jobs: number }> {
  const resolveLimit = pLimit(8);
  const resolved = await Promise.all(specs.map((spec) => resolveLimit(() => resolveMirror(spec, ctx))));
  const results = new Map<MirrorSpec, MirrorResult>();
  const jobs: ImageJob[] = [];
  resolved.forEach((r, i) => {
    results.set(specs[i]!, r.result);
    jobs.push(...r.jobs);
    options.onResolved?.(r.result, r.jobs);
  });
  await options.beforeImages;
  await runJobs(jobs, results, ctx, images, options.signal);
  return { results: [...results.values()], jobs: jobs.length };
}
