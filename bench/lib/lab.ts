// The registries a benchmark runs against, built from the test harness: a token-auth source, and sets
// of three target registries (Bearer with its own token server, Basic, open), each behind a counting
// proxy. Target sets are started fresh for every measured run, so nothing a tool (or its caches) learned
// in an earlier run can help it in the next: skopeo running as root keeps a system-wide blob-info cache
// keyed by host:port and repository, and would otherwise mount blobs from earlier repetitions.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ALICE, BOB, type Credentials, writeDockerConfig } from '../../test/harness/fixture.js';
import type { FaultAction, FaultRequest, RegistryProxy } from '../../test/harness/proxy.js';
import { startProxy } from '../../test/harness/proxy.js';
import type { SeedTarget } from '../../test/harness/raw-client.js';
import { type Registry, startRegistry } from '../../test/harness/registry.js';
import { makeTempDir, removeDir } from '../../test/harness/temp-dir.js';
import { startTokenServer, type TokenServer } from '../../test/harness/token-server.js';

export type AuthKind = 'bearer' | 'basic' | 'open';

/** One request as the proxy saw it arrive, with the time it arrived (ms since the epoch). */
export interface Arrival {
  at: number;
  method: string;
  kind: string;
  repo?: string;
  status?: number;
}

/**
 * Turns a request into a fault (429...) or lets it through (undefined). Installed per side so the
 * arrival log and the fault live in one hook.
 */
export type Throttle = (req: FaultRequest) => FaultAction | undefined;

export interface Side {
  name: string;
  auth: AuthKind;
  registry: Registry;
  proxy: RegistryProxy;
  tokenServer?: TokenServer;
  creds?: Credentials;
  /** The proxy's host:port: what references and configs name. */
  host: string;
  /** Arrivals since the last reset (the proxy's own records have no times). */
  arrivals: Arrival[];
  throttle: Throttle | undefined;
  /** For seeding straight into the registry (not through the proxy, so seeding is not counted). */
  seedTarget: SeedTarget;
  reset(): void;
}

const stoppers: Array<() => Promise<void>> = [];

/** Stop everything every lab function started, newest first (also used on Ctrl-C). */
export async function stopAll(): Promise<void> {
  for (const stop of stoppers.splice(0).reverse()) await stop().catch(() => {});
}

function track(stop: () => Promise<void>): () => Promise<void> {
  let done = false;
  const once = async () => {
    if (done) return;
    done = true;
    const i = stoppers.indexOf(once);
    if (i >= 0) stoppers.splice(i, 1);
    await stop();
  };
  stoppers.push(once);
  return once;
}

async function startSide(name: string, auth: AuthKind): Promise<{ side: Side; stop: () => Promise<void> }> {
  const parts: Array<() => Promise<void>> = [];
  const stop = track(async () => {
    for (const p of parts.splice(0).reverse()) await p().catch(() => {});
  });
  try {
    let tokenServer: TokenServer | undefined;
    let registry: Registry;
    let creds: Credentials | undefined;
    if (auth === 'bearer') {
      tokenServer = await startTokenServer({
        users: { [ALICE.username]: { password: ALICE.password, access: 'push' } },
      });
      const ts = tokenServer;
      parts.push(() => ts.stop());
      registry = await startRegistry({ auth: 'token', tokenServer: ts });
      creds = ALICE;
    } else if (auth === 'basic') {
      registry = await startRegistry({ auth: 'basic', users: { [BOB.username]: BOB.password } });
      creds = BOB;
    } else {
      registry = await startRegistry({ auth: 'none' });
    }
    const reg = registry;
    parts.push(() => reg.stop());
    const arrivals: Arrival[] = [];
    // The hook runs for every request: it logs the arrival and asks the side's throttle, if any.
    let throttle: Throttle | undefined;
    const proxy = await startProxy(registry.url, {
      fault: (req) => {
        const arrival: Arrival = {
          at: Date.now(),
          method: req.method,
          kind: req.kind,
          ...(req.repo !== undefined ? { repo: req.repo } : {}),
        };
        arrivals.push(arrival);
        const action = throttle?.(req);
        if (action && 'status' in action) arrival.status = action.status;
        return action;
      },
    });
    parts.push(() => proxy.stop());
    const side: Side = {
      name,
      auth,
      registry,
      proxy,
      ...(tokenServer ? { tokenServer } : {}),
      ...(creds ? { creds } : {}),
      host: proxy.host,
      arrivals,
      get throttle() {
        return throttle;
      },
      set throttle(t: Throttle | undefined) {
        throttle = t;
      },
      seedTarget: {
        url: registry.url,
        ...(creds ? { username: creds.username, password: creds.password } : {}),
      },
      reset() {
        proxy.reset();
        arrivals.length = 0;
        if (tokenServer) tokenServer.requests.length = 0;
      },
    };
    return { side, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface Source {
  side: Side;
  stop(): Promise<void>;
}

/** The source: a token-auth registry, like Docker Hub, Quay or ECR Public. */
export async function startSource(): Promise<Source> {
  const { side, stop } = await startSide('source', 'bearer');
  return { side, stop };
}

export interface TargetSet {
  targets: Side[];
  stop(): Promise<void>;
}

export const TARGET_KINDS: AuthKind[] = ['bearer', 'basic', 'open'];

/** `count` fresh target registries: Bearer, Basic, open (in that order, repeating). */
export async function startTargets(count = 3): Promise<TargetSet> {
  const started = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const auth = TARGET_KINDS[i % TARGET_KINDS.length]!;
      return startSide(`t${i + 1}-${auth}`, auth);
    }),
  );
  return {
    targets: started.map((s) => s.side),
    async stop() {
      await Promise.all(started.map((s) => s.stop()));
    },
  };
}

/** A fresh HOME with a docker config.json holding credentials for every side that needs them. */
export async function freshHome(sides: Side[]): Promise<{ home: string; dockerConfig: string }> {
  const home = await makeTempDir('bench-home');
  track(() => removeDir(home));
  const dockerConfig = join(home, '.docker');
  await mkdir(dockerConfig);
  const entries: Array<[string, Credentials]> = [];
  for (const s of sides) if (s.creds) entries.push([s.host, s.creds]);
  await writeDockerConfig(dockerConfig, entries);
  return { home, dockerConfig };
}

/** A scratch directory removed at the end (or on Ctrl-C). */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  track(() => removeDir(dir));
  return dir;
}

/** `user:password` for skopeo's --src-creds / --dest-creds. */
export function credsArg(side: Side, flag: 'src' | 'dest'): string[] {
  return side.creds
    ? [`--${flag}-creds`, `${side.creds.username}:${side.creds.password}`]
    : [`--${flag}-no-creds`];
}
