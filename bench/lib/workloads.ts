// The workloads: what is seeded, how each tool is run on it, what is counted. Every measured run gets
// fresh target registries (see lab.ts for why); the source registry lives for the whole benchmark.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { deterministicChunks } from '../../test/harness/deterministic-bytes.js';
import {
  type Corpus,
  type HugeImage,
  MiB,
  mergeCorpora,
  seedHuge,
  seedMigration,
  seedMixed,
  seedSmall,
  tagCount,
} from './corpus.js';
import { countRun, resetSides, type SideCounts } from './counts.js';
import { type Diagnosis, diagnose } from './diagnose.js';
import { type Side, scratchDir, startTargets, type TargetSet } from './lab.js';
import { median } from './stats.js';
import {
  type RunOptions,
  regmirrorCopy,
  regmirrorSync,
  skopeoCopy,
  skopeoSync,
  type ToolRun,
} from './tools.js';

export type Tool = 'regmirror' | 'skopeo' | 'curl';

export const WORKLOAD_IDS = [
  'mixed',
  'small',
  'noop',
  'migration',
  'migration-noop',
  'huge',
  'throttle',
] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

export interface Sample {
  tool: Tool;
  /** A variant of the tool's run (throttle: "baseline" / "throttled"; diagnosis what-ifs). */
  variant?: string;
  rep: number;
  run: ToolRun;
  counts?: SideCounts;
  /** Per target: seconds from the run's start to its last manifest PUT (throttle workload). */
  targetDoneSeconds?: number[];
}

export interface WorkloadResult {
  id: WorkloadId;
  title: string;
  tags: number;
  targets: number;
  distinctBlobBytes: number;
  samples: Sample[];
  notes: string[];
  diagnoses: Diagnosis[];
}

export interface Settings {
  reps: number;
  /** Repetitions at migration scale (one run is minutes long; request counts do not vary). */
  migrationReps: number;
  /** skopeo repetitions at migration scale. */
  skopeoMigrationReps: number;
  migrationTags: number;
  smallTags: number;
  hugeBytes: number;
  bigLayerBytes: number;
  diagnose: boolean;
  skopeo: boolean;
  log: (line: string) => void;
}

/** The source and the corpora seeded into it so far (each seeded once, when a workload first needs it). */
export class Bench {
  private corpora = new Map<string, Promise<Corpus>>();
  constructor(
    readonly source: Side,
    readonly settings: Settings,
  ) {}

