// --metrics-file FILE: the run in Prometheus text format (exposition format 0.0.4), for node_exporter's
// textfile collector or a Pushgateway. Every value describes this run, so every family is a gauge.
// The file is written to a temporary name beside it and renamed, so a collector never reads half a
// file; and the time of the last successful run is carried over from the previous file when this run
// did not succeed, so an alert on "no success for a day" keeps working after a failure.

import {
  accessSync,
  constants,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DRIFT_STATES, type DriftRow } from '../copy/check.js';
import type { ImageResult } from '../copy/result.js';
import type { MirrorResult } from '../copy/run.js';
import { UsageError, whyUnreadable } from '../errors.js';
import { summaryRows } from './summary.js';

export type MetricsCommand = 'sync' | 'check' | 'copy';

/** The states a copy or sync leaves a target tag in, as the reports name them. */
export const SYNC_STATES = ['copied', 'up-to-date', 'kept', 'failed'] as const;

export interface MetricsFile {
  path: string;
  /** Seconds since the epoch of the last run that exited 0, per command, from the file as it was. */
  lastSuccess: Map<string, number>;
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  samples: Sample[];
}

/**
 * Checked before any work: the directory must exist and be writable (a typo found after an hour of
 * mirroring would lose the run's metrics). Reads the previous file for its last-success times.
 */
