// ECR and ECR Public without a network: the config forms ({ ecr }, { ecrPublic }, createRepositories on
// registries and mirrors) and their mistakes; what the vendors make of them when profiles are built; the
// helpers that turn tokens and SDK errors into credentials and regmirror errors; the engine's handling of
// immutable tags and repository creation (against the in-memory store); the stand-in's SigV4 verifier
// against AWS's own test vector.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { awsFailure, decodeAuthorizationToken, tokenProvider } from '../../src/cloud/aws.js';
import { describeEcrSettings } from '../../src/cloud/ecr.js';
import { describePublicSettings, splitPublicPath } from '../../src/cloud/ecr-public.js';
import { validateConfig } from '../../src/config/load.js';
import { type ResolvedConfig, resolveConfig } from '../../src/config/resolve.js';
import { type CopyContext, copyImage, type OverwritePolicy } from '../../src/copy/copy-image.js';
import type { CopyEvent } from '../../src/copy/events.js';
import { BlobKnowledge } from '../../src/copy/knowledge.js';
import { AuthError, ConfigError, NetworkError, PermissionError, RegistryError } from '../../src/errors.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { parseReference } from '../../src/reference/reference.js';
import { createLimiter } from '../../src/registry/limiter.js';
import { verifySigV4 } from '../harness/ecr-stand-in.js';
import { MemoryStore } from './memory-store.js';

const ECR_HOST = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const OTHER_ECR = '210987654321.dkr.ecr.us-east-1.amazonaws.com';
const MIRROR = { source: 'quay.io/acme/app', targets: [`${ECR_HOST}/acme/app`] };

