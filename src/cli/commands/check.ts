// regmirror check: drift between sources and targets, for nightly jobs. Table, JSON or Markdown; exit 0
// in sync, 1 on drift, 2 when something could not be checked (trouble wins, as with diff). --fix syncs
// exactly the rows that drifted, checks those rows again, and reports the state after the fix.

import {
  type CheckOptions,
  checkMirror,
  DRIFT_STATES,
  type DriftRow,
  type DriftState,
} from '../../copy/check.js';
import { type CopyContext, copyImage } from '../../copy/copy-image.js';
import { BlobKnowledge } from '../../copy/knowledge.js';
import { ReferrerRun } from '../../copy/referrer-run.js';
import type { ImageResult } from '../../copy/result.js';
import type { MirrorSpec } from '../../copy/run.js';
import type { RegistryStore } from '../../copy/store.js';
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UsageError } from '../../errors.js';
import { recordBundle } from '../../layout/bundle.js';
import { formatRepository, type Repository, withDigest, withTag } from '../../reference/reference.js';
import { createLimiter } from '../../registry/limiter.js';
import { openAuditLog } from '../audit.js';
import { imageLine } from '../describe.js';
import { formatDuration, plural, shortDigest } from '../format.js';
import { checkMetrics, checkMetricsFile, writeMetrics } from '../metrics.js';
import { saveMountCache } from '../mount-cache.js';
import { closeLayouts } from '../stores.js';
import { renderRateLimits } from '../summary.js';
import { outputWidth, renderTable as renderColumns } from '../table.js';
import { VERSION } from '../version.js';
import {
  openConfigRun,
  openMountCache,
  type SyncFlags,
  type SyncSession,
  specsFrom,
  syncTransfers,
  targetRegistries,
} from './sync.js';

export interface CheckFlags extends SyncFlags {
  deep?: boolean;
  format?: string;
  failOn?: string;
  fix?: boolean;
}

export const DEFAULT_FAIL_ON: DriftState[] = ['missing', 'stale', 'incomplete'];

export function parseFailOn(text: string | undefined): DriftState[] {
  if (text === undefined) return DEFAULT_FAIL_ON;
  const states = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of states) {
    if (s === 'error') {
      throw new UsageError(
        '--fail-on error: rows that could not be checked always make check exit 2; name drift states only',
      );
    }
    if (!DRIFT_STATES.includes(s as DriftState)) {
      throw new UsageError(
        `--fail-on: unknown state "${s}" (states: ${DRIFT_STATES.filter((d) => d !== 'error' && d !== 'ok').join(', ')})`,
      );
    }
  }
  return states as DriftState[];
}

export function countStates(rows: DriftRow[]): Record<DriftState, number> {
  const counts = Object.fromEntries(DRIFT_STATES.map((s) => [s, 0])) as Record<DriftState, number>;
  for (const r of rows) counts[r.state]++;
  return counts;
}

/**
 * diff's convention, trouble wins: 2 when a row could not be checked (or a repair failed), whatever
 * else was found, so that a job treating 2 as "the check itself broke" never misses an unreachable
 * registry behind some drift; else 1 when a row is in a failing state; else 0.
 */
export function checkExitCode(rows: DriftRow[], failOn: DriftState[]): number {
  if (rows.some((r) => r.state === 'error' || r.fixError !== undefined)) return EXIT_USAGE;
  if (rows.some((r) => failOn.includes(r.state))) return EXIT_PARTIAL;
  return EXIT_OK;
}

/** The detail column: what is missing, or what the fix did. Errors are listed in full under the table. */
function detail(r: DriftRow): string {
  if (r.fixError !== undefined) return `${r.fixedFrom}, fix failed`;
  if (r.fixedFrom !== undefined)
    return r.state === 'ok' ? `fixed, was ${r.fixedFrom}` : `still ${r.state} after --fix`;
  if (r.state === 'error') return r.errorKind ?? 'error';
  return [...(r.missingContent ?? []), ...(r.missingReferrers ?? [])].join(', ');
}

/** "ok 15  missing 1  stale 2  extra 1  incomplete 0  error 0" */
function countsLine(rows: DriftRow[]): string {
  const counts = countStates(rows);
  return DRIFT_STATES.map((s) => `${s} ${counts[s]}`).join('  ');
}

