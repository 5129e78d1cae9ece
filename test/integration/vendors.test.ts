// Quay, GHCR and Harbor, each played by a real token-auth distribution registry that the config gives
// the vendor's `type`, with the quirk a local registry cannot show played by its token server (robot
// names, tokens without expires_in, a GITHUB_TOKEN accepted with any user name) or by the counting proxy
// in front of it (GHCR's relative upload Location, Quay's 400 to a mount without `from`, Harbor's 401 to
// a mount from a project the robot cannot read). skopeo is the witness for every copy.

import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { syncReportSchema } from '../../src/cli/report.js';
import { basicAuth, type Credentials, type Endpoint, startWorld, type World } from '../harness/fixture.js';
import { type RegistryProxy, startProxy } from '../harness/proxy.js';
import { startRegistry } from '../harness/registry.js';
import {
  type LargeBlobImage,
  type ManifestNode,
  ociImage,
  pushManifestTree,
  randomBlob,
  type SeededImage,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from '../harness/token-server.js';
import { assertSkopeoPulls } from '../harness/witness.js';

const MiB = 1024 * 1024;
const QUAY_ROBOT: Credentials = { username: 'acme+mirrorbot', password: 'QUAYROBOTTOKEN0123456789' };
const HARBOR_ROBOT: Credentials = { username: 'robot$proj+mirror', password: 'harbor-robot-secret-Zx9' };
const JOB_TOKEN = 'ghs_jobTokenForTheTestRun0123456789';
const READ_TOKEN = 'ghs_readOnlyTokenForTheTestRun987654';

let world: World;
let small: SeededImage;

/** A registry of its own with its own token server, behind a counting proxy: one vendor's stand-in. */
interface Vendor extends Endpoint {
  tokens: TokenServer;
  proxy: RegistryProxy;
}
const stops: (() => Promise<void>)[] = [];

async function startVendor(options: TokenServerOptions, creds?: Credentials): Promise<Vendor> {
  const tokens = await startTokenServer(options);
  stops.push(() => tokens.stop());
  const registry = await startRegistry({ auth: 'token', tokenServer: tokens });
  stops.push(() => registry.stop());
  const proxy = await startProxy(registry.url);
  stops.push(() => proxy.stop());
  return {
    tokens,
    registry,
    proxy,
    host: proxy.host,
    url: proxy.url,
    ...(creds ? { creds, skopeoCreds: `${creds.username}:${creds.password}` } : {}),
    seedTarget: { url: proxy.url, ...(creds ? { username: creds.username, password: creds.password } : {}) },
  };
}

/** A scratch directory with a docker config.json holding these entries. */
async function dockerConfig(entries: Record<string, unknown>): Promise<string> {
  const dir = await makeTempDir('vendor-docker');
  stops.push(() => removeDir(dir));
  await writeFile(join(dir, 'config.json'), JSON.stringify(entries));
  return dir;
}

async function writeJson(name: string, value: unknown): Promise<string> {
  const file = join(world.workDir, name);
  await writeFile(file, JSON.stringify(value, null, 2));
  return file;
}

/** Every token request since `from` was answered for exactly this user. */
function tokenUsers(tokens: TokenServer): Set<string | undefined> {
  return new Set(tokens.requests.map((r) => (r.ok ? r.user : `refused ${r.user ?? ''}`)));
}

before(async () => {
  world = await startWorld();
  small = await seedImage(world.source.seedTarget, 'vendors/small', 'v1', 'oci-image');
});
after(async () => {
  for (const stop of stops.reverse()) await stop();
  await world?.stop();
});

describe('GHCR', () => {
  let ghcr: Vendor;
  let config: string;
  let large: LargeBlobImage;
  const env = () => ({ DOCKER_CONFIG: world.dockerConfigDir, HOME: world.homeDir });

  before(async () => {
    // GHCR takes a GITHUB_TOKEN as the password whatever the user name.
    ghcr = await startVendor({ users: {}, anyUserPasswords: { [JOB_TOKEN]: 'push', [READ_TOKEN]: 'pull' } });
    // The world's docker config has nothing for this host: the token is all there is.
    config = await writeJson('ghcr.json', {
      registries: { [ghcr.host]: { type: 'ghcr' } },
      mirrors: [{ source: `${world.source.host}/vendors/small`, targets: [`${ghcr.host}/octo/small`] }],
    });
    large = await seedLargeBlobImage(world.source.seedTarget, 'vendors/large', 'v1', 10 * MiB);
  });

  test('GITHUB_TOKEN pushes a 10 MiB layer: relative upload Locations followed, no request body over 4 MiB', async () => {
    world.resetCounts();
    ghcr.proxy.reset();
    ghcr.tokens.requests.length = 0;
    // GHCR answers upload requests with a Location that has no scheme and host.
    ghcr.proxy.settings.fault = (req) =>
      req.kind === 'upload'
        ? {
            editResponseHeaders: (headers) => {
              if (typeof headers.location !== 'string') return headers;
              const u = new URL(headers.location);
              return { ...headers, location: `${u.pathname}${u.search}` };
            },
          }
        : undefined;
    const res = await world.runCli(
      [
        'copy',
        '--config',
        config,
        // Asked for more than GHCR takes: the profile keeps it to 4 MiB.
        '--chunk-size',
        '16MiB',
        `${world.source.host}/vendors/large:v1`,
        `${ghcr.host}/octo/large`,
        '--json',
      ],
      { env: { ...env(), GITHUB_TOKEN: JOB_TOKEN, GITHUB_ACTOR: 'octocat' } },
    );
    ghcr.proxy.settings.fault = undefined;
    assert.equal(res.code, 0, res.stderr);

    // The token went as the password of GITHUB_ACTOR, to this registry's realm only.
    assert.ok(ghcr.tokens.requests.length > 0);
    assert.deepEqual(tokenUsers(ghcr.tokens), new Set(['octocat']));
    assert.deepEqual(tokenUsers(world.tokenServer), new Set(['alice']), 'the source realm never saw it');
    for (const out of [res.stdout, res.stderr])
      assert.ok(!out.includes(JOB_TOKEN), 'the token is never printed');

    // Every upload answer that named a Location named a relative one, and the client followed them all.
    const uploads = ghcr.proxy.requests.filter((r) => r.kind === 'upload' && r.status !== 401);
    const located = uploads.filter((r) => r.location !== undefined);
    assert.ok(located.length >= 4, `${located.length} upload answers with a Location`);
    assert.ok(
      located.every((r) => r.location!.startsWith('/v2/')),
      located.map((r) => r.location).join(' '),
    );
    assert.ok(uploads.filter((r) => r.method === 'PATCH').every((r) => r.status === 202));

    // No request body over 4 MiB; the layer went as 4 + 4 MiB PATCHes and the last 2 MiB with the PUT.
    const biggest = Math.max(...ghcr.proxy.requests.map((r) => r.requestBytes));
    assert.equal(biggest, 4 * MiB);
    const layerBodies = uploads
      .filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && r.requestBytes > 2 * MiB - 1)
      .map((r) => `${r.method} ${r.requestBytes}`);
    assert.deepEqual(layerBodies, [`PATCH ${4 * MiB}`, `PATCH ${4 * MiB}`, `PUT ${2 * MiB}`]);
    await assertSkopeoPulls(
      { ...ghcr, skopeoCreds: `octocat:${JOB_TOKEN}` },
      'octo/large',
      'v1',
      large.manifest.bytes,
    );
  });

  test('GH_TOKEN without GITHUB_ACTOR goes with any user name; a read-only token is refused naming packages: write', async () => {
    ghcr.tokens.requests.length = 0;
    const readOnly = await world.runCli(['sync', '--config', config], {
      env: { ...env(), GH_TOKEN: READ_TOKEN },
    });
    assert.equal(readOnly.code, 2, readOnly.stderr);
    assert.deepEqual(tokenUsers(ghcr.tokens), new Set(['regmirror']));
    assert.match(
      readOnly.stderr,
      /credentials from environment variable GH_TOKEN were not granted octo\/small:pull,push/,
    );
    assert.match(readOnly.stderr, /"permissions: packages: write"/);

    // Nothing at all: the registry is asked anonymously, and says it wants credentials.
    ghcr.tokens.requests.length = 0;
    const none = await world.runCli(['sync', '--config', config], { env: { ...env(), GITHUB_TOKEN: '' } });
    assert.equal(none.code, 2, none.stderr);
    assert.deepEqual(tokenUsers(ghcr.tokens), new Set([undefined]), 'anonymous token requests only');
    assert.match(none.stderr, /authentication required: .*GITHUB_TOKEN: \$\{\{ secrets\.GITHUB_TOKEN \}\}/);

    const ok = await world.runCli(['sync', '--config', config], { env: { ...env(), GH_TOKEN: JOB_TOKEN } });
    assert.equal(ok.code, 0, ok.stderr);
    await assertSkopeoPulls({ ...ghcr, skopeoCreds: `x:${JOB_TOKEN}` }, 'octo/small', 'v1', small.bytes);
  });
});

