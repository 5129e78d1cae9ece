// Drift check: for each selected source tag and each target, does the target hold the same digest?
// Cheap by design: manifest HEADs on both sides plus tag lists; no GET unless `deep`, which walks each
// target manifest and HEADs every child manifest and blob below it.

import { errorKind, formatError, isAbort, RegmirrorError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { shortDigest } from '../oci/digest.js';
import { blobsOf, childrenOf, type Manifest } from '../oci/manifest.js';
import {
  formatRepository,
  type Reference,
  type Repository,
  withDigest,
  withTag,
} from '../reference/reference.js';
import type { Limiter } from './copy-image.js';
import { filterRoot, manifestDigests } from './graph.js';
import { ReferrerRun } from './referrer-run.js';
import { discoverAtSource, type FoundReferrer, missingAtTarget, type SourceReferrers } from './referrers.js';
import type { MirrorSpec } from './run.js';
import type { RegistryStore } from './store.js';

/**
 * ok: same digest (and, with referrers on, every referrer there). missing: tag absent on the target.
 * stale: the target tag has another digest. extra: a target tag the selection would take that the source
 * no longer has. incomplete: the tag is right but a referrer of the source is not at the target, or
 * (--deep) something below it is gone. error: the check itself failed for this row.
 */
export type DriftState = 'ok' | 'missing' | 'stale' | 'extra' | 'incomplete' | 'error';
export const DRIFT_STATES: readonly DriftState[] = ['ok', 'missing', 'stale', 'extra', 'incomplete', 'error'];

export interface DriftRow {
  mirror: string;
  source: string;
  target: string;
  tag: string;
  state: DriftState;
  sourceDigest?: Digest;
  targetDigest?: Digest;
  /** For incomplete (--deep): what is missing below the target manifest. */
  missingContent?: string[];
  /** For incomplete: the source's referrers the target lacks ("referrer sha256:… (type) of sha256:…"). */
  missingReferrers?: string[];
  error?: string;
  errorKind?: string;
  /** After a repair (check --fix): the state the row was in before it; `state` is the state after. */
  fixedFrom?: DriftState;
  /** The repair of this row failed: why. */
  fixError?: string;
}

export interface CheckOptions {
  deep?: boolean;
  /** Bounds the HEADs in flight for one mirror. */
  limit: Limiter;
  /** Referrer state shared by the mirrors of the check (tag lists read once). */
  referrerRun?: ReferrerRun;
}

/** How a missing referrer is named in a report. */
export function describeReferrer(f: FoundReferrer): string {
  if (f.tag !== undefined) return `cosign tag ${f.tag} (${f.digest})`;
  return `referrer ${f.digest}${f.artifactType ? ` (${f.artifactType})` : ''} of ${shortDigest(f.subject)}`;
}

/** Rows of one mirror: every selected tag × every target, plus extras. */
export async function checkMirror(
  spec: MirrorSpec,
  store: RegistryStore,
  options: CheckOptions,
): Promise<DriftRow[]> {
  const source = formatRepository(spec.source);
  const referrers = spec.options.referrers;
  const run = options.referrerRun ?? new ReferrerRun();
  const base = (target: Repository, tag: string) => ({
    mirror: spec.name,
    source,
    target: formatRepository(target),
    tag,
  });
  let sourceTags: string[];
  try {
    sourceTags = spec.needsTagList ? await store.tagList(spec.source) : [];
    if (spec.needsTagList) run.seedTags(spec.source, sourceTags);
  } catch (err) {
    if (isAbort(err)) throw err;
    if (err instanceof RegmirrorError) err.context.side ??= 'source';
    return spec.targets.map((t) => ({ ...base(t, '*'), state: 'error', ...errorOf(err) }));
  }
  const selected = spec.select(sourceTags);

  // The source side once per tag, whatever the number of targets.
  const wanted = await Promise.all(
    selected.map(({ tag, digest }) =>
      options.limit(
        async (): Promise<{
          digest?: Digest;
          error?: unknown;
          referrers?: () => Promise<SourceReferrers>;
        }> => {
          try {
            const ref: Reference = digest ? withDigest(spec.source, digest) : withTag(spec.source, tag);
            const head = await store.manifestHead(ref);
            if (!head) return { error: new RegmirrorError(`tag "${tag}" not found at the source`) };
            const at = withDigest(spec.source, head.digest);
            // A platform-filtered mirror holds a new index; its digest needs the source index (one GET).
            const root = spec.options.platforms
              ? filterRoot(await store.manifestGet(at), spec.options.platforms, ref)
              : undefined;
            const wanted = root?.digest ?? head.digest;
            if (!referrers) return { digest: wanted };
            // The source's referrers, found once per tag, when a target's tag turns out right.
            let found: Promise<SourceReferrers> | undefined;
            const lookup = () => {
              found ??= discoverAtSource(
                store,
                run,
                spec.source,
                head.digest,
                async () =>
                  (await manifestDigests(store, at, root)).filter((d) => d === head.digest || d !== wanted),
                referrers,
              );
              return found;
            };
            return { digest: wanted, referrers: lookup };
          } catch (err) {
            if (isAbort(err)) throw err;
            if (err instanceof RegmirrorError) err.context.side ??= 'source';
            return { error: err };
          }
        },
      ),
    ),
  );

  const rows: DriftRow[] = [];
  await Promise.all(
    spec.targets.map(async (target) => {
      // Extras: target tags the selection takes that the source does not have (any more).
      let targetTags: string[] | undefined;
      if (spec.needsTagList) {
        try {
          targetTags = await store.tagList(target);
          run.seedTags(target, targetTags);
        } catch (err) {
          if (isAbort(err)) throw err;
          // A target repository that does not exist yet has no extras; its tags show up as missing.
          if (errorKind(err) !== 'not-found')
            rows.push({ ...base(target, '*'), state: 'error', ...errorOf(err) });
        }
      }
      if (targetTags) {
        const known = new Set(sourceTags);
        for (const { tag } of spec.select(targetTags)) {
          if (known.has(tag)) continue;
          const head = await options
            .limit(() => store.manifestHead(withTag(target, tag)))
            .catch(() => undefined);
          rows.push({ ...base(target, tag), state: 'extra', ...(head ? { targetDigest: head.digest } : {}) });
        }
      }
      await Promise.all(
        selected.map(({ tag }, i) =>
          options.limit(async () => {
            const want = wanted[i]!;
            const row: DriftRow = { ...base(target, tag), state: 'ok' };
            if (want.digest) row.sourceDigest = want.digest;
            rows.push(row);
            if (want.error !== undefined) {
              Object.assign(row, { state: 'error' }, errorOf(want.error));
              return;
            }
            try {
              const head = await store.manifestHead(withTag(target, tag));
              if (!head) {
                row.state = 'missing';
                return;
              }
              row.targetDigest = head.digest;
              if (head.digest !== want.digest) {
                row.state = 'stale';
                return;
              }
              if (options.deep) {
                const gone = await missingBelow(store, target, head.digest);
                if (gone.length > 0) {
                  row.state = 'incomplete';
                  row.missingContent = gone;
                }
              }
              if (want.referrers) {
                let found: SourceReferrers;
                try {
                  found = await want.referrers();
                } catch (err) {
                  if (err instanceof RegmirrorError) err.context.side ??= 'source';
                  throw err;
                }
                const lacking = await missingAtTarget(store, run, target, found, false);
                if (lacking.length > 0) {
                  row.state = 'incomplete';
                  row.missingReferrers = lacking.map((r) => describeReferrer(r.found));
                }
              }
            } catch (err) {
              if (isAbort(err)) throw err;
              if (err instanceof RegmirrorError) err.context.side ??= 'target';
              Object.assign(row, { state: 'error' }, errorOf(err));
            }
          }),
        ),
      );
    }),
  );
  const order = (r: DriftRow) => `${r.target}\u0000${r.tag}`;
  return rows.sort((a, b) => order(a).localeCompare(order(b)));
}

function errorOf(err: unknown): { error: string; errorKind: string } {
  return { error: formatError(err), errorKind: errorKind(err) };
}

/** Everything below a target manifest that the target does not have: "manifest sha256:…", "blob sha256:…". */
export async function missingBelow(
  store: RegistryStore,
  repo: Repository,
  digest: Digest,
): Promise<string[]> {
  const gone: string[] = [];
  const seen = new Set<Digest>();
  const visit = async (m: Manifest): Promise<void> => {
    await Promise.all([
      ...blobsOf(m).map(async (b) => {
        if (seen.has(b.digest)) return;
        seen.add(b.digest);
        if ((await store.blobHead(repo, b.digest)) === undefined) gone.push(`blob ${b.digest}`);
      }),
      ...childrenOf(m).map(async (c) => {
        if (seen.has(c.digest)) return;
        seen.add(c.digest);
        const head = await store.manifestHead(withDigest(repo, c.digest));
        if (!head) {
          gone.push(`manifest ${c.digest}`);
          return;
        }
        await visit(await store.manifestGet(withDigest(repo, c.digest)));
      }),
    ]);
  };
  await visit(await store.manifestGet(withDigest(repo, digest)));
  return gone.sort();
}
