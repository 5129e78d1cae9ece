// ECR and ECR Public, end to end, against the local stand-in (test/harness/ecr-stand-in.ts): the real AWS
// SDK reaches its API through AWS_ENDPOINT_URL_ECR(_PUBLIC) with static test credentials (every call's
// SigV4 signature recomputed there), and its registry imposes ECR's rules in front of a real distribution
// registry whose blob GETs are redirected to another host (S3-style). skopeo is the independent witness.
// Nothing here reaches the internet: the SDK's instance-metadata lookup is off, its config files empty.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { syncReportSchema } from '../../src/cli/report.js';
import { type EcrStandIn, keyringOf, type Refusal, startEcrStandIn } from '../harness/ecr-stand-in.js';
import { type CliResult, runCli } from '../harness/fixture.js';
import { closeServer, listen } from '../harness/http-server.js';
import { type RegistryProxy, startProxy } from '../harness/proxy.js';
import { type Registry, startRegistry } from '../harness/registry.js';
import {
  type LargeBlobImage,
  RegistryClient as SeedClient,
  type SeededImage,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
import { skopeoInspectRaw, skopeoPullAll } from '../harness/skopeo.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';

const CREDS = {
  accessKeyId: 'AKIAREGMIRRORTEST001',
  secretAccessKey: 'regmirror+TestSecret/0123456789abcdefghijklm',
};
const ACCOUNT = '123456789012';
/** A second identity, found only in a named profile of the shared credentials file. */
const RELEASE = {
  accessKeyId: 'AKIAREGMIRRORRELEASE',
  secretAccessKey: 'release+Secret/abcdefghijklmnopqrstuvwxyz0123',
};
/** What GitHub Actions' OIDC provider would hand over (the stand-in's STS takes any). */
const OIDC_TOKEN =
  'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvYXBwOnJlZjpyZWZzL3RhZ3MvdjEifQ.c2lnbmF0dXJlLWZvci10ZXN0';
/** The keys both APIs accept; their STS adds the temporary ones it issues. */
const keyring = keyringOf(CREDS);
const REGION = 'eu-west-1';
const ALIAS = 'regmirror-test';
const MIB = 1024 * 1024;
const BIG = 40 * MIB;

const ECR_SETTINGS = {
  tagMutability: 'immutable',
  scanOnPush: true,
  encryption: { kmsKey: 'alias/regmirror-test' },
} as const;
const CATALOG = {
  description: 'Mirrored by regmirror',
  usageText: 'docker pull public.ecr.aws/regmirror-test/api',
  architectures: ['x86-64', 'ARM 64'],
  operatingSystems: ['Linux'],
};

let sourceRegistry: Registry;
let source: RegistryProxy;
let ecrUpstream: Registry;
let ecrProxy: RegistryProxy;
let publicUpstream: Registry;
let publicProxy: RegistryProxy;
let ecr: EcrStandIn;
let pub: EcrStandIn;
let dir: string;
let env: Record<string, string>;
/** Everything any CLI run printed, and every audit log, for the leak check at the end. */
const printed: string[] = [];
const images = new Map<string, SeededImage>();
let big: LargeBlobImage;

const NAMES = ['api', 'worker', 'big'];

async function cli(args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  const res = await runCli(args, { env: { ...env, ...extra }, timeoutMs: 300_000 });
  printed.push(res.stdout, res.stderr);
  // REGMIRROR_TEST_SHOW_CLI=1: every run's stderr in the test output, to read the messages.
  if (process.env.REGMIRROR_TEST_SHOW_CLI) console.log(`$ regmirror ${args.join(' ')}\n${res.stderr}`);
  return res;
}

async function config(name: string, content: unknown): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, JSON.stringify(content, null, 2));
  return file;
}

/** The registries section every config here uses. */
function registries(extra: { ecr?: object; pub?: object } = {}) {
  return {
    [ecr.registryHost]: {
      credentials: { ecr: { region: REGION, registryId: ACCOUNT } },
      createRepositories: ECR_SETTINGS,
      ...extra.ecr,
    },
    [pub.registryHost]: {
      credentials: { ecrPublic: {} },
      createRepositories: { catalogData: CATALOG },
      ...extra.pub,
    },
  };
}

function estate(overwrite: 'changed' | 'never' | 'always', names = NAMES) {
  return {
    defaults: { concurrency: 4, overwrite },
    registries: registries(),
    mirrors: names.map((name) => ({
      source: `${source.host}/org/${name}`,
      targets: [`${ecr.registryHost}/mirror/{name}`, `${pub.registryHost}/${ALIAS}/{name}`],
    })),
  };
}

function report(res: CliResult) {
  return syncReportSchema.parse(JSON.parse(res.stdout));
}

function targetsOf(res: CliResult) {
  return report(res).mirrors.flatMap((m) => m.images.flatMap((i) => i.targets));
}

const awsCreds = (stand: EcrStandIn) => ({ creds: `AWS:${stand.mintPassword()}` });

/** skopeo reads the exact source manifest (and every child) at the stand-in. */
async function assertMirrored(stand: EcrStandIn, repo: string, tag: string, expected: Buffer): Promise<void> {
  const raw = await skopeoInspectRaw(`${stand.registryHost}/${repo}:${tag}`, awsCreds(stand));
  assert.ok(raw.equals(expected), `${stand.registryHost}/${repo}:${tag} differs from the source`);
}

const refusalsOf = (stand: EcrStandIn, rule: Refusal['rule']) =>
  stand.refusals.filter((r) => r.rule === rule);