  private corpus(key: string, seed: () => Promise<Corpus>): Promise<Corpus> {
    let p = this.corpora.get(key);
    if (!p) {
      const started = Date.now();
      this.settings.log(`  seeding ${key}…`);
      p = seed().then((c) => {
        this.settings.log(
          `  seeded ${key}: ${tagCount(c)} tags, ${c.blobSizes.size} blobs in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        return c;
      });
      this.corpora.set(key, p);
    }
    return p;
  }

  mixed(): Promise<Corpus> {
    return this.corpus('mixed', () => seedMixed(this.source, this.settings.bigLayerBytes));
  }
  small(): Promise<Corpus> {
    return this.corpus('small', () => seedSmall(this.source, this.settings.smallTags));
  }
  migration(): Promise<Corpus> {
    return this.corpus('migration', () => seedMigration(this.source, this.settings.migrationTags));
  }
  huge(): Promise<HugeImage> {
    return this.corpus('huge', () => seedHuge(this.source, this.settings.hugeBytes)) as Promise<HugeImage>;
  }
}

const TIMEOUT_MS = 15 * 60_000;

function problemsOf(run: ToolRun, counts: SideCounts | undefined): string[] {
  const out = [...run.problems];
  if (counts && counts.targets.throttled === 0 && run.report !== undefined) {
    const failed = JSON.stringify(run.report).match(/"status":"failed"/g)?.length ?? 0;
    if (failed > 0) out.push(`${failed} target results failed`);
  }
  return out;
}

type Runner = (targets: Side[], opts: RunOptions) => Promise<ToolRun>;

async function measure(
  b: Bench,
  tool: Tool,
  rep: number,
  corpus: Corpus,
  targets: Side[],
  runner: Runner,
  opts: RunOptions = { timeoutMs: TIMEOUT_MS },
  variant?: string,
): Promise<Sample> {
  resetSides([b.source, ...targets]);
  const run = await runner(targets, opts);
  const counts = countRun(b.source, targets, corpus.blobSizes);
  run.problems = problemsOf(run, counts);
  run.ok = run.problems.length === 0;
  b.settings.log(
    `    ${tool}${variant ? ` (${variant})` : ''} rep ${rep}: ${run.wallSeconds.toFixed(2)} s, ` +
      `${(run.maxRssKiB / 1024).toFixed(0)} MiB, ${counts.source.total} source + ${counts.targets.total} target requests, ` +
      `machine CPU ${(run.machineBusy * 100).toFixed(0)} % busy` +
      (run.ok ? '' : ` — PROBLEMS: ${run.problems.join('; ').slice(0, 400)}`),
  );
  return { tool, rep, run, counts, ...(variant ? { variant } : {}) };
}

async function withTargets<T>(count: number, fn: (set: TargetSet) => Promise<T>): Promise<T> {
  const set = await startTargets(count);
  try {
    return await fn(set);
  } finally {
    await set.stop();
  }
}

/** Alternate which tool goes first from one repetition to the next, so drift hurts both alike. */
function order<T>(rep: number, a: T, b: T): T[] {
  return rep % 2 === 1 ? [a, b] : [b, a];
}

function names(sides: Side[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const s of sides) {
    m.set(s.host, s.name);
    if (s.tokenServer) m.set(s.tokenServer.url.replace(/^https?:\/\//, ''), s.name);
  }
  return m;
}

function tokenOrigins(sides: Side[]): string[] {
  return sides.flatMap((s) => (s.tokenServer ? [s.tokenServer.url] : []));
}

export interface DiagnosisVariant {
  label: string;
  extraArgs?: string[];
  configDefaults?: Record<string, unknown>;
  /** Added to every request at every proxy, source included (a registry across a network). */
  latencyMs?: number;
}

/** Diagnosis runs (probe + CPU profile) on fresh targets, one per variant; not part of the timed samples. */
async function diagnoseRuns(
  b: Bench,
  corpus: Corpus,
  targetCount: number,
  variants: DiagnosisVariant[],
  /** Receives the filled targets of the last variant, before they are stopped. */
  keep?: (targets: Side[]) => Promise<void>,
): Promise<Diagnosis[]> {
  const out: Diagnosis[] = [];
  for (const [i, v] of variants.entries()) {
    await withTargets(targetCount, async ({ targets }) => {
      const sides = [b.source, ...targets];
      const latency = v.latencyMs;
      if (latency) for (const s of sides) s.throttle = () => ({ delayMs: latency });
      try {
        const run = await regmirrorSync(corpus, b.source, targets, {
          timeoutMs: TIMEOUT_MS,
          diagnose: true,
          ...(v.extraArgs ? { extraArgs: v.extraArgs } : {}),
          ...(v.configDefaults ? { configDefaults: v.configDefaults } : {}),
        });
        b.settings.log(
          `    diagnosis run (${v.label}): ${run.wallSeconds.toFixed(2)} s, machine CPU ${(run.machineBusy * 100).toFixed(0)} % busy` +
            (run.ok ? '' : ` — PROBLEMS: ${run.problems.join('; ').slice(0, 300)}`),
        );
        if (run.probeFile) {
          const d = await diagnose(
            v.label,
            run.probeFile,
            run.cpuProfDir,
            run.report,
            tokenOrigins(sides),
            names(sides),
          );
          d.machineBusy = run.machineBusy;
          if (latency) d.latencyMs = latency;
          out.push(d);
        }
      } catch (err) {
        b.settings.log(`    diagnosis of ${v.label} failed: ${String(err)}`);
      } finally {
        for (const s of sides) s.throttle = undefined;
      }
      if (keep && i === variants.length - 1) await keep(targets);
    });
  }
  return out;
}

/** The config-driven workloads: a corpus to three fresh targets, regmirror sync vs skopeo sync. */
async function syncWorkload(
  b: Bench,
  id: WorkloadId,
  title: string,
  corpus: Corpus,
  targetCount: number,
  reps: number,
  skopeoReps: number,
): Promise<WorkloadResult> {
  const samples: Sample[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    const tools: Tool[] =
      b.settings.skopeo && rep <= skopeoReps ? order(rep, 'regmirror', 'skopeo') : ['regmirror'];
    for (const tool of tools) {
      samples.push(
        await withTargets(targetCount, ({ targets }) =>
          measure(b, tool, rep, corpus, targets, (t, o) =>
            tool === 'regmirror' ? regmirrorSync(corpus, b.source, t, o) : skopeoSync(corpus, b.source, t, o),
          ),
        ),
      );
    }
  }
  return {
    id,
    title,
    tags: tagCount(corpus),
    targets: targetCount,
    distinctBlobBytes: [...corpus.blobSizes.values()].reduce((n, s) => n + s, 0),
    samples,
    notes: [],
    diagnoses: [],
  };
}

/** No-op re-sync: targets filled once (by regmirror, unmeasured), then each tool syncs again. */
async function noopWorkload(
  b: Bench,
  id: WorkloadId,
  title: string,
  corpus: Corpus,
  targetCount: number,
  reps: number,
  skopeoReps: number,
  filled?: Side[],
): Promise<WorkloadResult> {
  const samples: Sample[] = [];
  const diagnoses: Diagnosis[] = [];
  const measureOn = async (targets: Side[]) => {
    if (!filled) {
      b.settings.log('    filling the targets (regmirror sync, not measured)…');
      const fill = await regmirrorSync(corpus, b.source, targets, { timeoutMs: TIMEOUT_MS });
      if (!fill.ok) throw new Error(`${id}: filling the targets failed: ${fill.problems.join('; ')}`);
    }
    for (let rep = 1; rep <= reps; rep++) {
      const tools: Tool[] =
        b.settings.skopeo && rep <= skopeoReps ? order(rep, 'regmirror', 'skopeo') : ['regmirror'];
      for (const tool of tools) {
        samples.push(
          await measure(b, tool, rep, corpus, targets, (t, o) =>
            tool === 'regmirror' ? regmirrorSync(corpus, b.source, t, o) : skopeoSync(corpus, b.source, t, o),
          ),
        );
      }
    }
    if (b.settings.diagnose) {
      const run = await regmirrorSync(corpus, b.source, targets, { timeoutMs: TIMEOUT_MS, diagnose: true });
      if (run.probeFile) {
        diagnoses.push(
          await diagnose(
            `${id}`,
            run.probeFile,
            run.cpuProfDir,
            run.report,
            tokenOrigins([b.source, ...targets]),
            names([b.source, ...targets]),
          ),
        );
      }
    }
  };
  if (filled) await measureOn(filled);
  else await withTargets(targetCount, ({ targets }) => measureOn(targets));
  return {
    id,
    title,
    tags: tagCount(corpus),
    targets: targetCount,
    distinctBlobBytes: [...corpus.blobSizes.values()].reduce((n, s) => n + s, 0),
    samples,
    notes: [],
    diagnoses,
  };
}

/** A file with the layer's bytes, for curl. */
async function writeLayerFile(huge: HugeImage, dir: string): Promise<string> {
  const file = join(dir, 'layer.bin');
  const out = createWriteStream(file);
  for (const chunk of deterministicChunks(huge.layerSize, huge.layerSeed)) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return file;
}

/** Open an upload session on `side` (token first for Bearer), for curl to PUT into. */
async function openSession(side: Side, repo: string): Promise<{ url: string; auth: string[] }> {
  let authorization: string | undefined;
  if (side.auth === 'bearer' && side.tokenServer && side.creds) {
    const url = new URL(side.tokenServer.realm);
    url.searchParams.set('service', side.tokenServer.service);
    url.searchParams.set('scope', `repository:${repo}:pull,push`);
    const basic = Buffer.from(`${side.creds.username}:${side.creds.password}`).toString('base64');
    const res = await fetch(url, { headers: { authorization: `Basic ${basic}` } });
    const body = (await res.json()) as { token?: string };
    authorization = `Bearer ${body.token}`;
  } else if (side.creds) {
    authorization = `Basic ${Buffer.from(`${side.creds.username}:${side.creds.password}`).toString('base64')}`;
  }
  const res = await fetch(`http://${side.host}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: authorization ? { authorization } : {},
  });
  await res.arrayBuffer();
  const location = res.headers.get('location');
  if (res.status !== 202 || !location)
    throw new Error(`curl floor: POST to ${side.name} answered ${res.status}`);
  return {
    url: new URL(location, `http://${side.host}/`).toString(),
    auth: authorization ? ['-H', `Authorization: ${authorization}`] : [],
  };
}

function curlPut(url: string, auth: string[], file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'curl',
      [
        '-sS',
        '--fail',
        '-o',
        '/dev/null',
        '-X',
        'PUT',
        '-H',
        'Content-Type: application/octet-stream',
        '-H',
        'Expect:',
        ...auth,
        '-T',
        file,
        url,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`curl exited ${code}: ${err}`))));
  });
}

