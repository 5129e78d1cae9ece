// The command line as skopeo, crane and regctl users type it, against real registries: global options
// before the command name, flags a command would ignore refused, --help per command (only its options,
// and examples), shell completion run in real shells, docker:// references, tags in version order and
// through the config's tag rules, digest, inspect --raw / --config, copy --platform, and true
// credential labels in auth check.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliResult, startWorld, type World } from '../harness/fixture.js';
import { runCommand } from '../harness/run-command.js';
import { type SeededImage, seedImage } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';

let world: World;
let image: SeededImage;
let src: string;
const TAG_ORDER = ['dev', 'latest', '1.2.3-rc.1', '1.2.3', '1.9.0', '1.10.0', 'v2.0.0'];

before(async () => {
  world = await startWorld();
  image = await seedImage(world.source.seedTarget, 'cli/app', '1.4.2', 'oci-index-with-attestations');
  src = `${world.source.host}/cli/app:1.4.2`;
  // Pushed in an order that is neither the version order nor the alphabetical one.
  for (const tag of ['1.10.0', 'latest', '1.9.0', 'v2.0.0', '1.2.3-rc.1', 'dev', '1.2.3']) {
    await seedImage(world.source.seedTarget, 'cli/tags', tag, 'oci-image', {
      seed: 'one image for every tag',
    });
  }
});
after(async () => {
  await world?.stop();
});

function requests(): number {
  return [world.source, world.basic, world.open].reduce((n, ep) => n + ep.proxy.count(), 0);
}

async function writeConfig(name: string, config: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

describe('global options before the command name, as skopeo and crane take them', () => {
  test('--debug before and after the command traces the same requests', async () => {
    const repo = `${world.source.host}/cli/tags`;
    const before = await world.runCli(['--debug', 'tags', repo]);
    const afterCmd = await world.runCli(['tags', '--debug', repo]);
    for (const res of [before, afterCmd]) {
      assert.equal(res.code, 0, res.stderr);
      assert.match(
        res.stderr,
        new RegExp(`\\[debug\\] GET http://${world.source.host}/v2/cli/tags/tags/list\\?n=\\d+ → 200`),
      );
    }
  });

  test('--plain-http HOST and --retries before copy apply to it; -q before the command silences stderr', async () => {
    const res = await world.runCli([
      '-q',
      '--plain-http',
      world.open.host,
      '--retries',
      '0',
      'copy',
      src,
      `${world.open.host}/cli/global`,
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');
    assert.ok((await skopeoInspectRaw(`${world.open.host}/cli/global:1.4.2`)).equals(image.bytes));
    // A bad value is refused in either position, naming the flag.
    const bad = await world.runCli(['--retries', 'many', 'tags', `${world.source.host}/cli/tags`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--retries: "many" is not a whole number/);
  });
});

describe('a flag that a command would ignore is an error, before any request', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['plan --audit-log', () => ['plan', '--audit-log', 'a.jsonl'], /--audit-log: plan writes nothing/],
    [
      'plan --metrics-file',
      () => ['plan', '--metrics-file', 'm.prom'],
      /--metrics-file: plan changes nothing/,
    ],
    ['plan --chunk-size', () => ['plan', '--chunk-size', '5MiB'], /--chunk-size: plan uploads nothing/],
    [
      'sync --dry-run --audit-log',
      () => ['sync', '--dry-run', '--audit-log', 'a.jsonl'],
      /--audit-log with --dry-run/,
    ],
    [
      'sync --dry-run --chunk-size',
      () => ['sync', '--dry-run', '--chunk-size', '8MiB'],
      /--chunk-size with --dry-run: a dry run uploads nothing/,
    ],
    [
      'sync --dry-run --no-mount-cache',
      () => ['sync', '--dry-run', '--no-mount-cache'],
      /--no-mount-cache with --dry-run/,
    ],
    [
      'check --audit-log without --fix',
      () => ['check', '--audit-log', 'a.jsonl'],
      /--audit-log applies to check --fix only/,
    ],
    [
      'check --chunk-size without --fix',
      () => ['check', '--chunk-size', '5MiB'],
      /--chunk-size applies to check --fix only/,
    ],
    [
      'check --json --format markdown',
      () => ['check', '--json', '--format', 'markdown'],
      /--json and --format markdown/,
    ],
    [
      'check --fail-on error',
      () => ['check', '--fail-on', 'missing,error'],
      /--fail-on error: rows that could not be checked always/,
    ],
    [
      'copy --all --platform',
      () => ['copy', '--all', '--platform', 'linux/amd64', src, `${world.open.host}/x`],
      /--all and --platform/,
    ],
    ['inspect --json --raw', () => ['inspect', '--json', '--raw', src], /--json and --raw/],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const config = await writeConfig('flags.json', {
        mirrors: [{ source: `${world.source.host}/cli/app`, targets: [`${world.open.host}/cli/flags`] }],
      });
      world.resetCounts();
      const argv = args();
      const res = await world.runCli([
        ...argv,
        ...(argv[0] === 'copy' || argv[0] === 'inspect' ? [] : ['--config', config]),
      ]);
      assert.equal(res.code, 2, `${name}: ${res.stderr}`);
      assert.match(res.stderr, message);
      assert.equal(requests(), 0, 'a request was sent');
    });
  }
});

