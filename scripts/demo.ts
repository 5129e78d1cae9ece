// A guided tour of regmirror for a newcomer: real registries on this machine, a real multi-arch image,
// the real CLI. No terminal needed (works in CI), no prompts, about ten seconds.
//
//   bash scripts/demo.sh                      (installs what is missing, builds, then runs this)
//   node --import tsx scripts/demo.ts         (when setup has been done already)
//
// Exit code: 0 when every step worked, 1 when one failed, 130 on Ctrl-C. Everything started here is
// stopped again in every case.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Endpoint, REPO_ROOT, startWorld, type World } from '../test/harness/fixture.js';
import { type SeededImage, seedImage } from '../test/harness/seed.js';
import { skopeoInspectRaw } from '../test/harness/skopeo.js';

const CLI = join(REPO_ROOT, 'bin', 'regmirror.js');
const REPO = 'demo/hello';
const TAG = 'v1';

// ---------------------------------------------------------------------------------------------------
// Presentation

const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR && !process.env.CI;
const paint = (code: string) => (text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');
const cyan = paint('36');

let stepNumber = 0;
function step(title: string, explanation: string): void {
  stepNumber++;
  console.log(`\n${bold(`${stepNumber}. ${title}`)}`);
  console.log(dim(`   ${explanation}`));
}

function say(line = ''): void {
  console.log(line === '' ? '' : `   ${line}`);
}

function table(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  say(bold(line(headers)));
  for (const row of rows) say(line(row));
}

function short(digest: string): string {
  return digest.length > 23 ? `${digest.slice(0, 19)}…${digest.slice(-4)}` : digest;
}

// ---------------------------------------------------------------------------------------------------
// Running the real CLI, streaming what it prints

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let currentChild: ReturnType<typeof spawn> | undefined;

/** `node bin/regmirror.js ...args`, printed as `$ regmirror ...`, its output shown as it comes. */
function regmirror(world: World, args: string[]): Promise<Run> {
  console.log(`\n   ${cyan(`$ regmirror ${args.join(' ')}`)}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      // Only what the CLI needs: the world's logins (config.json) and an empty HOME, so nothing from
      // this machine's own Docker setup takes part.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: world.homeDir,
        DOCKER_CONFIG: world.dockerConfigDir,
        ...(process.env.CI && { CI: process.env.CI }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    currentChild = child;
    let stdout = '';
    let stderr = '';
    // Indented like the rest of the tour; partial lines are held until their newline arrives.
    const relay = (sink: NodeJS.WriteStream, collect: (s: string) => void) => {
      let pending = '';
      return {
        data(chunk: string) {
          collect(chunk);
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const l of lines) sink.write(`   ${l}\n`);
        },
        flush() {
          if (pending !== '') sink.write(`   ${pending}\n`);
          pending = '';
        },
      };
    };
    const out = relay(process.stdout, (s) => {
      stdout += s;
    });
    // Its stderr (the human summary) goes to our stdout too, so the tour reads in order even when
    // stdout and stderr are captured separately (CI logs).
    const err = relay(process.stdout, (s) => {
      stderr += s;
    });
    child.stdout.setEncoding('utf8').on('data', out.data);
    child.stderr.setEncoding('utf8').on('data', err.data);
    child.on('error', (e) => {
      currentChild = undefined;
      reject(e);
    });
    child.on('close', (code, signal) => {
      currentChild = undefined;
      out.flush();
      err.flush();
      const exit = code ?? (signal ? 128 : 1);
      say(dim(`(exit code ${exit})`));
      resolve({ code: exit, stdout, stderr });
    });
  });
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

async function expectSuccess(run: Promise<Run>, what: string): Promise<Run> {
  const result = await run;
  expect(result.code === 0, `${what} exited with code ${result.code}`);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// The tour

const isAttestation = (child: SeededImage['children'][number]): boolean =>
  child.descriptor.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';

function describeImage(image: SeededImage, ref: string): void {
  const attestations = image.children.filter(isAttestation).length;
  const platforms = image.children.length - attestations;
  say(`${green('✓')} pushed ${bold(ref)}  ${image.digest}`);
  say(`  an OCI index with ${platforms} platform images and ${attestations} attestation manifests:`);
  for (const child of image.children) {
    const p = child.descriptor.platform;
    const kind = isAttestation(child)
      ? 'buildx attestation (provenance/SBOM)'
      : `${p?.os}/${p?.architecture}${p?.variant ? `/${p.variant}` : ''}`;
    say(`    - ${kind.padEnd(36)} ${short(child.digest)}`);
  }
  const bytes = image.blobs.reduce((n, b) => n + b.size, 0);
  say(`  ${image.manifests.length} manifests, ${image.blobs.length} blobs (${bytes} bytes)`);
}

async function digestSeenBySkopeo(ref: string, endpoint: Endpoint): Promise<string> {
  const raw = await skopeoInspectRaw(ref, endpoint.skopeoCreds ? { creds: endpoint.skopeoCreds } : {});
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

async function tour(world: World): Promise<void> {
  const { source, basic, open } = world;
  const src = `${source.host}/${REPO}:${TAG}`;
  const targets = [
    { name: 'basic', endpoint: basic, repo: `${basic.host}/${REPO}` },
    { name: 'open', endpoint: open, repo: `${open.host}/${REPO}` },
  ];
  table(
    ['role', 'address', 'auth'],
    [
      ['source', source.host, 'Bearer tokens from a token server (like Docker Hub, Quay, ECR Public)'],
      ['target 1', basic.host, 'HTTP Basic (htpasswd), like a self-hosted registry'],
      ['target 2', open.host, 'none'],
    ],
  );
  say();
  say(`Logins for all three are in ${world.dockerConfigDir}/config.json;`);
  say('regmirror reads them like docker does (DOCKER_CONFIG).');

  step(
    'Push a sample multi-arch image to the source',
    'What `docker buildx build --platform linux/amd64,linux/arm64 --push` would produce.',
  );
  const image = await seedImage(source.seedTarget, REPO, TAG, 'oci-index-with-attestations', {
    seed: 'regmirror-demo',
    layerSize: 1024 * 1024,
  });
  describeImage(image, src);

  step(
    'Copy it to both targets in one command',
    'The source is read once and fanned out; blobs first, then manifests, the tag last.',
  );
  world.resetCounts();
  const copy = await expectSuccess(regmirror(world, ['copy', src, ...targets.map((t) => t.repo)]), 'copy');
  const sourceBlobGets = source.proxy.count({ method: 'GET', kind: 'blob' });
  say();
  say(
    `The source served ${sourceBlobGets} blob download(s) for ${image.blobs.length} blobs and ${targets.length} targets.`,
  );
  expect(/✓/.test(copy.stderr), 'regmirror did not report a copied target');

  step('Look at what a target now holds', '`regmirror inspect` shows the manifest tree of any reference.');
  await expectSuccess(regmirror(world, ['inspect', `${basic.host}/${REPO}:${TAG}`]), 'inspect');

  step(
    'Check with an independent tool (skopeo) that the targets hold the same image',
    'Same digest = byte-identical manifests, so signatures and attestations stay valid.',
  );
  const expected = await digestSeenBySkopeo(src, source);
  const rows: string[][] = [['source', src, short(expected), '(the original)']];
  let allIdentical = expected === image.digest;
  for (const t of targets) {
    const digest = await digestSeenBySkopeo(`${t.repo}:${TAG}`, t.endpoint);
    const same = digest === expected;
    allIdentical &&= same;
    rows.push([t.name, `${t.repo}:${TAG}`, short(digest), same ? green('yes') : red('NO')]);
  }
  say();
  table(['registry', 'reference', 'digest', 'identical'], rows);
  expect(allIdentical, 'a target does not hold the source digest');

  step(
    'Run the same copy again',
    'Nothing changed, so regmirror only compares digests (a manifest HEAD per side, plus a referrers\n   ' +
      'lookup per manifest for signatures added since) and uploads nothing.',
  );
  world.resetCounts();
  const again = await expectSuccess(
    regmirror(world, ['copy', src, ...targets.map((t) => t.repo)]),
    'the second copy',
  );
  const writes = targets.reduce(
    (n, t) =>
      n +
      t.endpoint.proxy.requests.filter(
        (r) => r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH',
      ).length,
    0,
  );
  const reads = source.proxy.count({ method: 'GET', kind: 'blob' });
  say();
  say(`Requests that wrote to a target: ${writes}; blobs read from the source: ${reads}.`);
  expect(
    (again.stderr.match(/: up to date$/gm) ?? []).length === targets.length,
    'the second copy did not report every target as already up to date',
  );
  expect(writes === 0 && reads === 0, 'the second copy was not a no-op');
}

// ---------------------------------------------------------------------------------------------------
// Setup, teardown, signals

let world: World | undefined;
let stopping: Promise<void> | undefined;
/** Set by Ctrl-C / SIGTERM: the tour stops at the next step, everything is stopped, exit 130 / 143. */
let interrupted: NodeJS.Signals | undefined;

function stopAll(): Promise<void> {
  stopping ??= (async () => {
    currentChild?.kill('SIGTERM');
    if (world) await world.stop();
  })();
  return stopping;
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) {
    // Second Ctrl-C: leave now (the harness kills the registries on exit).
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  interrupted = signal;
  console.error(`\n${signal}: stopping the demo…`);
  // Make the running step fail fast; main() then stops everything and returns.
  currentChild?.kill('SIGTERM');
  void stopAll().catch(() => {});
}

async function main(): Promise<number> {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    console.error('regmirror is not built yet: run `bash scripts/demo.sh` (or `npm run build`) first.');
    return 1;
  }
  const started = Date.now();
  console.log(bold('regmirror demo: mirror a multi-arch image from one registry to two others'));
  let failed: unknown;
  try {
    step(
      'Start three registries on this machine',
      'Real `docker-registry` (distribution 2.8) processes on loopback ports, each behind a small counting proxy.',
    );
    world = await startWorld();
    if (interrupted) throw new Error('interrupted');
    await tour(world);
  } catch (err) {
    failed = err;
  }
  step('Stop everything', 'Registries, token server and proxies; their temporary storage is deleted.');
  try {
    // A stop begun by a signal finishes first; then a world that was still starting at that moment is
    // stopped too (stopping a world twice is harmless).
    await stopping?.catch(() => {});
    stopping = undefined;
    await stopAll();
    say(`${green('✓')} stopped`);
  } catch (err) {
    failed ??= err;
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (interrupted) {
    console.error(`\n${red(`✗ demo interrupted (${interrupted})`)}`);
    return interrupted === 'SIGINT' ? 130 : 143;
  }
  if (failed) {
    console.error(`\n${red('✗ demo failed:')} ${failed instanceof Error ? failed.message : String(failed)}`);
    return 1;
  }
  console.log(`\n${green('✓')} ${bold(`demo finished in ${seconds} s`)}`);
  console.log(
    dim('  Try it yourself: node bin/regmirror.js --help   (copy, inspect, tags; --json for machine output)'),
  );
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