export function checkMetricsFile(path: string): MetricsFile {
  const full = resolve(path);
  const dir = dirname(full);
  try {
    if (!statSync(dir).isDirectory())
      throw new UsageError(`--metrics-file ${path}: ${dir} is not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      `--metrics-file ${path}: the directory ${dir} ${code === 'EACCES' ? 'is not writable' : whyUnreadable(err)}`,
    );
  }
  const lastSuccess = new Map<string, number>();
  let previous = '';
  try {
    previous = readFileSync(full, 'utf8');
  } catch {
    // No file yet: no earlier success to carry over.
  }
  for (const m of previous.matchAll(
    /^regmirror_last_success_timestamp_seconds\{command="([a-z]+)"\} ([0-9.e+]+)$/gm,
  )) {
    const value = Number(m[2]);
    if (Number.isFinite(value)) lastSuccess.set(m[1]!, value);
  }
  return { path: full, lastSuccess };
}

/** A label value in the text format: backslash, double quote and line feed escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

export function renderMetrics(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    if (f.samples.length === 0) continue;
    lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    lines.push(`# TYPE ${f.name} gauge`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${f.name}${labels ? `{${labels}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Write to a temporary file in the same directory, then rename over the target: all or nothing. */
export function writeMetrics(file: MetricsFile, families: Family[]): void {
  const tmp = join(dirname(file.path), `.${basename(file.path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, renderMetrics(families), { mode: 0o644 });
    renameSync(tmp, file.path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Nothing was written, or it is gone already.
    }
    throw new UsageError(`--metrics-file: cannot write ${file.path} (${(err as Error).message})`);
  }
}

interface RunFacts {
  command: MetricsCommand;
  code: number;
  requests: number;
  retries: number;
  durationMs: number;
  previous: MetricsFile;
}

/** Per mirror and target: what the blobs of this run did. */
interface Traffic {
  mirror: string;
  target: string;
  blobsUploaded: number;
  blobsMounted: number;
  bytesUploaded: number;
  bytesMounted: number;
}

function runFamilies(f: RunFacts, traffic: Traffic[]): Family[] {
  const command = { command: f.command };
  const now = Date.now() / 1000;
  const lastSuccess = f.code === 0 ? now : f.previous.lastSuccess.get(f.command);
  const per = (t: Traffic, action: string, value: number): Sample => ({
    labels: { command: f.command, mirror: t.mirror, target: t.target, action },
    value,
  });
  return [
    {
      name: 'regmirror_blobs',
      help: 'Blobs uploaded or mounted in this run, per mirror and target.',
      samples: traffic.flatMap((t) => [
        per(t, 'uploaded', t.blobsUploaded),
        per(t, 'mounted', t.blobsMounted),
      ]),
    },
    {
      name: 'regmirror_bytes',
      help: 'Bytes of the blobs uploaded or mounted in this run, per mirror and target.',
      samples: traffic.flatMap((t) => [
        per(t, 'uploaded', t.bytesUploaded),
        per(t, 'mounted', t.bytesMounted),
      ]),
    },
    {
      name: 'regmirror_requests',
      help: 'HTTP requests sent in this run.',
      samples: [{ labels: command, value: f.requests }],
    },
    {
      name: 'regmirror_retries',
      help: 'Requests retried after a transient fault in this run.',
      samples: [{ labels: command, value: f.retries }],
    },
    {
      name: 'regmirror_duration_seconds',
      help: 'Wall time of this run.',
      samples: [{ labels: command, value: f.durationMs / 1000 }],
    },
    {
      name: 'regmirror_exit_code',
      help: 'Exit code of this run: 0 ok, 1 drift or partial failure, 2 trouble, 130 interrupted.',
      samples: [{ labels: command, value: f.code }],
    },
    {
      name: 'regmirror_last_run_timestamp_seconds',
      help: 'When this run ended, in seconds since the epoch.',
      samples: [{ labels: command, value: Math.round(now) }],
    },
    {
      name: 'regmirror_last_success_timestamp_seconds',
      help: 'When the last run that exited 0 ended (carried over from the previous file while runs fail).',
      samples: lastSuccess === undefined ? [] : [{ labels: command, value: Math.round(lastSuccess) }],
    },
  ];
}

function stateFamily(
  command: MetricsCommand,
  counts: Map<string, Map<string, number>>,
  states: readonly string[],
): Family {
  const samples: Sample[] = [];
  for (const [key, byState] of counts) {
    const [mirror, target] = key.split('\u0000') as [string, string];
    for (const state of states)
      samples.push({ labels: { command, mirror, target, state }, value: byState.get(state) ?? 0 });
  }
  return {
    name: 'regmirror_tags',
    help: 'Tags per mirror, target and state at the end of this run.',
    samples,
  };
}

function addCount(
  counts: Map<string, Map<string, number>>,
  mirror: string,
  target: string,
  state: string,
  n = 1,
) {
  const key = `${mirror}\u0000${target}`;
  let byState = counts.get(key);
  if (!byState) {
    byState = new Map();
    counts.set(key, byState);
  }
  byState.set(state, (byState.get(state) ?? 0) + n);
}

function trafficOf(mirror: string, targets: string[], images: ImageResult[]): Traffic[] {
  const traffic = targets.map(
    (target): Traffic => ({
      mirror,
      target,
      blobsUploaded: 0,
      blobsMounted: 0,
      bytesUploaded: 0,
      bytesMounted: 0,
    }),
  );
  for (const img of images) {
    img.targets.forEach((t, i) => {
      const row = traffic[i];
      if (!row) return;
      row.blobsUploaded += t.blobsUploaded;
      row.blobsMounted += t.blobsMounted;
      row.bytesUploaded += t.bytesUploaded;
      row.bytesMounted += t.bytesMounted;
    });
  }
  return traffic;
}

export function syncMetrics(mirrors: MirrorResult[], facts: Omit<RunFacts, 'command'>): Family[] {
  const counts = new Map<string, Map<string, number>>();
  for (const r of summaryRows(mirrors)) {
    addCount(counts, r.mirror, r.target, 'copied', r.copied);
    addCount(counts, r.mirror, r.target, 'up-to-date', r.upToDate);
    addCount(counts, r.mirror, r.target, 'kept', r.kept);
    addCount(counts, r.mirror, r.target, 'failed', r.failed);
  }
  const traffic = mirrors.flatMap((m) => trafficOf(m.name, m.targets, m.images));
  return [stateFamily('sync', counts, SYNC_STATES), ...runFamilies({ ...facts, command: 'sync' }, traffic)];
}

export function copyMetrics(
  mirror: string,
  targets: string[],
  result: ImageResult,
  facts: Omit<RunFacts, 'command'>,
): Family[] {
  const counts = new Map<string, Map<string, number>>();
  result.targets.forEach((t, i) => {
    addCount(counts, mirror, targets[i]!, t.status);
  });
  return [
    stateFamily('copy', counts, SYNC_STATES),
    ...runFamilies({ ...facts, command: 'copy' }, trafficOf(mirror, targets, [result])),
  ];
}

/** `fixed`: the copies --fix made, each with its mirror and the target repositories it wrote to. */
export function checkMetrics(
  rows: DriftRow[],
  fixed: { mirror: string; targets: string[]; result: ImageResult }[],
  facts: Omit<RunFacts, 'command'>,
): Family[] {
  const counts = new Map<string, Map<string, number>>();
  for (const r of rows) addCount(counts, r.mirror, r.target, r.state);
  const traffic = new Map<string, Traffic>();
  for (const f of fixed) {
    for (const t of trafficOf(f.mirror, f.targets, [f.result])) {
      const key = `${t.mirror}\u0000${t.target}`;
      const sum = traffic.get(key);
      if (!sum) traffic.set(key, t);
      else {
        sum.blobsUploaded += t.blobsUploaded;
        sum.blobsMounted += t.blobsMounted;
        sum.bytesUploaded += t.bytesUploaded;
        sum.bytesMounted += t.bytesMounted;
      }
    }
  }
  return [
    stateFamily('check', counts, DRIFT_STATES),
    ...runFamilies({ ...facts, command: 'check' }, [...traffic.values()]),
  ];
}
