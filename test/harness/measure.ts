import { join } from 'node:path';
import { type CliResult, REPO_ROOT, runCli } from './fixture.js';

/** A CLI run with its peak memory, as the kernel counted it (GNU time's "Maximum resident set size"). */
export interface MeasuredResult extends CliResult {
  /** Peak resident set size of the CLI process, in MiB. */
  maxRssMiB: number;
  wallMs: number;
}

const TIME = '/usr/bin/time';

/**
 * Runs `node bin/regmirror.js ...args` under /usr/bin/time -v, the way fixture.runCli runs it (a clean
 * environment: PATH plus `env`), and reads its peak RSS. time's report is taken off stderr.
 */
export async function runCliMeasured(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<MeasuredResult> {
  const started = Date.now();
  const res = await runCli(['-v', process.execPath, join(REPO_ROOT, 'bin', 'regmirror.js'), ...args], {
    ...opts,
    bin: TIME,
  });
  const at = res.stderr.lastIndexOf('\tCommand being timed:');
  const report = at >= 0 ? res.stderr.slice(at) : '';
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
  const exit = /Exit status: (\d+)/.exec(report);
  if (!rss) throw new Error(`no RSS in /usr/bin/time's report:\n${res.stderr.slice(-2000)}`);
  return {
    code: exit ? Number(exit[1]) : res.code,
    signal: res.signal,
    stdout: res.stdout,
    stderr: at >= 0 ? res.stderr.slice(0, at) : res.stderr,
    maxRssMiB: Number(rss[1]) / 1024,
    wallMs: Date.now() - started,
  };
}
