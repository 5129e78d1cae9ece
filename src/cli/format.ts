// Small text helpers for human output.

import { UsageError } from '../errors.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 59.95) return `${s.toFixed(1)} s`;
  // Round once, then split: 119.6 s is "2 min 0 s", never "1 min 60 s".
  const total = Math.round(s);
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

/** "8MiB", "5MB", "1048576" → bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${what}: "${text}" is not a size (examples: 8MiB, 16MB, 1048576)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const base = unit.includes('i') || unit.length === 1 ? 1024 : 1000;
  const power = unit.startsWith('k') ? 1 : unit.startsWith('m') ? 2 : unit.startsWith('g') ? 3 : 0;
  const bytes = Math.round(Number(m[1]) * base ** power);
  if (bytes < 1) throw new UsageError(`${what}: must be at least 1 byte`);
  return bytes;
}

export function parsePositiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) {
    throw new UsageError(`${what}: "${text}" is not a positive whole number`);
  }
  return Number(text);
}

export function parseNonNegativeInt(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${what}: "${text}" is not a whole number`);
  return Number(text);
}

/** "90s", "5m", "1h", "1500ms", "30" (seconds) → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${what}: "${text}" is not a duration (examples: 90s, 5m, 1h)`);
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

/** "1 layer", "3 layers", "1 retry", "2 retries"; `many` for other irregular words. */
export function plural(n: number, word: string, many?: string): string {
  if (n === 1) return `${n} ${word}`;
  return `${n} ${many ?? (/[^aeiou]y$/.test(word) ? `${word.slice(0, -1)}ies` : `${word}s`)}`;
}

/** "sha256:1851bab54954": enough of a digest to tell digests apart in a table or a line. */
export function shortDigest(digest: string | undefined): string {
  return digest ? digest.slice(0, 19) : '-';
}
