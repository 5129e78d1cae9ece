// regmirror copy SRC DST [DST...]: the release fan-out. One source read once, many targets.

import { copyImage } from '../../copy/copy-image.js';
import type { CopyEvent } from '../../copy/events.js';
import { BlobKnowledge } from '../../copy/knowledge.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import type { ImageResult } from '../../copy/result.js';
import { UsageError } from '../../errors.js';
import { shortDigest } from '../../oci/digest.js';
import { formatReference, type Reference, withDigest, withTag } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { createLimiter } from '../../registry/limiter.js';
import { allOf, openAuditLog } from '../audit.js';
import { formatBytes, formatDuration, plural } from '../format.js';
import type { Output } from '../output.js';
import { parseRef } from '../parse.js';
import { exitCodeForMirrors } from '../report.js';

/** Blobs from this size on get a line of their own in plain (non-terminal) output. */
const LARGE_BLOB = 16 * 1024 * 1024;

export interface CopyFlags {
  json?: boolean;
  auditLog?: string;
  concurrency: number;
  /** Copy referrers (signatures, SBOMs, attestations, cosign tags) too; on unless --no-referrers. */
  referrers?: boolean;
}

/** Target references: a target without a tag takes the source's tag (or its digest). */
export function resolveTargets(source: Reference, dsts: string[]): Reference[] {
  return dsts.map((d) => {
    const ref = parseRef(d, 'target', null);
    if (ref.digest !== undefined) {
      throw new UsageError(
        `target "${d}" names a digest: give a repository or repository:tag (the digest is the source's)`,
      );
    }
    if (ref.tag !== undefined) return ref;
    return source.tag !== undefined ? withTag(ref, source.tag) : withDigest(ref, source.digest!);
  });
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
  const source = parseRef(src, 'source');
  const targets = resolveTargets(source, dsts);
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
  const audit = await openAuditLog(
    flags.auditLog,
    client,
    targets.map((t) => t.registry),
  );
  let result: ImageResult;
  try {
    out.status(`copying ${formatReference(source)}`);
    result = await copyImage(
      source,
      targets,
      {
        store: client,
        knowledge: new BlobKnowledge(),
        transfers: createLimiter(flags.concurrency),
        onEvent: allOf(onEvent, audit?.onEvent),
        referrerRun: new ReferrerRun(),
      },
      flags.referrers === false ? {} : { referrers: { cosignTags: true } },
    );
  } finally {
    audit?.close();
  }
  out.stop();
  const code = exitCodeFor([result]);
  if (result.error) out.warn(`✗ ${result.source}: ${result.error}`);
  else out.info(`${result.source} (${result.digest})`);
  for (const t of result.targets) (t.status === 'failed' ? out.warn : out.info)(`  ${describeTarget(t)}`);
  out.info(
    `done in ${formatDuration(result.durationMs)}, ${client.transport.stats.requests} requests, ${client.transport.stats.retries} retries`,
  );
  if (flags.json) {
    out.result(
      JSON.stringify(
        {
          command: 'copy',
          exitCode: code,
          ...result,
          requests: client.transport.stats.requests,
          retries: client.transport.stats.retries,
        },
        null,
        2,
      ),
    );
  }
  return code;
}
