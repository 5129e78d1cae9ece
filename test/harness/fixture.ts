import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RegistryProxy, startProxy } from './proxy.js';
import type { SeedTarget } from './raw-client.js';
import { type Registry, startRegistry } from './registry.js';
import { makeTempDir, removeDir } from './temp-dir.js';
import { startTokenServer, type TokenServer } from './token-server.js';

/** The standard set of servers most integration tests need, and a way to run the built CLI. */

export interface Credentials {
  username: string;
  password: string;
}

export const ALICE: Credentials = { username: 'alice', password: 'alice-secret-pw' };
export const READER: Credentials = { username: 'reader', password: 'reader-secret-pw' };
export const BOB: Credentials = { username: 'bob', password: 'bob-secret-pw' };

/** One registry as tests see it: behind its counting proxy. */
export interface Endpoint {
  registry: Registry;
  proxy: RegistryProxy;
  /** The proxy's host:port: what goes into references, configs and config.json. */
  host: string;
  url: string;
  /** Credentials with push rights; absent for the open registry. */
  creds?: Credentials;
  /** For seedImage / RegistryClient, with the push credentials. */
  seedTarget: SeedTarget;
  /** `user:password` for skopeo, when the registry needs credentials. */
  skopeoCreds?: string;
}

export interface CliResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunCliOptions {
  env?: Record<string, string>;
  input?: string;
  /** Default: the repository root. */
  cwd?: string;
  timeoutMs?: number;
  /** Run this executable instead of `node bin/regmirror.js` (an installed package's `regmirror`). */
  bin?: string;
}

export interface World {
  tokenServer: TokenServer;
  /** Token auth (alice push, reader pull), like Docker Hub / Quay / ECR Public. */
  source: Endpoint;
  /** htpasswd Basic auth (bob). */
  basic: Endpoint;
  /** No auth at all. */
  open: Endpoint;
  /** Holds config.json with credentials for every proxy host. */
  dockerConfigDir: string;
  /** HOME for the CLI: empty, so nothing from the developer's machine leaks in. */
  homeDir: string;
  /** A scratch directory for config files and outputs of a test. */
  workDir: string;
  runCli(args: string[], opts?: RunCliOptions): Promise<CliResult>;
  /** Like runCli, but returns at once with the child process, to signal or kill it. */
  startCli(args: string[], opts?: RunCliOptions): RunningCli;
  /** Forget what every proxy and the token server recorded. */
  resetCounts(): void;
  /** Remove every proxy's fault hook. */
  clearFaults(): void;
  stop(): Promise<void>;
}

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI_PATH = join(REPO_ROOT, 'bin', 'regmirror.js');

/**
 * Spawns `node bin/regmirror.js ...args` with a clean environment (PATH plus opts.env only), so a
 * developer's DOCKER_CONFIG, AWS_* or proxy settings cannot change a test's outcome.
 */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).result;
}

/** A CLI run in progress: the child (to signal or kill it) and its outcome. */
export interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  /** What it printed so far. */
  output(): { stdout: string; stderr: string };
  result: Promise<CliResult>;
}

/**
 * Each CLI run gets a cache directory of its own unless the test gives one (XDG_CACHE_HOME): what one
 * run remembers (mounts across runs) must not change another test's request counts. Tests of that
 * memory pass the same directory to the runs that share it.
 */
let cacheRuns = 0;
let cacheRoot: string | undefined;
function freshCacheHome(): string {
  if (!cacheRoot) {
    const root = mkdtempSync(join(tmpdir(), 'regmirror-test-cache-'));
    cacheRoot = root;
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  }
  return join(cacheRoot, String(++cacheRuns));
}

export function startCli(args: string[], opts: RunCliOptions = {}): RunningCli {
  const [command, argv] = opts.bin ? [opts.bin, args] : [process.execPath, [CLI_PATH, ...args]];
  const child = spawn(command, argv, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', XDG_CACHE_HOME: freshCacheHome(), ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const result = new Promise<CliResult>((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `regmirror ${args.join(' ')} timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout, stderr });
    });
  });
  // A CLI that never reads stdin closes it early; that is not an error for us.
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input ?? '');
  return { child, output: () => ({ stdout, stderr }), result };
}