function invalid(config: object): string {
  try {
    validateConfig({ mirrors: [MIRROR], ...config }, 'mirror.json');
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('the config was accepted');
}

function resolved(config: object): ResolvedConfig {
  return resolveConfig(validateConfig({ mirrors: [MIRROR], ...config }, 'mirror.json'), { baseDir: '/' });
}

function profiles(config: object) {
  return buildProfiles({ flags: {}, env: {}, config: resolved(config) });
}

describe('config: the ECR credential forms', () => {
  it('{ "ecr": {...} } and { "ecrPublic": {...} } name the registry kind and reach the vendor', () => {
    const c = resolved({
      registries: {
        'ecr.internal:5000': {
          credentials: {
            ecr: {
              region: 'eu-west-1',
              registryId: '123456789012',
              profile: 'prod',
              roleArn: 'arn:aws:iam::123456789012:role/mirror-push',
            },
          },
        },
        'public.ecr.aws': { credentials: { ecrPublic: {} } },
      },
    });
    const ecr = c.registries.get('ecr.internal:5000')!;
    assert.equal(ecr.type, 'ecr');
    assert.deepEqual(ecr.vendor?.ecr, {
      region: 'eu-west-1',
      registryId: '123456789012',
      profile: 'prod',
      roleArn: 'arn:aws:iam::123456789012:role/mirror-push',
    });
    const pub = c.registries.get('public.ecr.aws')!;
    assert.equal(pub.type, 'ecr-public');
    assert.deepEqual(pub.vendor?.ecrPublic, {});
    const p = buildProfiles({ flags: {}, env: {}, config: c }).for('ecr.internal:5000');
    assert.equal(p.kind, 'ecr');
    assert.equal(p.kindFrom, 'config');
  });

  it('says what is wrong with a region, an account ID, a role, two sources, or a contradicting type', () => {
    const message = invalid({
      registries: {
        'a.example': { credentials: { ecr: { region: 'Europe', registryId: '1234' } } },
        'b.example': { credentials: { ecrPublic: { roleArn: 'mirror-push' } } },
        'c.example': { credentials: { ecr: {}, env: { username: 'U', password: 'P' } } },
        'd.example': { type: 'quay', credentials: { ecr: {} } },
        'e.example': { credentials: { ecrPublic: { region: 'us-east-1' } } },
      },
    });
    assert.match(
      message,
      /registries\["a\.example"\]\.credentials\.ecr\.region: "Europe" is not an AWS region; write one like "eu-west-1"/,
    );
    assert.match(
      message,
      /credentials\.ecr\.registryId: "1234" is not an AWS account ID; write the 12 digits/,
    );
    assert.match(message, /credentials\.ecrPublic\.roleArn: "mirror-push" is not an IAM role ARN/);
    assert.match(
      message,
      /registries\["c\.example"\]\.credentials: names 2 credentials sources \(env, ecr\); keep one/,
    );
    assert.match(
      message,
      /registries\["d\.example"\]\.credentials: \{ "ecr": \.\.\. \} credentials are for an ecr registry, but "type" is "quay"/,
    );
    // ECR Public's API has one region: there is nothing to choose.
    assert.match(message, /credentials\.ecrPublic\.region: unknown key/);
  });
});

describe('config: createRepositories', () => {
  it('true means the registry defaults; an object its settings; a mirror overrides for its targets', () => {
    const c = resolved({
      registries: { [ECR_HOST]: { createRepositories: true } },
      mirrors: [
        MIRROR,
        {
          source: 'quay.io/acme/tool',
          targets: [`${ECR_HOST}/acme/tool`, `${OTHER_ECR}/acme/tool`],
          createRepositories: { tagMutability: 'immutable', scanOnPush: true, encryption: 'AES256' },
        },
        { source: 'quay.io/acme/legacy', targets: [`${ECR_HOST}/acme/legacy`], createRepositories: false },
      ],
    });
    const vendor = c.registries.get(ECR_HOST)!.vendor!;
    assert.deepEqual(vendor.createRepositories, {
      settings: {},
      at: `registries["${ECR_HOST}"].createRepositories`,
    });
    assert.deepEqual(vendor.repositoryCreation?.['acme/tool'], {
      settings: { tagMutability: 'immutable', scanOnPush: true, encryption: 'AES256' },
      at: 'mirrors[1].createRepositories',
    });
    // A registry the config does not list gets its entry from the mirror.
    assert.ok(c.registries.get(OTHER_ECR)?.vendor?.repositoryCreation?.['acme/tool']);

    const p = buildProfiles({ flags: {}, env: {}, config: c }).for(ECR_HOST);
    const m = p.repositories!;
    assert.ok(m.manages('acme/app'), 'the registry says create');
    assert.ok(m.manages('acme/tool'));
    assert.ok(!m.manages('acme/legacy'), 'the mirror says do not');
    assert.equal(m.describeSettings('acme/app'), 'mutable tags, AES256 encryption');
    assert.equal(m.describeSettings('acme/tool'), 'immutable tags, scan on push, AES256 encryption');
  });

  it('two mirrors that want other settings for one repository are a config error', () => {
    assert.throws(
      () =>
        resolved({
          mirrors: [
            { ...MIRROR, createRepositories: { tagMutability: 'immutable' } },
            { source: 'quay.io/acme/app2', targets: MIRROR.targets, createRepositories: true },
          ],
        }),
      (err: Error) =>
        err instanceof ConfigError &&
        /mirrors\[1\]\.createRepositories: asks to create .*acme\/app with other settings than mirrors\[0\]\.createRepositories/.test(
          err.message,
        ),
    );
  });

  it('shape mistakes name the path and what to write', () => {
    const message = invalid({
      registries: {
        [ECR_HOST]: { createRepositories: { tagMutability: 'immutabel', encryption: 'KMS' } },
        'public.ecr.aws': { createRepositories: { catalogData: { architectures: ['amd64'] } } },
        'quay.io': { createRepositories: 'yes' },
      },
    });
    assert.match(
      message,
      /createRepositories\.tagMutability: expected "immutable" or "mutable", got "immutabel" \(did you mean "immutable"\?\)/,
    );
    assert.match(message, /createRepositories\.encryption/);
    assert.match(
      message,
      /catalogData\.architectures\[0\]: expected "ARM" or "ARM 64" or "x86" or "x86-64", got "amd64"/,
    );
    assert.match(message, /registries\["quay\.io"\]\.createRepositories: expected true, false, or \{/);
  });

  it('what a registry cannot honour is refused when the profiles are built, before any request', () => {
    const cases: [object, RegExp][] = [
      [
        { registries: { 'public.ecr.aws': { createRepositories: { tagMutability: 'immutable' } } } },
        /config registries\["public\.ecr\.aws"\]\.createRepositories\.tagMutability: ECR Public has no server-side tag immutability; remove it and set "overwrite": "never"/,
      ],
      [
        {
          mirrors: [
            {
              source: 'quay.io/a/b',
              targets: ['public.ecr.aws/acme/b'],
              createRepositories: { scanOnPush: true },
            },
          ],
        },
        /config mirrors\[0\]\.createRepositories\.scanOnPush: ECR Public does not scan images/,
      ],
      [
        { registries: { [ECR_HOST]: { createRepositories: { catalogData: { description: 'x' } } } } },
        /createRepositories\.catalogData: catalog data is for ECR Public repositories/,
      ],
      [
        { registries: { 'quay.io': { createRepositories: true } } },
        /config registries\["quay\.io"\]\.createRepositories: quay\.io is a quay registry, .*regmirror creates repositories on ECR and ECR Public only/,
      ],
      [
        { registries: { [ECR_HOST]: { credentials: { ecr: { region: 'us-east-1' } } } } },
        /credentials\.ecr\.region: "us-east-1" is not the region of 123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com \(eu-west-1\)/,
      ],
      [
        { registries: { 'public.ecr.aws': { credentials: { ecr: {} } } } },
        /public\.ecr\.aws is ECR Public; write \{ "ecrPublic": \{\} \} instead/,
      ],
    ];
    for (const [config, expected] of cases) {
      assert.throws(
        () => profiles(config),
        (err: Error) => err instanceof ConfigError && expected.test(err.message),
        `${JSON.stringify(config)} → ${expected}`,
      );
    }
  });

  it('immutable is fine on ECR, mutable on ECR Public; neither needs AWS to be reachable to build', () => {
    const p = profiles({
      registries: {
        [ECR_HOST]: { createRepositories: { tagMutability: 'immutable' } },
        'public.ecr.aws': {
          createRepositories: { tagMutability: 'mutable', catalogData: { description: 'd' } },
        },
      },
    });
    assert.ok(p.for(ECR_HOST).repositories?.manages('acme/app'));
    assert.equal(
      p.for('public.ecr.aws').repositories?.describeSettings('acme/app'),
      'catalog data: description',
    );
    assert.equal(p.for('public.ecr.aws').upload.minChunkSize, 5 * 1024 * 1024);
    assert.equal(p.for(ECR_HOST).quirks.tagImmutability, true);
    assert.equal(p.for('public.ecr.aws').quirks.tagImmutability, false);
  });
});

describe('ECR helpers', () => {
  it('ECR Public paths: the alias, then the API repository name (which may hold slashes)', () => {
    assert.deepEqual(splitPublicPath('acme/app'), { alias: 'acme', repositoryName: 'app' });
    assert.deepEqual(splitPublicPath('acme/team/app'), { alias: 'acme', repositoryName: 'team/app' });
    assert.equal(splitPublicPath('app'), undefined);
  });

  it('authorization tokens are base64 "AWS:<password>"', () => {
    const token = Buffer.from('AWS:pa:ss').toString('base64');
    assert.deepEqual(decodeAuthorizationToken(token), { username: 'AWS', password: 'pa:ss' });
    assert.equal(decodeAuthorizationToken(Buffer.from('no-colon').toString('base64')), undefined);
  });

  it('settings in words', () => {
    assert.equal(
      describeEcrSettings({ tagMutability: 'immutable', encryption: { kmsKey: 'alias/k' } }),
      'immutable tags, KMS key alias/k',
    );
    assert.equal(describePublicSettings({}), 'no catalog data');
  });

  it('SDK errors become regmirror errors that say what to do, naming the IAM action', () => {
    const call = {
      action: 'ecr:CreateRepository',
      context: { registry: ECR_HOST },
      identity: 'AWS profile prod',
    };
    const denied = awsFailure(
      Object.assign(new Error('User: x is not authorized to perform: ecr:CreateRepository'), {
        name: 'AccessDeniedException',
      }),
      call,
    );
    assert.ok(denied instanceof PermissionError);
    assert.match(denied.message, /^AWS denied ecr:CreateRepository to the credentials from AWS profile prod/);
    assert.match(String((denied as PermissionError).hint), /grant ecr:CreateRepository/);
    const none = awsFailure(
      Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }),
      call,
    );
    assert.ok(none instanceof AuthError && /no AWS credentials/.test(none.message));
    const rejected = awsFailure(
      Object.assign(new Error('bad'), { name: 'UnrecognizedClientException' }),
      call,
    );
    assert.ok(rejected instanceof AuthError && /AWS rejected the credentials/.test(rejected.message));
    const down = awsFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), call);
    assert.ok(down instanceof NetworkError);
    const other = awsFailure(
      Object.assign(new Error('key disabled'), { name: 'KmsException', $metadata: { httpStatusCode: 400 } }),
      call,
    );
    assert.ok(
      other instanceof RegistryError &&
        other.message === 'ecr:CreateRepository failed: KmsException: key disabled',
    );
  });

  it('a token provider: the API token as Basic AWS:<password>, fetched again when renewed', async () => {
    let fetched = 0;
    const provider = tokenProvider({
      action: 'ecr:GetAuthorizationToken',
      registry: ECR_HOST,
      identity: 'the AWS SDK default chain',
      source: 'ECR token',
      async fetch() {
        fetched++;
        return {
          token: Buffer.from(`AWS:secret-${fetched}`).toString('base64'),
          expiresAt: new Date(Date.now() + 12 * 3600_000),
        };
      },
    });
    const first = await provider.get();
    assert.deepEqual(first?.credential, { kind: 'basic', username: 'AWS', password: 'secret-1' });
    assert.ok(first?.expiresAt !== undefined && first.expiresAt > Date.now() + 11 * 3600_000);
    await provider.get();
    assert.equal(fetched, 1, 'cached until it nears its expiry');
    assert.equal(provider.renew(), true);
    assert.equal((await provider.get())?.credential.kind === 'basic' && fetched, 2);
  });

  it('without any AWS credentials, an optional provider (ECR Public pulls) is anonymous, and says why', async () => {
    const provider = tokenProvider({
      action: 'ecr-public:GetAuthorizationToken',
      registry: 'public.ecr.aws',
      identity: 'the AWS SDK default chain',
      source: 'ECR Public token',
      optional: true,
      async fetch() {
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      },
    });
    assert.equal(await provider.get(), undefined);
    assert.match(provider.missing() ?? '', /no AWS credentials/);
  });
});

