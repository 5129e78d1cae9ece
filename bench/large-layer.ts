// Benchmark: one image with ONE 256 MiB layer, copied by the real CLI from a token-auth registry to
// three targets at once (the release fan-out), with the default chunk size, 4 MiB and 16 MiB.
//
//   bash bench/run.sh                          (setup, then this)
//   node --import tsx bench/large-layer.ts     (when setup has been done already)
//
// Measures the regmirror process with /usr/bin/time -v (peak RSS, wall time), counts at the source's
// proxy how often the layer was served, and checks in the --json report that every target received a
// full upload. Writes bench/RESULTS.md. Exit 1 when peak RSS ≥ 200 MiB, when the source served the
// layer more than once, or when a target did not get the full upload.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { TargetResult } from '../src/copy/result.js';
import { type Endpoint, REPO_ROOT, startWorld, type World } from '../test/harness/fixture.js';
import { type RegistryProxy, startProxy } from '../test/harness/proxy.js';
import { type Registry, startRegistry } from '../test/harness/registry.js';
import { seedLargeBlobImage } from '../test/harness/seed.js';

const MiB = 1024 * 1024;
const LAYER_SIZE = 256 * MiB;
const RSS_LIMIT_MIB = 200;
const TIME_BIN = '/usr/bin/time';
const CLI = join(REPO_ROOT, 'bin', 'regmirror.js');
const RESULTS_PATH = join(REPO_ROOT, 'bench', 'RESULTS.md');
const SOURCE_REPO = 'bench/large';
const TAG = 'v1';

/** `undefined` = the CLI's default (no flag passed). */
const CHUNK_SIZES: Array<string | undefined> = [undefined, '4MiB', '16MiB'];

/** The per-target part of `regmirror copy --json`. */
type TargetReport = TargetResult;

interface CopyReport {
  exitCode: number;
  digest?: string;
  targets: TargetReport[];
  requests: number;
  retries: number;
}

interface Measurement {
  chunkLabel: string;
  wallSeconds: number;
  maxRssKiB: number;
  report: CopyReport;
  sourceLayerGets: number;
  sourceBlobGets: number;
  /** PATCH / PUT-with-body requests each target received for the layer's upload session. */
  uploadRequests: number[];
  problems: string[];
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** "1:02.34" or "0:05.12" or "1:02:03" (h:mm:ss) → seconds. */
function parseElapsed(text: string): number {
  const parts = text.trim().split(':').map(Number);
  return parts.reduce((acc, p) => acc * 60 + p, 0);
}

function parseTimeOutput(text: string): { wallSeconds: number; maxRssKiB: number } {
  const rss = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
  const elapsed = /Elapsed \(wall clock\) time \([^)]*\):\s*([\d:.]+)/.exec(text);
  if (!rss?.[1] || !elapsed?.[1]) throw new Error(`could not read /usr/bin/time -v output:\n${text}`);
  return { maxRssKiB: Number(rss[1]), wallSeconds: parseElapsed(elapsed[1]) };
}

let currentChild: ReturnType<typeof spawn> | undefined;