function endpoint(registry: Registry, proxy: RegistryProxy, creds?: Credentials): Endpoint {
  return {
    registry,
    proxy,
    host: proxy.host,
    url: proxy.url,
    ...(creds && { creds, skopeoCreds: `${creds.username}:${creds.password}` }),
    seedTarget: { url: proxy.url, ...(creds && { username: creds.username, password: creds.password }) },
  };
}

/** config.json's `auth`: base64 of `user:password`. */
export function basicAuth(c: Credentials): string {
  return Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

/** Write `dir/config.json` with these credentials per registry host (replacing what was there). */
export async function writeDockerConfig(dir: string, entries: Array<[string, Credentials]>): Promise<void> {
  const auths: Record<string, { auth: string }> = {};
  for (const [host, c] of entries) auths[host] = { auth: basicAuth(c) };
  await writeFile(join(dir, 'config.json'), `${JSON.stringify({ auths }, null, 2)}\n`);
}

export interface WorldOptions {
  /** Token lifetime the token server announces and the registry enforces (default 300 s). */
  tokenLifetimeSeconds?: number;
}

/** distribution's clock-skew leeway on token expiry: tokens are minted that much earlier. */
const DISTRIBUTION_TOKEN_LEEWAY_S = 60;

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  // Whatever has started is stopped again if a later step fails, in reverse order.
  const cleanups: Array<() => Promise<void>> = [];
  const teardown = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    cleanups.length = 0;
    if (errors.length > 0) throw new AggregateError(errors, 'stopping the test world failed');
  };
  const started = <T extends { stop(): Promise<void> }>(thing: T): T => {
    cleanups.push(() => thing.stop());
    return thing;
  };

  try {
    const tokenServer = started(
      await startTokenServer({
        users: {
          [ALICE.username]: { password: ALICE.password, access: 'push' },
          [READER.username]: { password: READER.password, access: 'pull' },
        },
        ...(options.tokenLifetimeSeconds !== undefined
          ? {
              lifetimeSeconds: options.tokenLifetimeSeconds,
              registryLeewaySeconds: DISTRIBUTION_TOKEN_LEEWAY_S,
            }
          : {}),
      }),
    );
    const [tokenRegistry, basicRegistry, openRegistry] = await Promise.all([
      startRegistry({ auth: 'token', tokenServer }).then(started),
      startRegistry({ auth: 'basic', users: { [BOB.username]: BOB.password } }).then(started),
      startRegistry({ auth: 'none' }).then(started),
    ]);
    const [sourceProxy, basicProxy, openProxy] = await Promise.all([
      startProxy(tokenRegistry.url).then(started),
      startProxy(basicRegistry.url).then(started),
      startProxy(openRegistry.url).then(started),
    ]);

    const root = await makeTempDir('world');
    cleanups.push(() => removeDir(root));
    const dockerConfigDir = join(root, 'docker-config');
    const homeDir = join(root, 'home');
    const workDir = join(root, 'work');
    await Promise.all([mkdir(dockerConfigDir), mkdir(homeDir), mkdir(workDir)]);
    // The open registry never challenges, so its entry is never used; it is there so that "every
    // host has credentials" holds and a client sending them unasked does no harm.
    await writeDockerConfig(dockerConfigDir, [
      [sourceProxy.host, ALICE],
      [basicProxy.host, BOB],
      [openProxy.host, { username: 'anyone', password: 'unused' }],
    ]);

    const source = endpoint(tokenRegistry, sourceProxy, ALICE);
    const basic = endpoint(basicRegistry, basicProxy, BOB);
    const open = endpoint(openRegistry, openProxy);
    return {
      tokenServer,
      source,
      basic,
      open,
      dockerConfigDir,
      homeDir,
      workDir,
      runCli(args, opts = {}) {
        return runCli(args, {
          ...opts,
          env: { HOME: homeDir, DOCKER_CONFIG: dockerConfigDir, ...opts.env },
        });
      },
      startCli(args, opts = {}) {
        return startCli(args, {
          ...opts,
          env: { HOME: homeDir, DOCKER_CONFIG: dockerConfigDir, ...opts.env },
        });
      },
      resetCounts() {
        for (const e of [source, basic, open]) e.proxy.reset();
        tokenServer.requests.length = 0;
      },
      clearFaults() {
        for (const e of [source, basic, open]) e.proxy.settings.fault = undefined;
      },
      stop: teardown,
    };
  } catch (err) {
    await teardown().catch(() => {});
    throw err;
  }
}
