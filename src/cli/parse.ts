// Turning command-line strings into typed values, with errors that say which argument was wrong.

import { InvalidReferenceError, UsageError } from '../errors.js';
import { type Platform, parsePlatform } from '../oci/platform.js';
import {
  parseReference,
  parseRepository,
  type Reference,
  ReferenceSyntaxError,
  type Repository,
} from '../reference/reference.js';

/** Where a note for the user goes (stderr): parsing never prints by itself. */
export type Note = (line: string) => void;

/**
 * skopeo's habit: `docker://quay.io/org/app:1.2`. Registries are all regmirror speaks to, so the
 * transport is dropped — and said, so that nobody wonders whether it meant something.
 */
function withoutTransport(text: string, what: string, note?: Note): string {
  if (!text.startsWith('docker://')) return text;
  const rest = text.slice('docker://'.length);
  note?.(
    `note: ${what} "${text}": "docker://" dropped, reading it as "${rest}" (registries need no transport prefix)`,
  );
  return rest;
}

export function parseRef(
  text: string,
  what: string,
  defaultTag: string | null = 'latest',
  note?: Note,
): Reference {
  try {
    return parseReference(withoutTransport(text, what, note), { defaultTag });
  } catch (err) {
    if (err instanceof ReferenceSyntaxError) throw new InvalidReferenceError(`${what}: ${err.message}`);
    throw err;
  }
}

export function parseRepo(text: string, what: string, note?: Note): Repository {
  try {
    return parseRepository(withoutTransport(text, what, note));
  } catch (err) {
    if (err instanceof ReferenceSyntaxError) throw new InvalidReferenceError(`${what}: ${err.message}`);
    throw err;
  }
}

/** "linux/amd64", "linux/arm/v7" → platforms; a malformed one is a usage error naming the flag. */
export function parsePlatforms(texts: string[], flag = '--platform'): Platform[] {
  return texts.map((text) => {
    const p = parsePlatform(text);
    if (!p)
      throw new UsageError(
        `${flag}: "${text}" is not a platform; write os/arch or os/arch/variant, e.g. linux/amd64, linux/arm/v7`,
      );
    return p;
  });
}
