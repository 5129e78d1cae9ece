// The metrics file's text (renderMetrics) read back by the strict exposition-format parser of the test
// harness; and that parser refusing what Prometheus refuses, so that its acceptance means something.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkMetrics, checkMetricsFile, renderMetrics, writeMetrics } from '../../src/cli/metrics.js';
import type { DriftRow } from '../../src/copy/check.js';
import { UsageError } from '../../src/errors.js';
import { parseExposition, sampleValue } from '../harness/prometheus-text.js';

describe('the strict exposition parser refuses what the format does not allow', () => {
  const bad: [string, string][] = [
    ['no final newline', 'a 1'],
    ['a bad metric name', '1abc 1\n'],
    ['a bad label name', 'a{1x="y"} 1\n'],
    ['a reserved label name', 'a{__x="y"} 1\n'],
    ['an unquoted label value', 'a{x=y} 1\n'],
    ['a bad escape', 'a{x="\\t"} 1\n'],
    ['an unterminated value', 'a{x="y} 1\n'],
    ['a value that is not a float', 'a 1,5\n'],
    ['no value', 'a{x="y"}\n'],
    ['a bad timestamp', 'a 1 12.5\n'],
    ['HELP twice', '# HELP a x\n# HELP a y\na 1\n'],
    ['TYPE twice', '# TYPE a gauge\n# TYPE a gauge\na 1\n'],
    ['TYPE after a sample', 'a 1\n# TYPE a gauge\n'],
    ['an unknown type', '# TYPE a meter\na 1\n'],
    ['a family split in two', 'a 1\nb 1\na{x="y"} 2\n'],
    ['the same series twice', 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n'],
  ];
  for (const [what, text] of bad) {
    test(what, () => {
      assert.throws(() => parseExposition(text));
    });
  }
  test('and reads what it allows: escapes, NaN, +Inf, timestamps, comments', () => {
    const f = parseExposition(
      '# a comment\n# HELP a it says "hi"\\nand more\n# TYPE a gauge\na{x="q\\"\\\\\\n"} +Inf\na{x="n"} NaN 1700000000000\nb 1.5e3\n',
    );
    assert.equal(f.get('a')!.help, 'it says "hi"\nand more');
    assert.equal(f.get('a')!.samples[0]!.labels.x, 'q"\\\n');
    assert.equal(f.get('a')!.samples[0]!.value, Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(f.get('a')!.samples[1]!.value));
    assert.equal(f.get('b')!.samples[0]!.value, 1500);
  });
});

test('renderMetrics escapes label values and the parser reads them back exactly', () => {
  const nasty = 'a "quoted" \\ back\nslash';
  const text = renderMetrics([
    {
      name: 'regmirror_x',
      help: 'help with \\ and\nnewline',
      samples: [{ labels: { mirror: nasty }, value: 3 }],
    },
  ]);
  const f = parseExposition(text);
  assert.equal(f.get('regmirror_x')!.type, 'gauge');
  assert.equal(f.get('regmirror_x')!.help, 'help with \\ and\nnewline');
  assert.equal(sampleValue(f, 'regmirror_x', { mirror: nasty }), 3);
});

test('check metrics: every state per mirror and target, zeros included; last success carried over after a failure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'regmirror-metrics-'));
  const file = join(dir, 'check.prom');
  const row = (target: string, tag: string, state: DriftRow['state']): DriftRow => ({
    mirror: 'm',
    source: 'src/app',
    target,
    tag,
    state,
  });
  const rows = [row('t1/app', '1', 'ok'), row('t1/app', '2', 'stale'), row('t2/app', '1', 'missing')];
  const facts = { requests: 7, retries: 1, durationMs: 1500 };
  writeMetrics(
    checkMetricsFile(file),
    checkMetrics(rows, [], { ...facts, code: 0, previous: checkMetricsFile(file) }),
  );
  const first = parseExposition(readFileSync(file, 'utf8'));
  const success = sampleValue(first, 'regmirror_last_success_timestamp_seconds', { command: 'check' });
  assert.ok(Math.abs(success - Date.now() / 1000) < 60);
  assert.equal(sampleValue(first, 'regmirror_tags', { target: 't1/app', state: 'stale' }), 1);
  assert.equal(sampleValue(first, 'regmirror_tags', { target: 't1/app', state: 'ok' }), 1);
  assert.equal(sampleValue(first, 'regmirror_tags', { target: 't2/app', state: 'missing' }), 1);
  assert.equal(sampleValue(first, 'regmirror_tags', { target: 't2/app', state: 'extra' }), 0);
  assert.equal(first.get('regmirror_tags')!.samples.length, 2 * 6);
  assert.equal(sampleValue(first, 'regmirror_requests', { command: 'check' }), 7);
  assert.equal(sampleValue(first, 'regmirror_duration_seconds', { command: 'check' }), 1.5);

  // A later failing run keeps the time of the last success, and says it failed.
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(
      /(last_success_timestamp_seconds\{command="check"\}) \d+/,
      '$1 1700000000',
    ),
  );
  writeMetrics(
    checkMetricsFile(file),
    checkMetrics(rows, [], { ...facts, code: 2, previous: checkMetricsFile(file) }),
  );
  const second = parseExposition(readFileSync(file, 'utf8'));
  assert.equal(
    sampleValue(second, 'regmirror_last_success_timestamp_seconds', { command: 'check' }),
    1700000000,
  );
  assert.equal(sampleValue(second, 'regmirror_exit_code', { command: 'check' }), 2);
  // Written by rename: no temporary file is left beside it.
  assert.deepEqual(readdirSync(dir), ['check.prom']);
});

test('a metrics file in a directory that does not exist is a usage error before any work', () => {
  assert.throws(
    () => checkMetricsFile('/nonexistent-dir-for-regmirror/x.prom'),
    (err: unknown) => err instanceof UsageError && /nonexistent-dir-for-regmirror/.test(err.message),
  );
});
