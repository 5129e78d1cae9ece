// Regenerates the sample outputs in README.md from real runs (test/harness/readme-samples.ts): starts
// local registries, runs the CLI (build it first: npm run build), and rewrites every block marked
// `<!-- sample: NAME -->`. test/integration/readme-samples.test.ts fails when the README and a real run
// disagree; run this (npm run samples) after changing what a command prints.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/harness/fixture.js';
import { produceSamples, withSamples } from '../test/harness/readme-samples.js';

const file = join(REPO_ROOT, 'README.md');
const samples = await produceSamples();
const before = await readFile(file, 'utf8');
const after = withSamples(before, samples);
await writeFile(file, after);
process.stdout.write(
  before === after ? 'README.md samples unchanged\n' : `README.md: ${samples.size} samples written\n`,
);