export function renderTable(rows: DriftRow[], width?: number): string {
  const lines = [countsLine(rows)];
  const fixed = rows.filter((r) => r.fixedFrom !== undefined);
  if (fixed.length > 0) {
    const ok = fixed.filter((r) => r.state === 'ok').length;
    lines.push(`after --fix: ${ok} of ${plural(fixed.length, 'drifted row')} fixed`);
  }
  const shown = rows.filter((r) => r.state !== 'ok' || r.fixedFrom !== undefined);
  if (shown.length > 0) {
    lines.push('', differences(shown, width));
  }
  const errors = rows.filter((r) => r.error !== undefined || r.fixError !== undefined);
  if (errors.length > 0) {
    lines.push('', 'errors:');
    for (const r of errors) lines.push(`  ${r.target}:${r.tag}: ${r.fixError ?? r.error}`);
  }
  return lines.join('\n');
}

const hex12 = (d: string | undefined) => (d ? d.replace(/^[a-z0-9]+:/, '').slice(0, 12) : '-');

/** The rows worth a line: every difference, and every row --fix worked on. */
function differences(rows: DriftRow[], width?: number): string {
  return renderColumns(
    [
      { header: 'state' },
      { header: 'target', shrink: 'middle', min: 16 },
      { header: 'tag', shrink: 'middle' },
      { header: 'source' },
      { header: 'target has' },
      { header: 'detail', shrink: 'end', min: 18 },
    ],
    // Digests as 12 hex digits, as docker shows image IDs: enough to tell them apart, and the table fits.
    rows.map((r) => [r.state, r.target, r.tag, hex12(r.sourceDigest), hex12(r.targetDigest), detail(r)]),
    width,
  );
}

/**
 * Text for a Markdown table cell. Errors quote registries, which could otherwise break the table (|),
 * or have a CI page render links, images or HTML ([, ], <, >, `) — control characters are escaped at the
 * output boundary.
 */