// ---- the engine with immutable tags and created repositories ------------------------------------------

function imageOf(seed: string) {
  const config = new TextEncoder().encode(`{"architecture":"amd64","os":"linux","seed":"${seed}"}`);
  const layer = new TextEncoder().encode(`layer ${seed}`.repeat(100));
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: digestOf(config), size: config.byteLength },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: digestOf(layer),
          size: layer.byteLength,
        },
      ],
    }),
  );
  return { config, layer, manifest, digest: digestOf(manifest) };
}

function engine(store: MemoryStore): CopyContext & { events: CopyEvent[] } {
  const events: CopyEvent[] = [];
  return {
    store,
    knowledge: new BlobKnowledge(),
    transfers: createLimiter(4),
    onEvent: (e) => events.push(e),
    events,
  };
}

const SRC = parseReference('src.example/acme/app:1.0');
const DST = parseReference('ecr.example/acme/app:1.0');

function seeded(store: MemoryStore, repo: typeof SRC, seed: string) {
  const img = imageOf(seed);
  store.putBlob(repo, img.config);
  store.putBlob(repo, img.layer);
  store.putManifest(repo, img.manifest, OCI_MANIFEST, repo.tag);
  return img;
}

describe('copyImage on a registry with immutable tags', () => {
  for (const overwrite of ['changed', 'never'] as OverwritePolicy[]) {
    it(`a tag that would move: ${overwrite === 'never' ? 'kept (overwrite "never")' : 'a clear immutability failure'}`, async () => {
      const store = new MemoryStore();
      store.immutableTags.add(DST.registry);
      const old = seeded(store, DST, 'old');
      const img = seeded(store, SRC, 'new');
      const result = await copyImage(SRC, [DST], engine(store), { overwrite });
      const t = result.targets[0]!;
      if (overwrite === 'never') {
        assert.deepEqual([t.status, t.refusedBy, t.digest], ['kept', 'overwrite-never', old.digest]);
        assert.equal(store.count('manifestPut'), 0, 'HEAD first: nothing pushed');
      } else {
        assert.deepEqual([t.status, t.errorKind, t.refusedBy], ['failed', 'immutable', 'immutable-tags']);
        assert.match(
          t.error!,
          new RegExp(
            `repository acme/app, manifest PUT 1\\.0: tag "1\\.0" is immutable: .* from ${old.digest} to ${img.digest}`,
          ),
        );
      }
    });
  }

  it('a refusal met at the PUT (the tag appeared meanwhile) is "kept" with overwrite "never"', async () => {
    const store = new MemoryStore();
    store.refuseTags.add('ecr.example/acme/app:1.0');
    seeded(store, SRC, 'new');
    const t = (await copyImage(SRC, [DST], engine(store), { overwrite: 'never' })).targets[0]!;
    assert.deepEqual([t.status, t.tagAction, t.refusedBy], ['kept', 'keep', 'immutable-tags']);
    const failed = (await copyImage(SRC, [DST], engine(store), { overwrite: 'changed' })).targets[0]!;
    assert.deepEqual([failed.status, failed.errorKind], ['failed', 'immutable']);
  });
});

