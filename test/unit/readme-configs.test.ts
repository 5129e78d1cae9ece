// Every config example in README.md and docs/ must be valid: the docs cannot drift from the schema.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const configsIn = (text: string) =>
  [...text.matchAll(/```json\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((block) => block.includes('"mirrors"') && !block.includes('"command"'));
const blocks = configsIn(readme);
const airGap = configsIn(readFileSync(new URL('../../docs/air-gap.md', import.meta.url), 'utf8'));

test('README has config examples', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length}`);
});

for (const [i, text] of blocks.entries()) {
  test(`README config example ${i + 1} is valid`, () => {
    validateConfig(JSON.parse(text), `README.md example ${i + 1}`);
  });
}

for (const [i, text] of airGap.entries()) {
  test(`docs/air-gap.md config example ${i + 1} is valid`, () => {
    validateConfig(JSON.parse(text), `docs/air-gap.md example ${i + 1}`);
  });
}
