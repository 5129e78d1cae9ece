// Where regmirror's time goes, from what the probe (bench/probe/undici-probe.mjs) recorded inside the
// process, the --json report's image timings, and the V8 CPU profile (`node --cpu-prof`).

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface ProbeRequest {
  method: string;
  origin: string;
  path: string;
  created: number;
  sent?: number;
  headers?: number;
  ended?: number;
  status?: number;
  socket?: number;
  error?: string;
}

interface ProbeFile {
  startedAt: number;
  exitedAt: number;
  cpu: { userMs: number; systemMs: number };
  eventLoopDelayMs: { mean: number; p50: number; p99: number; max: number };
  requests: ProbeRequest[];
  connections: Array<{ at: number; host: string; socket: number }>;
}

export interface Diagnosis {
  label: string;
  wallMs: number;
  /** Process start → first request handed to undici (start-up, config, credentials, tag list wait). */
  startupMs: number;
  /** Last response → exit. */
  shutdownMs: number;
  requests: number;
  unauthorized: number;
  tokenRequests: number;
  connectionsOpened: number;
  requestsPerConnection: number;
  /** Time-weighted mean / max of requests in flight (created → body end), over the request phase. */
  meanInFlight: number;
  maxInFlight: number;
  /** Share of the request phase with no request in flight at all. */
  idleShare: number;
  /** Milliseconds between handing a request to undici and its headers going out (pool wait). */
  poolWaitP50: number;
  poolWaitP95: number;
  /** Per request category: count, median latency (sent → headers) and busy time (union of intervals). */
  phases: Array<{ phase: string; count: number; p50Ms: number; busyMs: number }>;
  /** Per registry (and token server): requests, latency sent → response headers (p50, p95). */
  perSide: Array<{ side: string; count: number; p50Ms: number; p95Ms: number }>;
  /** Images in flight (from the report's startedAt + durationMs): time-weighted mean and max. */
  meanImagesInFlight: number;
  maxImagesInFlight: number;
  imageP50Ms: number;
  cpuMs: number;
  eventLoopDelayP99Ms: number;
  /** CPU profile: self time by area and the top functions. */
  cpuByArea: Array<{ area: string; ms: number; share: number }>;
  topFunctions: Array<{ fn: string; ms: number; share: number }>;
  profileMs: number;
  /** Share of the machine's CPU busy during the run (set by the caller). */
  machineBusy?: number;
  /** Latency the proxies added to every request in this run (set by the caller). */
  latencyMs?: number;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Time-weighted mean and max of overlapping intervals, and the time covered by at least one. */
function overlap(intervals: Array<[number, number]>, from: number, to: number) {
  const events: Array<[number, number]> = [];
  for (const [a, b] of intervals) {
    events.push([a, 1], [Math.max(a, b), -1]);
  }
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let level = 0;
  let max = 0;
  let area = 0;
  let covered = 0;
  let last = from;
  for (const [t, d] of events) {
    const at = Math.min(Math.max(t, from), to);
    area += level * (at - last);
    if (level > 0) covered += at - last;
    last = at;
    level += d;
    max = Math.max(max, level);
  }
  const span = Math.max(1, to - from);
  return { mean: area / span, max, covered, span };
}

function phaseOf(r: ProbeRequest): string {
  const p = r.path;
  if (/^\/token/.test(p)) return 'token';
  if (p === '/v2/' || p === '/v2') return 'ping';
  if (/\/manifests\//.test(p)) return `manifest ${r.method}`;
  if (/\/blobs\/uploads/.test(p)) return r.method === 'POST' ? 'upload POST' : `upload ${r.method}`;
  if (/\/blobs\//.test(p)) return `blob ${r.method}`;
  if (/\/tags\/list/.test(p)) return 'tags';
  return 'other';
}

interface ReportImage {
  startedAt?: string;
  durationMs: number;
}

function imagesOf(report: unknown): ReportImage[] {
  const r = report as { mirrors?: Array<{ images?: ReportImage[] }>; images?: ReportImage[] } | undefined;
  if (!r) return [];
  if (Array.isArray(r.mirrors)) return r.mirrors.flatMap((m) => m.images ?? []);
  return r.images ?? [];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function areaOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const dist = /\/dist\/(.+)\.js$/.exec(url);
  if (dist) return `regmirror ${dist[1]}`;
  return url.replace(/^.*\//, '');
}

async function analyseProfile(dir: string | undefined) {
  if (!dir) return { cpuByArea: [], topFunctions: [], profileMs: 0 };
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
  const byArea = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const profile = JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile;
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const ms = (profile.timeDeltas[i] ?? 0) / 1000;
      const node = nodes.get(id);
      if (!node) return;
      const { functionName, url, lineNumber } = node.callFrame;
      const area = areaOf(url, functionName);
      total += ms;
      byArea.set(area, (byArea.get(area) ?? 0) + ms);
      if (area === '(idle)' || area === '(program)' || area === '(garbage collector)') return;
      const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules\/|dist\/)?/, '')}:${lineNumber + 1}` : ''}`;
      byFn.set(key, (byFn.get(key) ?? 0) + ms);
    });
  }
  const busy = total - (byArea.get('(idle)') ?? 0);
  const sorted = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => ({ k, ms, share: total > 0 ? ms / total : 0 }));
  return {
    cpuByArea: sorted(byArea, 14).map(({ k, ms, share }) => ({ area: k, ms, share })),
    topFunctions: sorted(byFn, 15).map(({ k, ms }) => ({ fn: k, ms, share: busy > 0 ? ms / busy : 0 })),
    profileMs: total,
  };
}

