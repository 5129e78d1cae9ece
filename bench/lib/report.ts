// docs/benchmarks.md: written whole by every run, except the hand-written analysis between the
// ANALYSIS markers, which is carried over from the previous page (re-read it when numbers change).

import { type Check, checkLine } from './checks.js';
import { type Counts, KINDS, type Kind } from './counts.js';
import type { Diagnosis } from './diagnose.js';
import { fmtMiB, fmtRatio, fmtSeconds, max, median, min } from './stats.js';
import {
  floorSeconds,
  medianOf,
  type Sample,
  type Settings,
  type Tool,
  type WorkloadResult,
} from './workloads.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  commit: string;
  skopeo: string;
  loadAtStart: number[];
  loadAtEnd: number[];
}

export interface PageInput {
  results: WorkloadResult[];
  checks: Check[];
  machine: Machine;
  settings: Settings;
  totalSeconds: number;
  /** When the run ended (ISO 8601); `--render` shows the run's own time, not the time of rendering. */
  finishedAt?: string;
  args: string[];
  svgName: string;
  previous: string;
}

const START = '<!-- ANALYSIS:START (hand-written; kept by bench/main.ts across runs) -->';
const END = '<!-- ANALYSIS:END -->';

function table(header: string[], rows: string[][], right: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (right[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function samplesOf(r: WorkloadResult, tool: Tool, variant?: string): Sample[] {
  return r.samples.filter((s) => s.tool === tool && s.variant === variant);
}

function spread(values: number[]): string {
  if (values.length === 0) return '–';
  if (values.length === 1) return fmtSeconds(values[0]!);
  return `${fmtSeconds(median(values))} (${min(values).toFixed(2)}–${max(values).toFixed(2)})`;
}

const GOALS: Record<string, string> = { mixed: '≤ 0.30', small: '≤ 0.15', noop: '≤ 0.10' };

function summaryTable(results: WorkloadResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    if (r.id === 'throttle') continue;
    const rm = samplesOf(r, 'regmirror');
    const sk = samplesOf(r, 'skopeo');
    const cu = samplesOf(r, 'curl');
    const perTag = (ss: Sample[]) =>
      ss.length && ss[0]!.counts
        ? median(ss.map((s) => (s.counts!.source.total + s.counts!.targets.total) / r.tags)).toFixed(1)
        : '–';
    const ratio = medianOf(r, 'regmirror') / medianOf(r, 'skopeo');
    const busy = (ss: Sample[]) =>
      ss.length ? `${(median(ss.map((s) => s.run.machineBusy)) * 100).toFixed(0)} %` : '–';
    rows.push([
      r.title + (cu.length ? `; curl floor ${spread(cu.map((s) => s.run.wallSeconds))}` : ''),
      `${spread(rm.map((s) => s.run.wallSeconds))} ×${rm.length}`,
      sk.length ? `${spread(sk.map((s) => s.run.wallSeconds))} ×${sk.length}` : '–',
      fmtRatio(ratio),
      GOALS[r.id] ??
        (r.id === 'huge' ? `≤ 1.5× curl: ${fmtRatio(medianOf(r, 'regmirror') / medianOf(r, 'curl'))}` : '–'),
      `${fmtMiB(medianOf(r, 'regmirror', undefined, (s) => s.run.maxRssKiB))} / ${fmtMiB(medianOf(r, 'skopeo', undefined, (s) => s.run.maxRssKiB))}`,
      `${perTag(rm)} / ${perTag(sk)}`,
      `${busy(rm)} / ${busy(sk)}`,
    ]);
  }
  return table(
    [
      'workload',
      'regmirror (median, range)',
      'skopeo (median, range)',
      'ratio',
      'goal',
      'peak RSS rm / sk',
      'requests per tag rm / sk',
      'machine CPU busy rm / sk',
    ],
    rows,
    [false, true, true, true, false, true, true, true],
  );
}

function boundsTable(results: WorkloadResult[], cores: number): string {
  const rows: string[][] = [];
  for (const r of results) {
    const rm = samplesOf(r, 'regmirror');
    if (!(r.id in GOALS) || rm.length === 0) continue;
    const cpu = (ss: Sample[], f: (s: Sample) => number) => (ss.length ? median(ss.map(f)).toFixed(2) : '–');
    const sk = samplesOf(r, 'skopeo');
    const split = (ss: Sample[]) =>
      ss.length
        ? `${cpu(ss, (s) => s.run.cpuSeconds)} / ${cpu(ss, (s) => s.run.lab.registries)} / ${cpu(ss, (s) => s.run.lab.proxies)}`
        : '–';
    const floor = floorSeconds(r, cores);
    const skMedian = medianOf(r, 'skopeo');
    rows.push([
      r.id,
      split(rm),
      split(sk),
      fmtSeconds(floor),
      Number.isFinite(skMedian) ? fmtRatio(floor / skMedian) : '–',
      fmtRatio(medianOf(r, 'regmirror') / skMedian),
      GOALS[r.id]!,
    ]);
  }
  return table(
    [
      'workload',
      'CPU-s in regmirror’s runs: regmirror / registries / proxies',
      'CPU-s in skopeo’s runs: skopeo / registries / proxies',
      'floor: (registries + proxies) ÷ cores',
      'floor ÷ skopeo',
      'ratio',
      'goal',
    ],
    rows,
    [false, true, true, true, true, true, false],
  );
}

function medianCounts(ss: Sample[], pick: (s: Sample) => Counts): Counts | undefined {
  const withCounts = ss.filter((s) => s.counts);
  if (withCounts.length === 0) return undefined;
  const cs = withCounts.map(pick);
  const byKind = Object.fromEntries(KINDS.map((k) => [k, median(cs.map((c) => c.byKind[k]))])) as Record<
    Kind,
    number
  >;
  return {
    byKind,
    total: median(cs.map((c) => c.total)),
    unauthorized: median(cs.map((c) => c.unauthorized)),
    manifestUnauthorized: median(cs.map((c) => c.manifestUnauthorized)),
    throttled: median(cs.map((c) => c.throttled)),
    blobBytesServed: median(cs.map((c) => c.blobBytesServed)),
  };
}

function countsTable(r: WorkloadResult): string {
  const cols: Array<[string, Counts | undefined]> = [];
  for (const tool of ['regmirror', 'skopeo'] as Tool[]) {
    const ss = samplesOf(r, tool);
    if (ss.length === 0) continue;
    cols.push([`${tool} source`, medianCounts(ss, (s) => s.counts!.source)]);
    cols.push([`${tool} targets`, medianCounts(ss, (s) => s.counts!.targets)]);
  }
  const present = cols.filter((c): c is [string, Counts] => c[1] !== undefined);
  if (present.length === 0) return '';
  const imageTargets = r.tags * r.targets;
  const kinds = KINDS.filter((k) => present.some(([, c]) => c.byKind[k] > 0));
  const fmt = (n: number, per: number) => `${n} (${(n / per).toFixed(2)})`;
  const rows = kinds.map((k) => [
    k,
    ...present.map(([name, c]) => fmt(c.byKind[k], name.endsWith('source') ? r.tags : imageTargets)),
  ]);
  rows.push([
    '**all**',
    ...present.map(([name, c]) => fmt(c.total, name.endsWith('source') ? r.tags : imageTargets)),
  ]);
  rows.push(['401 answers', ...present.map(([, c]) => String(c.unauthorized))]);
  if (present.some(([, c]) => c.throttled > 0))
    rows.push(['429 answers', ...present.map(([, c]) => String(c.throttled))]);
  rows.push([
    'blob bytes served ÷ distinct',
    ...present.map(([name, c]) =>
      name.endsWith('source') ? `${(c.blobBytesServed / r.distinctBlobBytes).toFixed(2)}×` : '',
    ),
  ]);
  return table(
    [
      'requests (median run): count (per tag at the source, per image-target at the targets)',
      ...present.map(([n]) => n),
    ],
    rows,
    [false, ...present.map(() => true)],
  );
}

function diagnosisTable(ds: Diagnosis[]): string {
  const rows: Array<[string, (d: Diagnosis) => string]> = [
    ['wall time (probe run)', (d) => `${(d.wallMs / 1000).toFixed(2)} s`],
    ['start-up: process start → first request', (d) => `${d.startupMs.toFixed(0)} ms`],
    ['shutdown: last response → exit', (d) => `${d.shutdownMs.toFixed(0)} ms`],
    ['requests (token requests)', (d) => `${d.requests} (${d.tokenRequests})`],
    ['401 answers', (d) => String(d.unauthorized)],
    [
      'connections opened; requests per connection',
      (d) => `${d.connectionsOpened}; ${d.requestsPerConnection.toFixed(1)}`,
    ],
    ['requests in flight: mean / max', (d) => `${d.meanInFlight.toFixed(2)} / ${d.maxInFlight}`],
    ['request phase with nothing in flight', (d) => `${(d.idleShare * 100).toFixed(1)} %`],
    ['images in flight: mean / max', (d) => `${d.meanImagesInFlight.toFixed(2)} / ${d.maxImagesInFlight}`],
    ['time per image (median)', (d) => `${d.imageP50Ms.toFixed(0)} ms`],
    [
      'wait for a connection in undici (p50 / p95)',
      (d) => `${d.poolWaitP50.toFixed(1)} / ${d.poolWaitP95.toFixed(1)} ms`,
    ],
    [
      'CPU time of the process (share of wall)',
      (d) => `${(d.cpuMs / 1000).toFixed(2)} s (${((d.cpuMs / d.wallMs) * 100).toFixed(0)} %)`,
    ],
    ['event-loop delay p99', (d) => `${d.eventLoopDelayP99Ms.toFixed(1)} ms`],
    [
      'machine CPU busy (all processes)',
      (d) => (d.machineBusy === undefined ? '–' : `${(d.machineBusy * 100).toFixed(0)} %`),
    ],
  ];
  return table(
    ['', ...ds.map((d) => d.label)],
    rows.map(([name, f]) => [name, ...ds.map(f)]),
    [false, ...ds.map(() => true)],
  );
}

function phaseTable(d: Diagnosis): string {
  return table(
    ['request kind', 'count', 'latency p50 (sent → headers)', 'busy time (≥ 1 in flight)'],
    d.phases.map((p) => [
      p.phase,
      String(p.count),
      `${p.p50Ms.toFixed(1)} ms`,
      `${(p.busyMs / 1000).toFixed(2)} s`,
    ]),
    [false, true, true, true],
  );
}

function sideTable(d: Diagnosis): string {
  return table(
    ['registry', 'requests', 'latency p50', 'latency p95'],
    d.perSide.map((x) => [x.side, String(x.count), `${x.p50Ms.toFixed(1)} ms`, `${x.p95Ms.toFixed(1)} ms`]),
    [false, true, true, true],
  );
}

function profileTables(d: Diagnosis): string {
  if (d.profileMs === 0) return '';
  return [
    table(
      ['CPU profile: self time by area', 'ms', 'share of the profile'],
      d.cpuByArea.map((a) => [a.area, a.ms.toFixed(0), `${(a.share * 100).toFixed(1)} %`]),
      [false, true, true],
    ),
    '',
    table(
      ['hottest functions (self time)', 'ms', 'share of busy CPU'],
      d.topFunctions.map((f) => [`\`${f.fn}\``, f.ms.toFixed(0), `${(f.share * 100).toFixed(1)} %`]),
      [false, true, true],
    ),
  ].join('\n');
}

function throttleSection(r: WorkloadResult): string {
  const rows: string[][] = [];
  for (const variant of ['baseline', 'throttled']) {
    const ss = samplesOf(r, 'regmirror', variant);
    if (ss.length === 0) continue;
    const done = (i: number) => median(ss.map((s) => s.targetDoneSeconds?.[i] ?? Number.NaN));
    rows.push([
      variant === 'baseline' ? 'no throttling' : 't1 throttled',
      spread(ss.map((s) => s.run.wallSeconds)),
      ...[0, 1, 2].map((i) => `${done(i).toFixed(2)} s (${(r.tags / done(i)).toFixed(1)} tags/s)`),
      String(median(ss.map((s) => s.counts?.targets.throttled ?? 0))),
      `${ss.filter((s) => s.run.ok).length} of ${ss.length}`,
    ]);
  }
  return table(
    [
      'run',
      'wall time',
      't1-bearer done at',
      't2-basic done at',
      't3-open done at',
      '429 answers',
      'runs that completed',
    ],
    rows,
    [false, true, true, true, true, true, true],
  );
}

const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');

export function renderPage(p: PageInput): string {
  const m = p.machine;
  const kept =
    p.previous.includes(START) && p.previous.includes(END)
      ? p.previous.slice(p.previous.indexOf(START), p.previous.indexOf(END) + END.length)
      : `${START}\n\n_(no analysis written yet)_\n\n${END}`;
  const lines: string[] = [
    '# Benchmarks: regmirror vs skopeo',
    '',
    '_Written by `bash bench/run.sh` (bench/main.ts); re-run it whenever performance changes. Numbers below',
    'come from the run described here, nothing is edited by hand except the analysis section._',
    '',
    `- **Run**: ${p.finishedAt ?? 'time not recorded'}, ${(p.totalSeconds / 60).toFixed(1)} minutes, \`bash bench/run.sh ${p.args.join(' ')}\`.`.replace(
      ' `.',
      '`.',
    ),
    `- **Machine**: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, ${m.os}; Node ${m.node}; ${m.skopeo}; regmirror at commit \`${m.commit}\`.`,
    `- **Load average** at start ${loads(m.loadAtStart)}, at the end ${loads(m.loadAtEnd)} (1, 5, 15 min). The registries, the proxies, both tools and, on a shared machine, other people's test suites all run on these ${m.cpus} CPUs: times vary from run to run, so the page reports medians of ${p.settings.reps} repetitions (skopeo ${p.settings.skopeoMigrationReps}× at migration scale) and the range.`,
    '',
    '## Acceptance (issue 14)',
    '',
    '```',
    ...p.checks.map(checkLine),
    '```',
    '',
    `![median wall time per workload](${p.svgName})`,
    '',
    '## Results',
    '',
    summaryTable(p.results),
    '',
    'Peak RSS is the largest of the process’s (skopeo: the largest of its per-target processes). Requests per tag',
    'count every request at the source and the targets together, token requests included.',
    '',
  ];
  const bounds = boundsTable(p.results, m.cpus);
  if (bounds.split('\n').length > 2) {
    lines.push(
      '## What bounds the ratios on this machine',
      '',
      bounds,
      '',
      `CPU seconds (user + system, medians) spent during the timed runs by the tool, by the four registries (the`,
      '`docker-registry` processes the benchmark started, from `/proc`) and by the benchmark’s own process, which holds the counting proxies',
      `and the token servers. All of them share the machine’s ${m.cpus} CPUs. The registries’ and proxies’ work is what`,
      'answering regmirror’s requests costs, and those requests are at the floor of the protocol (see the request',
      'tables). So even a tool that cost no CPU itself could not finish in less than the **floor**, and could not',
      'reach a better ratio than **floor ÷ skopeo**. Where that is above the goal, the goal cannot be met on this',
      'machine by any client of these registries. The floor is an estimate: the registries might do the same work for',
      'a little less CPU with less competition for the cores.',
      '',
    );
  }
  for (const r of p.results) {
    lines.push(`### ${r.id}: ${r.title}`, '');
    if (r.id === 'throttle') {
      lines.push(throttleSection(r), '');
    }
    const c = countsTable(r);
    if (c) lines.push(c, '');
    // The plain diagnosis run of a workload gets its tables; the what-if variants are compared below.
    for (const d of r.diagnoses.filter((x) => x.label === r.id)) {
      lines.push(
        `Probe and CPU profile of one more regmirror run (\`${d.label}\`), not part of the medians:`,
        '',
      );
      lines.push(phaseTable(d), '');
      if (d.perSide.length > 0) lines.push(sideTable(d), '');
      const prof = profileTables(d);
      if (prof) lines.push(prof, '');
    }
  }
  const allDiagnoses = p.results.flatMap((r) => r.diagnoses);
  if (allDiagnoses.length > 0) {
    lines.push('## Inside the regmirror process', '', diagnosisTable(allDiagnoses), '');
    const byLabel = new Map(allDiagnoses.map((d) => [d.label, d]));
    for (const b of allDiagnoses) {
      const a = b.latencyMs ? byLabel.get(b.label.replace(/ \+\d+ ms/, '')) : undefined;
      if (!a || !b.latencyMs) continue;
      const delta = b.imageP50Ms - a.imageP50Ms;
      lines.push(
        `- \`${b.label}\` vs \`${a.label}\`: ${b.latencyMs} ms more per request made each image ${delta.toFixed(0)} ms slower ` +
          `(median): about **${(delta / b.latencyMs).toFixed(1)} round trips one after the other** per image. The run took ` +
          `${(b.wallMs / 1000).toFixed(2)} s instead of ${(a.wallMs / 1000).toFixed(2)} s.`,
      );
    }
    lines.push('');
    lines.push(
      'From `bench/probe/undici-probe.mjs`, preloaded with `node --import` into extra regmirror runs (not the timed',
      'ones): undici’s diagnostics channels give each request’s creation (past regmirror’s host limiter), socket,',
      'response headers and end, and every connection opened. Images in flight come from the `--json` report’s',
      '`startedAt` and `durationMs`. CPU from `node --cpu-prof`.',
      '',
    );
  }
  lines.push('## Where the time goes', '', kept, '');
  lines.push(
    '## How the benchmark works',
    '',
    '- **Registries**: Debian’s `docker-registry` (distribution 2.8) started by the script on loopback ports through',
    '  `test/harness`: the source needs Bearer tokens (its own token server, like Docker Hub, Quay, ECR Public); the',
    '  three targets are Bearer (own token server), Basic (htpasswd, bcrypt: every Basic request costs the registry a',
    '  bcrypt check) and open. Every registry sits behind the harness’s counting proxy, which is also where 429s are',
    '  injected. **Every measured run gets fresh target registries**: skopeo running as root keeps a system-wide',
    '  blob-info cache (`/var/lib/containers/cache`) keyed by host:port and repository and would otherwise mount blobs',
    '  from repositories of earlier repetitions; regmirror gets an empty HOME (and XDG cache) per run for the same reason.',
    '- **regmirror**: the built CLI, `regmirror sync --config FILE --json` with one mirror per repository and no',
    '  tuning (the built-in defaults a new user gets), `regmirror copy SRC T1 T2 T3 --json` for the large layer.',
    '- **skopeo**: `skopeo sync --all --preserve-digests --src yaml --dest docker` once per target, one after the',
    '  other, as a shell loop would; the YAML lists every repository of the workload with all its tags. `sync`',
    '  rather than `copy` per tag because that is what a user mirroring repositories runs (it lists the tags and',
    '  copies each), and it spends no process start per tag. The large layer: `skopeo copy --all --preserve-digests`',
    '  once per target. skopeo talks plain HTTP after `--*-tls-verify=false` (it tries HTTPS first once per registry).',
    '- **curl floor** (large layer): the layer’s bytes in a local file, three parallel `POST` + one streamed',
    '  `curl -T` monolithic `PUT` each, to the same three registries through the same proxies.',
    '- **Measured**: wall time of each process from spawn to exit (skopeo: the sum of its per-target runs), peak',
    '  RSS from `/usr/bin/time -v`, requests counted at the proxies by kind and side (token requests at the token',
    '  servers), bytes of blob bodies the source served. Tools alternate which goes first from one repetition to',
    '  the next.',
    '- **No-op**: the targets are filled once by regmirror (not measured), then each tool syncs again.',
    '- **Throttling**: the 60 small tags to three fresh targets, twice per repetition: unthrottled, and with t1',
    '  answering every 3rd, 6th and 9th of each ten requests (30 %) with 429 and no `Retry-After` for 5 s from its',
    '  first request. A target’s throughput is its tags divided by the time of its last manifest PUT.',
    `- **Options**: \`--only ${['mixed', 'small', 'noop', 'migration', 'migration-noop', 'huge', 'throttle'].join(',')}\`, \`--reps N\`, \`--no-skopeo\`, \`--no-diagnose\`,`,
    '  `--migration-tags N`, `--huge-mib N`, `--skopeo-migration-reps N`, `--no-write`. Benchmarks never run in CI.',
    '',
  );
  return `${lines.join('\n')}`;
}
