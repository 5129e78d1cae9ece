// The config's `limits` object (in `defaults` and in `registries.<host>`): bounds on what a registry may
// send and how long each kind of request may take. The defaults live with the client
// (src/registry/limits.ts); this only validates what a config sets and turns sizes and durations into
// numbers (bytes, milliseconds).

import { z } from 'zod';
import { DEFAULT_LIMITS } from '../registry/limits.js';
import { describeValue } from './issues.js';
import { BYTE_SIZE_PATTERN, formatByteSize, parseByteSize } from './size.js';

/** "90s", "5m", "1h", "1500ms" → milliseconds; undefined when the text is not a duration. */
export function parseDurationText(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

const MIN_DURATION_MS = 100;
const MAX_DURATION_MS = 7 * 24 * 3_600_000;

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function durationSchema(what: string, defaultMs: number) {
  const range = `between ${seconds(MIN_DURATION_MS)} and 7 days`;
  return z
    .union([z.number(), z.string()], {
      error: (issue) =>
        `expected a duration such as "60s", "5m" or a number of seconds, got ${describeValue(issue.input)}`,
    })
    .transform((value, ctx) => {
      const ms = typeof value === 'number' ? Math.round(value * 1000) : parseDurationText(value);
      if (ms === undefined) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${describeValue(value)} is not a duration; write "90s", "5m", "1h", "500ms" or a number of seconds`,
        });
        return z.NEVER;
      }
      if (ms < MIN_DURATION_MS || ms > MAX_DURATION_MS) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${describeValue(value)} is out of range; use ${range}`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .describe(`${what} Default ${seconds(defaultMs)}. A duration ("90s", "5m") or seconds.`);
}

function sizeSchema(what: string, min: number, max: number, defaultBytes: number) {
  const range = `between ${formatByteSize(min)} and ${max >= Number.MAX_SAFE_INTEGER ? 'any size' : formatByteSize(max)}`;
  return z
    .union([z.number().int(), z.string().regex(new RegExp(BYTE_SIZE_PATTERN))], {
      error: (issue) =>
        `expected a size: bytes as a number, or a string like "16MiB", got ${describeValue(issue.input)}`,
    })
    .transform((value, ctx) => {
      const bytes = typeof value === 'number' ? value : parseByteSize(value);
      if (bytes === undefined || bytes < min || bytes > max) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${describeValue(value)} is out of range; use ${range}`,
        });
        return z.NEVER;
      }
      return bytes;
    })
    .describe(`${what} Default ${formatByteSize(defaultBytes)}. Bytes, or "16MiB" / "100GiB".`);
}

function countSchema(what: string, defaultCount: number) {
  return z.number().int().min(1).describe(`${what} Default ${defaultCount}.`);
}

const d = DEFAULT_LIMITS;
const t = d.timeouts;

const timeoutsSchema = z
  .strictObject({
    token: durationSchema('A token request to the token server.', t.token).optional(),
    manifest: durationSchema('A manifest HEAD, GET or PUT.', t.manifest).optional(),
    tags: durationSchema('One page of a tag list.', t.tags).optional(),
    blob: durationSchema(
      'The fixed part of a blob GET or of one upload request; the size / minThroughput is added.',
      t.blob,
    ).optional(),
    request: durationSchema('Any other request (pings, blob HEADs, upload sessions).', t.request).optional(),
    idle: durationSchema(
      'The longest silence: waiting for an answer, or between bytes of a body.',
      t.idle,
    ).optional(),
  })
  .describe('Whole-request deadlines (headers and body) per kind of request.');

export const limitsSchema = z
  .strictObject({
    maxTags: countSchema('Tags in one tag list (all pages).', d.maxTags).optional(),
    maxTagPages: countSchema('Pages of one tag list.', d.maxTagPages).optional(),
    maxManifestSize: sizeSchema(
      'The largest manifest, and the largest image config a descriptor may claim.',
      1024,
      1024 ** 3,
      d.maxManifestSize,
    ).optional(),
    maxBlobSize: sizeSchema(
      'The largest blob a descriptor may claim; larger ones are refused before a byte is read.',
      1024,
      Number.MAX_SAFE_INTEGER,
      d.maxBlobSize,
    ).optional(),
    maxReferrers: countSchema('Referrers of one manifest.', d.maxReferrers).optional(),
    timeouts: timeoutsSchema.optional(),
    minThroughput: sizeSchema(
      'Bytes per second a blob transfer must average (its deadline is timeouts.blob + size / minThroughput).',
      1024,
      Number.MAX_SAFE_INTEGER,
      d.minThroughput,
    ).optional(),
  })
  .describe(
    'Bounds on what a registry may send: tags, sizes, and how long each kind of request may take. ' +
      'Exceeding one is an error that names the registry and the setting.',
  );

export type LimitsConfig = z.output<typeof limitsSchema>;
