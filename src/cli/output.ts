// Output channels. Results go to stdout (JSON or plain data); everything for people goes to stderr:
// an ora spinner on a terminal, plain lines (no escape codes) elsewhere, nothing with --quiet.
//
// The output boundary: every line passes the sanitiser (src/sanitize.ts), so that text a registry
// controls (error messages, tags, media types) cannot reach the terminal as escape sequences. Our own
// newlines and tabs are kept; JSON stays valid and means the same.

import type { Ora } from 'ora';
import { sanitize } from '../sanitize.js';

export interface Output {
  /** A line for people (stderr). */
  info(line: string): void;
  /** A warning for people (stderr), shown even with --quiet. */
  warn(line: string): void;
  /** Live status on a terminal (no-op elsewhere). */
  status(text: string): void;
  /** Machine-readable result (stdout), one line or more, newline-terminated. */
  result(text: string): void;
  /** Exact bytes on stdout (inspect --raw): nothing added. */
  resultBytes(bytes: Uint8Array): void;
  /** Stop any live display. */
  stop(): void;
  readonly interactive: boolean;
}

/** A client notice, printed at its level: warnings even with --quiet. */
export function printNotice(out: Output, notice: { level: 'info' | 'warn'; text: string }): void {
  if (notice.level === 'warn') out.warn(notice.text);
  else out.info(notice.text);
}

export interface OutputOptions {
  quiet?: boolean;
  json?: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
}

/** ora (and its dependencies) is loaded only for a terminal: CI logs and pipes never need it. */
export async function createOutput(options: OutputOptions = {}): Promise<Output> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = (options.stderr ?? process.stderr) as NodeJS.WriteStream;
  const interactive = Boolean(stderr.isTTY) && !process.env.CI && !options.quiet;
  const ora = interactive ? (await import('ora')).default : undefined;
  let spinner: Ora | undefined;
  const withSpinnerPaused = (fn: () => void) => {
    if (spinner?.isSpinning) {
      spinner.clear();
      fn();
      spinner.render();
    } else fn();
  };
  return {
    interactive,
    info(line) {
      if (options.quiet) return;
      withSpinnerPaused(() => stderr.write(`${sanitize(line, 'lines')}\n`));
    },
    warn(line) {
      withSpinnerPaused(() => stderr.write(`${sanitize(line, 'lines')}\n`));
    },
    status(raw) {
      if (!ora) return;
      const text = sanitize(raw, 'line');
      if (!spinner) spinner = ora({ text, stream: stderr, discardStdin: false }).start();
      else spinner.text = text;
    },
    result(raw) {
      const text = sanitize(raw, 'lines');
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    resultBytes(bytes) {
      stdout.write(bytes);
    },
    stop() {
      spinner?.stop();
      spinner = undefined;
    },
  };
}