/** The floor: three parallel monolithic uploads (POST, then one streamed PUT with curl) of the layer. */
async function curlFloor(
  b: Bench,
  huge: HugeImage,
  file: string,
  rep: number,
  targets: Side[],
): Promise<Sample> {
  resetSides([b.source, ...targets]);
  const repo = 'bench/huge';
  const startedAt = Date.now();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    targets.map(async (t) => {
      const session = await openSession(t, repo);
      const sep = session.url.includes('?') ? '&' : '?';
      await curlPut(`${session.url}${sep}digest=${encodeURIComponent(huge.layerDigest)}`, session.auth, file);
    }),
  );
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  b.settings.log(`    curl floor rep ${rep}: ${wallSeconds.toFixed(2)} s`);
  return {
    tool: 'curl',
    rep,
    run: {
      ok: true,
      problems: [],
      wallSeconds,
      maxRssKiB: Number.NaN,
      cpuSeconds: Number.NaN,
      machineBusy: Number.NaN,
      lab: { registries: Number.NaN, proxies: Number.NaN },
      startedAt,
      endedAt: Date.now(),
    },
    counts: countRun(b.source, targets, huge.blobSizes),
  };
}

async function hugeWorkload(b: Bench): Promise<WorkloadResult> {
  const huge = await b.huge();
  const dir = await scratchDir('bench-layer');
  b.settings.log('    writing the layer to a file for curl…');
  const file = await writeLayerFile(huge, dir);
  const samples: Sample[] = [];
  for (let rep = 1; rep <= b.settings.reps; rep++) {
    const tools: Tool[] = b.settings.skopeo ? ['regmirror', 'skopeo', 'curl'] : ['regmirror', 'curl'];
    for (const tool of rep % 2 === 1 ? tools : [...tools].reverse()) {
      samples.push(
        await withTargets(3, ({ targets }) =>
          tool === 'curl'
            ? curlFloor(b, huge, file, rep, targets)
            : measure(b, tool, rep, huge, targets, (t, o) =>
                tool === 'regmirror'
                  ? regmirrorCopy('bench/huge', 'v1', b.source, t, o)
                  : skopeoCopy('bench/huge', 'v1', b.source, t, o),
              ),
        ),
      );
    }
  }
  return {
    id: 'huge',
    title: `a ${(b.settings.hugeBytes / MiB / 1024).toFixed(huge.layerSize >= 1024 * MiB ? 0 : 2)} GiB layer → 3 targets`,
    tags: 1,
    targets: 3,
    distinctBlobBytes: [...huge.blobSizes.values()].reduce((n, s) => n + s, 0),
    samples,
    notes: [],
    diagnoses: [],
  };
}

