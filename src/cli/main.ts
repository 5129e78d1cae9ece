// The commander program. The only module that decides exit codes; bin/regmirror.js sets them.

import { setMaxListeners } from 'node:events';
import { Command, CommanderError, Option } from 'commander';
import { EXIT_INTERRUPTED, EXIT_USAGE, exitCodeOf, formatError, isAbort, UsageError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { TraceFn } from '../registry/transport.js';
import type { CheckFlags } from './commands/check.js';
import type { SyncFlags, SyncSession } from './commands/sync.js';
import { parseDuration, parseNonNegativeInt, parsePositiveInt, parseSize } from './format.js';
import { createOutput, type Output, printNotice } from './output.js';
import type { ClientFlags } from './runtime.js';
import { VERSION } from './version.js';

// Commands (and with them undici, zod, cosmiconfig) are loaded when one runs: --help and --version stay
// quick, and each command loads only what it uses.

export { VERSION } from './version.js';

interface CommonFlags extends ClientFlags {
  json?: boolean;
  quiet?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Options every command that talks to registries accepts. */
function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print one machine-readable JSON result on stdout')
    .option('-q, --quiet', 'no progress or summary on stderr (errors still shown)')
    .option(
      '--plain-http <host>',
      'talk plain HTTP to this registry host (repeatable; loopback hosts default to it)',
      collect,
    )
    .option('--insecure <host>', 'HTTPS without certificate verification for this host (repeatable)', collect)
    .option('--ca-file <host=file>', 'trust this CA file for a registry host (repeatable)', collect)
    .addOption(
      new Option('--host-concurrency <n>', 'requests in flight per registry host').argParser((v) =>
        parsePositiveInt(v, '--host-concurrency'),
      ),
    )
    .addOption(
      new Option(
        '--retries <n>',
        'retries of a throttled or failed request (429, 5xx, network) after the first',
      )
        .default(5)
        .argParser((v) => parseNonNegativeInt(v, '--retries')),
    )
    .addOption(
      new Option('--retry-max-time <duration>', 'stop retrying a request after this long, e.g. 90s, 5m')
        .default(5 * 60_000, '5m')
        .argParser((v) => parseDuration(v, '--retry-max-time')),
    )
    .option('--debug', 'trace every HTTP request on stderr (credentials and signed URLs redacted)');
}

/** --debug: one line per HTTP request; the transport has already redacted the URL. */
function debugTrace(out: Output): TraceFn {
  return (t) => out.warn(`[debug] ${t.method} ${t.url} → ${t.status ?? t.error ?? '?'} (${t.ms} ms)`);
}

interface Session {
  signal: AbortSignal;
  out: Output;
}

async function withClient<T>(
  flags: CommonFlags & { config?: string },
  session: Session,
  fn: (client: RegistryClient) => Promise<T>,
): Promise<T> {
  const { createClient } = await import('./runtime.js');
  // A config given to a one-off command lends it its registry settings (credentials, TLS, upload policy).
  const config = flags.config
    ? (await (await import('../config/load.js')).loadConfig({ file: flags.config })).config
    : undefined;
  const client = createClient({
    flags,
    signal: session.signal,
    warn: (line) => session.out.warn(line),
    ...(config ? { config } : {}),
    trace: flags.debug
      ? (t) => session.out.warn(`[debug] ${t.method} ${t.url} → ${t.status ?? t.error ?? '?'} (${t.ms} ms)`)
      : undefined,
    notice: (n) => printNotice(session.out, n),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function buildProgram(session: Session, setCode: (code: number) => void): Command {
  const program = new Command('regmirror')
    .description('Mirror container images and OCI artifacts from source registries to many targets')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });

  withClientOptions(
    program
      .command('copy')
      .description('copy one image (index, children, blobs) to one or more targets; the source is read once')
      .argument('<source>', 'source reference, e.g. quay.io/org/app:1.2 or ubuntu@sha256:...')
      .argument('<targets...>', 'target repositories or repository:tag (default tag: the source tag)')
      .addOption(
        new Option(
          '--chunk-size <size>',
          "upload chunk size (default: the registry's own, else 8MiB); blobs up to it go in one request",
        ).argParser((v) => parseSize(v, '--chunk-size')),
      )
      .option('--config <file>', "use this config's registry settings (credentials, TLS, chunk sizes)")
      .addOption(
        new Option('-c, --concurrency <n>', 'blob transfers in flight')
          .default(4)
          .argParser((v) => parsePositiveInt(v, '--concurrency')),
      )
      .option(
        '--audit-log <file>',
        'append one JSON line per write (blob, mount, manifest, tag) to this file',
      )
      .option('--referrers', 'also copy signatures, SBOMs, attestations and cosign tags (the default)')
      .option('--no-referrers', 'copy the image only, no referrers (and ask no registry about them)'),
  ).action(
    async (
      src: string,
      dsts: string[],
      flags: CommonFlags & {
        chunkSize?: number;
        concurrency: number;
        auditLog?: string;
        config?: string;
        referrers?: boolean;
      },
    ) => {
      const { runCopy } = await import('./commands/copy.js');
      setCode(await withClient(flags, session, (client) => runCopy(src, dsts, flags, client, session.out)));
    },
  );

  withClientOptions(
    program
      .command('inspect')
      .description('show the manifest tree of a reference: digests, media types, platforms, sizes')
      .argument('<reference>', 'image reference')
      .option(
        '--referrers',
        'also show what refers to each manifest: signatures, SBOMs, attestations, cosign tags',
      ),
  ).action(async (ref: string, flags: CommonFlags & { referrers?: boolean }) => {
    const { runInspect } = await import('./commands/inspect.js');
    setCode(await withClient(flags, session, (client) => runInspect(ref, flags, client, session.out)));
  });

  withClientOptions(
    program
      .command('tags')
      .description('list the tags of a repository')
      .argument('<repository>', 'repository, e.g. quay.io/org/app'),
  ).action(async (repo: string, flags: CommonFlags) => {
    const { runTags } = await import('./commands/tags.js');
    setCode(await withClient(flags, session, (client) => runTags(repo, flags, client, session.out)));
  });

  const configOptions = (cmd: Command) =>
    withClientOptions(cmd)
      .option(
        '--config <file>',
        'config file (default: mirror.config.json, .mirrorrc*, package.json "mirror")',
      )
      .option(
        '--only <pattern>',
        'only mirrors whose name or source matches this glob (repeatable)',
        collect,
      );
  const runOptions = (cmd: Command) =>
    configOptions(cmd)
      .addOption(
        new Option(
          '-c, --concurrency <n>',
          "images in flight (default: the config's defaults.concurrency)",
        ).argParser((v) => parsePositiveInt(v, '--concurrency')),
      )
      .addOption(
        new Option(
          '--chunk-size <size>',
          "upload chunk size where the config sets none (default: the registry's own, else 8MiB)",
        ).argParser((v) => parseSize(v, '--chunk-size')),
      )
      .addOption(
        new Option('--shard <i/n>', 'only shard i of n (1-based), split by source repository').argParser(
          parseShard,
        ),
      )
      .option(
        '--audit-log <file>',
        'append one JSON line per write (blob, mount, manifest, tag) to this file',
      );

  runOptions(
    program
      .command('sync')
      .description('mirror everything the config selects; skip what is already identical')
      .option('--dry-run', 'plan only: the same walk, nothing written (same as `regmirror plan`)'),
  ).action(async (flags: CommonFlags & SyncFlags) => {
    const { runSync } = await import('./commands/sync.js');
    setCode(await runSync('sync', flags, syncSession(session, flags)));
  });

  runOptions(
    program
      .command('plan')
      .description(
        'what sync would do: tags to create/move/keep, blobs to upload/mount/skip, bytes; read-only',
      ),
  ).action(async (flags: CommonFlags & SyncFlags) => {
    const { runSync } = await import('./commands/sync.js');
    setCode(await runSync('plan', flags, syncSession(session, flags)));
  });

  runOptions(
    program
      .command('check')
      .description(
        'drift check: per target and tag ok / missing / stale / extra; exit 0 in sync, 1 drift, 2 error',
      )
      .option(
        '--deep',
        'also HEAD every child manifest and blob below each target manifest (reads manifests)',
      )
      .option('--format <format>', 'table (default), json, or markdown (a CI job summary)')
      .option(
        '--fail-on <states>',
        'comma-separated states that count as drift (default: missing,stale,incomplete)',
      )
      .option('--fix', 'sync exactly the rows that drifted'),
  ).action(async (flags: CommonFlags & CheckFlags) => {
    const { runCheck } = await import('./commands/check.js');
    setCode(await runCheck(flags, syncSession(session, flags)));
  });

  const auth = program.command('auth').description('credentials and permissions');
  configOptions(
    auth
      .command('check')
      .description('check that every source can be pulled and every target pushed (writes nothing)'),
  ).action(async (flags: CommonFlags & SyncFlags) => {
    const { runAuthCheck } = await import('./commands/auth-check.js');
    setCode(await runAuthCheck(flags, syncSession(session, flags)));
  });

  return program;
}

function parseShard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard takes I/N with 1 ≤ I ≤ N, e.g. 2/5; got "${value}"`);
  }
  return { index, count };
}

function syncSession(session: Session, flags: CommonFlags): SyncSession {
  return {
    signal: session.signal,
    out: session.out,
    env: process.env,
    ...(flags.debug ? { trace: debugTrace(session.out) } : {}),
  };
}

/** Run the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  // Every request listens on this one signal: many at once is expected, not a leak.
  setMaxListeners(0, controller.signal);
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write(`\n${signal}: stopping (press Ctrl-C again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const wantsQuiet = argv.includes('-q') || argv.includes('--quiet');
  const out = await createOutput({ quiet: wantsQuiet });
  let code = 0;
  const program = buildProgram({ signal: controller.signal, out }, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return controller.signal.aborted ? EXIT_INTERRUPTED : code;
  } catch (err) {
    out.stop();
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return 0;
      return EXIT_USAGE;
    }
    if (controller.signal.aborted || isAbort(err)) {
      out.warn('interrupted');
      return EXIT_INTERRUPTED;
    }
    out.warn(`error: ${formatError(err)}`);
    if (process.env.REGMIRROR_STACK) out.warn(String((err as Error).stack));
    return exitCodeOf(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
