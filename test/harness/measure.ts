import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type CliResult, REPO_ROOT } from './fixture.js';

/** A CLI run with its peak memory, as the kernel counted it (GNU time's "Maximum resident set size"). */
export interface MeasuredResult extends CliResult {
  /** Peak resident set size of the CLI process, in MiB. */
  maxRssMiB: number;
  wallMs: number;
}

const TIME = '/usr/bin/time';

/**
 * Runs `node bin/regmirror.js ...args` under /usr/bin/time -v with a clean environment (PATH plus
 * `env`), like fixture.runCli, and reads its peak RSS. time's report is taken off stderr.
 */
export function runCliMeasured(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<MeasuredResult> {
  const started = Date.now();
  const child = spawn(TIME, ['-v', process.execPath, join(REPO_ROOT, 'bin', 'regmirror.js'), ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `regmirror ${args.join(' ')} timed out after ${timeoutMs} ms\nstderr: ${stderr.slice(-4000)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const at = stderr.lastIndexOf('\tCommand being timed:');
      const report = at >= 0 ? stderr.slice(at) : '';
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
      const exit = /Exit status: (\d+)/.exec(report);
      if (!rss) {
        reject(new Error(`no RSS in /usr/bin/time's report:\n${stderr.slice(-2000)}`));
        return;
      }
      resolve({
        code: exit ? Number(exit[1]) : (code ?? -1),
        signal,
        stdout,
        stderr: at >= 0 ? stderr.slice(0, at) : stderr,
        maxRssMiB: Number(rss[1]) / 1024,
        wallMs: Date.now() - started,
      });
    });
  });
}
