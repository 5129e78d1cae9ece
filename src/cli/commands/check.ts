// regmirror check: drift between sources and targets, for nightly jobs. Table, JSON or Markdown; exit 0
// in sync, 1 on drift, 2 when the check itself could not run. --fix syncs exactly the rows that drifted.

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
import { UsageError } from '../../errors.js';
import { recordBundle } from '../../layout/bundle.js';
import { withDigest, withTag } from '../../reference/reference.js';
import { createLimiter } from '../../registry/limiter.js';
import { openAuditLog } from '../audit.js';
import { imageLine } from '../progress.js';
import { exitCodeForMirrors } from '../report.js';
import { closeLayouts } from '../stores.js';
import { renderRateLimits, table } from '../summary.js';
import { VERSION } from '../version.js';
import { openConfigRun, type SyncFlags, type SyncSession, specsFrom, targetRegistries } from './sync.js';

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
    if (!DRIFT_STATES.includes(s as DriftState)) {
      throw new UsageError(`--fail-on: unknown state "${s}" (states: ${DRIFT_STATES.join(', ')})`);
    }
  }
  return states as DriftState[];
}

export function countStates(rows: DriftRow[]): Record<DriftState, number> {
  const counts = Object.fromEntries(DRIFT_STATES.map((s) => [s, 0])) as Record<DriftState, number>;
  for (const r of rows) counts[r.state]++;
  return counts;
}

/** 1 when a row is in a failing state; else 2 when some rows could not be checked; else 0. */
export function checkExitCode(rows: DriftRow[], failOn: DriftState[]): number {
  if (rows.some((r) => r.state !== 'error' && failOn.includes(r.state))) return 1;
  if (rows.some((r) => r.state === 'error')) return failOn.includes('error') ? 1 : 2;
  return 0;
}

const short = (d: string | undefined) => (d ? d.slice(0, 19) : '-');

/** What a row says beyond its state: the error, or what is missing (content below, referrers). */
function detailOf(r: DriftRow): string {
  if (r.error) return r.error;
  return [...(r.missingContent ?? []), ...(r.missingReferrers ?? [])].join(', ');
}

