// regmirror sync / plan: mirror everything the config selects (plan: the same walk, read-only).

import picomatch from 'picomatch';
import { loadConfig } from '../../config/load.js';
import { expandLayoutMirror, type ResolvedConfig, type ResolvedMirror } from '../../config/resolve.js';
import { selectTags, type TagRules } from '../../config/tags.js';
import { type TransferBudget, transferBudget } from '../../copy/budget.js';
import type { CopyContext } from '../../copy/copy-image.js';
import type { CopyEvent } from '../../copy/events.js';
import { BlobKnowledge } from '../../copy/knowledge.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import type { ReferrerOptions } from '../../copy/referrers.js';
import { type MirrorResult, type MirrorSpec, syncMirrors } from '../../copy/run.js';
import { TargetTags } from '../../copy/target-tags.js';
import { errorKind, isAbort, UsageError } from '../../errors.js';
import { recordBundle } from '../../layout/bundle.js';
import type { LayoutStore } from '../../layout/layout-store.js';
import type { RoutedStore } from '../../layout/routed-store.js';
import { isReferrerTag } from '../../oci/referrers.js';
import {
  formatReference,
  formatRepository,
  isLayoutKey,
  parseRepository,
  type Repository,
} from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { createLimiter } from '../../registry/limiter.js';
import type { TraceFn } from '../../registry/transport.js';
import { type AuditLog, allOf, openAuditLog } from '../audit.js';
import { formatBytes, formatDuration, plural } from '../format.js';
import { checkMetricsFile, syncMetrics, writeMetrics } from '../metrics.js';
import { MountCache, mountCachePath, saveMountCache } from '../mount-cache.js';
import { type Output, printNotice } from '../output.js';
import { Progress } from '../progress.js';
import { exitCodeForMirrors, type Summary, type SyncReport, summarise } from '../report.js';
import { type ClientFlags, createClient } from '../runtime.js';
import { closeLayouts, openStores } from '../stores.js';
import { renderRateLimits, renderSummary, renderThrottling } from '../summary.js';
import { outputWidth } from '../table.js';
import { VERSION } from '../version.js';

export interface SyncFlags extends ClientFlags {
  config?: string;
  only?: string[];
  json?: boolean;
  dryRun?: boolean;
  /** Images in flight for the whole run (default: the config's defaults.concurrency). */
  concurrency?: number;
  /** false: --no-mount-cache. */
  mountCache?: boolean;
  shard?: { index: number; count: number };
  auditLog?: string;
  metricsFile?: string;
}

/**
 * For a plan: which target repositories do not exist yet (a push would create them). One tag-list
 * page per target repository; a registry that will not say (denied, unreachable) is not guessed at.
 */
export async function newRepositories(
  client: RegistryClient,
  mirrors: ResolvedMirror[],
): Promise<Set<string>> {
  const repos = new Map<string, Repository>();
  // Layout targets are directories, made as they are written: nothing to ask.
  for (const m of mirrors) for (const t of m.targets) if (!t.layout) repos.set(formatRepository(t), t);
  const fresh = new Set<string>();
  const limit = createLimiter(8);
  await Promise.all(
    [...repos].map(([name, repo]) =>
      limit(async () => {
        try {
          // Where regmirror creates repositories itself (ECR), the registry's API says; elsewhere the
          // first page of the tag list does (404 NAME_UNKNOWN: no such repository yet).
          const state = await client.repositoryState(repo);
          if (state !== 'unmanaged') {
            if (state === 'missing') fresh.add(name);
            return;
          }
          await client.checkPull(repo);
        } catch (err) {
          if (isAbort(err)) throw err;
          if (errorKind(err) === 'not-found') fresh.add(name);
        }
      }),
    ),
  );
  return fresh;
}

/** Whether tag selection needs the source's tag list (an explicit list alone does not). */
export function needsTagList(rules: TagRules | undefined): boolean {
  if (!rules) return true;
  return (
    rules.include !== undefined ||
    rules.exclude !== undefined ||
    rules.semver !== undefined ||
    rules.latest !== undefined
  );
}

/** Mirrors matching any --only pattern (a glob on the mirror's name or its source). */
export function filterMirrors(mirrors: ResolvedMirror[], only: string[] | undefined): ResolvedMirror[] {
  if (!only || only.length === 0) return mirrors;
  const matchers = only.map((p) => picomatch(p, { dot: true }));
  const selected = mirrors.filter((m) =>
    matchers.some((match) => match(m.name) || match(formatRepository(m.source))),
  );
  if (selected.length === 0) {
    throw new UsageError(
      `--only ${only.join(', ')} matches no mirror (mirrors: ${mirrors.map((m) => m.name).join(', ')})`,
    );
  }
  return selected;
}