describe('--help', () => {
  const commands = ['copy', 'inspect', 'digest', 'tags', 'sync', 'plan', 'check', 'auth check', 'completion'];
  for (const command of commands) {
    test(`${command} --help ends with examples of that command`, async () => {
      const res = await world.runCli([...command.split(' '), '--help']);
      assert.equal(res.code, 0, res.stderr);
      const examples = res.stdout.split('Examples:\n')[1] ?? '';
      const lines = examples.split('\n').filter((l) => l.startsWith('  $ '));
      assert.ok(lines.length >= 2, `${command}: ${lines.length} examples`);
      for (const line of lines) {
        const word = command === 'completion' ? 'completion' : command;
        assert.ok(line.includes(`regmirror ${word}`) || line.includes(`<(regmirror ${word}`), line);
      }
    });
  }
  test('plan lists no option it would ignore; tags no config options; completion no registry options', async () => {
    const plan = (await world.runCli(['plan', '--help'])).stdout;
    for (const flag of ['--audit-log', '--chunk-size', '--metrics-file', '--dry-run'])
      assert.ok(!plan.includes(flag), flag);
    const tags = (await world.runCli(['tags', '--help'])).stdout;
    for (const flag of ['--config', '--only', '--shard']) assert.ok(!tags.includes(flag), flag);
    assert.match(tags, /Global Options:[\s\S]*--plain-http/);
    const completion = (await world.runCli(['completion', '--help'])).stdout;
    assert.ok(!completion.includes('--retries'), completion);
    const check = (await world.runCli(['check', '--help'])).stdout;
    assert.match(check.replace(/\s+/g, ' '), /--audit-log <file> append one JSON line [^-]*\(with --fix\)/);
  });
});

