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
import { shortDigest } from '../../oci/digest.js';
import { splitRefName } from '../../reference/ref-name.js';
import {
  formatReference,
  isValidTag,
  layoutRepository,
  type Reference,
  refNameOf,
  withDigest,
  withTag,
} from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { createLimiter } from '../../registry/limiter.js';
import { allOf, openAuditLog } from '../audit.js';
import { formatBytes, formatDuration, plural } from '../format.js';
import type { Output } from '../output.js';
import { parseRef } from '../parse.js';
import { exitCodeForMirrors } from '../report.js';
import { closeLayouts, openStores } from '../stores.js';
import { renderRateLimits } from '../summary.js';
import { VERSION } from '../version.js';

/** Blobs from this size on get a line of their own in plain (non-terminal) output. */
const LARGE_BLOB = 16 * 1024 * 1024;

export interface CopyFlags {
  json?: boolean;
  auditLog?: string;
  concurrency: number;
  debug?: boolean;
  /** Copy referrers (signatures, SBOMs, attestations, cosign tags) too; on unless --no-referrers. */
  referrers?: boolean;
}

/**
 * Target references: a target without a tag takes the source's tag (or its digest). A layout target
 * without a name names the image after the source: "oci:out" gets "quay.io/acme/app:1.4.2".
 */
export function resolveTargets(source: Reference, dsts: string[]): Reference[] {
  return dsts.map((d) => {
    const ref = parseRef(d, 'target', null);
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

export function describeTarget(t: ImageResult['targets'][number]): string {
  switch (t.status) {
    case 'kept':
      return `~ ${t.target} kept: the tag points at ${t.digest} (${t.refusedBy === 'immutable-tags' ? "the repository's immutable tags" : 'overwrite "never"'})`;
    case 'planned': {
      const tag =
        t.tagAction === 'move'
          ? `move the tag from ${t.previousDigest}`
          : t.tagAction === 'none'
            ? 'keep the tag (it is right)'
            : 'create the tag';
      const referrers = t.referrersCopied ? `, copy ${plural(t.referrersCopied, 'referrer')}` : '';
      return `+ ${t.target} would ${tag}: upload ${t.blobsUploaded} blobs (${formatBytes(t.bytesUploaded)}), mount ${t.blobsMounted}, ${t.blobsExisting} already there, push ${t.manifestsPushed} manifests${referrers}${referrerLines(t)}`;
    }
    case 'up-to-date':
      return `= ${t.target} already up to date`;
    case 'failed':
      return `✗ ${t.target}: ${t.error}`;
    case 'copied': {
      const parts = [`${t.blobsUploaded} blobs uploaded (${formatBytes(t.bytesUploaded)})`];
      if (t.blobsMounted) parts.push(`${t.blobsMounted} mounted`);
      if (t.blobsExisting) parts.push(`${t.blobsExisting} already there`);
      parts.push(`${t.manifestsPushed} manifest${t.manifestsPushed === 1 ? '' : 's'}`);
      if (t.referrersCopied) parts.push(plural(t.referrersCopied, 'referrer'));
      const moved = t.previousDigest ? `, moved from ${t.previousDigest}` : '';
      return `✓ ${t.target}: ${parts.join(', ')}${moved}`;
    }
  }
}

/** One line per referrer a plan would copy: what it is and what it refers to. */
export function referrerLines(t: ImageResult['targets'][number]): string {
  return (t.referrers ?? [])
    .map(
      (r) =>
        `\n      + ${r.tag ? `tag ${r.tag}` : (r.artifactType ?? 'referrer')} ${r.digest} → ${shortDigest(r.subject)}`,
    )
    .join('');
}

export async function runCopy(
  src: string,
  dsts: string[],
  flags: CopyFlags,
  client: RegistryClient,
  out: Output,
): Promise<number> {
  const { store, layouts } = openStores(client, out, flags.debug);
  let source: Reference;
  let targets: Reference[];
  try {
    source = await resolveLayoutSource(parseRef(src, 'source'), layouts);
    targets = resolveTargets(source, dsts);
    for (const t of targets) if (t.layout) await layouts.checkTarget(t);
  } catch (err) {
    await layouts.close(false);
    throw err;
  }
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
    result = await copyImage(
      source,
      targets,
      {
        store,
        knowledge: new BlobKnowledge(),
        transfers: createLimiter(flags.concurrency),
        onEvent: allOf(onEvent, audit?.onEvent),
        referrerRun: new ReferrerRun(),
      },
      flags.referrers === false ? {} : { referrers: { cosignTags: true } },
    );
    if (!client.signal?.aborted) await recordBundle(layouts, [result], `regmirror ${VERSION}`);
  } finally {
    audit?.close();
    // An archive target is written now, unless interrupted (its staging directory waits for the next run).
    await closeLayouts(layouts, out, !client.signal?.aborted);
  }
  out.stop();
  const code = exitCodeFor([result]);
  if (result.error) out.warn(`✗ ${result.source}: ${result.error}`);
  else out.info(`${result.source} (${result.digest})`);
  for (const t of result.targets) (t.status === 'failed' ? out.warn : out.info)(`  ${describeTarget(t)}`);
  out.info(
    `done in ${formatDuration(result.durationMs)}, ${client.transport.stats.requests} requests, ${client.transport.stats.retries} retries`,
  );
  const rateLimits = client.rateLimits();
  for (const line of renderRateLimits(rateLimits)) out.info(line);
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
        },
        null,
        2,
      ),
    );
  }
  return code;
}
