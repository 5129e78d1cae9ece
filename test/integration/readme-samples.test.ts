// The README's sample outputs are what the tool prints: the scenario of scripts/readme-samples.ts is run
// again here against real registries, and every marked block in README.md must equal its real output,
// modulo digests, ports, times, request counts and the order in which parallel images finish.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../harness/fixture.js';
import { normalise, produceSamples, readmeSamples, sampleText } from '../harness/readme-samples.js';

test("README.md's samples match a real run (regenerate with: npm run build && npm run samples)", async () => {
  const readme = readmeSamples(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  const real = await produceSamples();
  assert.deepEqual(
    [...readme.keys()].sort(),
    [...real.keys()].sort(),
    'the README marks other samples than the run makes',
  );
  for (const [name, sample] of real) {
    assert.deepEqual(normalise(readme.get(name)!), normalise(sampleText(name, sample)), `sample "${name}"`);
  }
});
