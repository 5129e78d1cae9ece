// Tables for people: fitted to a width by shortening references in the middle, text left, numbers right.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plural } from '../../src/cli/format.js';
import { renderTable, shorten } from '../../src/cli/table.js';

test('shorten keeps both ends of a reference, or the start of free text', () => {
  assert.equal(shorten('127.0.0.1:41483/acme/app', 12), '127.0…me/app');
  assert.equal(shorten('127.0.0.1:41483/acme/app', 12).length, 12);
  assert.equal(shorten('a long error message', 10, 'end'), 'a long er…');
  assert.equal(shorten('short', 10, 'middle'), 'short');
});

test('a table wider than the width shrinks its shrinkable columns until it fits', () => {
  const columns = [
    { header: 'target', shrink: 'middle' as const },
    { header: 'copied', align: 'right' as const },
    { header: 'bytes', align: 'right' as const },
  ];
  const rows = [
    ['registry.example.com:5000/some/very/long/repository/name', '3', '1.2 GiB'],
    ['short/app', '12', '4 B'],
  ];
  const wide = renderTable(columns, rows);
  assert.ok(wide.split('\n').some((l) => l.length > 60));
  const fitted = renderTable(columns, rows, 40);
  for (const line of fitted.split('\n')) assert.ok(line.length <= 40, `${line.length}: ${line}`);
  const lines = fitted.split('\n');
  // Text left-aligned, numbers right-aligned under their headers.
  assert.match(lines[0]!, /^target\s+copied\s+bytes$/);
  assert.match(lines[2]!, /^registry\.ex…\S+ +3 {2}1\.2 GiB$/);
  assert.match(lines[3]!, /^short\/app\s+12\s+4 B$/);
  assert.equal(lines[3]!.indexOf('12') + 2, lines[0]!.indexOf('copied') + 6);
});

test('columns never shrink below their minimum, even when the table cannot fit', () => {
  const out = renderTable(
    [{ header: 'target', shrink: 'middle', min: 20 }, { header: 'n' }],
    [['x'.repeat(50), '1']],
    10,
  );
  assert.equal(out.split('\n')[2]!.indexOf('1'), 22);
});

test('plurals', () => {
  assert.equal(plural(1, 'image'), '1 image');
  assert.equal(plural(2, 'image'), '2 images');
  assert.equal(plural(1, 'retry'), '1 retry');
  assert.equal(plural(0, 'retry'), '0 retries');
  assert.equal(plural(3, 'registry', 'registries'), '3 registries');
  assert.equal(plural(2, 'copy', 'copies'), '2 copies');
});
