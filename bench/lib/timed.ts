// Running a measured process: under GNU time (`/usr/bin/time -v`, for peak RSS and CPU seconds), with a
// clean environment, a time limit, and a registry of running children so Ctrl-C can stop them.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const TIME_BIN = '/usr/bin/time';

export interface TimedResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time measured here (spawn to exit), in seconds. */
  wallSeconds: number;
  /** Peak resident set size of the process (GNU time's "Maximum resident set size"), KiB. */
  maxRssKiB: number;
  /** User + system CPU seconds of the process. */
  cpuSeconds: number;
  /** Wall-clock start and end (ms since the epoch), to place the run on the proxies' timelines. */
  startedAt: number;
  endedAt: number;
  /** Share of the whole machine's CPU time that was busy during the run (all processes, from /proc/stat). */
  machineBusy: number;
  /** CPU seconds the rest of the lab spent during the run. */
  lab: LabCpu;
}

/**
 * CPU seconds the lab spent during a run besides the tool: the registries (the docker-registry processes
 * the benchmark started) and the benchmark's own process, which holds the counting proxies and the token servers. Work any tool
 * must cause (the registries answering its requests) and the instrument's share of the machine.
 */
export interface LabCpu {
  registries: number;
  proxies: number;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface LabSnapshot {
  registries: Map<number, number>;
  bench: NodeJS.CpuUsage;
}

/**
 * utime + stime (clock ticks) of the lab's registries, by pid: the docker-registry processes this process
 * started (not other people's, on a shared machine).
 */
function registryTicks(): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm !== 'docker-registry') continue;
      // Fields after "(comm) ": state is 0, the parent's pid 1, utime 11, stime 12.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== process.pid) continue;
      out.set(Number(pid), Number(f[11]) + Number(f[12]));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return out;
}

export function labSnapshot(): LabSnapshot {
  return { registries: registryTicks(), bench: process.cpuUsage() };
}

/** The lab's CPU seconds since `before` (registries alive at both ends: none start or stop mid-run). */
export function labCpuSince(before: LabSnapshot): LabCpu {
  const after = registryTicks();
  let ticks = 0;
  for (const [pid, t] of after) {
    const t0 = before.registries.get(pid);
    if (t0 !== undefined) ticks += t - t0;
  }
  const bench = process.cpuUsage(before.bench);
  return { registries: ticks / CLOCK_TICKS, proxies: (bench.user + bench.system) / 1e6 };
}

/** Busy and total jiffies of all CPUs together (first line of /proc/stat). */
export function cpuJiffies(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export function busyShare(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  const total = b.total - a.total;
  return total > 0 ? (b.busy - a.busy) / total : Number.NaN;
}

const running = new Set<ChildProcess>();

/** SIGTERM every measured process still running (Ctrl-C). */
export function killRunning(): void {
  for (const child of running) child.kill('SIGTERM');
}

export function parseTimeOutput(text: string): { maxRssKiB: number; cpuSeconds: number } {
  const rss = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
  const user = /User time \(seconds\):\s*([\d.]+)/.exec(text);
  const sys = /System time \(seconds\):\s*([\d.]+)/.exec(text);
  if (!rss?.[1] || !user?.[1] || !sys?.[1])
    throw new Error(`could not read /usr/bin/time -v output:\n${text}`);
  return { maxRssKiB: Number(rss[1]), cpuSeconds: Number(user[1]) + Number(sys[1]) };
}

export interface TimedOptions {
  env: Record<string, string>;
  cwd: string;
  /** Where GNU time writes its report. */
  scratch: string;
  timeoutMs: number;
  label: string;
}

let seq = 0;

/** Run `file args...` under `/usr/bin/time -v`. Never rejects for a non-zero exit: the caller judges. */
export function timed(file: string, args: string[], opts: TimedOptions): Promise<TimedResult> {
  const timeFile = join(opts.scratch, `time-${process.pid}-${++seq}.txt`);
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const jiffies = cpuJiffies();
    const lab = labSnapshot();
    const t0 = process.hrtime.bigint();
    const child = spawn(TIME_BIN, ['-v', '-o', timeFile, file, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      // Bounded: a runaway --debug trace must not eat the benchmark's memory.
      if (stderr.length < 4 * 1024 * 1024) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const endedAt = Date.now();
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const machineBusy = busyShare(jiffies, cpuJiffies());
      const labCpu = labCpuSince(lab);
      readFile(timeFile, 'utf8').then(
        (text) => {
          try {
            const { maxRssKiB, cpuSeconds } = parseTimeOutput(text);
            resolve({
              code: code ?? -1,
              stdout,
              stderr,
              wallSeconds,
              maxRssKiB,
              cpuSeconds,
              startedAt,
              endedAt,
              machineBusy,
              lab: labCpu,
            });
          } catch (err) {
            reject(new Error(`${opts.label}: ${(err as Error).message}\nstderr: ${stderr.slice(-2000)}`));
          }
        },
        (err: unknown) => reject(new Error(`${opts.label}: no GNU time report (${String(err)})`)),
      );
    });
  });
}