export function renderTable(rows: DriftRow[]): string {
  const counts = countStates(rows);
  const lines = [DRIFT_STATES.map((s) => `${s} ${counts[s]}`).join('  ')];
  const diffs = rows.filter((r) => r.state !== 'ok');
  if (diffs.length > 0) {
    lines.push(
      '',
      table(
        ['state', 'target', 'tag', 'source digest', 'target digest', 'detail'],
        diffs.map((r) => [
          r.state,
          r.target,
          r.tag,
          short(r.sourceDigest),
          short(r.targetDigest),
          detailOf(r),
        ]),
      ),
    );
  }
  return lines.join('\n');
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
  const out: string[] = [
    `## regmirror check: ${drift === 0 ? 'in sync' : `${drift} drifted`}`,
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
  const diffs = rows.filter((r) => r.state !== 'ok');
  if (diffs.length > 0) {
    out.push('', '### Differences', '', '| state | target | tag | source digest | target digest | detail |');
    out.push('| --- | --- | --- | --- | --- | --- |');
    for (const r of diffs) {
      const detail = markdownCell(detailOf(r));
      out.push(
        `| ${r.state} | ${r.target} | \`${r.tag}\` | ${r.sourceDigest ? `\`${short(r.sourceDigest)}\`` : '-'} | ${r.targetDigest ? `\`${short(r.targetDigest)}\`` : '-'} | ${detail} |`,
      );
    }
  }
  return out.join('\n');
}

/** Sync exactly the drifted rows: per mirror and tag, the targets that are missing, stale or incomplete. */
async function fix(rows: DriftRow[], specs: MirrorSpec[], ctx: CopyContext): Promise<ImageResult[]> {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const groups = new Map<string, { spec: MirrorSpec; tag: string; targets: Set<string>; verify: boolean }>();
  for (const r of rows) {
    if (r.state !== 'missing' && r.state !== 'stale' && r.state !== 'incomplete') continue;
    const spec = byName.get(r.mirror)!;
    const key = `${r.mirror}\u0000${r.tag}`;
    let g = groups.get(key);
    if (!g) {
      g = { spec, tag: r.tag, targets: new Set(), verify: false };
      groups.set(key, g);
    }
    g.targets.add(r.target);
    // Content gone below a right tag (--deep) needs the walk that trusts nothing; missing referrers are
    // found and brought by an ordinary copy.
    if (r.state === 'incomplete' && (r.missingContent?.length ?? 0) > 0) g.verify = true;
  }
  const limit = createLimiter(4);
  return Promise.all(
    [...groups.values()].map(({ spec, tag, targets, verify }) =>
      limit(() => {
        const pinned = spec.select([]).find((s) => s.tag === tag)?.digest;
        const source = pinned ? { ...withDigest(spec.source, pinned), tag } : withTag(spec.source, tag);
        const refs = spec.targets
          .filter((t) => targets.has(`${t.registry}/${t.path}`))
          .map((t) => withTag(t, tag));
        // Incomplete content sits under a tag that looks right: re-walk it and trust nothing.
        const options = verify
          ? { ...spec.options, overwrite: 'always' as const, verify: true }
          : spec.options;
        return copyImage(source, refs, ctx, options);
      }),
    ),
  );
}

export async function runCheck(flags: CheckFlags, session: SyncSession): Promise<number> {
  const { out, signal } = session;
  const format = flags.json ? 'json' : (flags.format ?? 'table');
  if (!['table', 'json', 'markdown'].includes(format)) {
    throw new UsageError(`--format: "${format}" is not one of table, json, markdown`);
  }
  const failOn = parseFailOn(flags.failOn);
  const { filepath, mirrors, client, store, layouts } = await openConfigRun(flags, session);
  let commit = false;
  try {
    const specs = specsFrom(mirrors, false);
    const referrerRun = new ReferrerRun();
    const options: CheckOptions = { deep: flags.deep ?? false, limit: createLimiter(16), referrerRun };
    out.status(`checking ${mirrors.length} mirrors`);
    const mirrorLimit = createLimiter(4);
    const rows = (
      await Promise.all(specs.map((s) => mirrorLimit(() => checkMirror(s, store, options))))
    ).flat();
    out.stop();
    let code = checkExitCode(rows, failOn);
    let fixed: ImageResult[] | undefined;
    if (flags.fix && code === 1) {
      const audit = await openAuditLog(flags.auditLog, client, targetRegistries(mirrors));
      try {
        const ctx: CopyContext = {
          store,
          knowledge: new BlobKnowledge(),
          transfers: createLimiter(4),
          ...(audit ? { onEvent: audit.onEvent } : {}),
          referrerRun,
        };
        fixed = await fix(rows, specs, ctx);
        if (!signal.aborted) {
          await recordBundle(layouts, fixed, `regmirror ${VERSION}`);
          commit = true;
        }
      } finally {
        audit?.close();
      }
      for (const r of fixed) out.info(imageLine(r, false));
      const fixCode = exitCodeForMirrors([{ images: fixed }]);
      // Fixed drift is no drift; extras are never deleted, so they still count when asked for.
      const remaining = rows.filter((r) => r.state === 'extra' || r.state === 'error');
      code = fixCode !== 0 ? fixCode : checkExitCode(remaining, failOn);
    }
    const rateLimits = client.rateLimits();
    for (const line of renderRateLimits(rateLimits)) out.info(line);
    const report = {
      command: 'check',
      config: filepath,
      exitCode: code,
      deep: flags.deep ?? false,
      failOn,
      counts: countStates(rows),
      rows,
      ...(fixed ? { fixed } : {}),
      requests: client.transport.stats.requests,
      rateLimits,
    };
    if (format === 'json') out.result(JSON.stringify(report, null, 2));
    else if (format === 'markdown') out.result(renderMarkdown(rows, failOn));
    else out.result(renderTable(rows));
    return signal.aborted ? 130 : code;
  } finally {
    // A plan writes nothing and says nothing of archives; an interrupted run says which wait for the next.
    await (commit || signal.aborted ? closeLayouts(layouts, out, commit) : layouts.close(false)).finally(() =>
      client.close(),
    );
  }
}
