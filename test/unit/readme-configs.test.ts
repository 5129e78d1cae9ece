// Every config example in README.md must be valid: the docs cannot drift from the schema.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)]
  .map((m) => m[1]!)
  .filter((text) => text.includes('"mirrors"') && !text.includes('"command"'));

test('README has config examples', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length}`);
});

for (const [i, text] of blocks.entries()) {
  test(`README config example ${i + 1} is valid`, () => {
    validateConfig(JSON.parse(text), `README.md example ${i + 1}`);
  });
}