const apiCalls = (stand: EcrStandIn, operation: string) =>
  stand.calls.filter((c) => c.operation === operation);

function resetAll(): void {
  ecr.reset();
  pub.reset();
  for (const p of [source, ecrProxy, publicProxy]) p.reset();
}

before(async () => {
  dir = await makeTempDir('ecr-test');
  [sourceRegistry, ecrUpstream, publicUpstream] = await Promise.all([
    startRegistry({ auth: 'none' }),
    startRegistry({ auth: 'none' }),
    startRegistry({ auth: 'none' }),
  ]);
  [source, ecrProxy, publicProxy] = await Promise.all([
    startProxy(sourceRegistry.url),
    startProxy(ecrUpstream.url, { redirectBlobGets: true }),
    startProxy(publicUpstream.url, { redirectBlobGets: true }),
  ]);
  [ecr, pub] = await Promise.all([
    startEcrStandIn({ flavour: 'ecr', upstreamUrl: ecrProxy.url, keyring, region: REGION }),
    startEcrStandIn({
      flavour: 'ecr-public',
      upstreamUrl: publicProxy.url,
      keyring,
      alias: ALIAS,
    }),
  ]);
  const empty = join(dir, 'empty');
  await writeFile(empty, '');
  env = {
    HOME: dir,
    DOCKER_CONFIG: dir,
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: empty,
    AWS_SHARED_CREDENTIALS_FILE: empty,
    AWS_ENDPOINT_URL_ECR: ecr.apiUrl,
    AWS_ENDPOINT_URL_ECR_PUBLIC: pub.apiUrl,
  };
  const seed = new SeedClient({ url: source.url });
  images.set('api:1.0.0', await seedImage(seed, 'org/api', '1.0.0', 'oci-index-with-attestations'));
  images.set('api:1.1.0', await seedImage(seed, 'org/api', '1.1.0', 'oci-index-with-attestations'));
  images.set('worker:2.0.0', await seedImage(seed, 'org/worker', '2.0.0', 'docker-manifest-list'));
  big = await seedLargeBlobImage(seed, 'org/big', '1.0.0', BIG);
});

after(async () => {
  await Promise.all([ecr?.stop(), pub?.stop()]);
  await Promise.all([source?.stop(), ecrProxy?.stop(), publicProxy?.stop()]);
  await Promise.all([sourceRegistry?.stop(), ecrUpstream?.stop(), publicUpstream?.stop()]);
  if (dir) await removeDir(dir);
});