describe('copyImage on a registry that needs repositories created', () => {
  it('creates once per repository, says so once (report and audit event), and a plan only asks', async () => {
    const store = new MemoryStore();
    store.createsRepositories.add(DST.registry);
    seeded(store, SRC, 'one');
    const plan = await copyImage(SRC, [DST], engine(store), { dryRun: true });
    assert.equal(plan.targets[0]!.repositoryCreated, true, 'the plan says it would create it');
    assert.deepEqual(store.createdRepositories, [], 'and did not');

    const ctx = engine(store);
    const first = await copyImage(SRC, [DST], ctx);
    assert.equal(first.targets[0]!.status, 'copied');
    assert.equal(first.targets[0]!.repositoryCreated, true);
    const second = await copyImage(
      parseReference('src.example/acme/app:1.0'),
      [parseReference('ecr.example/acme/app:1.1')],
      ctx,
    );
    assert.equal(second.targets[0]!.repositoryCreated, undefined);
    const creates = ctx.events.filter((e) => e.type === 'write' && e.action === 'repository-create');
    assert.deepEqual(creates, [
      {
        type: 'write',
        action: 'repository-create',
        source: 'src.example/acme/app:1.0',
        registry: 'ecr.example',
        repository: 'acme/app',
        settings: 'immutable tags',
      },
    ]);
  });
});

