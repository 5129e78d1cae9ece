// semver, loaded on first use and only the parts asked for: most configs select tags without version
// ranges, so sorting tags needs `parse` alone. The package's index loads all of its ~40 modules (some
// 15–30 ms of a run's start); `semver/functions/parse` loads 5 (about 4 ms), the way semver's README
// offers. Synchronous requires, so callers stay synchronous (semver is CommonJS).

import { createRequire } from 'node:module';
import type semverType from 'semver';

const require = createRequire(import.meta.url);

let parse: typeof semverType.parse | undefined;
let Range: typeof semverType.Range | undefined;
let validRange: typeof semverType.validRange | undefined;

/** Strict parsing of a version; null for anything else. */
function parseVersion(version: string): semverType.SemVer | null {
  parse ??= require('semver/functions/parse') as typeof semverType.parse;
  return parse(version);
}

/** The normalised range, or null when `range` is not one. */
function validateRange(range: string): string | null {
  validRange ??= require('semver/ranges/valid') as typeof semverType.validRange;
  return validRange(range);
}

const lib = {
  parse: parseVersion,
  get Range(): typeof semverType.Range {
    Range ??= require('semver/classes/range') as typeof semverType.Range;
    return Range;
  },
  validRange: validateRange,
};

/** The parts of the semver package regmirror uses, each loaded the first time it is asked for. */
export function semverLib(): typeof lib {
  return lib;
}
