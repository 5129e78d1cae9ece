// The side-by-side benchmark: regmirror vs skopeo on local distribution registries, several workloads,
// medians of repeated runs, requests counted per kind, peak RSS; writes docs/benchmarks.md and its chart.
//
//   bash bench/run.sh                          (setup + build, then this with every workload)
//   bash bench/run.sh --only mixed,noop --reps 5
//   node --import tsx bench/main.ts --help     (after setup and `npm run build`)
//
// Exit code: 0 when every run worked (acceptance lines may still FAIL: they are printed and written to
// the page, they describe regmirror, not the benchmark), 1 when a run failed or setup was missing.

import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../test/harness/fixture.js';
import { renderChart } from './lib/chart.js';
import { type Check, checkLine, judge } from './lib/checks.js';
import { MiB } from './lib/corpus.js';
import { startSource, stopAll } from './lib/lab.js';
import { type Machine, renderPage } from './lib/report.js';
import { killRunning, TIME_BIN } from './lib/timed.js';
import {
  Bench,
  runWorkload,
  type Settings,
  WORKLOAD_IDS,
  type WorkloadId,
  type WorkloadResult,
} from './lib/workloads.js';

const USAGE = `usage: bash bench/run.sh [options]

  --only LIST        workloads, comma-separated (default: all): ${WORKLOAD_IDS.join(', ')}
  --reps N           repetitions per tool and workload (default 3; medians are reported)
  --migration-reps N runs of each tool at migration scale (default 1: one run takes minutes; its
                     no-op re-sync gets --reps)
  --skopeo-migration-reps N
                     skopeo runs at migration scale, full and no-op (default 1)
  --no-skopeo        regmirror only (no ratios)
  --no-diagnose      skip the extra probe/CPU-profile runs of regmirror
  --migration-tags N tags in the migration workload (default 2000)
  --huge-mib N       size of the large layer in MiB (default 1024)
  --big-mib N        size of the mixed workload's large layer in MiB (default 256)
  --out FILE         the page to write (default docs/benchmarks.md; the chart goes beside it)
  --no-write         print the results, write no page
  --render FILE      write the page again from a run's saved results (docs/benchmarks.json), run nothing
`;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive integer, got "${value}"`);
  return n;
}

function gitRevision(): Promise<string> {
  return import('node:child_process').then(({ execFileSync }) => {
    try {
      return execFileSync('git', ['describe', '--always', '--dirty'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      }).trim();
    } catch {
      return 'unknown';
    }
  });
}

async function machine(loadAtStart: number[], commit: string): Promise<Machine> {
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: os.totalmem() / 1024 ** 3,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit,
    skopeo: await import('node:child_process').then(({ execFileSync }) => {
      try {
        return execFileSync('skopeo', ['--version'], { encoding: 'utf8' }).trim();
      } catch {
        return 'skopeo (version unknown)';
      }
    }),
    loadAtStart,
    loadAtEnd: os.loadavg(),
  };
}

/** What a run saves beside the page (settings without the log function). */
interface SavedRun {
  results: WorkloadResult[];
  checks: Check[];
  machine: Machine;
  settings: Omit<Settings, 'log'> & { log?: undefined };
  totalSeconds: number;
  finishedAt: string;
  args: string[];
}

async function writePage(out: string, saved: SavedRun): Promise<void> {
  const svgName = `${out.replace(/^.*\//, '').replace(/\.md$/, '')}.svg`;
  await writeFile(join(out, '..', svgName), renderChart(saved.results));
  const previous = await readFile(out, 'utf8').catch(() => '');
  await writeFile(
    out,
    renderPage({ ...saved, settings: { ...saved.settings, log: () => {} }, svgName, previous }),
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      reps: { type: 'string' },
      'migration-reps': { type: 'string' },
      'skopeo-migration-reps': { type: 'string' },
      'no-skopeo': { type: 'boolean' },
      'no-diagnose': { type: 'boolean' },
      'migration-tags': { type: 'string' },
      'huge-mib': { type: 'string' },
      'big-mib': { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const out = values.out ?? join(REPO_ROOT, 'docs', 'benchmarks.md');
  if (values.render) {
    const saved = JSON.parse(await readFile(values.render, 'utf8')) as SavedRun;
    await writePage(out, saved);
    log(`written: ${out} (from ${values.render})`);
    return 0;
  }
  const only = (values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean) ?? [...WORKLOAD_IDS]) as WorkloadId[];
  for (const id of only) {
    if (!WORKLOAD_IDS.includes(id))
      throw new Error(`unknown workload "${id}" (known: ${WORKLOAD_IDS.join(', ')})`);
  }
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    log('regmirror is not built: run `bash bench/run.sh` (or `npm run build`) first.');
    return 1;
  }
  if (!existsSync(TIME_BIN)) {
    log(`${TIME_BIN} is missing: run \`bash scripts/setup.sh\` (Debian package "time").`);
    return 1;
  }
  const settings: Settings = {
    reps: positive('reps', values.reps, 3),
    migrationReps: positive('migration-reps', values['migration-reps'], 1),
    skopeoMigrationReps: positive('skopeo-migration-reps', values['skopeo-migration-reps'], 1),
    migrationTags: positive('migration-tags', values['migration-tags'], 2000),
    smallTags: 60,
    hugeBytes: positive('huge-mib', values['huge-mib'], 1024) * MiB,
    bigLayerBytes: positive('big-mib', values['big-mib'], 256) * MiB,
    diagnose: !values['no-diagnose'],
    skopeo: !values['no-skopeo'],
    log,
  };
  const loadAtStart = os.loadavg();
  // The commit the CLI under test was built from: taken now, not when the page is written.
  const commit = await gitRevision();
  const started = Date.now();
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping…`);
    killRunning();
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results = new Map<WorkloadId, WorkloadResult>();
  let failed = false;
  try {
    log(`load average at start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`);
    const source = await startSource();
    const bench = new Bench(source.side, settings);
    for (const id of WORKLOAD_IDS.filter((w) => only.includes(w))) {
      // The migration workload measures its no-op re-sync on the target it filled.
      if (id === 'migration-noop' && results.has('migration-noop')) continue;
      log(`\n== ${id}`);
      const t0 = Date.now();
      for (const r of await runWorkload(bench, id, only)) {
        results.set(r.id, r);
        if (r.samples.some((s) => !s.run.ok && r.id !== 'throttle')) failed = true;
      }
      log(`   ${id} took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    await stopAll();
  }
  const totalSeconds = (Date.now() - started) / 1000;
  const checks = judge(results);
  log('\nacceptance (issue 14):');
  for (const c of checks) log(`  ${checkLine(c)}`);
  const m = await machine(loadAtStart, commit);
  if (!values['no-write']) {
    const saved: SavedRun = {
      // Without the bulky per-run parts (regmirror's --json reports, probe paths): the page needs none.
      results: [...results.values()].map((r) => ({
        ...r,
        samples: r.samples.map((smp) => {
          const { report: _report, probeFile: _probe, cpuProfDir: _prof, ...run } = smp.run;
          return { ...smp, run };
        }),
      })),
      checks,
      machine: m,
      settings: { ...settings, log: undefined },
      totalSeconds,
      finishedAt: new Date().toISOString(),
      args: process.argv.slice(2),
    };
    // The raw results beside the page: `--render` rewrites the page from them without running anything.
    const json = out.replace(/\.md$/, '') + '.json';
    await writeFile(json, `${JSON.stringify(saved, null, 1)}\n`);
    await writePage(out, saved);
    log(`\nwritten: ${out}, its chart and ${json}`);
  }
  log(`total ${(totalSeconds / 60).toFixed(1)} min`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    console.error(err);
    killRunning();
    await stopAll();
    process.exitCode = 1;
  },
);