describe("the stand-in's SigV4 verifier", () => {
  // AWS's Signature Version 4 test suite, "get-vanilla".
  const vanilla = {
    method: 'GET',
    url: '/',
    headers: {
      host: 'example.amazonaws.com',
      'x-amz-date': '20150830T123600Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    },
  };
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const at = Date.parse('2015-08-30T12:36:00Z');

  it("accepts AWS's own test vector and reads its scope", () => {
    const v = verifySigV4(vanilla, Buffer.alloc(0), secret, at);
    assert.equal(v?.valid, true, v?.why);
    assert.deepEqual(
      [v?.auth.service, v?.auth.region, v?.auth.accessKeyId],
      ['service', 'us-east-1', 'AKIDEXAMPLE'],
    );
  });

  it('refuses another secret, a changed header, a changed body, an old date', () => {
    assert.equal(verifySigV4(vanilla, Buffer.alloc(0), `${secret}x`, at)?.valid, false);
    const moved = { ...vanilla, headers: { ...vanilla.headers, host: 'example.amazonaws.com:1' } };
    assert.equal(verifySigV4(moved, Buffer.alloc(0), secret, at)?.valid, false);
    assert.equal(verifySigV4(vanilla, Buffer.from('{}'), secret, at)?.valid, false);
    assert.equal(verifySigV4(vanilla, Buffer.alloc(0), secret, at + 20 * 60_000)?.valid, false);
  });
});

describe('docs/registries.md, ECR sections', () => {
  const doc = readFileSync(new URL('../../docs/registries.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## ECR Public\n'), doc.indexOf('## Docker Hub\n'));
  const blocks = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

  it('has its configs and IAM policies', () => {
    assert.ok(blocks.length >= 8, `found ${blocks.length}`);
  });

  for (const [i, text] of blocks.entries()) {
    it(`example ${i + 1} is valid: a policy, a config, or a registry entry that builds its profile`, () => {
      // A registry entry shown alone ("host": { ... }) is checked inside a config.
      const parsed = JSON.parse(text.startsWith('"') ? `{ "registries": { ${text} } }` : text) as Record<
        string,
        unknown
      >;
      if ('Version' in parsed) {
        const statements = parsed.Statement as { Effect: string; Action: string[]; Resource: string }[];
        assert.ok(statements.length > 0);
        for (const st of statements) {
          assert.equal(st.Effect, 'Allow');
          for (const action of st.Action) assert.match(action, /^(ecr|ecr-public|sts):[A-Z][A-Za-z]+$/);
        }
        return;
      }
      const config = {
        mirrors: [{ source: 'quay.io/acme/x', targets: ['registry.example/acme/x'] }],
        ...parsed,
      };
      const p = buildProfiles({
        flags: {},
        env: {},
        config: resolveConfig(validateConfig(config, `docs example ${i + 1}`), { baseDir: '/' }),
      });
      for (const host of Object.keys((parsed.registries as object | undefined) ?? {})) p.for(host);
    });
  }
});