describe('Quay', () => {
  let quay: Vendor;
  let dockerDir: string;
  const images: ManifestNode[] = [];
  const shared = [
    randomBlob({ seed: 'quay-shared-1', size: 40 * 1024 }),
    randomBlob({ seed: 'quay-shared-2', size: 30 * 1024 }),
  ];

  before(async () => {
    quay = await startVendor(
      {
        users: { [QUAY_ROBOT.username]: { password: QUAY_ROBOT.password, access: 'push' } },
        // Quay's token answers carry no expires_in.
        omitExpiresIn: true,
      },
      QUAY_ROBOT,
    );
    dockerDir = await dockerConfig({
      auths: {
        [world.source.host]: { auth: basicAuth(world.source.creds!) },
        [quay.host]: { auth: basicAuth(QUAY_ROBOT) },
      },
    });
    for (const name of ['one', 'two']) {
      const image = ociImage({ seed: `quay-${name}`, layers: shared, layerCount: 1 });
      await pushManifestTree(world.source.seedTarget, `quay-src/${name}`, image, 'v1');
      images.push(image);
    }
  });

  test('a robot account (org+name) and tokens without expires_in; mounts always name `from`', async () => {
    let withoutFrom = 0;
    // Quay answers a mount without `from` with 400; count any such request.
    quay.proxy.settings.fault = (req) => {
      if (req.method !== 'POST' || req.kind !== 'upload' || !req.query.has('mount') || req.query.get('from'))
        return undefined;
      withoutFrom++;
      return {
        status: 400,
        body: JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'missing from' }] }),
      };
    };
    const config = await writeJson('quay.json', {
      registries: { [quay.host]: { type: 'quay' } },
      defaults: { concurrency: 1 },
      mirrors: ['one', 'two'].map((name) => ({
        source: `${world.source.host}/quay-src/${name}`,
        targets: [`${quay.host}/acme/${name}`],
      })),
    });
    quay.proxy.reset();
    quay.tokens.requests.length = 0;
    const env = { DOCKER_CONFIG: dockerDir, HOME: world.homeDir };
    const res = await world.runCli(['sync', '--config', config, '--json'], { env });
    const auth = await world.runCli(['auth', 'check', '--config', config], { env });
    quay.proxy.settings.fault = undefined;
    assert.equal(res.code, 0, res.stderr);
    assert.equal(auth.code, 0, auth.stderr);

    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    assert.equal(report.summary.copied, 2);
    // The second repository mounted the shared layers from the first, naming it.
    const mounts = quay.proxy.requests.filter((r) => r.method === 'POST' && r.query.has('mount'));
    assert.equal(mounts.length, shared.length);
    assert.ok(mounts.every((r) => r.query.get('from') === 'acme/one' && r.status === 201));
    assert.equal(withoutFrom, 0, 'a mount without from was sent');
    // Every token request was the robot's, and none of the answers said how long the token lives.
    assert.deepEqual(tokenUsers(quay.tokens), new Set([QUAY_ROBOT.username]));
    for (const [i, name] of ['one', 'two'].entries())
      await assertSkopeoPulls(quay, `acme/${name}`, 'v1', images[i]!.bytes);
  });
});