export async function diagnose(
  label: string,
  probeFile: string,
  cpuProfDir: string | undefined,
  report: unknown,
  tokenOrigins: string[],
  /** host:port → the name the page uses (source, t1-bearer…). */
  sideNames: Map<string, string> = new Map(),
): Promise<Diagnosis> {
  const probe = JSON.parse(await readFile(probeFile, 'utf8')) as ProbeFile;
  const reqs = probe.requests.filter((r) => r.ended !== undefined);
  const first = Math.min(...reqs.map((r) => r.created));
  const last = Math.max(...reqs.map((r) => r.ended!));
  const inFlight = overlap(
    reqs.map((r) => [r.created, r.ended!]),
    first,
    last,
  );
  const phases = new Map<string, ProbeRequest[]>();
  for (const r of reqs) {
    const isToken = tokenOrigins.some((o) => r.origin.startsWith(o));
    const phase = isToken ? 'token' : phaseOf(r);
    phases.set(phase, [...(phases.get(phase) ?? []), r]);
  }
  const images = imagesOf(report).filter((i) => i.startedAt !== undefined);
  const imageIntervals = images.map((i): [number, number] => {
    const s = Date.parse(i.startedAt!);
    return [s, s + i.durationMs];
  });
  const imgFrom = Math.min(...imageIntervals.map((i) => i[0]));
  const imgTo = Math.max(...imageIntervals.map((i) => i[1]));
  const imagesInFlight =
    imageIntervals.length > 0
      ? overlap(imageIntervals, imgFrom, imgTo)
      : { mean: 0, max: 0, covered: 0, span: 0 };
  const poolWaits = reqs.filter((r) => r.sent !== undefined).map((r) => r.sent! - r.created);
  const sockets = new Set(reqs.map((r) => r.socket).filter((s) => s !== undefined));
  const profile = await analyseProfile(cpuProfDir);
  const bySide = new Map<string, number[]>();
  for (const r of reqs) {
    if (r.sent === undefined || r.headers === undefined) continue;
    const host = r.origin.replace(/^https?:\/\//, '');
    const isToken = tokenOrigins.some((o) => r.origin.startsWith(o));
    const name = isToken ? `token server (${sideNames.get(host) ?? host})` : (sideNames.get(host) ?? host);
    bySide.set(name, [...(bySide.get(name) ?? []), r.headers - r.sent]);
  }
  return {
    label,
    wallMs: probe.exitedAt - probe.startedAt,
    startupMs: first - probe.startedAt,
    shutdownMs: probe.exitedAt - last,
    requests: reqs.length,
    unauthorized: reqs.filter((r) => r.status === 401).length,
    tokenRequests: phases.get('token')?.length ?? 0,
    connectionsOpened: probe.connections.length,
    requestsPerConnection: sockets.size > 0 ? reqs.length / probe.connections.length : 0,
    meanInFlight: inFlight.mean,
    maxInFlight: inFlight.max,
    idleShare: 1 - inFlight.covered / inFlight.span,
    poolWaitP50: percentile(poolWaits, 50),
    poolWaitP95: percentile(poolWaits, 95),
    phases: [...phases.entries()]
      .map(([phase, rs]) => ({
        phase,
        count: rs.length,
        p50Ms: percentile(
          rs.filter((r) => r.headers !== undefined && r.sent !== undefined).map((r) => r.headers! - r.sent!),
          50,
        ),
        busyMs: overlap(
          rs.map((r) => [r.created, r.ended!]),
          first,
          last,
        ).covered,
      }))
      .sort((a, b) => b.count - a.count),
    perSide: [...bySide.entries()]
      .map(([side, ls]) => ({ side, count: ls.length, p50Ms: percentile(ls, 50), p95Ms: percentile(ls, 95) }))
      .sort((a, b) => b.count - a.count),
    meanImagesInFlight: imagesInFlight.mean,
    maxImagesInFlight: imagesInFlight.max,
    imageP50Ms: percentile(
      images.map((i) => i.durationMs),
      50,
    ),
    cpuMs: probe.cpu.userMs + probe.cpu.systemMs,
    eventLoopDelayP99Ms: probe.eventLoopDelayMs.p99,
    ...profile,
  };
}
