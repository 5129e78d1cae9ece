// regmirror copy SRC DST [DST...]: the release fan-out. One source read once, many targets.

import { defaultLayoutPrefix } from '../../config/template.js';
import { copyImage } from '../../copy/copy-image.js';
import type { CopyEvent } from '../../copy/events.js';
import { BlobKnowledge } from '../../copy/knowledge.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import type { ImageResult } from '../../copy/result.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { recordBundle } from '../../layout/bundle.js';
import type { LayoutStore } from '../../layout/layout-store.js';
import { splitRefName } from '../../reference/ref-name.js';
import {
  formatReference,
  formatRepository,
  isValidTag,
  layoutRepository,
  type Reference,
  refNameOf,
  withDigest,
  withTag,
} from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import type { CredentialSource } from '../../registry/credentials/types.js';
import { createLimiter } from '../../registry/limiter.js';
import { allOf, openAuditLog } from '../audit.js';
import { askHidden, type CredsFlag, commandLineCredentials, readAllStdin } from '../credentials.js';
import { describeTarget, filterNote } from '../describe.js';
import { formatBytes, formatDuration, plural } from '../format.js';
import { checkMetricsFile, copyMetrics, writeMetrics } from '../metrics.js';
import { MountCache, mountCachePath, saveMountCache } from '../mount-cache.js';
import type { Output } from '../output.js';
import { type Note, parsePlatforms, parseRef, parseRepo } from '../parse.js';
import { exitCodeForMirrors } from '../report.js';
import { closeLayouts, openStores } from '../stores.js';
import { renderRateLimits, renderThrottling } from '../summary.js';
import { VERSION } from '../version.js';

/** Blobs from this size on get a line of their own in plain (non-terminal) output. */
const LARGE_BLOB = 16 * 1024 * 1024;

export interface CopyFlags {
  json?: boolean;
  auditLog?: string;
  metricsFile?: string;
  /** A config whose registry settings (credentials, TLS, chunk sizes) the copy uses. */
  config?: string;
  concurrency: number;
  /** USER[:PASSWORD] for the source registry, and for the target registries. */
  srcCreds?: string;
  destCreds?: string;
  /** Read the password the creds leave out from stdin. */
  passwordStdin?: boolean;
  /** Keep only these platforms of an index (a new index digest); default every platform. */
  platform?: string[];
  all?: boolean;
  debug?: boolean;
  /** Copy referrers (signatures, SBOMs, attestations, cosign tags) too; on unless --no-referrers. */
  referrers?: boolean;
  /** Repositories to mount blobs from first (--mount-from). */
  mountFrom?: string[];
  /** false: --no-mount-cache. */
  mountCache?: boolean;
}

/**
 * The credential sources --src-creds and --dest-creds make, per registry, with any missing password read
 * from stdin (--password-stdin) or asked for on the terminal. Before the client exists: its profiles ask them.
 */
export async function copyCredentials(
  src: string,
  dsts: string[],
  flags: Pick<CopyFlags, 'srcCreds' | 'destCreds' | 'passwordStdin'>,
): Promise<Map<string, CredentialSource>> {
  const source = parseRef(src, 'source');
  const targets = resolveTargets(source, dsts);
  const given: CredsFlag[] = [];
  if (flags.srcCreds !== undefined)
    given.push({ flag: '--src-creds', value: flags.srcCreds, registries: [source.registry] });
  if (flags.destCreds !== undefined) {
    given.push({
      flag: '--dest-creds',
      value: flags.destCreds,
      registries: [...new Set(targets.map((t) => t.registry))],
    });
  }
  const terminal = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  return commandLineCredentials(given, {
    passwordStdin: flags.passwordStdin ?? false,
    readStdin: () => readAllStdin(process.stdin),
    ...(terminal ? { ask: (prompt: string) => askHidden(prompt, process.stdin, process.stderr) } : {}),
  });
}

/**
 * Target references: a target without a tag takes the source's tag (or its digest). A layout target
 * without a name names the image after the source: "oci:out" gets "quay.io/acme/app:1.4.2".
 */
export function resolveTargets(source: Reference, dsts: string[], note?: Note): Reference[] {
  return dsts.map((d) => {
    const ref = parseRef(d, 'target', null, note);
    if (ref.digest !== undefined) {
      throw new UsageError(
        `target "${d}" names a digest: give a repository or repository:tag (the digest is the source's)`,
      );
    }
    if (ref.tag !== undefined) return ref;
    if (ref.layout) {
      if (source.tag === undefined) {
        throw new UsageError(`target "${d}": the source has no tag to name the image by; name it: ${d}:NAME`);
      }
      return { ...layoutRepository(ref.layout, defaultLayoutPrefix(source)), tag: source.tag };
    }
    if (source.tag !== undefined && !isValidTag(source.tag)) {
      throw new UsageError(
        `target "${d}": the source's name "${refNameOf(source)}" is not a tag a registry takes; give the target one: ${d}:TAG`,
      );
    }
    return source.tag !== undefined ? withTag(ref, source.tag) : withDigest(ref, source.digest!);
  });
}

/**
 * A layout source given without a name ("oci:dir") is its only image, as in skopeo; that image's name,
 * if it has one, also names the targets. Checked before any work: a missing or broken layout is a
 * usage error.
 */