/** While the window is open, the first target answers 30 % of its requests with 429 and `Retry-After: 1`. */
const THROTTLE_SHARE = 0.3;
const THROTTLE_WINDOW_MS = 10_000;

/** Seconds from `start` to each target's last manifest PUT (its last tag). */
function doneTimes(targets: Side[], start: number): number[] {
  return targets.map((t) => {
    const puts = t.arrivals.filter(
      (a) => a.kind === 'manifest' && a.method === 'PUT' && a.status === undefined,
    );
    return puts.length === 0 ? Number.NaN : (Math.max(...puts.map((a) => a.at)) - start) / 1000;
  });
}

async function throttleWorkload(b: Bench): Promise<WorkloadResult> {
  const corpus = await b.small();
  const samples: Sample[] = [];
  for (let rep = 1; rep <= b.settings.reps; rep++) {
    for (const variant of order(rep, 'baseline', 'throttled')) {
      samples.push(
        await withTargets(3, async ({ targets }) => {
          const throttled = targets[0]!;
          let opened: number | undefined;
          let seq = 0;
          if (variant === 'throttled') {
            throttled.throttle = (req) => {
              opened ??= Date.now();
              if (Date.now() - opened > THROTTLE_WINDOW_MS) return undefined;
              // Every tenth request in a fixed pattern of three: 30 %, the same on every run.
              seq++;
              if (seq % 10 === 3 || seq % 10 === 6 || seq % 10 === 9) {
                return req.kind === 'ping' ? undefined : { status: 429, headers: { 'retry-after': '1' } };
              }
              return undefined;
            };
          }
          const s = await measure(
            b,
            'regmirror',
            rep,
            corpus,
            targets,
            (t, o) => regmirrorSync(corpus, b.source, t, o),
            { timeoutMs: TIMEOUT_MS },
            variant,
          );
          s.targetDoneSeconds = doneTimes(targets, s.run.startedAt);
          b.settings.log(
            `      per target done at ${s.targetDoneSeconds.map((x) => x.toFixed(2)).join(' / ')} s; 429 answered: ${s.counts?.targets.throttled ?? 0}`,
          );
          return s;
        }),
      );
    }
  }
  return {
    id: 'throttle',
    title: `throttling: ${corpus.repos[0]!.tags.length} small tags → 3 targets, t1 answers ${THROTTLE_SHARE * 100} % with 429 (Retry-After: 1) for ${THROTTLE_WINDOW_MS / 1000} s`,
    tags: tagCount(corpus),
    targets: 3,
    distinctBlobBytes: [...corpus.blobSizes.values()].reduce((n, s) => n + s, 0),
    samples,
    notes: [],
    diagnoses: [],
  };
}

