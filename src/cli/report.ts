// The --json report of sync and plan: one object on stdout. Its shape is documented in README.md and
// checked by a test against this schema; change both together.

import { z } from 'zod';
import type { MirrorResult } from '../copy/run.js';
import { type ErrorKind, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, isSetupKind } from '../errors.js';

const errorKindSchema = z.enum([
  'usage',
  'config',
  'reference',
  'auth',
  'permission',
  'not-found',
  'digest-mismatch',
  'network',
  'registry',
  'immutable',
  'layout',
  'interrupted',
  'internal',
]);

export const targetResultSchema = z.strictObject({
  target: z.string(),
  status: z.enum(['copied', 'up-to-date', 'kept', 'planned', 'failed']),
  digest: z.string().optional(),
  previousDigest: z.string().optional(),
  tagAction: z.enum(['create', 'move', 'keep', 'none']).optional(),
  blobsUploaded: z.number().int().nonnegative(),
  blobsMounted: z.number().int().nonnegative(),
  blobsExisting: z.number().int().nonnegative(),
  bytesUploaded: z.number().int().nonnegative(),
  bytesMounted: z.number().int().nonnegative(),
  manifestsPushed: z.number().int().nonnegative(),
  newRepository: z.boolean().optional(),
  referrersCopied: z.number().int().nonnegative(),
  referrers: z
    .array(
      z.strictObject({
        digest: z.string(),
        subject: z.string(),
        artifactType: z.string().optional(),
        tag: z.string().optional(),
      }),
    )
    .optional(),
  repositoryCreated: z.boolean().optional(),
  refusedBy: z.enum(['overwrite-never', 'immutable-tags']).optional(),
  error: z.string().optional(),
  errorKind: errorKindSchema.optional(),
});

export const imageResultSchema = z.strictObject({
  source: z.string(),
  digest: z.string().optional(),
  mediaType: z.string().optional(),
  filteredDigest: z.string().optional(),
  platforms: z.array(z.string()).optional(),
  targets: z.array(targetResultSchema),
  error: z.string().optional(),
  errorKind: errorKindSchema.optional(),
  startedAt: z.string().optional(),
  durationMs: z.number().nonnegative(),
});

export const mirrorResultSchema = z.strictObject({
  name: z.string(),
  source: z.string(),
  targets: z.array(z.string()),
  tags: z.array(z.string()),
  error: z.string().optional(),
  errorKind: errorKindSchema.optional(),
  images: z.array(imageResultSchema),
});

export const summarySchema = z.strictObject({
  mirrors: z.number().int(),
  images: z.number().int(),
  targets: z.number().int(),
  copied: z.number().int(),
  upToDate: z.number().int(),
  kept: z.number().int(),
  planned: z.number().int(),
  failed: z.number().int(),
  blobsUploaded: z.number().int(),
  blobsMounted: z.number().int(),
  bytesUploaded: z.number().int(),
  bytesMounted: z.number().int(),
  referrersCopied: z.number().int(),
  requests: z.number().int(),
  retries: z.number().int(),
});

/**
 * A registry that throttled the run: its 429 and 503 answers, the time requests waited before retrying
 * them (summed over requests), time spent keeping to a per-second rate, and the requests-in-flight bound
 * at the start, at its lowest and at the end. Only registries that throttled at all are listed.
 */
export const throttlingSchema = z.strictObject({
  registry: z.string(),
  tooManyRequests: z.number().int().nonnegative(),
  unavailable: z.number().int().nonnegative(),
  waitedMs: z.number().nonnegative(),
  pacedMs: z.number().nonnegative(),
  concurrency: z.strictObject({
    initial: z.number().int().positive(),
    lowest: z.number().int().positive(),
    final: z.number().int().positive(),
  }),
});

export type Throttling = z.infer<typeof throttlingSchema>;

/** A registry's pull quota as the run saw it (Docker Hub's ratelimit-* headers). */
export const rateLimitSchema = z.strictObject({
  registry: z.string(),
  quota: z.string(),
  limit: z.number().int().nonnegative().optional(),
  remaining: z.number().int().nonnegative().optional(),
  windowSeconds: z.number().int().positive().optional(),
  observedAt: z.string().optional(),
  resetAt: z.string().optional(),
  throttled: z.number().int().nonnegative(),
  pacedRequests: z.number().int().nonnegative(),
  pacedMs: z.number().int().nonnegative(),
});

export const syncReportSchema = z.strictObject({
  command: z.enum(['sync', 'plan']),
  dryRun: z.boolean(),
  exitCode: z.number().int(),
  interrupted: z.boolean(),
  config: z.string(),
  startedAt: z.string(),
  durationMs: z.number().nonnegative(),
  summary: summarySchema,
  throttling: z.array(throttlingSchema),
  rateLimits: z.array(rateLimitSchema),
  mirrors: z.array(mirrorResultSchema),
});

export type SyncReport = z.infer<typeof syncReportSchema>;
export type Summary = z.infer<typeof summarySchema>;

export function summarise(mirrors: MirrorResult[], stats: { requests: number; retries: number }): Summary {
  const s: Summary = {
    mirrors: mirrors.length,
    images: 0,
    targets: 0,
    copied: 0,
    upToDate: 0,
    kept: 0,
    planned: 0,
    failed: 0,
    blobsUploaded: 0,
    blobsMounted: 0,
    bytesUploaded: 0,
    bytesMounted: 0,
    referrersCopied: 0,
    requests: stats.requests,
    retries: stats.retries,
  };
  for (const m of mirrors) {
    for (const img of m.images) {
      s.images++;
      for (const t of img.targets) {
        s.targets++;
        if (t.status === 'copied') s.copied++;
        else if (t.status === 'up-to-date') s.upToDate++;
        else if (t.status === 'kept') s.kept++;
        else if (t.status === 'planned') s.planned++;
        else s.failed++;
        s.blobsUploaded += t.blobsUploaded;
        s.blobsMounted += t.blobsMounted;
        s.bytesUploaded += t.bytesUploaded;
        s.bytesMounted += t.bytesMounted;
        s.referrersCopied += t.referrersCopied;
      }
    }
  }
  return s;
}

/**
 * 0: everything done (or, for a plan, planned). 2: nothing could start for setup reasons (credentials,
 * permissions, bad references) — every failure is of that kind and nothing succeeded. 1: otherwise.
 */
export function exitCodeForMirrors(mirrors: Pick<MirrorResult, 'error' | 'errorKind' | 'images'>[]): number {
  const kinds: (ErrorKind | undefined)[] = [];
  let anyOk = false;
  for (const m of mirrors) {
    if (m.error) kinds.push(m.errorKind);
    for (const img of m.images) {
      if (img.error) kinds.push(img.errorKind);
      for (const t of img.targets) {
        if (t.status === 'failed') kinds.push(t.errorKind);
        else anyOk = true;
      }
    }
  }
  if (kinds.length === 0) return EXIT_OK;
  if (!anyOk && kinds.every(isSetupKind)) return EXIT_USAGE;
  return EXIT_PARTIAL;
}
