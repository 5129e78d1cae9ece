// The installed package, as a user gets it from the packed tarball (run by scripts/pack-check.sh, which
// packs, installs into a temporary prefix and passes the paths): the files it ships, --version, the
// "no config" error pointing at an example that is really there, and a real copy between local
// registries with the installed binary, checked with skopeo.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { REPO_ROOT, startWorld, type World } from '../harness/fixture.js';
import { runCommand } from '../harness/run-command.js';
import { seedImage } from '../harness/seed.js';
import { assertSkopeoPulls } from '../harness/witness.js';

const bin = process.env.REGMIRROR_BIN;
const tarball = process.env.REGMIRROR_TARBALL;
let world: World;

before(async () => {
  assert.ok(
    bin && tarball,
    'run through scripts/pack-check.sh, which sets REGMIRROR_BIN and REGMIRROR_TARBALL',
  );
  world = await startWorld();
});
after(async () => {
  await world?.stop();
});

test('the tarball ships the built CLI, the schema, the example config and no sources or tests', async () => {
  const { stdout } = await runCommand('tar', ['-tzf', tarball!]);
  const files = stdout.toString('utf8').trim().split('\n');
  for (const f of [
    'package/package.json',
    'package/README.md',
    'package/CHANGELOG.md',
    'package/bin/regmirror.js',
    'package/dist/cli/main.js',
    'package/mirror.schema.json',
    'package/mirror.config.example.json',
  ]) {
    assert.ok(files.includes(f), `${f} is not in the package`);
  }
  assert.deepEqual(
    files.filter((f) => /^package\/(src|test|scripts|bench|node_modules)\//.test(f)),
    [],
  );
});

test('--version is the package version', async () => {
  const res = await world.runCli(['--version'], { bin: bin! });
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
  assert.equal(res.stdout.trim(), version);
});

test('the "no config" error names an example that the package really holds, and it is valid', async () => {
  const res = await world.runCli(['plan'], { bin: bin!, cwd: world.workDir });
  assert.equal(res.code, 2);
  assert.match(res.stderr, /mirror\.config\.example\.json shows one/);
  // <prefix>/bin/regmirror → <prefix>/lib/node_modules/regmirror
  const example = join(
    dirname(dirname(bin!)),
    'lib',
    'node_modules',
    'regmirror',
    'mirror.config.example.json',
  );
  assert.ok(existsSync(example), example);
  validateConfig(JSON.parse(readFileSync(example, 'utf8')), example);
});

test('a real copy with the installed regmirror', async () => {
  const image = await seedImage(
    world.source.seedTarget,
    'installed/app',
    'v1',
    'oci-index-with-attestations',
  );
  const res = await world.runCli(
    ['copy', `${world.source.host}/installed/app:v1`, `${world.open.host}/installed/app`, '--json'],
    { bin: bin! },
  );
  assert.equal(res.code, 0, res.stderr);
  assert.equal((JSON.parse(res.stdout) as { digest: string }).digest, image.digest);
  await assertSkopeoPulls(world.open, 'installed/app', 'v1', image.bytes);
});