describe('Harbor', () => {
  let harbor: Vendor;
  let dockerDir: string;
  const shared = [
    randomBlob({ seed: 'harbor-shared-1', size: 40 * 1024 }),
    randomBlob({ seed: 'harbor-shared-2', size: 30 * 1024 }),
  ];
  const images = new Map<string, ManifestNode>();

  before(async () => {
    harbor = await startVendor(
      { users: { [HARBOR_ROBOT.username]: { password: HARBOR_ROBOT.password, access: 'push' } } },
      HARBOR_ROBOT,
    );
    dockerDir = await dockerConfig({
      auths: {
        [world.source.host]: { auth: basicAuth(world.source.creds!) },
        [harbor.host]: { auth: basicAuth(HARBOR_ROBOT) },
      },
    });
    for (const name of ['one', 'two']) {
      const image = ociImage({ seed: `harbor-${name}`, layers: shared, layerCount: 1 });
      await pushManifestTree(world.source.seedTarget, `harbor-src/${name}`, image, 'v1');
      images.set(name, image);
    }
  });

  test('a mount from a project the robot cannot read (401) falls back to an upload, asked once, no re-auth loop', async () => {
    // Harbor answers 401 to a mount whose `from` project the robot may not pull: here, project proja.
    harbor.proxy.settings.fault = (req) => {
      const from = req.query.get('from');
      if (req.method !== 'POST' || req.kind !== 'upload' || !from?.startsWith('proja/')) return undefined;
      return {
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${harbor.tokens.realm}",service="${harbor.tokens.service}",scope="repository:${from}:pull",error="insufficient_scope"`,
        },
        body: JSON.stringify({
          errors: [
            { code: 'UNAUTHORIZED', message: `unauthorized to access repository: ${from}, action: pull` },
          ],
        }),
      };
    };
    const config = await writeJson('harbor.json', {
      registries: { [harbor.host]: { type: 'harbor' } },
      // One image at a time, so that the second image meets what the first one taught the run.
      defaults: { concurrency: 1 },
      mirrors: ['one', 'two'].map((name) => ({
        name,
        source: `${world.source.host}/harbor-src/${name}`,
        targets: [`${harbor.host}/proja/${name}`, `${harbor.host}/projb/${name}`],
      })),
    });
    harbor.proxy.reset();
    harbor.tokens.requests.length = 0;
    const res = await world.runCli(['sync', '--config', config, '--json'], {
      env: { DOCKER_CONFIG: dockerDir, HOME: world.homeDir },
    });
    harbor.proxy.settings.fault = undefined;
    assert.equal(res.code, 0, res.stderr);
    const report = syncReportSchema.parse(JSON.parse(res.stdout));
    const byTarget = new Map(
      report.mirrors.flatMap((m) =>
        m.images[0]!.targets.map((t) => [t.target.replace(`${harbor.host}/`, ''), t] as const),
      ),
    );
    const counts = (t: string) => {
      const r = byTarget.get(`${t}:v1`)!;
      return [r.status, r.blobsUploaded, r.blobsMounted];
    };
    // Image one (4 blobs): proja uploads; projb's mounts from proja are refused, so it uploads too.
    assert.deepEqual(counts('proja/one'), ['copied', 4, 0]);
    assert.deepEqual(counts('projb/one'), ['copied', 4, 0]);
    // Image two: the shared layers mount from projb/one (proja/one is not asked again); its own two
    // blobs are uploaded to proja/two, and projb/two's mounts of them from proja/two are refused.
    assert.deepEqual(counts('proja/two'), ['copied', 2, 2]);
    assert.deepEqual(counts('projb/two'), ['copied', 2, 2]);

    const mounts = harbor.proxy.requests.filter((r) => r.method === 'POST' && r.query.has('mount'));
    const refused = mounts.filter((r) => r.status === 401);
    const key = (r: (typeof mounts)[number]) =>
      `${r.query.get('mount')} from ${r.query.get('from')} to ${r.repo}`;
    // Each refused mount was asked once; once a repository has refused, the run asks it no more (blobs
    // already on their way may each have asked once: at most one refusal per blob).
    const from = (repo: string) => refused.filter((r) => r.query.get('from') === repo).length;
    assert.equal(new Set(refused.map(key)).size, refused.length, refused.map(key).join('\n'));
    assert.ok(from('proja/one') >= 1 && from('proja/one') <= 4, refused.map(key).join('\n'));
    assert.ok(from('proja/two') >= 1 && from('proja/two') <= 2, refused.map(key).join('\n'));
    assert.equal(refused.length, from('proja/one') + from('proja/two'));
    assert.ok(
      mounts
        .filter((r) => r.status !== 401)
        .every((r) => r.status === 201 && r.query.get('from') === 'projb/one'),
    );
    // No loop of token requests: each scope set is fetched once (a mount refused while another was on
    // its way may cost that one a second token), and a refusal never sends the robot back to the realm.
    const fetched = new Map<string, number>();
    for (const r of harbor.tokens.requests) {
      const set = [...r.scopes].sort().join(' ');
      fetched.set(set, (fetched.get(set) ?? 0) + 1);
    }
    const summary = [...fetched].map(([set, n]) => `${n} × ${set}`).join('\n');
    assert.ok(Math.max(...fetched.values()) <= 2, summary);
    assert.ok(harbor.tokens.requests.length <= fetched.size + refused.length, summary);
    assert.ok(harbor.tokens.requests.every((r) => r.ok && r.user === HARBOR_ROBOT.username));
    for (const name of ['one', 'two'])
      for (const project of ['proja', 'projb'])
        await assertSkopeoPulls(harbor, `${project}/${name}`, 'v1', images.get(name)!.bytes);
  });
});