/** Every registry some mirror writes to (layouts are no registries: they have no identity to log). */
export function targetRegistries(mirrors: ResolvedMirror[]): string[] {
  return [...new Set(mirrors.flatMap((m) => m.targets.filter((t) => !t.layout).map((t) => t.registry)))];
}

/**
 * Layouts in the config, before any work: a whole layout as a source becomes one mirror per name prefix
 * in it; every layout source must be readable and every layout target writable (else a LayoutError,
 * exit 2, and nothing done).
 */
export async function prepareLayouts(
  mirrors: ResolvedMirror[],
  layouts: LayoutStore,
): Promise<ResolvedMirror[]> {
  const out: ResolvedMirror[] = [];
  for (const m of mirrors) {
    if (m.source.layout) await layouts.checkSource(m.source);
    if (m.source.layout && m.source.path === '')
      out.push(...expandLayoutMirror(m, await layouts.names(m.source)));
    else out.push(m);
  }
  const checked = new Set<string>();
  for (const t of out.flatMap((m) => m.targets)) {
    if (!t.layout || checked.has(t.registry)) continue;
    checked.add(t.registry);
    await layouts.checkTarget(t);
  }
  return out;
}

/** The engine's referrer options for a mirror; undefined when it copies none. */
export function referrerOptionsOf(
  m: Pick<ResolvedMirror, 'referrers' | 'cosignTags'>,
): ReferrerOptions | undefined {
  return m.referrers === false ? undefined : { ...m.referrers, cosignTags: m.cosignTags };
}

export function specsFrom(mirrors: ResolvedMirror[], dryRun: boolean): MirrorSpec[] {
  return mirrors.map((m) => {
    const referrers = referrerOptionsOf(m);
    return {
      name: m.name,
      source: m.source,
      targets: m.targets,
      // With referrers on, fallback indexes and cosign tags travel with their subjects; as tags of
      // their own they would be copied again, and a target's merged fallback index overwritten.
      select: (available: string[]) =>
        selectTags(referrers ? available.filter((t) => !isReferrerTag(t)) : available, m.tags).map((s) =>
          s.digest ? { tag: s.tag, digest: s.digest } : { tag: s.tag },
        ),
      needsTagList: needsTagList(m.tags),
      options: {
        overwrite: m.overwrite,
        ...(m.platforms === 'all' ? {} : { platforms: m.platforms }),
        ...(referrers ? { referrers } : {}),
        dryRun,
      },
      // The run's bound (-c, defaults.concurrency) applies to every image; a mirror's own value caps it further.
      ...(m.concurrency !== undefined ? { limit: createLimiter(m.concurrency) } : {}),
    };
  });
}

export interface SyncSession {
  signal: AbortSignal;
  out: Output;
  env: NodeJS.ProcessEnv;
  trace?: TraceFn;
}

/**
 * What sync, plan, check and auth check share: the config loaded, the mirrors chosen (--only, --shard),
 * and a registry client set up with the config's registry settings. The caller closes the client.
 */
export async function openConfigRun(
  flags: SyncFlags,
  session: SyncSession,
  options: { prepareLayouts: boolean } = { prepareLayouts: true },
): Promise<{
  filepath: string;
  config: ResolvedConfig;
  mirrors: ResolvedMirror[];
  client: RegistryClient;
  store: RoutedStore;
  layouts: LayoutStore;
}> {
  const { filepath, config } = await loadConfig({ ...(flags.config ? { file: flags.config } : {}) });
  let mirrors = filterMirrors(config.mirrors, flags.only);
  if (flags.shard) mirrors = shardMirrors(mirrors, flags.shard.index, flags.shard.count);
  const client = createClient({
    flags,
    signal: session.signal,
    config,
    env: session.env,
    warn: (line) => session.out.warn(line),
    ...(session.trace ? { trace: session.trace } : {}),
    notice: (n) => printNotice(session.out, n),
  });
  const { store, layouts } = openStores(client, session.out, flags.debug);
  if (options.prepareLayouts) {
    try {
      mirrors = await prepareLayouts(mirrors, layouts);
    } catch (err) {
      await client.close();
      throw err;
    }
  }
  return { filepath, config, mirrors, client, store, layouts };
}

/** The cache of where earlier runs left blobs on these mirrors' target registries; undefined with --no-mount-cache. */
export async function openMountCache(
  flags: Pick<SyncFlags, 'mountCache'>,
  session: Pick<SyncSession, 'env'>,
  mirrors: ResolvedMirror[],
): Promise<MountCache | undefined> {
  if (flags.mountCache === false) return undefined;
  return MountCache.open(
    mountCachePath(session.env),
    targetRegistries(mirrors).filter((r) => !isLayoutKey(r)),
  );
}

