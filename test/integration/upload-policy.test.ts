// A registry's upload policy comes from its profile, the same for every command: a chunk size in the
// config is used by `sync`, by `copy --config` and by `check --fix`, and a registry the config says
// nothing about keeps the default (a blob under 8 MiB goes in one PUT).

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startWorld, type World } from '../harness/fixture.js';
import { ociImage, pushManifestTree, randomBlob } from '../harness/seed.js';
import { skopeoInspectRaw } from '../harness/skopeo.js';

const CHUNK = 64 * 1024;
const LAYER = 300 * 1024;

let world: World;
let env: Record<string, string>;
let config: string;
/** Content-Length of every PATCH each target registry received. */
const patches = { basic: [] as number[], open: [] as number[] };
const images = new Map<string, Buffer>();

/** skopeo, the independent witness, reads the exact source manifest at the target. */
async function assertMirrored(ref: string, name: string): Promise<void> {
  const raw = await skopeoInspectRaw(ref, { creds: world.basic.skopeoCreds! });
  assert.ok(raw.equals(images.get(name)!), `${ref} holds the source manifest`);
}

before(async () => {
  world = await startWorld();
  env = { DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir };
  for (const name of ['sync', 'copy', 'fix']) {
    const image = ociImage({
      seed: `policy-${name}`,
      layers: [randomBlob({ seed: `policy-${name}`, size: LAYER })],
    });
    await pushManifestTree(world.source.seedTarget, `policy/${name}`, image, 'v1');
    images.set(name, image.bytes);
  }
  config = join(world.workDir, 'policy.json');
  await writeFile(
    config,
    JSON.stringify({
      registries: { [world.basic.host]: { chunkSize: '64KiB' } },
      mirrors: ['sync', 'fix'].map((name) => ({
        name,
        source: `${world.source.host}/policy/${name}`,
        targets: [`${world.basic.host}/{path}`, `${world.open.host}/{path}`],
      })),
    }),
  );
  for (const key of ['basic', 'open'] as const) {
    world[key].proxy.settings.fault = (req) => {
      if (req.method === 'PATCH') patches[key].push(Number(req.headers['content-length']));
      return undefined;
    };
  }
});
after(async () => {
  await world?.stop();
});

function takePatches() {
  const out = { basic: [...patches.basic], open: [...patches.open] };
  patches.basic.length = 0;
  patches.open.length = 0;
  return out;
}

/** What a 300 KiB layer and a small config look like in 64 KiB chunks: 4 full PATCHes, the rest in the PUT. */
const EXPECTED = Array.from({ length: Math.floor(LAYER / CHUNK) }, () => CHUNK);

test('sync uploads in the chunk size the config gives the registry; other registries keep the default', async () => {
  const res = await world.runCli(['sync', '--config', config, '--only', 'sync'], { env });
  assert.equal(res.code, 0, res.stderr);
  const seen = takePatches();
  assert.deepEqual(seen.basic, EXPECTED);
  assert.deepEqual(seen.open, [], 'a 300 KiB blob goes to an unconfigured registry in one PUT');
  await assertMirrored(`${world.basic.host}/policy/sync:v1`, 'sync');
});

test('copy --config uses the same registry settings', async () => {
  const res = await world.runCli(
    ['copy', '--config', config, `${world.source.host}/policy/copy:v1`, `${world.basic.host}/copied/copy`],
    { env },
  );
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(takePatches().basic, EXPECTED);
  await assertMirrored(`${world.basic.host}/copied/copy:v1`, 'copy');
  // Without the config, the same copy to a fresh repository goes in one PUT: the chunk size came from it.
  const plain = await world.runCli(
    ['copy', `${world.source.host}/policy/copy:v1`, `${world.open.host}/copied/plain`],
    { env },
  );
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(takePatches().open, []);
});

test('check --fix repairs with the configured chunk size too', async () => {
  const res = await world.runCli(['check', '--config', config, '--only', 'fix', '--fix', '--json'], { env });
  assert.equal(res.code, 0, res.stderr);
  const seen = takePatches();
  assert.deepEqual(seen.basic, EXPECTED);
  assert.deepEqual(seen.open, []);
  await assertMirrored(`${world.basic.host}/policy/fix:v1`, 'fix');
});
