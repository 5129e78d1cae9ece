import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { runCommand } from './run-command.js';
import { makeTempDir, removeDir } from './temp-dir.js';
import type { TokenServer } from './token-server.js';

/** A real distribution registry (Debian's docker-registry, 2.8.x) on a loopback port. */

export type RegistryOptions =
  | { auth: 'none' }
  | { auth: 'basic'; users: Record<string, string> }
  | { auth: 'token'; tokenServer: TokenServer };

export interface Registry {
  /** host:port, as it appears in image references. */
  host: string;
  url: string;
  /** The temp dir holding storage, config and log; removed by stop(). */
  dataDir: string;
  logPath: string;
  readLog(): Promise<string>;
  stop(): Promise<void>;
}

const REGISTRY_BINARY = 'docker-registry';
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

/**
 * Registries still running. If the test process exits without calling stop() (uncaught error,
 * process.exit), they are killed on the way out instead of lingering on the CI machine.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** JSON strings are valid YAML scalars, and escape anything odd in paths. */
const q = (value: string): string => JSON.stringify(value);

async function authSection(opts: RegistryOptions, dir: string): Promise<string> {
  switch (opts.auth) {
    case 'none':
      return '';
    case 'basic': {
      const lines: string[] = [];
      for (const [user, password] of Object.entries(opts.users)) {
        // -B: bcrypt, the only hash distribution's htpasswd backend accepts.
        const { stdout } = await runCommand('htpasswd', ['-Bbn', user, password]);
        lines.push(stdout.toString('utf8').trim());
      }
      const htpasswdPath = join(dir, 'htpasswd');
      await writeFile(htpasswdPath, `${lines.join('\n')}\n`);
      return ['auth:', '  htpasswd:', '    realm: regmirror-test', `    path: ${q(htpasswdPath)}`, ''].join(
        '\n',
      );
    }
    case 'token': {
      const ts = opts.tokenServer;
      return [
        'auth:',
        '  token:',
        `    realm: ${q(ts.realm)}`,
        `    service: ${q(ts.service)}`,
        `    issuer: ${q(ts.issuer)}`,
        `    rootcertbundle: ${q(ts.certPath)}`,
        '',
      ].join('\n');
    }
  }
}

/** Serve HTTPS with this certificate and key (PEM files) instead of plain HTTP. */
export interface RegistryTls {
  certificate: string;
  key: string;
}

async function writeConfig(
  dir: string,
  port: number,
  opts: RegistryOptions,
  tls?: RegistryTls,
): Promise<string> {
  const storageDir = join(dir, 'storage');
  await mkdir(storageDir);
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  formatter: text',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(storageDir)}`,
    '  delete:',
    '    enabled: true',
    // No blob descriptor cache: every request reads the filesystem, so deletes are seen at once.
    // No upload purging: a background goroutine we do not need in short-lived tests.
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    // A fixed secret avoids the "no secret set" warning; it signs upload _state parameters.
    `  secret: ${q(randomBytes(16).toString('hex'))}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    ...(tls ? ['  tls:', `    certificate: ${q(tls.certificate)}`, `    key: ${q(tls.key)}`] : []),
    '',
  ].join('\n');
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, config + (await authSection(opts, dir)));
  return configPath;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, STOP_GRACE_MS)) return;
  child.kill('SIGKILL');
  await waitForExit(child, STOP_GRACE_MS);
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'no attempt';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    }
    try {
      // Any HTTP answer (200, or 401 with auth on) means the listener is up.
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry not ready after ${READY_TIMEOUT_MS} ms: ${lastError}`);
}

export async function startRegistry(opts: RegistryOptions, tls?: RegistryTls): Promise<Registry> {
  const dir = await makeTempDir('registry');
  const logPath = join(dir, 'registry.log');
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    const configPath = await writeConfig(dir, port, opts, tls);
    // The registry logs to stderr only; send it to a file we can show when something fails.
    const logFd = openSync(logPath, 'a');
    try {
      child = spawn(REGISTRY_BINARY, ['serve', configPath], {
        stdio: ['ignore', logFd, logFd],
        // A clean environment: REGISTRY_* variables would override the generated config.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      });
    } finally {
      closeSync(logFd);
    }
    const spawned = child;
    running.add(spawned);
    spawned.once('exit', () => running.delete(spawned));
    await new Promise<void>((resolve, reject) => {
      spawned.once('spawn', () => resolve());
      spawned.once('error', reject);
    });
    // Readiness over plain HTTP even for a TLS registry: Go answers it with a 400, an answer all the same.
    await waitUntilReady(`http://127.0.0.1:${port}`, spawned);
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    return {
      host: `127.0.0.1:${port}`,
      url,
      dataDir: dir,
      logPath,
      readLog: () => readFile(logPath, 'utf8'),
      async stop() {
        await stopChild(spawned);
        await removeDir(dir);
      },
    };
  } catch (err) {
    if (child) await stopChild(child);
    const log = await readFile(logPath, 'utf8').catch(() => '(no log)');
    await removeDir(dir);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`could not start docker-registry: ${message}\n--- registry log ---\n${log}`);
  }
}
