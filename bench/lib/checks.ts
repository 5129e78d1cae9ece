// The acceptance lines of issue 14, judged from the measured numbers (undefined = not measured in this run).

import { availableParallelism } from 'node:os';
import type { Counts } from './counts.js';
import { median } from './stats.js';
import { floorSeconds, medianOf, type WorkloadId, type WorkloadResult } from './workloads.js';

export interface Check {
  id: string;
  line: string;
  pass: boolean | undefined;
  measured: string;
}

const RATIO_GOALS: Array<[WorkloadId, number]> = [
  ['mixed', 0.3],
  ['small', 0.15],
  ['noop', 0.1],
];

/** Threshold for "the other targets' throughput is not reduced": noise on a shared 2-core machine. */
export const THROTTLE_KEEP = 0.9;

/** Manifest requests, not counting one answered 401 (that is judged by the 401 line). */
function manifestRequests(c: Counts): number {
  return (
    c.byKind['manifest HEAD'] + c.byKind['manifest GET'] + c.byKind['manifest PUT'] - c.manifestUnauthorized
  );
}

export function judge(results: Map<WorkloadId, WorkloadResult>): Check[] {
  const checks: Check[] = [];
  const get = (id: WorkloadId) => results.get(id);
  for (const [id, goal] of RATIO_GOALS) {
    const r = get(id);
    const rm = r ? medianOf(r, 'regmirror') : Number.NaN;
    const sk = r ? medianOf(r, 'skopeo') : Number.NaN;
    const ratio = rm / sk;
    const floor = r ? floorSeconds(r, availableParallelism()) / sk : Number.NaN;
    checks.push({
      id: `${id}-ratio`,
      line: `${id}: regmirror ≤ ${goal.toFixed(2)}× skopeo (medians)`,
      pass: Number.isFinite(ratio) ? ratio <= goal : undefined,
      measured: Number.isFinite(ratio)
        ? `${ratio.toFixed(2)}× (${rm.toFixed(2)} s vs ${sk.toFixed(2)} s)` +
          (Number.isFinite(floor) ? `; floor for any tool here ${floor.toFixed(2)}×` : '')
        : 'not run',
    });
  }
  for (const id of ['mixed', 'small', 'huge'] as WorkloadId[]) {
    const r = get(id);
    const served = r
      ? median(
          r.samples
            .filter((s) => s.tool === 'regmirror' && s.counts)
            .map((s) => s.counts!.source.blobBytesServed / r.distinctBlobBytes),
        )
      : Number.NaN;
    checks.push({
      id: `${id}-source-bytes`,
      line: `${id}: the source serves ≤ 1.05× the distinct blob bytes (regmirror)`,
      pass: Number.isFinite(served) ? served <= 1.05 : undefined,
      measured: Number.isFinite(served) ? `${served.toFixed(3)}×` : 'not run',
    });
  }
  {
    const r = get('noop');
    const runs = r?.samples.filter((s) => s.tool === 'regmirror' && s.counts) ?? [];
    if (r && runs.length > 0) {
      const worst = runs.reduce(
        (w, s) => {
          const c = s.counts!;
          const perTarget = Math.max(...c.perTarget.map((t) => manifestRequests(t) / r.tags));
          const source = manifestRequests(c.source) / r.tags;
          const unauthorized = Math.max(c.source.unauthorized, ...c.perTarget.map((t) => t.unauthorized));
          return {
            source: Math.max(w.source, source),
            target: Math.max(w.target, perTarget),
            unauthorized: Math.max(w.unauthorized, unauthorized),
          };
        },
        { source: 0, target: 0, unauthorized: 0 },
      );
      checks.push({
        id: 'noop-manifest-requests',
        line: 'no-op re-sync: at most one manifest request per tag per side (a 401-answered one not counted)',
        pass: worst.source <= 1 && worst.target <= 1,
        measured: `source ${worst.source.toFixed(2)}, busiest target ${worst.target.toFixed(2)} per tag`,
      });
      checks.push({
        id: 'noop-401',
        line: 'no-op re-sync: no 401 answer after the first per registry',
        pass: worst.unauthorized <= 1,
        measured: `up to ${worst.unauthorized} 401 answers at one registry`,
      });
    } else {
      checks.push({
        id: 'noop-manifest-requests',
        line: 'no-op re-sync: at most one manifest request per tag per side (a 401-answered one not counted)',
        pass: undefined,
        measured: 'not run',
      });
      checks.push({
        id: 'noop-401',
        line: 'no-op re-sync: no 401 answer after the first per registry',
        pass: undefined,
        measured: 'not run',
      });
    }
  }
  {
    const r = get('migration');
    const runs = r?.samples.filter((s) => s.tool === 'regmirror' && s.counts) ?? [];
    const perTag = r
      ? median(runs.map((s) => (s.counts!.source.total + s.counts!.targets.total) / r.tags))
      : Number.NaN;
    const rss = r ? medianOf(r, 'regmirror', undefined, (s) => s.run.maxRssKiB) : Number.NaN;
    checks.push({
      id: 'migration-requests',
      line: 'migration: ≤ 9 requests per tag, source and target together (regmirror)',
      pass: Number.isFinite(perTag) ? perTag <= 9 : undefined,
      measured: Number.isFinite(perTag) ? `${perTag.toFixed(2)} per tag` : 'not run',
    });
    checks.push({
      id: 'migration-rss',
      line: 'migration: peak RSS < 250 MiB (regmirror)',
      pass: Number.isFinite(rss) ? rss / 1024 < 250 : undefined,
      measured: Number.isFinite(rss) ? `${(rss / 1024).toFixed(0)} MiB` : 'not run',
    });
  }
  {
    const r = get('migration-noop');
    const t = r ? medianOf(r, 'regmirror') : Number.NaN;
    checks.push({
      id: 'migration-noop-time',
      line: 'migration: no-op re-sync under 15 s (regmirror)',
      pass: Number.isFinite(t) ? t < 15 : undefined,
      measured: Number.isFinite(t) ? `${t.toFixed(2)} s` : 'not run',
    });
  }
  {
    const r = get('huge');
    const rm = r ? medianOf(r, 'regmirror') : Number.NaN;
    const floor = r ? medianOf(r, 'curl') : Number.NaN;
    const rss = r ? medianOf(r, 'regmirror', undefined, (s) => s.run.maxRssKiB) : Number.NaN;
    checks.push({
      id: 'huge-floor',
      line: 'large layer → 3 targets: within 1.5× of three parallel curl uploads',
      pass: Number.isFinite(rm / floor) ? rm / floor <= 1.5 : undefined,
      measured: Number.isFinite(rm / floor)
        ? `${(rm / floor).toFixed(2)}× (${rm.toFixed(2)} s vs ${floor.toFixed(2)} s)`
        : 'not run',
    });
    checks.push({
      id: 'huge-rss',
      line: 'large layer → 3 targets: peak RSS < 200 MiB (regmirror)',
      pass: Number.isFinite(rss) ? rss / 1024 < 200 : undefined,
      measured: Number.isFinite(rss) ? `${(rss / 1024).toFixed(0)} MiB` : 'not run',
    });
  }
  {
    const r = get('throttle');
    const throttled = r?.samples.filter((s) => s.variant === 'throttled') ?? [];
    const baseline = r?.samples.filter((s) => s.variant === 'baseline') ?? [];
    if (r && throttled.length > 0 && baseline.length > 0) {
      const completed = throttled.every((s) => s.run.ok);
      checks.push({
        id: 'throttle-completes',
        line: 'throttling: the run completes (exit 0, every target copied)',
        pass: completed,
        measured: completed
          ? `${throttled.length} of ${throttled.length} runs`
          : throttled
              .flatMap((s) => s.run.problems)
              .join('; ')
              .slice(0, 300),
      });
      const keep: number[] = [];
      for (const i of [1, 2]) {
        const base = median(baseline.map((s) => s.targetDoneSeconds?.[i] ?? Number.NaN));
        const thr = median(throttled.map((s) => s.targetDoneSeconds?.[i] ?? Number.NaN));
        keep.push(base / thr);
      }
      const worst = Math.min(...keep);
      checks.push({
        id: 'throttle-others',
        line: `throttling: the other targets keep ≥ ${THROTTLE_KEEP.toFixed(2)}× their unthrottled throughput`,
        pass: Number.isFinite(worst) ? worst >= THROTTLE_KEEP : undefined,
        measured: `t2 ${keep[0]!.toFixed(2)}×, t3 ${keep[1]!.toFixed(2)}×`,
      });
      const shows = throttled.some((s) =>
        /throttl|rate.?limit|"429"|tooManyRequests/i.test(JSON.stringify(s.run.report ?? {})),
      );
      checks.push({
        id: 'throttle-report',
        line: 'throttling: the --json report shows where the run was throttled',
        pass: shows,
        measured: shows ? 'yes' : 'no throttling field in the report (only a total of retries)',
      });
    } else {
      for (const [id, line] of [
        ['throttle-completes', 'throttling: the run completes'],
        ['throttle-others', 'throttling: the other targets keep their throughput'],
        ['throttle-report', 'throttling: the report shows the throttling'],
      ])
        checks.push({ id: id!, line: line!, pass: undefined, measured: 'not run' });
    }
  }
  return checks;
}

export function checkLine(c: Check): string {
  const mark = c.pass === undefined ? 'SKIP' : c.pass ? 'PASS' : 'FAIL';
  return `${mark}  ${c.line}: ${c.measured}`;
}
