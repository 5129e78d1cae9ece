// Requests counted at the proxies (and token servers), sorted into the kinds the report shows.

import type { ProxyRequestRecord } from '../../test/harness/proxy.js';
import type { Side } from './lab.js';

export const KINDS = [
  'ping',
  'token',
  'manifest HEAD',
  'manifest GET',
  'manifest PUT',
  'blob HEAD',
  'blob GET',
  'upload POST',
  'mount POST',
  'upload PATCH',
  'upload PUT',
  'upload other',
  'tags',
  'referrers',
  'other',
] as const;
export type Kind = (typeof KINDS)[number];

export interface Counts {
  byKind: Record<Kind, number>;
  /** All requests: registry requests plus token requests. */
  total: number;
  unauthorized: number;
  /** Manifest requests answered 401 (the first contact with a registry that wants credentials). */
  manifestUnauthorized: number;
  throttled: number;
  /** Bytes of blob bodies served (200 answers to blob GETs), from the sizes the corpus knows. */
  blobBytesServed: number;
}

export function emptyCounts(): Counts {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  return { byKind, total: 0, unauthorized: 0, manifestUnauthorized: 0, throttled: 0, blobBytesServed: 0 };
}

function kindOf(r: ProxyRequestRecord): Kind {
  switch (r.kind) {
    case 'ping':
      return 'ping';
    case 'manifest':
      return r.method === 'HEAD'
        ? 'manifest HEAD'
        : r.method === 'GET'
          ? 'manifest GET'
          : r.method === 'PUT'
            ? 'manifest PUT'
            : 'other';
    case 'blob':
      return r.method === 'HEAD' ? 'blob HEAD' : r.method === 'GET' ? 'blob GET' : 'other';
    case 'upload':
      if (r.method === 'POST') return r.query.has('mount') ? 'mount POST' : 'upload POST';
      if (r.method === 'PATCH') return 'upload PATCH';
      if (r.method === 'PUT') return 'upload PUT';
      return 'upload other';
    case 'tags':
      return 'tags';
    case 'referrers':
      return 'referrers';
    default:
      return 'other';
  }
}

/** What one side saw since its last reset. */
export function countSide(side: Side, blobSizes: Map<string, number>): Counts {
  const c = emptyCounts();
  for (const r of side.proxy.requests) {
    const kind = kindOf(r);
    c.byKind[kind]++;
    c.total++;
    if (r.status === 401) c.unauthorized++;
    if (r.status === 401 && kind.startsWith('manifest')) c.manifestUnauthorized++;
    if (r.status === 429) c.throttled++;
    if (kind === 'blob GET' && r.status === 200) {
      const digest = r.path.slice(r.path.lastIndexOf('/') + 1);
      c.blobBytesServed += blobSizes.get(digest) ?? 0;
    }
  }
  const tokens = side.tokenServer?.requests.length ?? 0;
  c.byKind.token += tokens;
  c.total += tokens;
  return c;
}

export function addCounts(a: Counts, b: Counts): Counts {
  const out = emptyCounts();
  for (const k of KINDS) out.byKind[k] = a.byKind[k] + b.byKind[k];
  out.total = a.total + b.total;
  out.unauthorized = a.unauthorized + b.unauthorized;
  out.manifestUnauthorized = a.manifestUnauthorized + b.manifestUnauthorized;
  out.throttled = a.throttled + b.throttled;
  out.blobBytesServed = a.blobBytesServed + b.blobBytesServed;
  return out;
}

export interface SideCounts {
  source: Counts;
  /** All targets together. */
  targets: Counts;
  perTarget: Counts[];
}

export function countRun(source: Side, targets: Side[], blobSizes: Map<string, number>): SideCounts {
  const perTarget = targets.map((t) => countSide(t, blobSizes));
  return {
    source: countSide(source, blobSizes),
    targets: perTarget.reduce(addCounts, emptyCounts()),
    perTarget,
  };
}

/** Reset every side's counters before a measured run. */
export function resetSides(sides: Side[]): void {
  for (const s of sides) s.reset();
}
