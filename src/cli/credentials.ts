// Credentials given on the command line for a one-off copy, as skopeo takes them: --src-creds and
// --dest-creds USER[:PASSWORD]. A password not given is read from --password-stdin or asked for on the
// terminal, with echo off. Passwords never reach a message: sources are described by flag and user name.

import { UsageError } from '../errors.js';
import { normaliseRegistry } from '../reference/reference.js';
import { staticCredentialSource } from '../registry/credentials/env-source.js';
import type { CredentialSource } from '../registry/credentials/types.js';

export interface CredsFlag {
  /** "--src-creds" */
  flag: string;
  /** As typed: USER or USER:PASSWORD. */
  value: string;
  /** The registries these credentials are for. */
  registries: string[];
}

export interface PasswordInput {
  /** --password-stdin: the whole of standard input is the one missing password. */
  passwordStdin: boolean;
  readStdin(): Promise<string>;
  /** Ask on the terminal without echo; undefined when there is no terminal to ask on. */
  ask?: (prompt: string) => Promise<string>;
}

function split(c: CredsFlag): { username: string; password: string | undefined } {
  const colon = c.value.indexOf(':');
  const username = colon < 0 ? c.value : c.value.slice(0, colon);
  if (username === '') throw new UsageError(`${c.flag}: give USER or USER:PASSWORD (the user name is empty)`);
  return { username, password: colon < 0 ? undefined : c.value.slice(colon + 1) };
}

/**
 * One credential source per registry named, from the creds flags given. A registry named by two flags
 * with different accounts is an error: a run uses one account per registry.
 */
export async function commandLineCredentials(
  given: CredsFlag[],
  input: PasswordInput,
): Promise<Map<string, CredentialSource>> {
  const parsed = given.map((c) => ({ ...c, ...split(c) }));
  const missing = parsed.filter((c) => c.password === undefined);
  if (input.passwordStdin) {
    if (given.length === 0)
      throw new UsageError('--password-stdin needs --src-creds USER or --dest-creds USER');
    if (missing.length !== 1) {
      throw new UsageError(
        missing.length === 0
          ? '--password-stdin: every --src-creds / --dest-creds has its password already'
          : `--password-stdin reads one password, and ${missing.map((c) => c.flag).join(' and ')} both lack one`,
      );
    }
    // One trailing newline is the end of the line, not part of the password (echo "$TOKEN" | ...).
    missing[0]!.password = (await input.readStdin()).replace(/\r?\n$/, '');
  } else {
    for (const c of missing) {
      if (!input.ask) {
        throw new UsageError(
          `${c.flag} ${c.username}: no password, and no terminal to ask for it; give USER:PASSWORD or --password-stdin`,
        );
      }
      c.password = await input.ask(`Password for ${c.username} at ${c.registries.join(', ')}: `);
    }
  }
  const out = new Map<string, CredentialSource>();
  const owner = new Map<string, (typeof parsed)[number]>();
  for (const c of parsed) {
    for (const r of c.registries) {
      const registry = normaliseRegistry(r);
      const other = owner.get(registry);
      if (other && (other.username !== c.username || other.password !== c.password)) {
        throw new UsageError(
          `${other.flag} and ${c.flag} give two accounts for ${registry}; a copy uses one account per registry`,
        );
      }
      owner.set(registry, c);
      out.set(
        registry,
        staticCredentialSource(
          registry,
          { kind: 'basic', username: c.username, password: c.password! },
          `${c.flag} (user ${c.username})`,
        ),
      );
    }
  }
  return out;
}

/**
 * Read a line from the terminal without echoing it: raw mode, so that the terminal shows nothing while
 * the password is typed. Backspace edits; Ctrl-C and Ctrl-D give up.
 */
export function askHidden(
  prompt: string,
  stdin: NodeJS.ReadStream,
  stderr: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    // Echo off before the prompt shows: whatever is typed after it must never reach the screen.
    stdin.setRawMode(true);
    stderr.write(prompt);
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('no password given'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

export async function readAllStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
