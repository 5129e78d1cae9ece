// Which tags of a source repository a mirror copies. Pure: the caller lists the source's tags (all pages)
// and hands them in; nothing here does I/O.
//
// Semantics, in order:
//   1. Filters pick from the source's tags: `include` (matches at least one), `exclude` (matches none),
//      `semver` (the tag parses as a version, "v" prefix allowed, and satisfies the range), then
//      `latest: N` keeps the newest N of what is left. Regular expressions match anywhere in the tag
//      (anchor them with ^ and $ to match whole tags).
//   2. Explicit tags (`list`, `digests`) are added whatever the filters say — naming a tag is the
//      strongest statement a user can make — and do not count towards `latest`.
//   3. With no filter at all, the explicit tags are the whole selection; with neither filters nor explicit
//      tags (no `tags` key), every tag of the source is selected.

import type semver from 'semver';
import { semverLib } from './semver.js';

/** Tag rules after the schema has normalised them (the array form becomes `list` + `digests`). */
export interface TagRules {
  /** Tags selected by name, even when a filter would drop them. */
  list?: string[];
  /** Tags pinned to a digest: that digest is copied under the tag, wherever the source tag points now. */
  digests?: Record<string, string>;
  /** Regular expressions; a tag must match at least one. */
  include?: string[];
  /** Regular expressions; a tag matching any of them is dropped. */
  exclude?: string[];
  /** A semver range, npm semantics: "^15", ">=1.2.0 <2", "~1.4 || ^2". */
  semver?: string;
  /** Let `semver` select pre-releases (1.3.0-rc.1, 1.2.3-alpine) of any version in the range. */
  includePrerelease?: boolean;
  /** Keep only the newest N tags the filters selected (see compareTags). */
  latest?: number;
}

export interface SelectedTag {
  tag: string;
  /** Pinned: copy this digest under `tag`, whatever the source tag points at (or whether it exists). */
  digest?: string;
  /** Named explicitly, not pinned, and absent from the source's tag list: the caller reports it as missing. */
  missing?: true;
}

const LOOKS_LIKE_VERSION = /^v?\d+\.\d+\.\d+/;

/** The tag as a semantic version ("1.2.3", "v1.2.3", "1.2.3-rc.1"); undefined for anything else ("1.2", "latest"). */
export function parseSemverTag(tag: string): semver.SemVer | undefined {
  // Most tags of a large repository are not versions ("r0001", "sha-…"): semver.parse would throw and
  // catch for each, paying for a stack trace. Strict semver starts with "1.2.3" or "v1.2.3".
  if (!LOOKS_LIKE_VERSION.test(tag)) return undefined;
  // Strict parsing: loose mode would read "1.2" or "20240101" as versions and rank them wrongly.
  return semverLib().parse(tag) ?? undefined;
}

/**
 * The order of tags, oldest first; `latest: N` takes the last N.
 *
 * - Two versions compare by semver precedence (1.10.0 > 1.9.0 > 1.9.0-rc.1; "v1.2.3" equals "1.2.3",
 *   then the plain text breaks the tie so the order stays total).
 * - A version ranks above any tag that is not one: in a mixed set ("1.4.2", "1.5.0", "latest", "edge"),
 *   `latest: 2` gives 1.4.2 and 1.5.0. Non-versions only fill up N when there are fewer versions than N.
 * - Two non-versions compare as text, with runs of digits compared by value ("3.10" > "3.9",
 *   "build-100" > "build-99"), ties broken by plain code-unit order so the result never depends on a locale.
 */
export function compareTags(a: string, b: string): number {
  return compareKeys(sortKey(a), sortKey(b));
}

/** A tag with what ordering needs, parsed once: a sort compares each tag about 2 log n times. */
interface SortKey {
  tag: string;
  version: semver.SemVer | undefined;
  /** Runs of digits and of other characters, for the natural order of non-versions. */
  runs: string[];
}

function sortKey(tag: string): SortKey {
  const version = parseSemverTag(tag);
  return { tag, version, runs: version ? [] : (tag.match(RUN) ?? []) };
}

function compareKeys(a: SortKey, b: SortKey): number {
  const va = a.version;
  const vb = b.version;
  if (va && vb) return va.compare(vb) || compareText(a.tag, b.tag);
  if (va) return 1;
  if (vb) return -1;
  return compareNatural(a, b);
}

/** `items` in compareTags order of their tags, oldest first; each tag parsed once. */
export function sortByTag<T>(items: readonly T[], tagOf: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, key: sortKey(tagOf(item)) }))
    .sort((x, y) => compareKeys(x.key, y.key))
    .map((x) => x.item);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const RUN = /[0-9]+|[^0-9]+/g;

function compareNatural(a: SortKey, b: SortKey): number {
  const ra = a.runs;
  const rb = b.runs;
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    const digits = /^[0-9]/.test(x) && /^[0-9]/.test(y);
    const order = digits ? compareDigits(x, y) : compareText(x, y);
    if (order !== 0) return order;
  }
  return ra.length - rb.length || compareText(a.tag, b.tag);
}

/** Digit strings by value, without Number's precision limit (timestamps can be long). */
function compareDigits(x: string, y: string): number {
  const a = x.replace(/^0+(?=.)/, '');
  const b = y.replace(/^0+(?=.)/, '');
  return a.length - b.length || compareText(a, b);
}

function hasFilters(rules: TagRules): boolean {
  return (
    rules.include !== undefined ||
    rules.exclude !== undefined ||
    rules.semver !== undefined ||
    rules.latest !== undefined
  );
}

function filterTags(available: string[], rules: TagRules): string[] {
  const include = rules.include?.map((source) => new RegExp(source));
  const exclude = rules.exclude?.map((source) => new RegExp(source));
  const range =
    rules.semver === undefined
      ? undefined
      : new (semverLib().Range)(rules.semver, { includePrerelease: rules.includePrerelease === true });
  let tags = available.filter((tag) => {
    if (include && !include.some((re) => re.test(tag))) return false;
    if (exclude?.some((re) => re.test(tag))) return false;
    if (range) {
      const version = parseSemverTag(tag);
      if (!version || !range.test(version)) return false;
    }
    return true;
  });
  if (rules.latest !== undefined) tags = sortByTag(tags, (t) => t).slice(-rules.latest);
  return tags;
}

/**
 * The tags to copy, oldest first (compareTags), each once. `available` is the source's tag list;
 * `rules` undefined means every tag.
 */
export function selectTags(available: readonly string[], rules: TagRules | undefined): SelectedTag[] {
  const present = [...new Set(available)];
  const have = new Set(present);
  const selected = new Map<string, SelectedTag>();
  const explicit = [...(rules?.list ?? []), ...Object.keys(rules?.digests ?? {})];

  // Without filters, explicit tags are the whole selection; with neither, every tag is.
  const filtered =
    rules && hasFilters(rules) ? filterTags(present, rules) : explicit.length > 0 ? [] : present;
  for (const tag of filtered) selected.set(tag, { tag });
  for (const tag of explicit) {
    const digest = rules?.digests?.[tag];
    if (digest !== undefined) selected.set(tag, { tag, digest });
    else if (!selected.has(tag)) selected.set(tag, have.has(tag) ? { tag } : { tag, missing: true });
  }
  return sortByTag([...selected.values()], (s) => s.tag);
}