export async function resolveLayoutSource(source: Reference, layouts: LayoutStore): Promise<Reference> {
  if (!source.layout) return source;
  await layouts.checkSource(source);
  if (source.tag !== undefined || source.digest !== undefined) return source;
  const name = await layouts.onlyImageName(source);
  if (name !== undefined) {
    const { prefix, tag } = splitRefName(name);
    return { ...layoutRepository(source.layout, prefix), tag };
  }
  const head = await layouts.manifestHead(source);
  if (!head) {
    throw new NotFoundError(`${source.layout.path} holds no image`, {
      context: { side: 'source', registry: source.registry, step: 'manifest lookup' },
    });
  }
  return withDigest(source, head.digest);
}

/** 0 when every target is in place; 2 when nothing could start for setup reasons (auth, usage); else 1. */
export function exitCodeFor(results: ImageResult[]): number {
  return exitCodeForMirrors([{ images: results }]);
}

export async function runCopy(
  src: string,
  dsts: string[],
  flags: CopyFlags,
  client: RegistryClient,
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const note = (line: string) => out.info(line);
  if (flags.all && flags.platform) {
    throw new UsageError(
      '--all and --platform contradict each other: --all keeps every platform (the default)',
    );
  }
  const platforms = flags.platform ? parsePlatforms(flags.platform) : undefined;
  const metrics = flags.metricsFile !== undefined ? checkMetricsFile(flags.metricsFile) : undefined;
  const { store, layouts } = openStores(client, out, flags.debug);
  let source: Reference;
  let targets: Reference[];
  try {
    source = await resolveLayoutSource(parseRef(src, 'source', 'latest', note), layouts);
    targets = resolveTargets(source, dsts, note);
    for (const t of targets) if (t.layout) await layouts.checkTarget(t);
  } catch (err) {
    await layouts.close(false);
    throw err;
  }
  const mountFrom = (flags.mountFrom ?? []).map((r) => parseRepo(r, '--mount-from'));
  // Where earlier runs left blobs on the target registries (layouts have no use for it).
  const cache =
    flags.mountCache === false
      ? undefined
      : await MountCache.open(
          mountCachePath(env),
          targets.filter((t) => !t.layout).map((t) => t.registry),
        );
  let bytes = 0;
  let blobs = 0;
  const onEvent = (e: CopyEvent) => {
    // Without a terminal there is no live line: say when a large blob starts, so CI logs show progress.
    if (e.type === 'blob-start' && !out.interactive && e.size >= LARGE_BLOB) {
      out.info(`  sending ${e.digest} (${formatBytes(e.size)}) to ${plural(e.uploads, 'target')}`);
    }
    if (e.type === 'blob-progress') bytes += e.bytes;
    if (e.type === 'blob-done') blobs++;
    if (e.type === 'blob-progress' || e.type === 'blob-done') {
      out.status(
        `copying ${formatReference(source)} → ${targets.length} targets: ${blobs} blobs, ${formatBytes(bytes)} read`,
      );
    }
  };
  let result: ImageResult;
  const audit = await openAuditLog(
    flags.auditLog,
    client,
    targets.map((t) => t.registry),
  ).catch(async (err) => {
    await layouts.close(false);
    throw err;
  });
  try {
    out.status(`copying ${formatReference(source)}`);
    if (!source.layout) client.willPull(source);
    for (const t of targets) if (!t.layout) client.willPush(t);
    result = await copyImage(
      source,
      targets,
      {
        store,
        knowledge: new BlobKnowledge({ ...(cache ? { hints: cache } : {}), mountFrom }),
        transfers: createLimiter(flags.concurrency),
        onEvent: allOf(onEvent, audit?.onEvent),
        referrerRun: new ReferrerRun(),
      },
      {
        ...(platforms ? { platforms } : {}),
        ...(flags.referrers === false ? {} : { referrers: { cosignTags: true } }),
      },
    );
    if (!client.signal?.aborted) await recordBundle(layouts, [result], `regmirror ${VERSION}`);
  } finally {
    audit?.close();
    await saveMountCache(cache, out);
    // An archive target is written now, unless interrupted (its staging directory waits for the next run).
    await closeLayouts(layouts, out, !client.signal?.aborted);
  }
  out.stop();
  const code = exitCodeFor([result]);
  const { requests, retries } = client.transport.stats;
  if (result.error) out.warn(`✗ ${result.source}: ${result.error}`);
  else out.info(`${result.source} (${result.digest})`);
  for (const t of result.targets) (t.status === 'failed' ? out.warn : out.info)(`  ${describeTarget(t)}`);
  const filtered = filterNote(result);
  if (filtered && !result.error) out.info(`  ${filtered}`);
  out.info(
    `done in ${formatDuration(result.durationMs)}: ${plural(result.targets.length, 'target')}, ${plural(requests, 'request')}, ${plural(retries, 'retry')}`,
  );
  if (metrics) {
    writeMetrics(
      metrics,
      copyMetrics(formatRepository(source), targets.map(formatRepository), result, {
        code,
        requests,
        retries,
        durationMs: result.durationMs,
        previous: metrics,
      }),
    );
  }
  const rateLimits = client.rateLimits();
  for (const line of renderRateLimits(rateLimits)) out.info(line);
  const throttling = client.throttling();
  for (const line of renderThrottling(throttling)) out.warn(line);
  if (flags.json) {
    out.result(
      JSON.stringify(
        {
          command: 'copy',
          exitCode: code,
          ...result,
          requests: client.transport.stats.requests,
          retries: client.transport.stats.retries,
          rateLimits,
          throttling,
        },
        null,
        2,
      ),
    );
  }
  return code;
}
