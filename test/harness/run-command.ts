import { execFile } from 'node:child_process';

export interface CommandResult {
  stdout: Buffer;
  stderr: string;
}

export interface RunCommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Generous by default: a loaded 2-core CI machine can be slow to start Go binaries. */
  timeoutMs?: number;
}

/**
 * Runs a binary to completion and returns its raw stdout (a Buffer, so manifests stay byte-exact).
 * A non-zero exit rejects with an error that carries the command line and stderr, because "exit
 * code 1" alone is useless when a CI run fails.
 */
export function runCommand(
  file: string,
  args: string[],
  opts: RunCommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        encoding: 'buffer',
        env: opts.env ?? process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const stderrText = stderr.toString('utf8');
        if (error) {
          const err = new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderrText}`.trim());
          Object.assign(err, { stderr: stderrText, exitCode: error.code });
          reject(err);
          return;
        }
        resolve({ stdout, stderr: stderrText });
      },
    );
  });
}