describe('completion scripts work in the shells they are for', () => {
  let scripts: Record<string, string>;
  before(async () => {
    scripts = {};
    for (const shell of ['bash', 'zsh', 'fish']) {
      const res = await world.runCli(['completion', shell]);
      assert.equal(res.code, 0, res.stderr);
      scripts[shell] = join(world.workDir, `completion.${shell}`);
      await writeFile(scripts[shell]!, res.stdout);
    }
  });

  async function bashComplete(words: string[]): Promise<string[]> {
    const script = [
      `source ${scripts.bash}`,
      `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      '_regmirror',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a bash expansion
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const { stdout } = await runCommand('bash', ['--norc', '-c', script]);
    return stdout.toString('utf8').split('\n').filter(Boolean);
  }

  test('bash: commands, subcommands, options of the command, global options, choices', async () => {
    assert.deepEqual(await bashComplete(['regmirror', 'c']), ['copy', 'check', 'completion']);
    assert.deepEqual(await bashComplete(['regmirror', 'auth', '']), ['check']);
    assert.deepEqual(await bashComplete(['regmirror', 'completion', '']), ['bash', 'zsh', 'fish']);
    assert.deepEqual(await bashComplete(['regmirror', 'check', '--format', '']), [
      'table',
      'json',
      'markdown',
    ]);
    assert.deepEqual(await bashComplete(['regmirror', 'check', '--fa']), ['--fail-on']);
    // After a global option and its value, the command still counts; its options and the globals complete.
    assert.deepEqual(await bashComplete(['regmirror', '--plain-http', 'h:5000', 'tags', '--fi']), [
      '--filter',
    ]);
    assert.deepEqual(await bashComplete(['regmirror', 'tags', '--deb']), ['--debug']);
    assert.deepEqual(await bashComplete(['regmirror', 'auth', 'check', '--on']), ['--only']);
    // Hidden (refused) options are not offered.
    assert.deepEqual(await bashComplete(['regmirror', 'plan', '--audit']), []);
  });

  test('fish: the same answers from complete -C', async () => {
    const complete = async (line: string) => {
      const { stdout } = await runCommand('fish', [
        '--no-config',
        '-c',
        `source ${scripts.fish}; complete -C '${line}'`,
      ]);
      return stdout
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]);
    };
    assert.deepEqual((await complete('regmirror c')).sort(), ['check', 'completion', 'copy']);
    assert.deepEqual(await complete('regmirror check --fa'), ['--fail-on']);
    assert.deepEqual((await complete('regmirror check --format ')).sort(), ['json', 'markdown', 'table']);
    assert.deepEqual(await complete('regmirror auth '), ['check']);
    assert.deepEqual(await complete('regmirror tags --fi'), ['--filter']);
  });

  test('zsh: the script loads, registers _regmirror for regmirror, and defines a function per command', async () => {
    const { stdout } = await runCommand('zsh', [
      '-f',
      '-c',
      `autoload -Uz compinit && compinit -u -D && source ${scripts.zsh} && print -r -- $_comps[regmirror] && whence -w _regmirror_check _regmirror_auth_check _regmirror_copy`,
    ]);
    assert.deepEqual(stdout.toString('utf8').trim().split('\n'), [
      '_regmirror',
      '_regmirror_check: function',
      '_regmirror_auth_check: function',
      '_regmirror_copy: function',
    ]);
  });
});

describe('skopeo and crane habits', () => {
  test('docker:// is accepted, dropped, and said', async () => {
    const res = await world.runCli(['copy', `docker://${src}`, `docker://${world.open.host}/cli/transport`]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /note: source "docker:\/\/[^"]+": "docker:\/\/" dropped/);
    assert.match(res.stderr, /note: target "docker:\/\/[^"]+": "docker:\/\/" dropped/);
    assert.ok((await skopeoInspectRaw(`${world.open.host}/cli/transport:1.4.2`)).equals(image.bytes));
  });

  test('tags: version order (1.9.0 before 1.10.0, versions after other tags)', async () => {
    const res = await world.runCli(['tags', `${world.source.host}/cli/tags`]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(res.stdout.trim().split('\n'), TAG_ORDER);
    assert.match(res.stderr, /^7 tags in /m);
  });

  test("tags --filter: the config's tag rules, with the config's error messages", async () => {
    const res = await world.runCli([
      'tags',
      `${world.source.host}/cli/tags`,
      '--filter',
      '{"semver": ">=1.2.0", "latest": 2}',
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout).tags, ['1.10.0', 'v2.0.0']);
    assert.match(res.stderr, /2 tags of 7 selected/);
    world.resetCounts();
    const bad = await world.runCli(['tags', `${world.source.host}/cli/tags`, '--filter', '{"semvr": ">=1"}']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--filter is invalid: semvr: unknown key \(did you mean "semver"\?\)/);
    const notJson = await world.runCli(['tags', `${world.source.host}/cli/tags`, '--filter', 'semver=1']);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /--filter: invalid JSON/);
    assert.equal(requests(), 0);
  });

  test('digest: the index digest, or one platform', async () => {
    const res = await world.runCli(['digest', src]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, `${image.digest}\n`);
    const arm = await world.runCli(['digest', '--platform', 'linux/arm64', src]);
    assert.equal(arm.stdout, `${image.children[1]!.digest}\n`);
  });

  test('inspect --raw: the exact bytes skopeo sees; --config: the config blob of a platform', async () => {
    const raw = await runCommand(
      process.execPath,
      [join(process.cwd(), 'bin/regmirror.js'), 'inspect', '--raw', src],
      {
        env: { PATH: process.env.PATH ?? '', HOME: world.homeDir, DOCKER_CONFIG: world.dockerConfigDir },
      },
    );
    assert.ok(raw.stdout.equals(await skopeoInspectRaw(src, { creds: world.source.skopeoCreds! })));
    assert.ok(raw.stdout.equals(image.bytes));

    const amd64 = image.children[0]!;
    const config = amd64.blobs.find((b) => b.mediaType.includes('config'))!;
    const res = await world.runCli(['inspect', '--config', '--raw', '--platform', 'linux/amd64', src]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, config.bytes.toString('utf8'));
    const pretty = await world.runCli(['inspect', '--config', '--platform', 'linux/amd64', src]);
    assert.deepEqual(JSON.parse(pretty.stdout), JSON.parse(config.bytes.toString('utf8')));

    const ambiguous = await world.runCli(['inspect', '--config', src]);
    assert.equal(ambiguous.code, 2);
    assert.match(
      ambiguous.stderr,
      /index of 2 platforms \(linux\/amd64, linux\/arm64\/v8\); --config needs --platform/,
    );
  });

  test('copy --platform: the target gets an index of that platform (and its attestation), said on stderr', async () => {
    const res = await world.runCli([
      'copy',
      '--platform',
      'linux/arm64',
      src,
      `${world.open.host}/cli/arm`,
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as { digest: string; filteredDigest: string; platforms: string[] };
    assert.equal(report.digest, image.digest);
    assert.notEqual(report.filteredDigest, image.digest);
    assert.deepEqual(report.platforms, ['linux/arm64']);
    assert.match(
      res.stderr,
      /platforms linux\/arm64 only: the targets got a new index sha256:[0-9a-f]{12}, not the source index/,
    );
    const index = JSON.parse(
      (await skopeoInspectRaw(`${world.open.host}/cli/arm:1.4.2`)).toString('utf8'),
    ) as {
      manifests: { digest: string }[];
    };
    assert.deepEqual(
      index.manifests.map((m) => m.digest),
      [image.children[1]!.digest, image.children[3]!.digest],
    );
    const bad = await world.runCli(['copy', '--platform', 'linux', src, `${world.open.host}/cli/arm`]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--platform: "linux" is not a platform/);
  });
});

test('auth check names where credentials come from, truthfully', async () => {
  const config = await writeConfig('auth.json', {
    registries: {
      [world.open.host]: { credentials: 'anonymous' },
      [world.basic.host]: { credentials: { env: { username: 'BASIC_USER', password: 'BASIC_PASSWORD' } } },
    },
    mirrors: [
      {
        source: `${world.source.host}/cli/app`,
        targets: [`${world.open.host}/cli/auth`, `${world.basic.host}/cli/auth`],
      },
    ],
  });
  const res: CliResult = await world.runCli(['auth', 'check', '--config', config, '--json'], {
    env: { BASIC_USER: 'bob' },
  });
  assert.equal(res.code, 2, res.stderr);
  const checks = (
    JSON.parse(res.stdout) as { checks: { registry: string; credentials: string; ok: boolean }[] }
  ).checks;
  const label = (host: string) => checks.find((c) => c.registry === host)!.credentials;
  assert.equal(label(world.open.host), 'anonymous (configured)');
  assert.equal(
    label(world.basic.host),
    'environment variables BASIC_USER, BASIC_PASSWORD (BASIC_PASSWORD is not set)',
  );
  assert.match(label(world.source.host), /^docker config .*config\.json$/);
  assert.match(res.stderr, /anonymous \(configured\)/);
  assert.match(
    res.stderr,
    /environment variable BASIC_PASSWORD \(password for 127\.0\.0\.1:\d+\) is not set/,
  );
  assert.ok(!res.stderr.includes('none (anonymous)'));
  assert.ok(!res.stdout.includes('no credentials found'));
});