/**
 * Blob transfers of a run over many images, bounded by the memory they hold (a small blob its size, a
 * large one the window and a chunk): up to 96 MiB, and at most twice as many transfers as images in flight.
 */
export function syncTransfers(images: number): TransferBudget {
  return transferBudget(96 * 1024 * 1024, Math.max(2, 2 * images));
}

export async function runSync(
  command: 'sync' | 'plan',
  flags: SyncFlags,
  session: SyncSession,
): Promise<number> {
  const { out, signal } = session;
  const started = Date.now();
  const dryRun = command === 'plan' || Boolean(flags.dryRun);
  const metrics = flags.metricsFile !== undefined ? checkMetricsFile(flags.metricsFile) : undefined;
  const { filepath, config, mirrors, client, store, layouts } = await openConfigRun(flags, session);
  let audit: AuditLog | undefined;
  let cache: MountCache | undefined;
  let commit = false;
  try {
    audit = dryRun ? undefined : await openAuditLog(flags.auditLog, client, targetRegistries(mirrors));
    const progress = new Progress(out, dryRun);
    // A plan says which targets would land in a repository that does not exist yet.
    let fresh = new Set<string>();
    const repositoryOf = new Map<string, string>();
    const markNew = (e: CopyEvent) => {
      if (e.type !== 'image-done') return;
      for (const t of e.result.targets) {
        if (t.tagAction === 'create' && fresh.has(repositoryOf.get(t.target) ?? '')) t.newRepository = true;
      }
    };
    // Where earlier runs left blobs on these targets: mount sources to try (a plan reads no cache: it
    // counts as mounts only what it knows of this run).
    cache = dryRun ? undefined : await openMountCache(flags, session, mirrors);
    const ctx: CopyContext = {
      store,
      knowledge: new BlobKnowledge(cache ? { hints: cache } : {}),
      transfers: syncTransfers(flags.concurrency ?? config.defaults.concurrency),
      onEvent: allOf(dryRun ? markNew : undefined, progress.onEvent, audit?.onEvent),
      referrerRun: new ReferrerRun(),
      targetTags: new TargetTags(),
    };
    out.status(`resolving tags of ${plural(mirrors.length, 'mirror')}`);
    const specs = specsFrom(mirrors, dryRun);
    // The repositories of the run, for tokens that cover several at once. A plan writes nothing: it asks
    // for no more than pull anywhere.
    for (const m of mirrors) {
      if (!m.source.layout) client.willPull(m.source);
      for (const t of m.targets) {
        if (t.layout) continue;
        if (dryRun) client.willPull(t);
        else client.willPush(t);
      }
    }
    const newRepos = dryRun ? newRepositories(client, mirrors) : Promise.resolve(new Set<string>());
    let jobCount = 0;
    const { results: mirrorResults, jobs } = await syncMirrors(
      specs,
      ctx,
      createLimiter(flags.concurrency ?? config.defaults.concurrency),
      {
        signal,
        onResolved: (r, resolvedJobs) => {
          jobCount += resolvedJobs.length;
          progress.setTotal(jobCount);
          for (const job of resolvedJobs)
            for (const t of job.targets) repositoryOf.set(formatReference(t), formatRepository(t));
          if (r.error) out.warn(`✗ ${r.name}: ${r.error}`);
        },
        beforeImages: newRepos.then((names) => {
          fresh = names;
        }),
      },
    );
    const newRepoNames = await newRepos;
    out.stop();

    if (!dryRun && !signal.aborted) {
      await recordBundle(
        layouts,
        mirrorResults.flatMap((m) => m.images),
        `regmirror ${VERSION}`,
      );
      commit = true;
    }
    const code = signal.aborted ? 130 : exitCodeForMirrors(mirrorResults);
    const summary = summarise(mirrorResults, client.transport.stats);
    out.info('');
    out.info(renderSummary(mirrorResults, dryRun, outputWidth()));
    out.info('');
    if (signal.aborted) {
      const reported = mirrorResults.reduce((n, m) => n + m.images.length, 0);
      const cut = mirrorResults.reduce(
        (n, m) => n + m.images.filter((i) => i.errorKind === 'interrupted').length,
        0,
      );
      out.warn(
        `interrupted: ${reported - cut} of ${jobs} images finished, ${cut} stopped midway (no tag pushed for unfinished targets), ${jobs - reported} not started`,
      );
    }
    // A plan lists every new repository below; a sync, the ones regmirror created before pushing.
    const created = dryRun ? [] : createdRepositories(mirrorResults);
    if (created.length > 0) {
      out.info(
        `${created.length} ${created.length === 1 ? 'repository' : 'repositories'} ${dryRun ? 'would be created' : 'created'}:`,
      );
      for (const name of created) {
        const repo = parseRepository(name);
        out.info(`  ${name} (${client.repositorySettings(repo) ?? 'registry defaults'})`);
      }
    }
    const failedMirrors = mirrorResults.filter((m) => m.error).length;
    if (failedMirrors > 0)
      out.warn(`${failedMirrors} of ${plural(mirrorResults.length, 'mirror')} could not be resolved`);
    if (dryRun && newRepoNames.size > 0) {
      // Created by regmirror before the first push (with these settings), or by the push itself.
      out.info(`${plural(newRepoNames.size, 'repository', 'repositories')} to create:`);
      for (const name of [...newRepoNames].sort()) {
        const settings = client.repositorySettings(parseRepository(name));
        out.info(`  ${name} (${settings ?? 'by the first push'})`);
      }
    }
    const filtered = mirrorResults.reduce((n, m) => n + m.images.filter((i) => i.filteredDigest).length, 0);
    if (filtered > 0) {
      out.info(
        `${plural(filtered, 'image')} platform-filtered: the targets ${dryRun ? 'would get' : 'got'} new index digests, not the sources'`,
      );
    }
    out.info(finalLine(summary, dryRun, Date.now() - started));
    const rateLimits = client.rateLimits();
    for (const line of renderRateLimits(rateLimits)) out.info(line);
    if (metrics) {
      writeMetrics(
        metrics,
        syncMetrics(mirrorResults, {
          code,
          requests: summary.requests,
          retries: summary.retries,
          durationMs: Date.now() - started,
          previous: metrics,
        }),
      );
    }
    const throttling = client.throttling();
    for (const line of renderThrottling(throttling)) out.warn(line);
    if (flags.json) {
      const report: SyncReport = {
        command,
        dryRun,
        exitCode: code,
        interrupted: signal.aborted,
        config: filepath,
        startedAt: new Date(started).toISOString(),
        durationMs: Date.now() - started,
        summary,
        rateLimits,
        throttling,
        mirrors: mirrorResults,
      };
      out.result(JSON.stringify(report, null, 2));
    }
    return code;
  } finally {
    audit?.close();
    await saveMountCache(cache, out);
    // Archive targets are written now: not by a plan, nor after an interrupt (the staging waits).
    // A plan writes nothing and says nothing of archives; an interrupted run says which wait for the next.
    await (commit || signal.aborted ? closeLayouts(layouts, out, commit) : layouts.close(false)).finally(() =>
      client.close(),
    );
  }
}