describe('robot accounts in every credential source', () => {
  const robots: { vendor: string; creds: Credentials; endpoint: () => Vendor; type: string }[] = [];
  let quay: Vendor;
  let harbor: Vendor;
  let helperDir: string;

  before(async () => {
    quay = await startVendor(
      {
        users: { [QUAY_ROBOT.username]: { password: QUAY_ROBOT.password, access: 'push' } },
        omitExpiresIn: true,
      },
      QUAY_ROBOT,
    );
    harbor = await startVendor(
      { users: { [HARBOR_ROBOT.username]: { password: HARBOR_ROBOT.password, access: 'push' } } },
      HARBOR_ROBOT,
    );
    robots.push(
      { vendor: 'quay', creds: QUAY_ROBOT, endpoint: () => quay, type: 'quay' },
      { vendor: 'harbor', creds: HARBOR_ROBOT, endpoint: () => harbor, type: 'harbor' },
    );
    // A docker credential helper per robot, answering with the robot's name exactly as stored.
    helperDir = await makeTempDir('robot-helpers');
    stops.push(() => removeDir(helperDir));
    await mkdir(join(helperDir, 'bin'));
    for (const robot of [QUAY_ROBOT, HARBOR_ROBOT]) {
      const name = robot === QUAY_ROBOT ? 'quay' : 'harbor';
      const answer = JSON.stringify({ ServerURL: 'x', Username: robot.username, Secret: robot.password });
      const script = join(helperDir, 'bin', `docker-credential-robot-${name}`);
      // A quoted here-document: the shell leaves `$` alone, as a real helper's stored value would be.
      await writeFile(script, `#!/bin/sh\ncat > /dev/null\ncat <<'ANSWER'\n${answer}\nANSWER\n`);
      await chmod(script, 0o755);
    }
  });

  for (const how of [
    'config.json auth',
    'environment variables',
    'credential helper',
    'DOCKER_AUTH_CONFIG',
    'podman auth.json',
  ] as const) {
    test(`org+name (Quay) and robot$project+name (Harbor) from ${how}`, async () => {
      for (const robot of robots) {
        const target = robot.endpoint();
        const repo = `robots/${how.toLowerCase().replace(/[^a-z]+/g, '-')}`;
        const auths: Record<string, unknown> = {
          [world.source.host]: { auth: basicAuth(world.source.creds!) },
        };
        const docker: Record<string, unknown> = { auths };
        const registry: Record<string, unknown> = { type: robot.type };
        const env: Record<string, string> = { HOME: world.homeDir };
        if (how === 'config.json auth') auths[target.host] = { auth: basicAuth(robot.creds) };
        if (how === 'credential helper') {
          docker.credHelpers = { [target.host]: `robot-${robot.vendor}` };
          env.PATH = `${join(helperDir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
        }
        if (how === 'DOCKER_AUTH_CONFIG')
          env.DOCKER_AUTH_CONFIG = JSON.stringify({
            auths: { [target.host]: { auth: basicAuth(robot.creds) } },
          });
        if (how === 'podman auth.json') {
          const podman = await dockerConfig({ auths: { [target.host]: { auth: basicAuth(robot.creds) } } });
          env.REGISTRY_AUTH_FILE = join(podman, 'config.json');
        }
        if (how === 'environment variables') {
          registry.credentials = { env: { username: 'ROBOT_USER', password: 'ROBOT_TOKEN' } };
          env.ROBOT_USER = robot.creds.username;
          env.ROBOT_TOKEN = robot.creds.password;
        }
        env.DOCKER_CONFIG = await dockerConfig(docker);
        const config = await writeJson(`robot-${robot.vendor}.json`, {
          registries: { [target.host]: registry },
          mirrors: [{ source: `${world.source.host}/vendors/small`, targets: [`${target.host}/${repo}`] }],
        });
        target.tokens.requests.length = 0;
        const res = await world.runCli(['sync', '--config', config], { env });
        assert.equal(res.code, 0, `${robot.vendor}: ${res.stderr}`);
        assert.deepEqual(tokenUsers(target.tokens), new Set([robot.creds.username]), robot.vendor);
        assert.ok(!res.stderr.includes(robot.creds.password));
        await assertSkopeoPulls(target, repo, 'v1', small.bytes);
      }
    });
  }
});