export function markdownCell(text: string): string {
  return text.replace(/[\\|[\]<>`*_!]/g, (ch) => `\\${ch}`);
}

/** A CI job summary: the matrix of mirrors × targets with their states, then every difference. */
export function renderMarkdown(rows: DriftRow[], failOn: DriftState[]): string {
  const counts = countStates(rows);
  const drift = rows.filter((r) => failOn.includes(r.state)).length;
  const errors = counts.error + rows.filter((r) => r.fixError !== undefined).length;
  const fixed = rows.filter((r) => r.fixedFrom !== undefined && r.state === 'ok').length;
  const verdict = [
    errors > 0 ? `${plural(errors, 'error')}` : undefined,
    drift > 0 ? `${drift} drifted` : undefined,
  ].filter(Boolean);
  const out: string[] = [
    `## regmirror check: ${verdict.length > 0 ? verdict.join(', ') : 'in sync'}${fixed > 0 ? ` (${fixed} fixed)` : ''}`,
    '',
    DRIFT_STATES.filter((s) => counts[s] > 0)
      .map((s) => `**${s}** ${counts[s]}`)
      .join(' · ') || 'nothing checked',
    '',
    '| mirror | target | ok | missing | stale | extra | incomplete | error |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const cells = new Map<string, { mirror: string; target: string; counts: Record<DriftState, number> }>();
  for (const r of rows) {
    const key = `${r.mirror}\u0000${r.target}`;
    let cell = cells.get(key);
    if (!cell) {
      cell = { mirror: r.mirror, target: r.target, counts: countStates([]) };
      cells.set(key, cell);
    }
    cell.counts[r.state]++;
  }
  for (const c of cells.values()) {
    const n = (s: DriftState) =>
      c.counts[s] ? (s === 'ok' ? String(c.counts[s]) : `**${c.counts[s]}**`) : '0';
    out.push(
      `| ${c.mirror} | ${c.target} | ${n('ok')} | ${n('missing')} | ${n('stale')} | ${n('extra')} | ${n('incomplete')} | ${n('error')} |`,
    );
  }
  const diffs = rows.filter((r) => r.state !== 'ok' || r.fixedFrom !== undefined);
  if (diffs.length > 0) {
    out.push('', '### Differences', '', '| state | target | tag | source digest | target digest | detail |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    for (const r of diffs) {
      const text = r.error ?? r.fixError ?? detail(r);
      const cell = markdownCell(r.fixError !== undefined ? `${detail(r)}: ${text}` : text);
      out.push(
        `| ${r.state} | ${r.target} | \`${r.tag}\` | ${r.sourceDigest ? `\`${shortDigest(r.sourceDigest)}\`` : '-'} | ${r.targetDigest ? `\`${shortDigest(r.targetDigest)}\`` : '-'} | ${cell} |`,
      );
    }
  }
  return out.join('\n');
}

/** One copy --fix made: a mirror's tag to the targets that drifted, and the rows it answers for. */
interface Repair {
  spec: MirrorSpec;
  tag: string;
  targets: Repository[];
  rows: DriftRow[];
  verify: boolean;
  result?: ImageResult;
}

/** Group the drifted rows into copies: per mirror and tag, the targets that are missing, stale or incomplete. */
function repairsFor(rows: DriftRow[], specs: MirrorSpec[]): Repair[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const groups = new Map<string, Repair>();
  for (const r of rows) {
    if (r.state !== 'missing' && r.state !== 'stale' && r.state !== 'incomplete') continue;
    const spec = byName.get(r.mirror)!;
    const key = `${r.mirror}\u0000${r.tag}`;
    let g = groups.get(key);
    if (!g) {
      g = { spec, tag: r.tag, targets: [], rows: [], verify: false };
      groups.set(key, g);
    }
    const target = spec.targets.find((t) => formatRepository(t) === r.target);
    if (target && !g.targets.includes(target)) g.targets.push(target);
    g.rows.push(r);
    // Content gone below a right tag (--deep) needs the walk that trusts nothing; missing referrers are
    // found and brought by an ordinary copy.
    if (r.state === 'incomplete' && (r.missingContent?.length ?? 0) > 0) g.verify = true;
  }
  // Targets in the mirror's order, so results line up with the config.
  for (const g of groups.values())
    g.targets.sort((a, b) => g.spec.targets.indexOf(a) - g.spec.targets.indexOf(b));
  return [...groups.values()];
}

async function runRepairs(repairs: Repair[], ctx: CopyContext, images: number): Promise<void> {
  const limit = createLimiter(images);
  await Promise.all(
    repairs.map((g) =>
      limit(async () => {
        const pinned = g.spec.select([]).find((s) => s.tag === g.tag)?.digest;
        const source = pinned
          ? { ...withDigest(g.spec.source, pinned), tag: g.tag }
          : withTag(g.spec.source, g.tag);
        // Incomplete content sits under a tag that looks right: re-walk it and trust nothing.
        const options = g.verify
          ? { ...g.spec.options, overwrite: 'always' as const, verify: true }
          : g.spec.options;
        g.result = await copyImage(
          source,
          g.targets.map((t) => withTag(t, g.tag)),
          ctx,
          options,
        );
      }),
    ),
  );
}

/** After the repairs: every repaired row checked again against what was pushed. */
/**
 * After the repairs: the repaired rows checked again, the way the check found them — the same code, on
 * just those tags and targets, with fresh referrer state (the tag lists it read before are out of date
 * now). A row whose repair failed keeps its state and says why.
 */
async function recheck(repairs: Repair[], store: RegistryStore, deep: boolean): Promise<void> {
  const limit = createLimiter(4);
  await Promise.all(
    repairs.map((g) =>
      limit(async () => {
        const result = g.result!;
        const again: Repair['rows'] = [];
        for (const row of g.rows) {
          row.fixedFrom = row.state;
          const t = result.targets[g.targets.findIndex((x) => formatRepository(x) === row.target)];
          const failure = t?.status === 'failed' ? (t.error ?? result.error) : result.error;
          if (failure !== undefined || t === undefined) row.fixError = failure ?? 'not repaired';
          else again.push(row);
        }
        if (again.length === 0) return;
        const pinned = g.spec.select([]).find((s) => s.tag === g.tag && s.digest !== undefined);
        const spec: MirrorSpec = {
          ...g.spec,
          targets: g.targets.filter((t) => again.some((r) => r.target === formatRepository(t))),
          needsTagList: false,
          select: () => [pinned ?? { tag: g.tag }],
        };
        const fresh = await checkMirror(spec, store, {
          deep: deep || g.verify,
          limit: createLimiter(16),
          referrerRun: new ReferrerRun(),
        });
        for (const row of again) {
          const now = fresh.find((r) => r.target === row.target && r.tag === row.tag);
          if (!now) continue;
          const { fixedFrom } = row;
          for (const key of [
            'sourceDigest',
            'targetDigest',
            'missingContent',
            'missingReferrers',
            'error',
            'errorKind',
          ] as const) {
            delete row[key];
          }
          Object.assign(row, now, { fixedFrom });
        }
      }),
    ),
  );
}

export async function runCheck(flags: CheckFlags, session: SyncSession): Promise<number> {
  const { out, signal } = session;
  const started = Date.now();
  const format = flags.json ? 'json' : (flags.format ?? 'table');
  if (!['table', 'json', 'markdown'].includes(format)) {
    throw new UsageError(`--format: "${format}" is not one of table, json, markdown`);
  }
  const failOn = parseFailOn(flags.failOn);
  const metrics = flags.metricsFile !== undefined ? checkMetricsFile(flags.metricsFile) : undefined;
  const { filepath, config, mirrors, client, store, layouts } = await openConfigRun(flags, session);
  let commit = false;
  try {
    const specs = specsFrom(mirrors, false);
    const referrerRun = new ReferrerRun();
    const options: CheckOptions = { deep: flags.deep ?? false, limit: createLimiter(16), referrerRun };
    out.status(`checking ${plural(mirrors.length, 'mirror')}`);
    const mirrorLimit = createLimiter(4);
    const rows = (
      await Promise.all(specs.map((s) => mirrorLimit(() => checkMirror(s, store, options))))
    ).flat();
    out.stop();
    const before = countStates(rows);
    let repairs: Repair[] | undefined;
    if (flags.fix) {
      repairs = repairsFor(rows, specs);
      const drifted = repairs.reduce((n, g) => n + g.rows.length, 0);
      if (drifted === 0) out.info(`nothing to fix: ${countsLine(rows)}`);
      else {
        out.info(
          `fixing ${plural(drifted, 'drifted row')} (${DRIFT_STATES.filter(
            (s) => s !== 'ok' && s !== 'extra' && s !== 'error' && before[s] > 0,
          )
            .map((s) => `${before[s]} ${s}`)
            .join(', ')}) with ${plural(repairs.length, 'copy', 'copies')}`,
        );
        const audit = await openAuditLog(flags.auditLog, client, targetRegistries(mirrors));
        const images = flags.concurrency ?? config.defaults.concurrency;
        // Repairs copy as sync does: mounts from where earlier runs left blobs, transfers bounded by memory.
        const cache = await openMountCache(flags, session, mirrors);
        try {
          const ctx: CopyContext = {
            store,
            knowledge: new BlobKnowledge(cache ? { hints: cache } : {}),
            transfers: syncTransfers(images),
            ...(audit ? { onEvent: audit.onEvent } : {}),
            referrerRun,
          };
          await runRepairs(repairs, ctx, images);
          if (!signal.aborted) {
            await recordBundle(
              layouts,
              repairs.map((g) => g.result!),
              `regmirror ${VERSION}`,
            );
            commit = true;
          }
        } finally {
          audit?.close();
          await saveMountCache(cache, out);
        }
        for (const g of repairs) out.info(imageLine(g.result!, false));
        await recheck(repairs, store, flags.deep ?? false);
        const fixed = rows.filter((r) => r.fixedFrom !== undefined && r.state === 'ok').length;
        out.info(
          fixed === drifted
            ? `fixed ${fixed} of ${plural(drifted, 'row')}; checked again, now: ${countsLine(rows)}`
            : `fixed ${fixed} of ${plural(drifted, 'row')}; ${drifted - fixed} still drifted or failed: ${countsLine(rows)}`,
        );
      }
    }
    const code = signal.aborted ? EXIT_INTERRUPTED : checkExitCode(rows, failOn);
    const { requests, retries } = client.transport.stats;
    const rateLimits = client.rateLimits();
    for (const line of renderRateLimits(rateLimits)) out.info(line);
    const report = {
      command: 'check',
      config: filepath,
      exitCode: code,
      deep: flags.deep ?? false,
      failOn,
      counts: countStates(rows),
      ...(repairs ? { countsBefore: before } : {}),
      rows,
      ...(repairs ? { fixed: repairs.map((g) => g.result!).filter(Boolean) } : {}),
      requests,
      retries,
      durationMs: Date.now() - started,
      rateLimits,
    };
    if (format === 'json') out.result(JSON.stringify(report, null, 2));
    else if (format === 'markdown') out.result(renderMarkdown(rows, failOn));
    else out.result(renderTable(rows, outputWidth(process.stdout)));
    out.info(
      `${plural(rows.length, 'row')} checked in ${formatDuration(Date.now() - started)}, ${plural(requests, 'request')}`,
    );
    if (metrics) {
      writeMetrics(
        metrics,
        checkMetrics(
          rows,
          (repairs ?? [])
            .filter((g) => g.result)
            .map((g) => ({
              mirror: g.spec.name,
              targets: g.targets.map(formatRepository),
              result: g.result!,
            })),
          { code, requests, retries, durationMs: Date.now() - started, previous: metrics },
        ),
      );
    }
    return code;
  } finally {
    // A plan writes nothing and says nothing of archives; an interrupted run says which wait for the next.
    await (commit || signal.aborted ? closeLayouts(layouts, out, commit) : layouts.close(false)).finally(() =>
      client.close(),
    );
  }
}
