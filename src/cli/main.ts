// The commander program. The only module that decides exit codes; bin/regmirror.js sets them.

import { setMaxListeners } from 'node:events';
import { Argument, Command, CommanderError, Option } from 'commander';
import { EXIT_INTERRUPTED, EXIT_USAGE, exitCodeOf, formatError, isAbort, UsageError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import type { CredentialSource } from '../registry/credentials/types.js';
import type { TraceFn } from '../registry/transport.js';
import type { CheckFlags } from './commands/check.js';
import type { CopyFlags } from './commands/copy.js';
import type { InspectFlags } from './commands/inspect.js';
import type { SyncFlags, SyncSession } from './commands/sync.js';
import type { TagsFlags } from './commands/tags.js';
import { parseDuration, parseNonNegativeInt, parsePositiveInt, parseSize } from './format.js';
import { createOutput, type Output, printNotice } from './output.js';
import type { ClientFlags } from './runtime.js';
import { VERSION } from './version.js';

// Commands (and with them undici, zod and cosmiconfig) are loaded when one runs: --help and --version
// stay quick, and each command loads only what it uses.

export { VERSION } from './version.js';

/** Options of the whole program: accepted before the command name and after it, as skopeo and crane take them. */
export interface GlobalFlags extends ClientFlags {
  quiet?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** "linux/amd64,linux/arm64" and repeated flags alike, into one list. */
function collectList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** The options every registry command shares; on the program, so they may come before the command. */
function globalOptions(program: Command): Command {
  return program
    .option('-q, --quiet', 'no progress or summary on stderr (errors still shown)')
    .option('--debug', 'trace every HTTP request on stderr (credentials and signed URLs redacted)')
    .option(
      '--plain-http <host>',
      'talk plain HTTP to this registry host (repeatable; loopback hosts default to it)',
      collect,
    )
    .option(
      '--tls-verify <host>',
      'verified HTTPS for this registry host, loopback ones too (repeatable)',
      collect,
    )
    .option('--insecure <host>', 'HTTPS without certificate verification for this host (repeatable)', collect)
    .option(
      '--authfile <file>',
      'credentials from this docker config.json / podman auth.json instead of the default ones',
    )
    .option('--ca-file <host=file>', 'trust this CA file for a registry host (repeatable)', collect)
    .addOption(
      new Option(
        '--host-concurrency <n>',
        'requests in flight per registry host, a fixed bound (default: adaptive, 16 growing to 64)',
      ).argParser((v) => parsePositiveInt(v, '--host-concurrency')),
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
    );
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
  flags: GlobalFlags,
  session: Session,
  fn: (client: RegistryClient) => Promise<T>,
  extra: { configFile?: string | undefined; credentials?: Map<string, CredentialSource> } = {},
): Promise<T> {
  const { createClient } = await import('./runtime.js');
  const { configFile } = extra;
  // A config given to a one-off command lends it its registry settings (credentials, TLS, upload policy).
  const config = configFile
    ? (await (await import('../config/load.js')).loadConfig({ file: configFile })).config
    : undefined;
  const client = createClient({
    flags,
    signal: session.signal,
    warn: (line) => session.out.warn(line),
    ...(config ? { config } : {}),
    ...(extra.credentials ? { credentials: extra.credentials } : {}),
    ...(flags.debug ? { trace: debugTrace(session.out) } : {}),
    notice: (n) => printNotice(session.out, n),
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Two or three lines of real use at the end of a command's --help. */
function examples(cmd: Command, lines: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

/**
 * A flag this command would not use, accepted only to be refused with a reason: hidden from --help, and
 * an error rather than silently ignored (commander alone would say "unknown option").
 */
function refused(cmd: Command, flags: string, why: string): Command {
  const option = new Option(flags).hideHelp();
  cmd.addOption(option);
  cmd.hook('preAction', (_this, action) => {
    if (action.getOptionValue(option.attributeName()) !== undefined) throw new UsageError(why);
  });
  return cmd;
}

const chunkSizeOption = (what: string) =>
  new Option('--chunk-size <size>', what).argParser((v) => parseSize(v, '--chunk-size'));

export function buildProgram(session: Session, setCode: (code: number) => void): Command {
  const program = globalOptions(
    new Command('regmirror')
      .description('Mirror container images and OCI artifacts from source registries to many targets')
      .version(VERSION, '-V, --version')
      .showHelpAfterError('(run with --help for usage)')
      .exitOverride()
      .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
      .configureOutput({
        writeErr: (s) => process.stderr.write(s),
        writeOut: (s) => process.stdout.write(s),
      }),
  );
  const globals = <T>(cmd: Command): GlobalFlags & T => cmd.optsWithGlobals<GlobalFlags & T>();

  // --- copy ------------------------------------------------------------------------------------------
  const copy = program
    .command('copy')
    .description('copy one image (index, children, blobs) to one or more targets; the source is read once')
    .argument('<source>', 'source reference, e.g. quay.io/org/app:1.2 or ubuntu@sha256:...')
    .argument('<targets...>', 'target repositories or repository:tag (default tag: the source tag)')
    .option('--json', 'print the report on stdout')
    .option(
      '--platform <os/arch[/variant]>',
      'only these platforms of an index (comma-separated or repeated); the targets get a new index',
      collectList,
    )
    .option('--all', 'every platform of an index, the source digest kept (the default)')
    .addOption(
      chunkSizeOption(
        "upload chunk size (default: the registry's own, else 8MiB); blobs up to it go in one request",
      ),
    )
    .option('--config <file>', "use this config's registry settings (credentials, TLS, chunk sizes)")
    .option(
      '--src-creds <user[:password]>',
      'credentials for the source registry (password asked if left out)',
    )
    .option(
      '--dest-creds <user[:password]>',
      'credentials for the target registries (password asked if left out)',
    )
    .option('--password-stdin', 'read the password that --src-creds or --dest-creds leaves out from stdin')
    .addOption(
      new Option('-c, --concurrency <n>', 'blob transfers in flight')
        .default(4)
        .argParser((v) => parsePositiveInt(v, '--concurrency')),
    )
    .option('--audit-log <file>', 'append one JSON line per write (blob, mount, manifest, tag) to this file')
    .option('--metrics-file <file>', 'write Prometheus metrics of the run to this file (atomically)')
    .option('--referrers', 'also copy signatures, SBOMs, attestations and cosign tags (the default)')
    .option('--no-referrers', 'copy the image only, no referrers (and ask no registry about them)')
    .option(
      '--mount-from <repository>',
      'a repository on a target registry to mount blobs from first, e.g. ghcr.io/acme/base (repeatable)',
      collect,
    )
    .option('--no-mount-cache', 'neither use nor update the cache of where earlier runs left blobs');
  examples(copy, [
    'regmirror copy quay.io/acme/app:1.4.2 public.ecr.aws/acme/app docker.io/acme/app',
    'echo "$TOKEN" | regmirror copy --dest-creds ci-bot --password-stdin ghcr.io/acme/app:1.4.2 registry.internal:5000/acme/app',
    'regmirror copy --platform linux/amd64,linux/arm64 ubuntu:24.04 registry.internal:5000/base/ubuntu',
    'regmirror copy ghcr.io/acme/app@sha256:… registry.internal:5000/acme/app:stable --json > report.json',
  ]).action(async (src: string, dsts: string[], _o: unknown, cmd: Command) => {
    const flags = globals<CopyFlags>(cmd);
    const { copyCredentials, runCopy } = await import('./commands/copy.js');
    // Passwords are read (or asked for) before the client exists: its registry profiles ask these first.
    const credentials =
      flags.srcCreds !== undefined || flags.destCreds !== undefined || flags.passwordStdin
        ? await copyCredentials(src, dsts, flags)
        : undefined;
    setCode(
      await withClient(flags, session, (client) => runCopy(src, dsts, flags, client, session.out), {
        configFile: flags.config,
        ...(credentials ? { credentials } : {}),
      }),
    );
  });

  // --- inspect, digest, tags -------------------------------------------------------------------------
  const inspect = program
    .command('inspect')
    .description('show the manifest tree of a reference: digests, media types, platforms, sizes')
    .argument('<reference>', 'image reference, e.g. quay.io/org/app:1.2')
    .option('--json', 'the tree as JSON on stdout')
    .option('--raw', 'the manifest exactly as the registry serves it (byte for byte)')
    .option('--config', "the image's config blob (for an index: of --platform, or its only platform)")
    .option('--platform <os/arch[/variant]>', 'of an index, only this platform')
    .option(
      '--referrers',
      'also show what refers to each manifest: signatures, SBOMs, attestations, cosign tags',
    );
  examples(inspect, [
    'regmirror inspect quay.io/acme/app:1.4.2',
    'regmirror inspect --raw quay.io/acme/app:1.4.2 | sha256sum',
    'regmirror inspect --config --platform linux/arm64 quay.io/acme/app:1.4.2',
    'regmirror inspect --referrers quay.io/acme/app:1.4.2',
  ]).action(async (ref: string, _o: unknown, cmd: Command) => {
    const flags = globals<InspectFlags>(cmd);
    const { runInspect } = await import('./commands/inspect.js');
    setCode(await withClient(flags, session, (client) => runInspect(ref, flags, client, session.out)));
  });

  const digest = program
    .command('digest')
    .description('print the digest of a reference (one HEAD request)')
    .argument('<reference>', 'image reference')
    .option('--platform <os/arch[/variant]>', "of an index, the digest of this platform's manifest");
  examples(digest, [
    'regmirror digest quay.io/acme/app:1.4.2',
    'regmirror digest --platform linux/arm64 quay.io/acme/app:1.4.2',
  ]).action(async (ref: string, _o: unknown, cmd: Command) => {
    const flags = globals<InspectFlags>(cmd);
    const { runDigest } = await import('./commands/inspect.js');
    setCode(await withClient(flags, session, (client) => runDigest(ref, flags, client, session.out)));
  });

  const tags = program
    .command('tags')
    .description('list the tags of a repository, oldest version first')
    .argument('<repository>', 'repository, e.g. quay.io/org/app')
    .option('--json', 'print { repository, tags } on stdout')
    .option(
      '--filter <rules>',
      'only tags the config\'s tag rules select, as JSON, e.g. \'{"semver": ">=1.2", "latest": 5}\'',
    );
  examples(tags, [
    'regmirror tags quay.io/acme/app',
    `regmirror tags quay.io/acme/app --filter '{"semver": ">=15.0.0", "exclude": ["-rc"], "latest": 5}'`,
  ]).action(async (repo: string, _o: unknown, cmd: Command) => {
    const flags = globals<TagsFlags>(cmd);
    const { runTags } = await import('./commands/tags.js');
    setCode(await withClient(flags, session, (client) => runTags(repo, flags, client, session.out)));
  });

  // --- config commands -------------------------------------------------------------------------------
  const configOptions = (cmd: Command) =>
    cmd
      .option(
        '--config <file>',
        'config file (default: mirror.config.json, .mirrorrc*, package.json "mirror")',
      )
      .option(
        '--only <pattern>',
        'only mirrors whose name or source matches this glob (repeatable)',
        collect,
      );
  const shardOption = () =>
    new Option('--shard <i/n>', 'only shard i of n (1-based), split by source repository').argParser(
      parseShard,
    );
  const imagesOption = () =>
    new Option(
      '-c, --concurrency <n>',
      "images in flight (default: the config's defaults.concurrency, else 16)",
    ).argParser((v) => parsePositiveInt(v, '--concurrency'));
  const writeOptions = (cmd: Command, when = '') =>
    cmd
      .addOption(
        chunkSizeOption(
          `upload chunk size where the config sets none${when} (default: the registry's own, else 8MiB)`,
        ),
      )
      .option(
        '--audit-log <file>',
        `append one JSON line per write (blob, mount, manifest, tag) to this file${when}`,
      );
  const syncRun = async (command: 'sync' | 'plan', cmd: Command) => {
    const flags = globals<SyncFlags>(cmd);
    const { runSync } = await import('./commands/sync.js');
    setCode(await runSync(command, flags, syncSession(session, flags)));
  };

  const sync = writeOptions(
    configOptions(
      program
        .command('sync')
        .description('mirror everything the config selects; skip what is already identical')
        .option('--json', 'print the report on stdout'),
    )
      .addOption(imagesOption())
      .addOption(shardOption()),
  )
    .option('--metrics-file <file>', 'write Prometheus metrics of the run to this file (atomically)')
    .option('--no-mount-cache', 'neither use nor update the cache of where earlier runs left blobs')
    .option('--dry-run', 'plan only: the same walk, nothing written (the same as `regmirror plan`)');
  examples(sync, [
    'regmirror sync',
    "regmirror sync --only 'quay.io/acme/*' -c 16 --metrics-file /var/lib/node_exporter/regmirror.prom",
    'regmirror sync --config mirrors/prod.json --shard 2/4 --json > report.json',
  ])
    .hook('preAction', (_t, action) => {
      const o = action.opts();
      if (o.dryRun && o.auditLog !== undefined)
        throw new UsageError(
          '--audit-log with --dry-run: a dry run writes nothing, so there is nothing to log',
        );
      if (o.dryRun && o.metricsFile !== undefined)
        throw new UsageError('--metrics-file with --dry-run: metrics describe a sync; run without --dry-run');
      if (o.dryRun && o.chunkSize !== undefined)
        throw new UsageError('--chunk-size with --dry-run: a dry run uploads nothing; run without --dry-run');
      if (o.dryRun && o.mountCache === false)
        throw new UsageError(
          '--no-mount-cache with --dry-run: a dry run neither reads nor updates the mount cache',
        );
    })
    .action(async (_o: unknown, cmd: Command) => syncRun('sync', cmd));

  const plan = configOptions(
    program
      .command('plan')
      .description('what sync would do: tags to create/move/keep, blobs to upload/mount, bytes; read-only')
      .option('--json', 'print the report on stdout'),
  )
    .addOption(imagesOption())
    .addOption(shardOption());
  refused(
    plan,
    '--audit-log <file>',
    '--audit-log: plan writes nothing, so there is nothing to log (use it with sync)',
  );
  refused(
    plan,
    '--metrics-file <file>',
    '--metrics-file: plan changes nothing to measure (use it with sync or check)',
  );
  refused(plan, '--chunk-size <size>', '--chunk-size: plan uploads nothing (use it with sync)');
  refused(plan, '--dry-run', '--dry-run: plan is always a dry run');
  examples(plan, ['regmirror plan', "regmirror plan --only 'quay.io/acme/*' --json > plan.json"]).action(
    async (_o: unknown, cmd: Command) => syncRun('plan', cmd),
  );

  const check = writeOptions(
    configOptions(
      program
        .command('check')
        .description(
          'drift check: per target and tag ok / missing / stale / extra; exit 0 in sync, 1 drift, 2 trouble',
        )
        .option('--json', 'print the report on stdout (the same as --format json)')
        .addOption(
          new Option('--format <format>', 'table (default), json, or markdown (a CI job summary)').choices([
            'table',
            'json',
            'markdown',
          ]),
        )
        .option(
          '--deep',
          'also HEAD every child manifest and blob below each target manifest (reads manifests)',
        )
        .option(
          '--fail-on <states>',
          'comma-separated states that count as drift (default: missing,stale,incomplete)',
        )
        .addOption(shardOption())
        .option('--metrics-file <file>', 'write Prometheus metrics of the check to this file (atomically)')
        .option('--fix', 'sync exactly the rows that drifted, then check them again')
        .option(
          '--no-mount-cache',
          'with --fix: neither use nor update the cache of where earlier runs left blobs',
        ),
    ).addOption(
      new Option(
        '-c, --concurrency <n>',
        "with --fix: images in flight (default: the config's defaults.concurrency, else 16)",
      ).argParser((v) => parsePositiveInt(v, '--concurrency')),
    ),
    ' (with --fix)',
  );
  examples(check, [
    'regmirror check --format markdown >> "$GITHUB_STEP_SUMMARY"',
    'regmirror check --deep --fix --audit-log fixes.jsonl',
    'regmirror check --fail-on missing,stale,extra --metrics-file /var/lib/node_exporter/regmirror-check.prom',
  ])
    .hook('preAction', (_t, action) => {
      const o = action.opts();
      if (!o.fix) {
        for (const [key, flag] of [
          ['auditLog', '--audit-log'],
          ['chunkSize', '--chunk-size'],
          ['concurrency', '--concurrency'],
        ] as const) {
          if (o[key] !== undefined)
            throw new UsageError(`${flag} applies to check --fix only: without --fix, check writes nothing`);
        }
        if (o.mountCache === false)
          throw new UsageError(
            '--no-mount-cache applies to check --fix only: without --fix, check writes nothing',
          );
      }
      if (o.json && o.format !== undefined && o.format !== 'json')
        throw new UsageError(`--json and --format ${o.format} ask for two outputs; give one`);
    })
    .action(async (_o: unknown, cmd: Command) => {
      const flags = globals<CheckFlags>(cmd);
      const { runCheck } = await import('./commands/check.js');
      setCode(await runCheck(flags, syncSession(session, flags)));
    });

  const auth = program.command('auth').description('credentials and permissions');
  const authCheck = configOptions(
    auth
      .command('check')
      .description('check that every source can be pulled and every target pushed (writes nothing)')
      .option('--json', 'print the checks on stdout'),
  );
  examples(authCheck, [
    'regmirror auth check',
    'regmirror auth check --config mirrors/prod.json --json',
  ]).action(async (_o: unknown, cmd: Command) => {
    const flags = globals<SyncFlags>(cmd);
    const { runAuthCheck } = await import('./commands/auth-check.js');
    setCode(await runAuthCheck(flags, syncSession(session, flags)));
  });

  // --- completion ------------------------------------------------------------------------------------
  const completion = program
    .command('completion')
    .description('print a shell completion script')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh', 'fish']))
    .configureHelp({ showGlobalOptions: false });
  examples(completion, [
    'source <(regmirror completion bash)                # in ~/.bashrc',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a zsh expansion the user types, not ours
    'regmirror completion zsh > "${fpath[1]}/_regmirror"',
    'regmirror completion fish > ~/.config/fish/completions/regmirror.fish',
  ]).action(async (shell: 'bash' | 'zsh' | 'fish') => {
    const { completionScript } = await import('./completion.js');
    session.out.result(completionScript(program, shell));
    setCode(0);
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

function syncSession(session: Session, flags: GlobalFlags): SyncSession {
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
  // Known before commander has parsed anything: the output channel is needed to report parse errors.
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