const SMALL_VARIANTS: DiagnosisVariant[] = [
  { label: 'small' },
  { label: 'small -c 16', extraArgs: ['-c', '16'] },
  { label: 'small, config concurrency 16', configDefaults: { concurrency: 16 } },
  { label: 'small +100 ms', latencyMs: 100 },
  { label: 'small +100 ms, config concurrency 16', latencyMs: 100, configDefaults: { concurrency: 16 } },
];

/** Runs one workload; `migration` also measures `migration-noop` on its filled target when asked to. */
export async function runWorkload(
  b: Bench,
  id: WorkloadId,
  also: WorkloadId[] = [],
): Promise<WorkloadResult[]> {
  const { reps, migrationReps, skopeoMigrationReps } = b.settings;
  switch (id) {
    case 'mixed': {
      const corpus = await b.mixed();
      const title = `mixed: 3 multi-arch repos (12 tags) + one image with a ${b.settings.bigLayerBytes / MiB} MiB layer (4 tags) → 3 targets`;
      return [await syncWorkload(b, id, title, corpus, 3, reps, reps)];
    }
    case 'small': {
      const corpus = await b.small();
      const title = `many small: ${tagCount(corpus)} single-platform tags of one repository → 3 targets`;
      const r = await syncWorkload(b, id, title, corpus, 3, reps, reps);
      if (b.settings.diagnose) r.diagnoses.push(...(await diagnoseRuns(b, corpus, 3, SMALL_VARIANTS)));
      return [r];
    }
    case 'noop': {
      const corpus = mergeCorpora(await b.mixed(), await b.small());
      return [
        await noopWorkload(
          b,
          id,
          `no-op re-sync of the ${tagCount(corpus)} tags above → 3 targets`,
          corpus,
          3,
          reps,
          reps,
        ),
      ];
    }
    case 'migration': {
      const corpus = await b.migration();
      const title = `migration scale: one repository with ${tagCount(corpus)} small tags → 1 target (Bearer)`;
      const r = await syncWorkload(
        b,
        id,
        title,
        corpus,
        1,
        migrationReps,
        Math.min(migrationReps, skopeoMigrationReps),
      );
      const out = [r];
      const noopTitle = `no-op re-sync of the ${tagCount(corpus)} migration tags → 1 target`;
      const noop = (filled?: Side[]) =>
        noopWorkload(b, 'migration-noop', noopTitle, corpus, 1, reps, skopeoMigrationReps, filled);
      if (b.settings.diagnose) {
        // The diagnosis run fills a target; the no-op re-sync is measured on it.
        r.diagnoses.push(
          ...(await diagnoseRuns(b, corpus, 1, [{ label: 'migration' }], async (targets) => {
            if (also.includes('migration-noop')) out.push(await noop(targets));
          })),
        );
      } else if (also.includes('migration-noop')) {
        out.push(await noop());
      }
      return out;
    }
    case 'migration-noop': {
      const corpus = await b.migration();
      const title = `no-op re-sync of the ${tagCount(corpus)} migration tags → 1 target`;
      return [await noopWorkload(b, id, title, corpus, 1, reps, skopeoMigrationReps)];
    }
    case 'huge':
      return [await hugeWorkload(b)];
    case 'throttle':
      return [await throttleWorkload(b)];
  }
}

export function medianOf(
  r: WorkloadResult,
  tool: Tool,
  variant?: string,
  pick = (s: Sample) => s.run.wallSeconds,
) {
  return median(r.samples.filter((s) => s.tool === tool && s.variant === variant).map(pick));
}

/**
 * What bounds a ratio on this machine: the CPU the registries and the proxies spent in regmirror's runs
 * must be spent by any tool that sends the same requests, and the machine has `cores` CPUs, so no tool
 * sending them can finish sooner than (registries + proxies) ÷ cores.
 */
export function floorSeconds(r: WorkloadResult, cores: number): number {
  return medianOf(r, 'regmirror', undefined, (s) => s.run.lab.registries + s.run.lab.proxies) / cores;
}
