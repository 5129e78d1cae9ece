// Many images: resolve each mirror's tags, then copy with a bound on images in flight. One failing
// image does not stop the others; an interrupt stops scheduling new ones.

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

/** Resolve a mirror's selection into image jobs (one tag list request per source repository). */
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
    const available = mirror.needsTagList ? await ctx.store.tagList(mirror.source) : [];
    // The same list tells which manifests have referrer tags: no need to read it again per image.
    if (mirror.needsTagList) ctx.referrerRun?.seedTags(mirror.source, available);
    const selected = mirror.select(available);
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
 * Run jobs with at most `images` in flight overall (and each mirror's own limit). Results are put in
 * their mirror's result in job order. After an abort, jobs not yet started are left out.
 */
export async function runJobs(
  jobs: ImageJob[],
  results: Map<MirrorSpec, MirrorResult>,
  ctx: CopyContext,
  images: Limiter,
  signal?: AbortSignal,
): Promise<void> {
  const settled = await Promise.all(
    jobs.map((job) => {
      const run = async (): Promise<ImageResult | undefined> => {
        if (signal?.aborted) return undefined;
        return copyImage(job.source, job.targets, ctx, job.mirror.options);
      };
      return images(() => (job.mirror.limit ? job.mirror.limit(run) : run())).catch((err) => {
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
