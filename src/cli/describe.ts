// What people read about one image and its targets: one line per finished image in a sync, the plan's
// per-target detail (what happens to the tag, what moves, what it costs), and copy's per-target lines.
// Words are the same everywhere: "up to date" (the JSON status stays "up-to-date"), plurals right.

import type { ImageResult, TargetResult } from '../copy/result.js';
import { formatBytes, formatDuration, plural, shortDigest } from './format.js';

/** The note a platform filter deserves: the targets get a new index, not the source's digest. */
export function filterNote(r: ImageResult, planned = false): string | undefined {
  if (!r.filteredDigest || !r.digest) return undefined;
  return `platforms ${r.platforms?.join(', ') ?? '?'} only: the targets ${planned ? 'get' : 'got'} a new index ${shortDigest(r.filteredDigest)}, not the source index ${shortDigest(r.digest)}`;
}

/** "upload 3 blobs (12.4 KiB), mount 1 (2.0 KiB), 2 already there, push 5 manifests" */
function work(t: TargetResult, planned: boolean): string {
  const parts: string[] = [];
  // Only what happens: a target whose blobs are all there says so once, not "0 blobs uploaded (0 B)".
  if (t.blobsUploaded)
    parts.push(
      planned
        ? `upload ${plural(t.blobsUploaded, 'blob')} (${formatBytes(t.bytesUploaded)})`
        : `${plural(t.blobsUploaded, 'blob')} uploaded (${formatBytes(t.bytesUploaded)})`,
    );
  if (t.blobsMounted)
    parts.push(
      planned
        ? `mount ${plural(t.blobsMounted, 'blob')} (${formatBytes(t.bytesMounted)})`
        : `${plural(t.blobsMounted, 'blob')} mounted (${formatBytes(t.bytesMounted)})`,
    );
  if (t.blobsExisting) parts.push(`${plural(t.blobsExisting, 'blob')} already there`);
  if (parts.length === 0) parts.push(planned ? 'no blobs to send' : 'no blobs sent');
  if (t.referrersCopied) {
    parts.push(
      planned
        ? `copy ${plural(t.referrersCopied, 'referrer')}`
        : `${plural(t.referrersCopied, 'referrer')} copied`,
    );
  }
  parts.push(
    planned
      ? `push ${plural(t.manifestsPushed, 'manifest')}`
      : `${plural(t.manifestsPushed, 'manifest')} pushed`,
  );
  return parts.join(', ');
}

/** What happens (or would happen) to the target tag, in words. */
function tagAction(t: TargetResult, planned: boolean): string {
  const repo = t.newRepository ? ' in a new repository' : '';
  switch (t.tagAction) {
    case 'create':
      return planned ? `create the tag${repo}` : `tag created${repo}`;
    case 'move':
      return `${planned ? 'move' : 'moved'} ${shortDigest(t.previousDigest)} → ${shortDigest(t.digest)}`;
    default:
      // The tag is right already: only its referrers (or, overwrite "always", the same bytes) go.
      return t.referrersCopied ? 'the tag is right' : planned ? 'push again' : 'pushed again';
  }
}

/** One line per referrer a plan would copy: what it is and what it refers to. */
export function referrerLines(t: TargetResult): string[] {
  return (t.referrers ?? []).map(
    (r) =>
      `        + ${r.tag ? `tag ${r.tag}` : (r.artifactType ?? 'referrer')} ${r.digest} → ${shortDigest(r.subject)}`,
  );
}

/** The rule that kept a target tag where it was. */
function keptBy(t: TargetResult): string {
  return t.refusedBy === 'immutable-tags' ? "the repository's immutable tags" : 'overwrite "never"';
}

/** One target of a copy or a plan: a mark, the target, and what was (or would be) done. */
export function describeTarget(t: TargetResult): string {
  switch (t.status) {
    case 'kept':
      return `~ ${t.target}: kept, the tag points at ${shortDigest(t.digest)} (${keptBy(t)})`;
    case 'planned':
      return `+ ${t.target}: ${tagAction(t, true)}; ${work(t, true)}`;
    case 'up-to-date':
      return `= ${t.target}: up to date`;
    case 'failed':
      return `✗ ${t.target}: ${t.error}`;
    case 'copied':
      return `✓ ${t.target}: ${tagAction(t, false)}; ${work(t, false)}`;
  }
}

/**
 * A finished image in a sync: one line with the counts per status and the bytes, then a line for each
 * target that needs a word (failed, kept, moved) and for a platform filter.
 */
export function imageLine(r: ImageResult, dryRun: boolean): string {
  if (dryRun) return planLines(r);
  const counts = new Map<string, number>();
  for (const t of r.targets) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const failed = counts.get('failed') ?? 0;
  const mark = r.error || failed > 0 ? '✗' : '✓';
  const parts = [...counts].map(([status, n]) => `${n} ${status === 'up-to-date' ? 'up to date' : status}`);
  const uploaded = r.targets.reduce((n, t) => n + t.blobsUploaded, 0);
  const bytes = r.targets.reduce((n, t) => n + t.bytesUploaded, 0);
  const mounted = r.targets.reduce((n, t) => n + t.blobsMounted, 0);
  let line = `${mark} ${r.source}: ${parts.join(', ') || 'no targets'}`;
  if (uploaded > 0) line += `; ${plural(uploaded, 'blob')} uploaded (${formatBytes(bytes)})`;
  if (mounted > 0) line += `, ${mounted} mounted`;
  const referrers = r.targets.reduce((n, t) => n + t.referrersCopied, 0);
  if (referrers > 0) line += `; ${plural(referrers, 'referrer')} copied`;
  line += ` (${formatDuration(r.durationMs)})`;
  const lines = [line];
  if (r.error) lines.push(`    ${r.error}`);
  const note = filterNote(r);
  if (note && !r.error) lines.push(`    ${note}`);
  for (const t of r.targets) {
    if (t.status === 'failed' && t.error && t.error !== 'not copied: the source failed') {
      lines.push(`    ${t.target}: ${t.error}`);
    }
    if (t.status === 'kept') lines.push(`    ${t.target}: kept at ${shortDigest(t.digest)} (${keptBy(t)})`);
    // A plan lists the repositories it would create once, after the summary.
    if (t.repositoryCreated) lines.push(`    ${t.target}: repository created`);
    if (t.status === 'copied' && t.tagAction === 'move') {
      lines.push(`    ${t.target}: moved ${shortDigest(t.previousDigest)} → ${shortDigest(t.digest)}`);
    }
  }
  return lines.join('\n');
}

/** An image of a plan: the source and its digest, then what would happen at every target. */
export function planLines(r: ImageResult): string {
  // Nothing to do is one line: a plan of a large estate shows what changes, not every tag that does not.
  if (!r.error && r.targets.length > 0 && r.targets.every((t) => t.status === 'up-to-date')) {
    return `= ${r.source}: up to date at ${plural(r.targets.length, 'target')}`;
  }
  const lines = [`· ${r.source}${r.digest ? ` (${shortDigest(r.digest)})` : ''}`];
  if (r.error) lines.push(`    ✗ ${r.error}`);
  for (const t of r.targets) {
    if (r.error && t.error === 'not copied: the source failed') continue;
    lines.push(`    ${describeTarget(t)}`);
    if (t.status === 'planned') lines.push(...referrerLines(t));
  }
  const note = filterNote(r, true);
  if (note && !r.error) lines.push(`    ${note}`);
  return lines.join('\n');
}
