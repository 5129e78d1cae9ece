// The two tools, run the way a user would: regmirror (the built CLI: `sync` with a config for the
// config-driven workloads, `copy` for the one-image fan-out) and Debian's skopeo (`skopeo sync` once per
// target for a set of repositories, `skopeo copy` once per target for one image), one after the other
// as a shell loop would.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/harness/fixture.js';
import type { Corpus } from './corpus.js';
import { credsArg, freshHome, type Side, scratchDir } from './lab.js';
import { type LabCpu, type TimedResult, timed } from './timed.js';

export const CLI = join(REPO_ROOT, 'bin', 'regmirror.js');
export const PROBE = join(REPO_ROOT, 'bench', 'probe', 'undici-probe.mjs');

/** One measured run of one tool on one workload (several processes for skopeo: one per target). */
export interface ToolRun {
  ok: boolean;
  problems: string[];
  wallSeconds: number;
  maxRssKiB: number;
  cpuSeconds: number;
  startedAt: number;
  endedAt: number;
  /** Share of the machine's CPU busy during the run (all processes; > 0.9 = the machine was the limit). */
  machineBusy: number;
  /** CPU seconds the registries and the proxies spent during the run (all of its processes). */
  lab: LabCpu;
  /** regmirror's --json report, when there is one. */
  report?: unknown;
  /** With --diagnose: the probe's JSON file and the CPU profile directory. */
  probeFile?: string;
  cpuProfDir?: string;
}

export interface RunOptions {
  timeoutMs: number;
  /** Extra regmirror flags (e.g. -c 16). */
  extraArgs?: string[];
  /** Preload the request probe and write a CPU profile (diagnosis runs only: both cost time). */
  diagnose?: boolean;
  /** `defaults` for the generated sync config (e.g. { concurrency: 16 }). */
  configDefaults?: Record<string, unknown>;
}

function baseEnv(home: string, dockerConfig?: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    // A cache a later regmirror may keep (e.g. mount sources across runs) starts empty every run.
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_RUNTIME_DIR: home,
    ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}),
  };
}

function combine(runs: TimedResult[], problems: string[]): ToolRun {
  return {
    ok: problems.length === 0,
    problems,
    wallSeconds: runs.reduce((n, r) => n + r.wallSeconds, 0),
    maxRssKiB: Math.max(0, ...runs.map((r) => r.maxRssKiB)),
    cpuSeconds: runs.reduce((n, r) => n + r.cpuSeconds, 0),
    startedAt: Math.min(...runs.map((r) => r.startedAt)),
    endedAt: Math.max(...runs.map((r) => r.endedAt)),
    lab: {
      registries: runs.reduce((n, r) => n + r.lab.registries, 0),
      proxies: runs.reduce((n, r) => n + r.lab.proxies, 0),
    },
    machineBusy:
      runs.reduce((n, r) => n + r.machineBusy * r.wallSeconds, 0) /
      Math.max(
        1e-9,
        runs.reduce((n, r) => n + r.wallSeconds, 0),
      ),
  };
}

async function runRegmirror(
  args: string[],
  sides: Side[],
  opts: RunOptions,
  label: string,
): Promise<ToolRun> {
  const { home, dockerConfig } = await freshHome(sides);
  const nodeArgs: string[] = [];
  const env = baseEnv(home, dockerConfig);
  let probeFile: string | undefined;
  let cpuProfDir: string | undefined;
  if (opts.diagnose) {
    probeFile = join(home, 'probe.json');
    cpuProfDir = join(home, 'cpu-prof');
    env.REGMIRROR_BENCH_PROBE = probeFile;
    nodeArgs.push('--import', PROBE, '--cpu-prof', '--cpu-prof-dir', cpuProfDir);
  }
  const run = await timed(process.execPath, [...nodeArgs, CLI, ...args, ...(opts.extraArgs ?? [])], {
    env,
    cwd: home,
    scratch: home,
    timeoutMs: opts.timeoutMs,
    label,
  });
  const problems: string[] = [];
  let report: unknown;
  try {
    report = JSON.parse(run.stdout);
  } catch {
    problems.push(`regmirror printed no JSON report (exit ${run.code}): ${run.stderr.slice(-600)}`);
  }
  if (run.code !== 0) problems.push(`regmirror exited with code ${run.code}: ${run.stderr.slice(-600)}`);
  return {
    ...combine([run], problems),
    ...(report !== undefined ? { report } : {}),
    ...(probeFile ? { probeFile } : {}),
    ...(cpuProfDir ? { cpuProfDir } : {}),
  };
}