/** Runs `/usr/bin/time -v node bin/regmirror.js ...args`; returns stdout, stderr and time's report. */
function timedCli(
  world: World,
  args: string[],
  timeFile: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TIME_BIN, ['-v', '-o', timeFile, process.execPath, CLI, ...args], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: world.homeDir,
        DOCKER_CONFIG: world.dockerConfigDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    currentChild = child;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      currentChild = undefined;
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

function uploadWrites(proxy: RegistryProxy, repo: string): number {
  return proxy.requests.filter(
    (r) =>
      r.repo === repo &&
      r.kind === 'upload' &&
      (r.method === 'PATCH' || (r.method === 'PUT' && r.query.has('digest'))),
  ).length;
}

async function measure(
  world: World,
  targets: Array<{ name: string; endpoint: Pick<Endpoint, 'host' | 'proxy'> }>,
  layerDigest: string,
  configSize: number,
  chunk: string | undefined,
  tmp: string,
): Promise<Measurement> {
  const chunkLabel = chunk ?? 'default (8MiB)';
  // A repository of its own per run: every target must take the full upload again.
  const repo = `bench/large-${(chunk ?? 'default').toLowerCase()}`;
  const refs = targets.map((t) => `${t.endpoint.host}/${repo}`);
  const args = ['copy', `${world.source.host}/${SOURCE_REPO}:${TAG}`, ...refs, '--json'];
  if (chunk) args.push('--chunk-size', chunk);
  world.resetCounts();
  for (const t of targets) t.endpoint.proxy.reset();
  log(`\n$ regmirror ${args.join(' ')}`);
  const timeFile = join(tmp, `time-${repo.replace('/', '_')}.txt`);
  const run = await timedCli(world, args, timeFile);
  process.stderr.write(run.stderr.replace(/^(?=.)/gm, '  '));
  const problems: string[] = [];
  const { wallSeconds, maxRssKiB } = parseTimeOutput(await readFile(timeFile, 'utf8'));
  let report: CopyReport;
  try {
    report = JSON.parse(run.stdout) as CopyReport;
  } catch {
    throw new Error(`regmirror exited ${run.code} without a JSON report:\n${run.stdout}\n${run.stderr}`);
  }
  if (run.code !== 0) problems.push(`regmirror exited with code ${run.code}`);
  const expectedBytes = LAYER_SIZE + configSize;
  for (const t of report.targets) {
    if (t.status !== 'copied')
      problems.push(`${t.target}: status ${t.status}${t.error ? ` (${t.error})` : ''}`);
    if (t.blobsUploaded !== 2 || t.blobsMounted !== 0 || t.bytesUploaded !== expectedBytes) {
      problems.push(
        `${t.target}: expected a full upload (2 blobs, ${expectedBytes} bytes, 0 mounted), report says ` +
          `${t.blobsUploaded} blobs, ${t.bytesUploaded} bytes, ${t.blobsMounted} mounted`,
      );
    }
  }
  if (report.targets.length !== targets.length) problems.push(`report has ${report.targets.length} targets`);
  const sourceLayerGets = world.source.proxy.requests.filter(
    (r) => r.method === 'GET' && r.kind === 'blob' && r.path.endsWith(`/blobs/${layerDigest}`),
  ).length;
  if (sourceLayerGets !== 1) problems.push(`the source served the layer ${sourceLayerGets} times (want 1)`);
  if (maxRssKiB / 1024 >= RSS_LIMIT_MIB) {
    problems.push(`peak RSS ${(maxRssKiB / 1024).toFixed(0)} MiB ≥ ${RSS_LIMIT_MIB} MiB`);
  }
  return {
    chunkLabel,
    wallSeconds,
    maxRssKiB,
    report,
    sourceLayerGets,
    sourceBlobGets: world.source.proxy.count({ method: 'GET', kind: 'blob' }),
    uploadRequests: targets.map((t) => uploadWrites(t.endpoint.proxy, repo)),
    problems,
  };
}

/** A Markdown table with padded columns (the layout `biome format` gives Markdown tables). */
function markdownTable(rows: Measurement[]): string {
  const header = [
    'chunk size',
    'wall time',
    'throughput (aggregate)',
    'peak RSS',
    'source blob GETs (layer)',
    'uploads per target',
  ];
  const rightAligned = [false, true, true, true, true, false];
  const body = rows.map((m) => {
    const uploaded = m.report.targets.reduce((n, t) => n + t.bytesUploaded, 0);
    const cells = m.report.targets.map(
      (t, i) =>
        `${t.blobsUploaded} blobs, ${(t.bytesUploaded / MiB).toFixed(1)} MiB, ${m.uploadRequests[i]} req`,
    );
    const perTarget = cells.every((c) => c === cells[0])
      ? `each of ${cells.length}: ${cells[0]}`
      : cells.join(' / ');
    return [
      m.chunkLabel,
      `${m.wallSeconds.toFixed(2)} s`,
      `${(uploaded / MiB / m.wallSeconds).toFixed(1)} MiB/s`,
      `${(m.maxRssKiB / 1024).toFixed(1)} MiB`,
      `${m.sourceBlobGets} (${m.sourceLayerGets})`,
      perTarget,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const row = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAligned[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (rightAligned[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [row(header), rule, ...body.map(row)].join('\n');
}

/** The commit the CLI was built from (`-dirty` when the work tree had changes). */
function revision(): string {
  const res = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : 'unknown';
}

function machineLine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${os.availableParallelism()} CPUs (nproc; ${cpu}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${os.type()} ${os.release()} ${os.arch()}`;
}

async function main(): Promise<number> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    log('regmirror is not built: run `bash bench/run.sh` (or `npm run build`) first.');
    return 1;
  }
  if (!existsSync(TIME_BIN)) {
    log(`${TIME_BIN} is missing: run \`bash scripts/setup.sh\` (Debian package "time").`);
    return 1;
  }
  const started = Date.now();
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`\n${signal}: stopping…`);
    currentChild?.kill('SIGTERM');
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log('starting registries (token-auth source; Basic, open and a second open target)…');
    const world = await startWorld();
    cleanups.push(() => world.stop());
    const extraRegistry: Registry = await startRegistry({ auth: 'none' });
    cleanups.push(() => extraRegistry.stop());
    const extraProxy = await startProxy(extraRegistry.url);
    cleanups.push(() => extraProxy.stop());
    const tmp = await mkdtemp(join(os.tmpdir(), 'regmirror-bench-'));
    cleanups.push(() => rm(tmp, { recursive: true, force: true }));
    const targets = [
      { name: 'basic', endpoint: world.basic },
      { name: 'open', endpoint: world.open },
      { name: 'open-2', endpoint: { host: extraProxy.host, proxy: extraProxy } },
    ];

    log(`seeding ${SOURCE_REPO}:${TAG} with one ${LAYER_SIZE / MiB} MiB layer into the source…`);
    const seedStart = Date.now();
    const image = await seedLargeBlobImage(world.source.seedTarget, SOURCE_REPO, TAG, LAYER_SIZE);
    log(`  seeded ${image.digest} in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

    const results: Measurement[] = [];
    for (const chunk of CHUNK_SIZES) {
      results.push(await measure(world, targets, image.layer.digest, image.config.size, chunk, tmp));
    }

    const table = markdownTable(results);
    const problems = results.flatMap((m) => m.problems.map((p) => `${m.chunkLabel}: ${p}`));
    const doc = [
      '# Benchmark: one 256 MiB layer to three targets',
      '',
      `Run: ${new Date().toISOString()} · Node ${process.version} · regmirror ${revision()} · ${machineLine()}`,
      '',
      'Command: `bash bench/run.sh` (or `node --import tsx bench/large-layer.ts` after setup).',
      '',
      `An OCI image with one ${LAYER_SIZE / MiB} MiB layer (incompressible bytes) in a token-auth`,
      'distribution 2.8 registry is copied by `regmirror copy SRC T1 T2 T3 --json` to three registries',
      'that all need the full upload (Basic auth, no auth, a second no-auth registry); each target',
      'registry sits behind a counting proxy on loopback, all on this one machine. Each run copies to',
      'a fresh repository name, so no blob is already there and nothing can be mounted. The registries',
      'and the proxies (in the benchmark’s own Node process) share the same CPUs as regmirror, so wall',
      'times vary by up to 2× from run to run, peak RSS by about ±10 %.',
      '',
      '- wall time and peak RSS: `/usr/bin/time -v` around the regmirror process (start-up included).',
      '- throughput: bytes uploaded to all three targets together ÷ wall time.',
      '- source blob GETs: blob downloads the source served during the copy (the layer’s own in brackets;',
      '  it must be 1: read once, fanned out).',
      '- uploads per target: blobs and bytes from the `--json` report (config + layer); req = the PATCHes',
      '  and closing PUTs the target’s proxy saw.',
      `- pass criteria: peak RSS < ${RSS_LIMIT_MIB} MiB, layer served once, full upload to every target.`,
      '',
      table,
      '',
      problems.length === 0
        ? 'Result: **pass**.'
        : `Result: **FAIL**\n\n${problems.map((p) => `- ${p}`).join('\n')}`,
      '',
    ].join('\n');
    await writeFile(RESULTS_PATH, doc);
    process.stdout.write(`\n${table}\n\n`);
    log(`written to ${RESULTS_PATH} (total ${((Date.now() - started) / 1000).toFixed(0)} s)`);
    if (problems.length > 0) {
      log(`\nFAIL:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
      return 1;
    }
    log('pass');
    return 0;
  } finally {
    await stopAll();
  }
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