describe('a multi-repository sync into ECR and ECR Public, repositories created', () => {
  const repositories = () =>
    NAMES.flatMap((n) => [`${ecr.registryHost}/mirror/${n}`, `${pub.registryHost}/${ALIAS}/${n}`]);

  test('plan lists the six repositories it would create, and creates none', async () => {
    resetAll();
    const res = await cli(['plan', '--config', await config('estate.json', estate('changed')), '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /6 repositories to create:/);
    for (const name of repositories()) assert.ok(res.stderr.includes(`  ${name} (`), `plan names ${name}`);
    assert.match(
      res.stderr,
      new RegExp(
        `${ecr.registryHost}/mirror/api \\(immutable tags, scan on push, KMS key alias/regmirror-test\\)`,
      ),
    );
    assert.match(
      res.stderr,
      new RegExp(
        `${pub.registryHost}/${ALIAS}/api \\(catalog data: description, usage text, x86-64, ARM 64, Linux\\)`,
      ),
    );
    assert.ok(targetsOf(res).every((t) => t.status === 'planned' && t.repositoryCreated === true));
    assert.deepEqual([...apiCalls(ecr, 'CreateRepository'), ...apiCalls(pub, 'CreateRepository')], []);
    assert.deepEqual([...ecr.writes(), ...pub.writes()], [], 'a plan writes nothing');
  });

  test('sync: exit 0, each repository created once with its settings, identical digests for skopeo', async () => {
    resetAll();
    const audit = join(dir, 'audit.jsonl');
    const res = await cli([
      'sync',
      '--config',
      await config('estate.json', estate('changed')),
      '--json',
      '--audit-log',
      audit,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const r = report(res);
    assert.equal(r.summary.failed, 0);
    assert.equal(r.summary.copied, 8, '4 images × 2 targets');

    // The API: exactly one create per repository, with the configured settings, each call signed for the
    // right service and region (the stand-in recomputed every signature).
    const created = apiCalls(ecr, 'CreateRepository');
    assert.deepEqual(created.map((c) => c.input.repositoryName).sort(), [
      'mirror/api',
      'mirror/big',
      'mirror/worker',
    ]);
    for (const c of created) {
      assert.equal(c.status, 200);
      assert.equal(c.input.registryId, ACCOUNT);
      assert.equal(c.input.imageTagMutability, 'IMMUTABLE');
      assert.deepEqual(c.input.imageScanningConfiguration, { scanOnPush: true });
      assert.deepEqual(c.input.encryptionConfiguration, {
        encryptionType: 'KMS',
        kmsKey: 'alias/regmirror-test',
      });
    }
    const publicCreated = apiCalls(pub, 'CreateRepository');
    // ECR Public's API names repositories without the registry alias.
    assert.deepEqual(publicCreated.map((c) => c.input.repositoryName).sort(), ['api', 'big', 'worker']);
    for (const c of publicCreated) assert.deepEqual(c.input.catalogData, CATALOG);
    for (const c of ecr.calls) {
      assert.ok(c.signatureValid, `${c.operation} signature`);
      assert.deepEqual([c.api, c.service, c.region], ['AmazonEC2ContainerRegistry_V20150921', 'ecr', REGION]);
      assert.equal(c.accessKeyId, CREDS.accessKeyId);
    }
    for (const c of pub.calls) {
      assert.ok(c.signatureValid, `${c.operation} signature`);
      assert.deepEqual([c.api, c.service, c.region], ['SpencerFrontendService', 'ecr-public', 'us-east-1']);
    }
    assert.equal(apiCalls(pub, 'DescribeRegistries').length, 1, 'the alias is looked up once per run');
    assert.equal(apiCalls(ecr, 'GetAuthorizationToken').length, 1, 'one 12-hour token for the run');

    // The registry's rules were met: no part under 5 MiB but the last, no mount asked, index children by
    // digest, tags only on the roots, nothing refused but the first challenge and the HEADs before creation.
    for (const stand of [ecr, pub]) {
      const patches = stand.registryRequests.filter((q) => q.method === 'PATCH');
      assert.ok(patches.length >= 5, 'the 40 MiB layer went in chunks');
      assert.ok(
        patches.every((q) => q.size >= 5 * MIB && q.status === 201),
        'every PATCH part ≥ 5 MiB, answered 201',
      );
      assert.deepEqual(refusalsOf(stand, 'part-too-small'), []);
      assert.deepEqual(refusalsOf(stand, 'expired-token'), []);
      assert.deepEqual(refusalsOf(stand, 'tag-invalid'), []);
      assert.deepEqual(refusalsOf(stand, 'pagination'), []);
      assert.equal(
        stand.registryRequests.filter((q) => q.query.includes('mount=')).length,
        0,
        'no mount asked',
      );
      const manifestPuts = stand.registryRequests.filter(
        (q) => q.method === 'PUT' && q.path.includes('/manifests/'),
      );
      const byTag = manifestPuts.filter((q) => !q.path.includes('/manifests/sha256:'));
      assert.deepEqual(
        byTag.map((q) => q.path.replace(/^.*\/manifests\//, '')).sort(),
        ['1.0.0', '1.0.0', '1.1.0', '2.0.0'],
        'only the roots are pushed by tag',
      );
      assert.ok(manifestPuts.length > byTag.length, 'index children were pushed, by digest');
    }

    // skopeo, the independent witness.
    for (const stand of [ecr, pub]) {
      const prefix = stand === ecr ? 'mirror' : ALIAS;
      for (const [key, image] of images) {
        const [name, tag] = key.split(':') as [string, string];
        await assertMirrored(stand, `${prefix}/${name}`, tag, image.bytes);
      }
      await assertMirrored(stand, `${prefix}/big`, '1.0.0', big.manifest.bytes);
      await skopeoPullAll(`${stand.registryHost}/${prefix}/big:1.0.0`, awsCreds(stand));
      await skopeoPullAll(`${stand.registryHost}/${prefix}/api:1.0.0`, awsCreds(stand));
    }

    // The report and the audit log say which repositories were created, once each.
    const createdTargets = targetsOf(res).filter((t) => t.repositoryCreated);
    assert.equal(createdTargets.length, 6);
    const lines = (await readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    printed.push(await readFile(audit, 'utf8'));
    const creates = lines.filter((l) => l.action === 'repository-create');
    assert.deepEqual(creates.map((l) => `${l.registry}/${l.repository}`).sort(), repositories().sort());
    const ecrCreate = creates.find((l) => l.repository === 'mirror/api')!;
    assert.equal(ecrCreate.settings, 'immutable tags, scan on push, KMS key alias/regmirror-test');
    assert.equal(ecrCreate.identity, 'AWS');
  });

  test('a second sync is a no-op: no write, no repository call', async () => {
    resetAll();
    const res = await cli(['sync', '--config', await config('estate.json', estate('changed')), '--json']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(report(res).summary.upToDate, 8);
    assert.deepEqual([...ecr.writes(), ...pub.writes()], []);
    for (const stand of [ecr, pub]) {
      assert.deepEqual(apiCalls(stand, 'CreateRepository'), []);
      assert.deepEqual(apiCalls(stand, 'DescribeRepositories'), []);
    }
  });

  test('check: tag lists paged at 1000 at most, everything ok', async () => {
    resetAll();
    const res = await cli(['check', '--config', await config('estate.json', estate('changed')), '--json']);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { rows: { state: string }[] };
    assert.ok(out.rows.length > 0 && out.rows.every((r) => r.state === 'ok'));
    const lists = [...ecr.registryRequests, ...pub.registryRequests].filter((q) =>
      q.path.endsWith('/tags/list'),
    );
    assert.ok(lists.length > 0 && lists.every((q) => /[?&]n=1000(&|$)/.test(q.query)), 'n=1000');
    assert.deepEqual([...refusalsOf(ecr, 'pagination'), ...refusalsOf(pub, 'pagination')], []);
  });
});

describe('tags that would move', () => {
  let previous: string;
  let moved: SeededImage;

  test('a moved source tag is kept with overwrite "never": exit 0, nothing written', async () => {
    previous = images.get('api:1.0.0')!.digest;
    moved = await seedImage(
      new SeedClient({ url: source.url }),
      'org/api',
      '1.0.0',
      'oci-index-with-attestations',
      {
        seed: 'api 1.0.0, rebuilt',
      },
    );
    assert.notEqual(moved.digest, previous);
    resetAll();
    const res = await cli([
      'sync',
      '--config',
      await config('never.json', estate('never', ['api'])),
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const kept = targetsOf(res).filter((t) => t.target.endsWith(':1.0.0'));
    assert.equal(kept.length, 2);
    for (const t of kept) {
      assert.equal(t.status, 'kept');
      assert.equal(t.refusedBy, 'overwrite-never');
      assert.equal(t.digest, previous);
    }
    assert.match(res.stderr, /kept at sha256:[0-9a-f]{12} \(overwrite "never"\)/);
    assert.deepEqual([...ecr.writes(), ...pub.writes()], []);
  });

  test('with overwrite "changed", the immutable ECR repository refuses: a clear immutability failure, exit 1', async () => {
    resetAll();
    const res = await cli([
      'sync',
      '--config',
      await config('changed.json', estate('changed', ['api'])),
      '--json',
    ]);
    assert.equal(res.code, 1, res.stderr);
    const targets = targetsOf(res).filter((t) => t.target.endsWith(':1.0.0'));
    const onEcr = targets.find((t) => t.target.startsWith(ecr.registryHost))!;
    const onPublic = targets.find((t) => t.target.startsWith(pub.registryHost))!;
    assert.equal(onEcr.status, 'failed');
    assert.equal(onEcr.errorKind, 'immutable');
    assert.equal(onEcr.refusedBy, 'immutable-tags');
    assert.match(
      onEcr.error!,
      new RegExp(
        `target registry ${ecr.registryHost}, repository mirror/api, manifest PUT 1\\.0\\.0: tag "1\\.0\\.0" is immutable: ` +
          `the repository's tag immutability refused to move it from ${previous} to ${moved.digest}`,
      ),
    );
    assert.match(onEcr.error!, /set "overwrite": "never"/);
    assert.doesNotMatch(onEcr.error!, /registry answered HTTP 400/, 'not a generic registry error');
    assert.ok(res.stderr.includes('tag "1.0.0" is immutable'));
    // ECR Public has no server-side immutability: the tag moved there.
    assert.equal(onPublic.status, 'copied');
    assert.equal(onPublic.tagAction, 'move');
    assert.equal(refusalsOf(ecr, 'tag-invalid').length, 1);
    // The ECR tag still has what it had.
    const raw = await skopeoInspectRaw(`${ecr.registryHost}/mirror/api:1.0.0`, awsCreds(ecr));
    assert.ok(raw.equals(images.get('api:1.0.0')!.bytes));
  });

  test('with overwrite "always", the digest already under an immutable tag is success, not a failure', async () => {
    resetAll();
    const res = await cli([
      'sync',
      '--config',
      await config('always.json', estate('always', ['worker'])),
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const onEcr = targetsOf(res).find((t) => t.target.startsWith(ecr.registryHost))!;
    assert.equal(onEcr.status, 'copied');
    // ECR refused the re-push of the same digest ("already exists"), and that was taken as done.
    assert.deepEqual(
      refusalsOf(ecr, 'tag-invalid').map((r) => r.detail),
      ['same digest'],
    );
  });
});

describe('tokens that expire mid-run', () => {
  let slow: (req: { method: string }) => { delayMs: number } | undefined;

  before(() => {
    // Slow PATCHes make the 40 MiB upload outlive a token.
    slow = (req) => (req.method === 'PATCH' ? { delayMs: 1500 } : undefined);
  });

  function bigTo(prefix: string) {
    return {
      registries: registries(),
      mirrors: [
        {
          source: `${source.host}/org/big`,
          targets: [`${ecr.registryHost}/${prefix}/big`, `${pub.registryHost}/${ALIAS}/${prefix}-big`],
        },
      ],
    };
  }

  test('5-second tokens are renewed (before they expire, or when refused) and the sync completes', async (t) => {
    ecr.setTokenLifetime(5);
    pub.setTokenLifetime(5);
    ecrProxy.settings.fault = slow;
    publicProxy.settings.fault = slow;
    resetAll();
    const started = Date.now();
    try {
      const res = await cli(['sync', '--config', await config('expiry.json', bigTo('expiry')), '--json']);
      assert.equal(res.code, 0, res.stderr);
    } finally {
      ecrProxy.settings.fault = undefined;
      publicProxy.settings.fault = undefined;
      ecr.setTokenLifetime(12 * 3600);
      pub.setTokenLifetime(12 * 3600);
    }
    const took = Date.now() - started;
    assert.ok(took > 6000, 'the run outlived a token');
    t.diagnostic(
      `run ${took} ms; GetAuthorizationToken ecr ${apiCalls(ecr, 'GetAuthorizationToken').length}, public ${apiCalls(pub, 'GetAuthorizationToken').length}; ` +
        `expired tokens refused: ecr ${refusalsOf(ecr, 'expired-token').length}, public ${refusalsOf(pub, 'expired-token').length}`,
    );
    for (const stand of [ecr, pub]) {
      assert.ok(
        apiCalls(stand, 'GetAuthorizationToken').length >= 2,
        `${stand.flavour}: the token was renewed`,
      );
    }
    await assertMirrored(ecr, 'expiry/big', '1.0.0', big.manifest.bytes);
    await assertMirrored(pub, `${ALIAS}/expiry-big`, '1.0.0', big.manifest.bytes);
    await skopeoPullAll(`${ecr.registryHost}/expiry/big:1.0.0`, awsCreds(ecr));
  });

  test('tokens revoked mid-upload (403 DENIED, a refused token endpoint) are fetched again', async (t) => {
    let revoked = false;
    ecrProxy.settings.fault = (req) => {
      // Once the first chunk has gone through, every token issued so far stops working.
      if (req.method === 'PATCH' && !revoked) {
        revoked = true;
        setTimeout(() => {
          ecr.revokeTokens();
          pub.revokeTokens();
        }, 200);
        return { delayMs: 1000 };
      }
      return req.method === 'PATCH' ? { delayMs: 300 } : undefined;
    };
    publicProxy.settings.fault = (req) => (req.method === 'PATCH' ? { delayMs: 300 } : undefined);
    resetAll();
    try {
      const res = await cli(['sync', '--config', await config('revoked.json', bigTo('revoked')), '--json']);
      assert.equal(res.code, 0, res.stderr);
    } finally {
      ecrProxy.settings.fault = undefined;
      publicProxy.settings.fault = undefined;
    }
    assert.ok(revoked);
    t.diagnostic(
      `GetAuthorizationToken ecr ${apiCalls(ecr, 'GetAuthorizationToken').length}, public ${apiCalls(pub, 'GetAuthorizationToken').length}; ` +
        `revoked tokens refused: ecr ${refusalsOf(ecr, 'expired-token').length}, public ${refusalsOf(pub, 'expired-token').length}`,
    );
    for (const stand of [ecr, pub]) {
      assert.ok(refusalsOf(stand, 'expired-token').length >= 1, `${stand.flavour} refused an expired token`);
      assert.ok(
        apiCalls(stand, 'GetAuthorizationToken').length >= 2,
        `${stand.flavour}: a fresh token was fetched`,
      );
    }
    await assertMirrored(ecr, 'revoked/big', '1.0.0', big.manifest.bytes);
    await assertMirrored(pub, `${ALIAS}/revoked-big`, '1.0.0', big.manifest.bytes);
  });
});

describe('auth check', () => {
  test('per ECR target: the token obtained, and whether the repository exists or would be created', async () => {
    resetAll();
    const file = await config('auth.json', {
      registries: registries(),
      mirrors: [
        {
          source: `${source.host}/org/api`,
          targets: [
            `${ecr.registryHost}/mirror/api`,
            `${ecr.registryHost}/fresh/api`,
            `${pub.registryHost}/${ALIAS}/api`,
            `${pub.registryHost}/${ALIAS}/fresh-api`,
          ],
        },
      ],
    });
    const res = await cli(['auth', 'check', '--config', file, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const checks = (
      JSON.parse(res.stdout) as {
        checks: {
          registry: string;
          repository: string;
          access: string;
          ok: boolean;
          credentials: string;
          token?: { expiresAt: string };
          repositoryState?: string;
          repositorySettings?: string;
        }[];
      }
    ).checks;
    const push = (registry: string, repository: string) =>
      checks.find((c) => c.access === 'push' && c.registry === registry && c.repository === repository)!;
    for (const [registry, repository, state] of [
      [ecr.registryHost, 'mirror/api', 'exists'],
      [ecr.registryHost, 'fresh/api', 'would-create'],
      [pub.registryHost, `${ALIAS}/api`, 'exists'],
      [pub.registryHost, `${ALIAS}/fresh-api`, 'would-create'],
    ] as const) {
      const c = push(registry, repository);
      assert.ok(c.ok, `${registry}/${repository}`);
      assert.equal(c.repositoryState, state, `${registry}/${repository}`);
      assert.ok(Date.parse(c.token!.expiresAt) > Date.now() + 11 * 3600_000, 'a 12-hour token');
    }
    assert.match(
      push(ecr.registryHost, 'mirror/api').credentials,
      /^ECR token from GetAuthorizationToken \(eu-west-1;/,
    );
    assert.match(
      push(pub.registryHost, `${ALIAS}/api`).credentials,
      /^ECR Public token from GetAuthorizationToken \(us-east-1;/,
    );
    assert.match(res.stderr, /token obtained \(expires \d\d:\d\d UTC\); repository exists/);
    assert.match(
      res.stderr,
      /token obtained \(expires \d\d:\d\d UTC\); repository would be created \(immutable tags, scan on push, KMS key alias\/regmirror-test\)/,
    );
    assert.deepEqual([...apiCalls(ecr, 'CreateRepository'), ...apiCalls(pub, 'CreateRepository')], []);
    assert.ok(!ecr.repositories.has('fresh/api') && !pub.repositories.has('fresh-api'));
  });

  test('without an { "ecr" } entry, an ECR registry gets its token from the default chain (AWS_REGION)', async () => {
    resetAll();
    const file = await config('default-chain.json', {
      registries: { [ecr.registryHost]: { type: 'ecr' } },
      mirrors: [{ source: `${source.host}/org/worker`, targets: [`${ecr.registryHost}/mirror/worker`] }],
    });
    const res = await cli(['sync', '--config', file, '--json'], { AWS_REGION: REGION });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(report(res).summary.upToDate, 1);
    const tokenCalls = apiCalls(ecr, 'GetAuthorizationToken');
    assert.equal(tokenCalls.length, 1);
    assert.deepEqual([tokenCalls[0]!.service, tokenCalls[0]!.region], ['ecr', REGION]);
  });
});

describe('IAM permissions and AWS credentials', () => {
  async function syncTo(target: string, file: string) {
    return cli([
      'sync',
      '--config',
      await config(file, {
        registries: registries(),
        mirrors: [{ source: `${source.host}/org/worker`, targets: [target] }],
      }),
      '--json',
    ]);
  }

  for (const [flavour, action, target] of [
    ['ecr-public', 'ecr-public:CreateRepository', () => `${pub.registryHost}/${ALIAS}/denied-create`],
    ['ecr', 'ecr:CreateRepository', () => `${ecr.registryHost}/denied/create`],
    ['ecr', 'ecr:DescribeRepositories', () => `${ecr.registryHost}/denied/describe`],
    ['ecr', 'ecr:GetAuthorizationToken', () => `${ecr.registryHost}/denied/token`],
  ] as const) {
    test(`a missing ${action} is an error naming the IAM action`, async () => {
      const stand = flavour === 'ecr' ? ecr : pub;
      stand.deny.add(action);
      resetAll();
      let res: CliResult;
      try {
        res = await syncTo(target(), `deny-${action.replace(/:/g, '-')}.json`);
      } finally {
        stand.deny.delete(action);
      }
      assert.equal(res.code, 2, res.stderr);
      const t = targetsOf(res)[0]!;
      assert.equal(t.status, 'failed');
      assert.equal(t.errorKind, 'permission');
      assert.ok(t.error!.includes(`AWS denied ${action}`), t.error);
      assert.ok(t.error!.includes(`grant ${action} to this AWS identity`), t.error);
      assert.ok(res.stderr.includes(action));
      assert.deepEqual(stand.writes(), [], 'nothing was written');
    });
  }

  test('a wrong AWS secret: the stand-in finds the signature wrong, the error says the credentials were rejected', async () => {
    resetAll();
    const res = await cli(['auth', 'check', '--config', await config('estate.json', estate('changed'))], {
      AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789abcdefghijklmnop',
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /AWS rejected the credentials from the AWS SDK default chain \(InvalidSignatureException\)/,
    );
    assert.ok(ecr.calls.length > 0 && ecr.calls.every((c) => !c.signatureValid));
  });

  test('no AWS credentials at all: an error that says how to give some', async () => {
    resetAll();
    const res = await cli(['auth', 'check', '--config', await config('estate.json', estate('changed'))], {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /no AWS credentials for ecr:GetAuthorizationToken/);
    assert.match(res.stderr, /AWS_PROFILE or a profile in the config/);
    assert.deepEqual(ecr.calls, []);
  });
});

describe('ECR Public without any AWS credentials', () => {
  const noAws = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };

  test('is read anonymously (a source), and a push says that AWS credentials are missing', async () => {
    resetAll();
    const file = await config('anonymous-public.json', {
      registries: { [pub.registryHost]: { type: 'ecr-public' } },
      mirrors: [
        { source: `${pub.registryHost}/${ALIAS}/worker`, targets: [`${source.host}/from-public/worker`] },
      ],
    });
    const copied = await cli(['sync', '--config', file, '--json'], noAws);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(report(copied).summary.copied, 1);
    assert.ok(pub.registryRequests.every((q) => q.method === 'GET' || q.method === 'HEAD'));
    assert.deepEqual(
      apiCalls(pub, 'GetAuthorizationToken'),
      [],
      'no AWS credentials: the API was not called',
    );

    const push = await cli(
      [
        'copy',
        '--config',
        file,
        `${source.host}/org/worker:2.0.0`,
        `${pub.registryHost}/${ALIAS}/worker-anonymous`,
      ],
      noAws,
    );
    assert.equal(push.code, 2, push.stderr);
    assert.match(
      push.stderr,
      /no AWS credentials for ecr-public:GetAuthorizationToken .*; give the AWS SDK credentials \(AWS_PROFILE/,
    );
  });
});

describe('config mistakes are refused before any request', () => {
  for (const [what, registriesSection, expected] of [
    [
      'immutability asked of ECR Public',
      () => registries({ pub: { createRepositories: { tagMutability: 'immutable' } } }),
      () =>
        new RegExp(
          `config registries\\["${pub.registryHost.replace(/\./g, '\\.')}"\\]\\.createRepositories\\.tagMutability: ECR Public has no server-side tag immutability; .*"overwrite": "never"`,
        ),
    ],
    [
      'catalog data asked of ECR',
      () => registries({ ecr: { createRepositories: { catalogData: { description: 'x' } } } }),
      () => /createRepositories\.catalogData: catalog data is for ECR Public repositories/,
    ],
    [
      'repositories created on a distribution registry',
      () => ({ ...registries(), [source.host]: { createRepositories: true } }),
      () => /is a distribution registry, which creates repositories itself/,
    ],
  ] as const) {
    test(what, async () => {
      resetAll();
      const res = await cli([
        'sync',
        '--config',
        await config('mistake.json', {
          registries: registriesSection(),
          mirrors: [
            { source: `${source.host}/org/worker`, targets: [`${pub.registryHost}/${ALIAS}/worker`] },
          ],
        }),
      ]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, expected());
      assert.deepEqual([...ecr.calls, ...pub.calls], []);
      assert.deepEqual([...ecr.registryRequests, ...pub.registryRequests], []);
    });
  }
});

describe("the stand-in's rules bite: what ECR would refuse from a client that ignored them", () => {
  test('parts under 5 MiB: refused at the commit when the registry is treated as plain distribution', async () => {
    resetAll();
    // The same registry, typed "distribution" (no ECR upload policy) with 1 MiB chunks, logged in the
    // docker way: every PATCH is accepted, and the commit is refused, as ECR does.
    const auth = Buffer.from(`AWS:${ecr.mintPassword()}`).toString('base64');
    const file = await config('naive.json', {
      registries: { [ecr.registryHost]: { type: 'distribution', chunkSize: '1MiB' } },
      mirrors: [{ source: `${source.host}/org/big`, targets: [`${ecr.registryHost}/mirror/big-naive`] }],
    });
    ecr.createRepository('mirror/big-naive');
    const res = await cli(['sync', '--config', file, '--json', '--retries', '0'], {
      DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [ecr.registryHost]: { auth } } }),
    });
    assert.equal(res.code, 1, res.stderr);
    assert.ok(refusalsOf(ecr, 'part-too-small').length >= 1);
    assert.match(targetsOf(res)[0]!.error!, /LayerPartTooSmallException/);
    // Typed "ecr", the same config's 1 MiB is raised to the 5 MiB minimum and the copy goes through.
    resetAll();
    const ok = await cli([
      'sync',
      '--config',
      await config('typed.json', {
        registries: {
          [ecr.registryHost]: {
            credentials: { ecr: { region: REGION, registryId: ACCOUNT } },
            chunkSize: '1MiB',
          },
        },
        mirrors: [{ source: `${source.host}/org/big`, targets: [`${ecr.registryHost}/mirror/big-naive`] }],
      }),
      '--json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const patches = ecr.registryRequests.filter((q) => q.method === 'PATCH');
    assert.ok(patches.length > 0 && patches.every((q) => q.size === 5 * MIB), 'parts of exactly 5 MiB');
    assert.deepEqual(refusalsOf(ecr, 'part-too-small'), []);
  });

  test('"mounts": true on ECR: the mount is answered 202 with a session, which is used', async () => {
    resetAll();
    const file = await config('mounts.json', {
      registries: {
        [ecr.registryHost]: {
          credentials: { ecr: { region: REGION, registryId: ACCOUNT } },
          createRepositories: true,
          mounts: true,
        },
      },
      mirrors: [
        {
          source: `${source.host}/org/worker`,
          targets: [`${ecr.registryHost}/mounted/one`, `${ecr.registryHost}/mounted/two`],
        },
      ],
    });
    const res = await cli(['sync', '--config', file, '--json']);
    assert.equal(res.code, 0, res.stderr);
    const mounts = ecr.registryRequests.filter((q) => q.method === 'POST' && q.query.includes('mount='));
    assert.ok(mounts.length > 0, 'mounts were asked for');
    assert.ok(
      mounts.every((q) => q.status === 202),
      'and declined with an upload session',
    );
    for (const repo of ['mounted/one', 'mounted/two']) {
      await assertMirrored(ecr, repo, '2.0.0', images.get('worker:2.0.0')!.bytes);
    }
  });
});

describe('ECR as a source: blob GETs redirected to storage', () => {
  test('go to the storage host without Authorization', async () => {
    resetAll();
    const file = await config('from-ecr.json', {
      registries: registries(),
      // copy --config reads the registry settings only; a config needs one mirror all the same.
      mirrors: [{ source: `${source.host}/org/worker`, targets: [`${source.host}/unused/worker`] }],
    });
    const res = await cli([
      'copy',
      '--config',
      file,
      `${ecr.registryHost}/mirror/big:1.0.0`,
      `${source.host}/from-ecr/big`,
      '--json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(ecrProxy.storageRequests.length >= 2, 'the layer and the config came from the storage host');
    assert.ok(
      ecrProxy.storageRequests.every((r) => !r.hasAuthorization),
      'no Authorization to storage',
    );
    const raw = await skopeoInspectRaw(`${source.host}/from-ecr/big:1.0.0`);
    assert.ok(raw.equals(big.manifest.bytes));
  });

  test('a 403 from the storage host fails the blob with that host named; the ECR token is not renewed for it', async () => {
    resetAll();
    ecr.createRepository('expired/link');
    await seedImage(new SeedClient({ url: ecrUpstream.url }), 'expired/link', '1.0.0', 'oci-image');
    // S3 answering a presigned link that expired (or a clock off): 403, not ECR's "token expired".
    const s3Requests: Array<{ path: string; hasAuthorization: boolean }> = [];
    const s3 = createServer((req, res) => {
      s3Requests.push({ path: req.url ?? '', hasAuthorization: req.headers.authorization !== undefined });
      const body =
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>';
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': String(body.length) });
      res.end(body);
    });
    const port = await listen(s3, '127.0.0.2');
    ecrProxy.settings.fault = (r) =>
      r.kind === 'blob' && r.method === 'GET' && r.repo === 'expired/link'
        ? {
            status: 307,
            headers: {
              location: `http://127.0.0.2:${port}/expired-link/${r.path.split('/').pop()}?X-Amz-Expires=60&X-Amz-Signature=SECRET-SIGNATURE`,
            },
            body: '',
          }
        : undefined;
    try {
      const file = await config('expired-link.json', {
        registries: registries(),
        mirrors: [{ source: `${source.host}/org/worker`, targets: [`${source.host}/unused/worker`] }],
      });
      const res = await cli([
        'copy',
        '--config',
        file,
        `${ecr.registryHost}/expired/link:1.0.0`,
        `${source.host}/from-ecr/expired-link`,
      ]);
      // The foreign 403 did not touch the registry's credential: one token for the run, none refused.
      assert.equal(apiCalls(ecr, 'GetAuthorizationToken').length, 1, 'GetAuthorizationToken again');
      assert.deepEqual(refusalsOf(ecr, 'expired-token'), []);
      assert.equal(res.code, 1, res.stderr);
      assert.ok(s3Requests.length >= 1, 'the storage host was asked');
      assert.ok(
        s3Requests.every((r) => !r.hasAuthorization),
        'no Authorization to the storage host',
      );
      assert.match(
        res.stderr,
        new RegExp(
          `blob GET sha256:[0-9a-f]{64}: http://127\\.0\\.0\\.2:${port} \\(not the registry: reached by a redirect\\) refused http://127\\.0\\.0\\.2:${port}/expired-link/sha256:[0-9a-f]{64} with HTTP 403: AccessDenied Request has expired`,
        ),
      );
      assert.ok(!res.stderr.includes('SECRET-SIGNATURE'), 'the signature is shown');
    } finally {
      ecrProxy.settings.fault = undefined;
      await closeServer(s3);
    }
  });
});

describe('AWS identities: a role, web identity (GitHub Actions OIDC), a named profile', () => {
  const ROLE = `arn:aws:iam::${ACCOUNT}:role/mirror-push`;
  const target = () => ({
    source: `${source.host}/org/worker`,
    targets: [`${ecr.registryHost}/mirror/worker`, `${pub.registryHost}/${ALIAS}/worker`],
  });

  test("roleArn: AssumeRole with the credentials found, then ECR with the role's temporary credentials", async () => {
    resetAll();
    const file = await config('role.json', {
      registries: {
        [ecr.registryHost]: { credentials: { ecr: { region: REGION, registryId: ACCOUNT, roleArn: ROLE } } },
        [pub.registryHost]: { credentials: { ecrPublic: { roleArn: ROLE } } },
      },
      mirrors: [target()],
    });
    const res = await cli(['sync', '--config', file, '--json'], {
      AWS_ENDPOINT_URL_STS: ecr.apiUrl,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(report(res).summary.upToDate, 2);
    const assumed = ecr.calls.filter((c) => c.api === 'sts');
    assert.ok(assumed.length >= 1);
    for (const c of assumed) {
      assert.deepEqual(
        [c.operation, c.service, c.accessKeyId, c.signatureValid],
        ['AssumeRole', 'sts', CREDS.accessKeyId, true],
      );
      assert.equal(c.input.RoleArn, ROLE);
    }
    for (const stand of [ecr, pub]) {
      const token = apiCalls(stand, 'GetAuthorizationToken');
      assert.equal(token.length, 1);
      assert.ok(
        token[0]!.temporary && token[0]!.signatureValid,
        `${stand.flavour}: signed with the role's session`,
      );
      assert.match(token[0]!.accessKeyId, /^ASIA/);
    }
  });

  test('web identity, as GitHub Actions OIDC provides it: AssumeRoleWithWebIdentity, then ECR Public', async () => {
    resetAll();
    const tokenFile = join(dir, 'oidc-token');
    await writeFile(tokenFile, OIDC_TOKEN);
    const file = await config('oidc.json', {
      registries: { [pub.registryHost]: { credentials: { ecrPublic: {} } } },
      mirrors: [{ source: `${source.host}/org/worker`, targets: [`${pub.registryHost}/${ALIAS}/worker`] }],
    });
    const res = await cli(['auth', 'check', '--config', file, '--json'], {
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ENDPOINT_URL_STS: pub.apiUrl,
    });
    assert.equal(res.code, 0, res.stderr);
    const [web, ...rest] = pub.calls;
    assert.deepEqual(
      [web!.api, web!.operation, web!.input.RoleArn],
      ['sts', 'AssumeRoleWithWebIdentity', ROLE],
    );
    const token = rest.find((c) => c.operation === 'GetAuthorizationToken')!;
    assert.ok(token.temporary && token.signatureValid);
    assert.deepEqual([token.service, token.region], ['ecr-public', 'us-east-1']);
  });

  test("profile: the named profile's credentials, not the environment's", async () => {
    resetAll();
    keyring.set(RELEASE.accessKeyId, { secretAccessKey: RELEASE.secretAccessKey });
    const credentialsFile = join(dir, 'aws-credentials');
    await writeFile(
      credentialsFile,
      `[release]\naws_access_key_id = ${RELEASE.accessKeyId}\naws_secret_access_key = ${RELEASE.secretAccessKey}\n`,
    );
    const file = await config('profile.json', {
      registries: { [pub.registryHost]: { credentials: { ecrPublic: { profile: 'release' } } } },
      mirrors: [{ source: `${source.host}/org/worker`, targets: [`${pub.registryHost}/${ALIAS}/worker`] }],
    });
    const res = await cli(['auth', 'check', '--config', file, '--json'], {
      AWS_SHARED_CREDENTIALS_FILE: credentialsFile,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(
      pub.calls.length > 0 &&
        pub.calls.every((c) => c.accessKeyId === RELEASE.accessKeyId && c.signatureValid),
    );
    assert.match(res.stdout, /AWS credentials from AWS profile release/);
  });
});

test('no token, password or AWS secret appears in any output, report, audit log or --debug trace', async () => {
  const debug = await cli(['sync', '--config', await config('never.json', estate('never')), '--debug']);
  assert.equal(debug.code, 0, debug.stderr);
  assert.match(debug.stderr, /HEAD .*\/manifests\//, 'the trace is on');
  const secrets: [string, string][] = [
    ...ecr.issued.map((v, i): [string, string] => [`ECR secret #${i}`, v]),
    ...pub.issued.map((v, i): [string, string] => [`ECR Public secret #${i}`, v]),
    ['the AWS secret key', CREDS.secretAccessKey],
    ["the release profile's secret key", RELEASE.secretAccessKey],
    ['the web identity token', OIDC_TOKEN],
  ];
  assert.ok(secrets.length > 10);
  printed.forEach((text, n) => {
    // Which secret and which output, never the secret itself.
    for (const [what, secret] of secrets) assert.ok(!text.includes(secret), `${what} is in output #${n}`);
  });
});