/** `regmirror sync --config … --json`: every repository of the corpus (all tags) to every target. */
export async function regmirrorSync(
  corpus: Corpus,
  source: Side,
  targets: Side[],
  opts: RunOptions,
): Promise<ToolRun> {
  const dir = await scratchDir('bench-config');
  const config = {
    ...(opts.configDefaults ? { defaults: opts.configDefaults } : {}),
    mirrors: corpus.repos.map((r) => ({
      source: `${source.host}/${r.repo}`,
      targets: targets.map((t) => `${t.host}/${r.repo}`),
    })),
  };
  const file = join(dir, 'mirror.config.json');
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`);
  return runRegmirror(['sync', '--config', file, '--json'], [source, ...targets], opts, 'regmirror sync');
}

/** `regmirror copy SRC T1 T2 T3 --json`: one image to every target (the release fan-out). */
export async function regmirrorCopy(
  repo: string,
  tag: string,
  source: Side,
  targets: Side[],
  opts: RunOptions,
): Promise<ToolRun> {
  const args = [
    'copy',
    `${source.host}/${repo}:${tag}`,
    ...targets.map((t) => `${t.host}/${repo}`),
    '--json',
  ];
  return runRegmirror(args, [source, ...targets], opts, 'regmirror copy');
}

function skopeoTls(): string[] {
  // The registries speak plain HTTP on loopback; without verification skopeo falls back to it.
  return ['--src-tls-verify=false', '--dest-tls-verify=false'];
}

/**
 * `skopeo sync --all --preserve-digests --src yaml --dest docker` once per target, one after the other.
 * The YAML source lists every repository of the corpus with all its tags; skopeo puts `repo/name` at
 * `DEST/name`, so DEST is the target's `host/<first path segment>`.
 */
export async function skopeoSync(
  corpus: Corpus,
  source: Side,
  targets: Side[],
  opts: RunOptions,
): Promise<ToolRun> {
  const dir = await scratchDir('bench-skopeo');
  const prefixes = new Set(corpus.repos.map((r) => r.repo.slice(0, r.repo.lastIndexOf('/'))));
  if (prefixes.size !== 1) throw new Error('skopeo sync: every repository must share one parent path');
  const prefix = [...prefixes][0]!;
  const creds = source.creds
    ? `  credentials:\n    username: ${JSON.stringify(source.creds.username)}\n    password: ${JSON.stringify(source.creds.password)}\n`
    : '';
  const yaml =
    `${source.host}:\n  images:\n` +
    corpus.repos.map((r) => `    ${r.repo}: []\n`).join('') +
    `  tls-verify: false\n${creds}`;
  const yamlFile = join(dir, 'source.yaml');
  await writeFile(yamlFile, yaml);
  const runs: TimedResult[] = [];
  const problems: string[] = [];
  for (const target of targets) {
    const args = [
      'sync',
      '--all',
      '--preserve-digests',
      '--src',
      'yaml',
      '--dest',
      'docker',
      '--dest-tls-verify=false',
      ...credsArg(target, 'dest'),
      yamlFile,
      `${target.host}/${prefix}`,
    ];
    const run = await timed('skopeo', args, {
      env: baseEnv(dir),
      cwd: dir,
      scratch: dir,
      timeoutMs: opts.timeoutMs,
      label: `skopeo sync → ${target.name}`,
    });
    if (run.code !== 0)
      problems.push(`skopeo sync → ${target.name} exited ${run.code}: ${run.stderr.slice(-600)}`);
    runs.push(run);
  }
  return combine(runs, problems);
}

/** `skopeo copy --all --preserve-digests docker://SRC docker://TARGET` once per target. */
export async function skopeoCopy(
  repo: string,
  tag: string,
  source: Side,
  targets: Side[],
  opts: RunOptions,
): Promise<ToolRun> {
  const dir = await scratchDir('bench-skopeo');
  const runs: TimedResult[] = [];
  const problems: string[] = [];
  for (const target of targets) {
    const args = [
      'copy',
      '--all',
      '--preserve-digests',
      ...skopeoTls(),
      ...credsArg(source, 'src'),
      ...credsArg(target, 'dest'),
      `docker://${source.host}/${repo}:${tag}`,
      `docker://${target.host}/${repo}:${tag}`,
    ];
    const run = await timed('skopeo', args, {
      env: baseEnv(dir),
      cwd: dir,
      scratch: dir,
      timeoutMs: opts.timeoutMs,
      label: `skopeo copy → ${target.name}`,
    });
    if (run.code !== 0)
      problems.push(`skopeo copy → ${target.name} exited ${run.code}: ${run.stderr.slice(-600)}`);
    runs.push(run);
  }
  return combine(runs, problems);
}