/** "24 images, 48 targets: 6 copied, 40 up to date, 2 failed; 12 blobs uploaded (1.2 GiB), 3 mounted; …" */
export function finalLine(s: Summary, dryRun: boolean, ms: number): string {
  const states = [
    dryRun ? `${s.planned} to copy` : `${s.copied} copied`,
    `${s.upToDate} up to date`,
    ...(s.kept ? [`${s.kept} kept`] : []),
    `${s.failed} failed`,
  ];
  const blobs = dryRun
    ? `${plural(s.blobsUploaded, 'blob')} to upload (${formatBytes(s.bytesUploaded)}), ${s.blobsMounted} to mount (${formatBytes(s.bytesMounted)}), ${plural(s.referrersCopied, 'referrer')} to copy`
    : `${plural(s.blobsUploaded, 'blob')} uploaded (${formatBytes(s.bytesUploaded)}), ${s.blobsMounted} mounted (${formatBytes(s.bytesMounted)}), ${plural(s.referrersCopied, 'referrer')} copied`;
  // Two lines: what happened to the tags, then what it took; one would not fit a terminal.
  return (
    `${plural(s.images, 'image')}, ${plural(s.targets, 'target')}: ${states.join(', ')}\n` +
    `${blobs}; ${plural(s.requests, 'request')}, ${plural(s.retries, 'retry')}, ${formatDuration(ms)}`
  );
}

/** Target repositories that were created (or, in a plan, would be), each once, sorted. */
export function createdRepositories(mirrors: MirrorResult[]): string[] {
  const names = new Set<string>();
  for (const m of mirrors) {
    for (const img of m.images) {
      // Image targets are in the mirror's target order.
      img.targets.forEach((t, i) => {
        const repo = m.targets[i];
        if (t.repositoryCreated && repo !== undefined) names.add(repo);
      });
    }
  }
  return [...names].sort();
}

/**
 * The mirrors of shard `index` of `count` (1-based). Split by source repository, deterministically, so
 * N jobs with the same config cover every source exactly once whatever order the config lists them in.
 */
export function shardMirrors(mirrors: ResolvedMirror[], index: number, count: number): ResolvedMirror[] {
  const sources = [...new Set(mirrors.map((m) => formatRepository(m.source)))].sort();
  const mine = new Set(sources.filter((_, i) => i % count === index - 1));
  return mirrors.filter((m) => mine.has(formatRepository(m.source)));
}
