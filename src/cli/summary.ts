// The end-of-run table: one row per mirror and target.

import type { MirrorResult } from '../copy/run.js';
import type { PullQuotaReport } from '../registry/profile/profile.js';
import { durationWords } from '../registry/profile/pull-quota.js';
import { formatBytes, formatDuration, plural } from './format.js';
import type { Throttling } from './report.js';
import { type Column, renderTable } from './table.js';

interface Row {
  mirror: string;
  target: string;
  copied: number;
  upToDate: number;
  kept: number;
  planned: number;
  /** Of the planned: tags to create and to move. */
  create: number;
  move: number;
  failed: number;
  uploaded: number;
  mounted: number;
  bytes: number;
  timeMs: number;
}

export function summaryRows(mirrors: MirrorResult[]): Row[] {
  const rows: Row[] = [];
  for (const m of mirrors) {
    const byTarget = new Map<string, Row>();
    for (const [i, target] of m.targets.entries()) {
      byTarget.set(String(i), {
        mirror: m.name,
        target,
        copied: 0,
        upToDate: 0,
        kept: 0,
        planned: 0,
        create: 0,
        move: 0,
        failed: m.error ? 1 : 0,
        uploaded: 0,
        mounted: 0,
        bytes: 0,
        timeMs: 0,
      });
    }
    for (const img of m.images) {
      img.targets.forEach((t, i) => {
        const row = byTarget.get(String(i));
        if (!row) return;
        if (t.status === 'copied') row.copied++;
        else if (t.status === 'up-to-date') row.upToDate++;
        else if (t.status === 'kept') row.kept++;
        else if (t.status === 'planned') {
          row.planned++;
          if (t.tagAction === 'create') row.create++;
          if (t.tagAction === 'move') row.move++;
        } else row.failed++;
        row.uploaded += t.blobsUploaded;
        row.mounted += t.blobsMounted;
        row.bytes += t.bytesUploaded;
      });
    }
    // Wall time of the mirror: images run in parallel, so their durations do not add up.
    const spans = m.images
      .filter((img) => img.startedAt)
      .map((img) => [Date.parse(img.startedAt!), Date.parse(img.startedAt!) + img.durationMs] as const);
    const wall = spans.length ? Math.max(...spans.map((x) => x[1])) - Math.min(...spans.map((x) => x[0])) : 0;
    for (const row of byTarget.values()) row.timeMs = wall;
    rows.push(...byTarget.values());
  }
  return rows;
}

const text = (header: string): Column => ({ header, shrink: 'middle' });
const number = (header: string): Column => ({ header, align: 'right' });

/**
 * The end-of-run table of sync (or plan), one row per mirror and target, fitted to `width` columns when
 * given. The mirror column is there only when some mirror has a name of its own: by default a mirror is
 * named after its source, and the target already says where that went. Blob counts are in the line
 * under the table.
 */
export function renderSummary(mirrors: MirrorResult[], dryRun: boolean, width?: number): string {
  const rows = summaryRows(mirrors);
  const named = mirrors.some((m) => m.name !== m.source);
  const columns = [
    ...(named ? [text('mirror')] : []),
    text('target'),
    ...(dryRun
      ? [
          number('create'),
          number('move'),
          number('up to date'),
          number('kept'),
          number('failed'),
          number('bytes'),
        ]
      : [
          number('copied'),
          number('up to date'),
          number('kept'),
          number('failed'),
          number('bytes'),
          number('time'),
        ]),
  ];
  return renderTable(
    columns,
    rows.map((r) => [
      ...(named ? [r.mirror] : []),
      r.target,
      ...(dryRun
        ? [String(r.create), String(r.move), String(r.upToDate), String(r.kept), String(r.failed)]
        : [String(r.copied), String(r.upToDate), String(r.kept), String(r.failed)]),
      formatBytes(r.bytes),
      ...(dryRun ? [] : [formatDuration(r.timeMs)]),
    ]),
    width,
  );
}

/** One line per registry that throttled the run, for the end of the human output. */
export function renderThrottling(throttling: Throttling[]): string[] {
  return throttling.map((t) => {
    const answers = [
      t.tooManyRequests > 0 ? `${t.tooManyRequests} × 429` : '',
      t.unavailable > 0 ? `${t.unavailable} × 503` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const parts = [
      answers
        ? `answered ${answers}; requests waited ${formatDuration(t.waitedMs)} in all before retrying`
        : '',
      t.pacedMs > 0 ? `paced to its request rate (${formatDuration(t.pacedMs)} of waits)` : '',
      t.concurrency.lowest < t.concurrency.initial
        ? `requests in flight lowered from ${t.concurrency.initial} to ${t.concurrency.lowest} (${t.concurrency.final} at the end)`
        : '',
    ].filter(Boolean);
    return `throttled by ${t.registry}: ${parts.join('; ')}`;
  });
}

/**
 * One line per registry whose pull quota the run saw (Docker Hub): "docker.io: Docker Hub pull quota:
 * 76 of 100 left (6 h window) as of 2026-…Z; 2 answers 429; 3 manifest GETs held back 6.5 s in all".
 */
export function renderRateLimits(reports: PullQuotaReport[]): string[] {
  return reports.map((r) => {
    const parts: string[] = [];
    if (r.remaining !== undefined) {
      const of = r.limit !== undefined ? ` of ${r.limit}` : '';
      const window = r.windowSeconds ? ` (${durationWords(r.windowSeconds * 1000)} window)` : '';
      parts.push(`${r.remaining}${of} left${window}${r.observedAt ? ` as of ${r.observedAt}` : ''}`);
    } else if (r.limit !== undefined) {
      parts.push(`limit ${r.limit}${r.observedAt ? ` as of ${r.observedAt}` : ''}`);
    }
    if (r.throttled > 0) parts.push(`${plural(r.throttled, 'answer')} 429`);
    if (r.pacedRequests > 0)
      parts.push(`${plural(r.pacedRequests, 'manifest GET')} held back ${formatDuration(r.pacedMs)} in all`);
    if (r.resetAt) parts.push(`resets at ${r.resetAt}`);
    return `${r.registry}: ${r.quota}: ${parts.join('; ')}`;
  });
}
