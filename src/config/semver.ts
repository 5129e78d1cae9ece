// semver, loaded on first use: most configs select tags without version ranges and most tags are not
// versions, and loading it costs every run's start some 15–40 ms. A synchronous require, so callers
// stay synchronous (semver is CommonJS).

import { createRequire } from 'node:module';
import type semverType from 'semver';

let loaded: typeof semverType | undefined;

/** The semver package (loaded the first time it is asked for). */
export function semverLib(): typeof semverType {
  loaded ??= createRequire(import.meta.url)('semver') as typeof semverType;
  return loaded;
}
