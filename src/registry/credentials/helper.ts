// The docker-credential-helpers protocol, "get" only: run `docker-credential-<name> get`, write the server
// URL to stdin, read `{"ServerURL","Username","Secret"}` from stdout.
// https://github.com/docker/docker-credential-helpers#development

import { spawn } from 'node:child_process';
import { AuthError } from '../../errors.js';
import type { Credential } from './types.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface HelperOptions {
  /** Environment of the helper; its PATH is where the helper is looked for. Default: process.env. */
  env?: Env;
  /** Default HELPER_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** Long enough for a helper that asks a cloud API (ecr-login) or unlocks a keyring; short enough not to hang CI. */
export const HELPER_TIMEOUT_MS = 30_000;

/** Docker's own marker for "the Secret is an identity (refresh) token, not a password". */
const IDENTITY_TOKEN_USERNAME = '<token>';
// Real answers are a few hundred bytes; the caps only stop a misbehaving helper from filling memory.
const MAX_STDOUT_BYTES = 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;
const MAX_MESSAGE_CHARS = 500;

/**
 * Asks helper `name` for the credentials stored under `serverUrl`; undefined when it has none.
 * `host` is only for messages (serverUrl may be Docker Hub's "https://index.docker.io/v1/").
 */
export function getFromCredentialHelper(
  name: string,
  serverUrl: string,
  host: string,
  options: HelperOptions = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const timeoutMs = options.timeoutMs ?? HELPER_TIMEOUT_MS;
  const fail = (what: string, hint?: string) =>
    new AuthError(`credential helper ${program} for ${host}: ${what}`, {
      context: { registry: host, step: 'credential helper' },
      ...(hint ? { hint } : {}),
    });

  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout = new CappedBuffer(MAX_STDOUT_BYTES);
    const stderr = new CappedBuffer(MAX_STDERR_BYTES);
    child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));

    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      // Settle now: a grandchild of the helper may still hold the pipes open, so 'close' could come much later.
      child.stdout.destroy();
      child.stderr.destroy();
      settle(() => reject(fail(`no answer within ${timeoutMs / 1000} s; it was killed`)));
    }, timeoutMs);

    child.on('error', (err: NodeJS.ErrnoException) => {
      settle(() =>
        reject(
          err.code === 'ENOENT'
            ? fail('not found on PATH', `install ${program}, or remove it from the credential configuration`)
            : fail(`could not be run (${err.code ?? err.message})`),
        ),
      );
    });

    child.on('close', (code, signal) => {
      settle(() => {
        const out = stdout.text();
        const err = stderr.text();
        if (code === 0) {
          try {
            resolve(parseAnswer(out));
          } catch {
            // Never quote stdout here: on success it carries the secret.
            reject(fail('answered with something other than the expected JSON'));
          }
          return;
        }
        if (/credentials not found/i.test(out) || /credentials not found/i.test(err)) {
          resolve(undefined);
          return;
        }
        // Helpers built on docker-credential-helpers report errors on stdout, so fall back to it.
        const message = oneLine(err) || oneLine(out);
        const status = signal ? `killed by ${signal}` : `exit code ${code}`;
        reject(fail(`failed (${status})${message ? `: ${message}` : ''}`));
      });
    });

    // A helper may exit without reading stdin; the exit status then tells the story, not EPIPE.
    child.stdin.on('error', () => {});
    // Docker writes the server URL without a trailing newline; helpers expect exactly that.
    child.stdin.end(serverUrl);
  });
}

function parseAnswer(out: string): Credential | undefined {
  const value: unknown = JSON.parse(out);
  if (typeof value !== 'object' || value === null) throw new Error('not an object');
  const { Username, Secret } = value as Record<string, unknown>;
  if (typeof Secret !== 'string' || (Username !== undefined && typeof Username !== 'string')) {
    throw new Error('unexpected field types');
  }
  // Some helpers answer an empty record rather than "not found".
  if (Secret === '') return undefined;
  if (Username === IDENTITY_TOKEN_USERNAME) return { kind: 'identity-token', token: Secret };
  return { kind: 'basic', username: Username ?? '', password: Secret };
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_MESSAGE_CHARS ? `${line.slice(0, MAX_MESSAGE_CHARS)}…` : line;
}

class CappedBuffer {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(readonly limit: number) {}

  add(chunk: Buffer): void {
    const room = this.limit - this.#size;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#chunks.push(kept);
    this.#size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}
