// Runs the test suites with Node's own test runner, TypeScript loaded through tsx.
// Usage: node scripts/run-tests.mjs [unit|integration] [-- extra node --test flags]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const which = process.argv[2] && !process.argv[2].startsWith('-') ? process.argv[2] : 'all';
const dirs = which === 'all' ? ['test/unit', 'test/integration'] : [`test/${which}`];

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = dirs.flatMap(collect);
const args = ['--import', 'tsx', '--test', '--test-concurrency=1', ...files];
const res = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(res.status ?? 1);
