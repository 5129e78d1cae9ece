// Registry profiles: the kind inferred from the host or named in the config, the upload policy (user,
// vendor, registry's OCI-Chunk-Min-Length), credentials that expire and are fetched again, and the one
// table that sorts HTTP statuses.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { VENDORS } from '../../src/cloud/index.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { configSchema } from '../../src/config/schema.js';
import { AbortedError, isTransient, RegistryError } from '../../src/errors.js';
import {
  expiringProvider,
  firstOf,
  NO_CREDENTIALS,
  sourcesProvider,
} from '../../src/registry/profile/credential-provider.js';
import { chunkSizeFor } from '../../src/registry/profile/profile.js';
import { RegistryProfiles } from '../../src/registry/profile/profiles.js';
import { classifyStatus, isRetryableStatus } from '../../src/registry/status.js';

const MIB = 1024 * 1024;

function profilesFor(config?: object, flags: Parameters<typeof buildProfiles>[0]['flags'] = {}) {
  const resolved = config
    ? resolveConfig(
        configSchema.parse({ mirrors: [{ source: 'a.example/x', targets: ['b.example/x'] }], ...config }),
        {
          baseDir: '/',
        },
      )
    : undefined;
  return buildProfiles({ flags, env: {}, ...(resolved ? { config: resolved } : {}) });
}

describe('registry kind', () => {
  const kinds = (host: string) => profilesFor().for(host);
  it('is inferred from well-known hosts', () => {
    assert.equal(kinds('public.ecr.aws').kind, 'ecr-public');
    assert.equal(kinds('123456789012.dkr.ecr.eu-west-1.amazonaws.com').kind, 'ecr');
    assert.equal(kinds('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com').kind, 'ecr');
    assert.equal(kinds('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn').kind, 'ecr');
    assert.equal(kinds('docker.io').kind, 'dockerhub');
    assert.equal(kinds('registry-1.docker.io').kind, 'dockerhub');
    assert.equal(kinds('quay.io').kind, 'quay');
    assert.equal(kinds('ghcr.io').kind, 'ghcr');
    assert.equal(kinds('acme.jfrog.io').kind, 'artifactory');
  });

  it('defaults to distribution, and says where it came from', () => {
    const p = kinds('registry.internal:5000');
    assert.equal(p.kind, 'distribution');
    assert.equal(p.kindFrom, 'default');
    assert.equal(kinds('quay.io').kindFrom, 'host');
    // Look-alikes are not the vendor.
    assert.equal(kinds('quay.io.evil.example').kind, 'distribution');
    assert.equal(kinds('dkr.ecr.us-east-1.amazonaws.com').kind, 'distribution');
  });

  it('is what the config says for a self-hosted registry, whatever its host', () => {
    const profiles = profilesFor({
      registries: { 'harbor.corp:8443': { type: 'harbor' }, 'vpce-1.ecr.internal': { type: 'ecr' } },
    });
    const harbor = profiles.for('harbor.corp:8443');
    assert.equal(harbor.kind, 'harbor');
    assert.equal(harbor.kindFrom, 'config');
    const ecr = profiles.for('vpce-1.ecr.internal');
    assert.equal(ecr.kind, 'ecr');
    assert.equal(ecr.upload.minChunkSize, 5 * MIB);
    assert.equal(ecr.quirks.mounts, false);
  });

  it('an unknown type in the config is an error that lists the kinds', () => {
    const parsed = configSchema.safeParse({
      registries: { 'r.example': { type: 'harbour' } },
      mirrors: [{ source: 'a.example/x', targets: ['b.example/x'] }],
    });
    assert.equal(parsed.success, false);
    assert.match(
      parsed.error!.issues[0]!.message,
      /unknown registry type "harbour" \(did you mean "harbor"\?\)/,
    );
  });
});

describe('upload policy', () => {
  it('takes the config before the command line before the vendor before 8 MiB', () => {
    const profiles = profilesFor(
      { registries: { 'b.example': { chunkSize: '2MiB' } } },
      { chunkSize: 3 * MIB },
    );
    assert.equal(profiles.for('b.example').upload.chunkSize, 2 * MIB);
    assert.equal(profiles.for('c.example').upload.chunkSize, 3 * MIB);
    assert.equal(profilesFor().for('c.example').upload.chunkSize, 8 * MIB);
    // GHCR's own default, and its body limit.
    const ghcr = profilesFor().for('ghcr.io');
    assert.equal(ghcr.upload.chunkSize, 4 * MIB);
    assert.equal(ghcr.upload.monolithicMaxSize, 4 * MIB);
  });

  it('streams a large blob in one request only where no part size is to be kept', () => {
    const profiles = profilesFor({ registries: { 'b.example': { chunkSize: '2MiB' } } }, {});
    assert.equal(profiles.for('r.example').upload.streamed, true, 'distribution');
    assert.equal(profiles.for('quay.io').upload.streamed, true, 'quay');
    assert.equal(profiles.for('docker.io').upload.streamed, true, 'docker hub');
    assert.equal(profiles.for('public.ecr.aws').upload.streamed, false, 'ECR Public: parts ≥ 5 MiB');
    assert.equal(profiles.for('123456789012.dkr.ecr.eu-west-1.amazonaws.com').upload.streamed, false, 'ECR');
    assert.equal(profiles.for('ghcr.io').upload.streamed, false, 'GHCR: bodies ≤ 4 MiB');
    assert.equal(profiles.for('b.example').upload.streamed, false, 'a chunk size the config chose');
    assert.equal(
      profilesFor({}, { chunkSize: 3 * MIB }).for('r.example').upload.streamed,
      false,
      '--chunk-size',
    );
  });

  it('keeps chunks within what the registry accepts, and raises them to its OCI-Chunk-Min-Length', () => {
    const profiles = profilesFor({
      registries: { 'public.ecr.aws': { chunkSize: '1MiB' }, 'ghcr.io': { chunkSize: '16MiB' } },
    });
    // ECR refuses parts under 5 MiB (at commit): a smaller configured size is raised.
    assert.equal(chunkSizeFor(profiles.for('public.ecr.aws').upload), 5 * MIB);
    // GHCR refuses bodies over about 4 MiB: a larger configured size is lowered.
    assert.equal(chunkSizeFor(profiles.for('ghcr.io').upload), 4 * MIB);
    const plain = profilesFor().for('r.example').upload;
    assert.equal(chunkSizeFor(plain), 8 * MIB);
    assert.equal(chunkSizeFor(plain, 10 * MIB), 10 * MIB, 'OCI-Chunk-Min-Length wins over a smaller size');
    assert.equal(chunkSizeFor(plain, 1024), 8 * MIB);
  });

  it('mounts are off for ECR unless the config turns them on', () => {
    assert.equal(profilesFor().for('public.ecr.aws').quirks.mounts, false);
    assert.equal(profilesFor().for('quay.io').quirks.mounts, true);
    const on = profilesFor({
      registries: { '123456789012.dkr.ecr.us-east-1.amazonaws.com': { mounts: true } },
    });
    assert.equal(on.for('123456789012.dkr.ecr.us-east-1.amazonaws.com').quirks.mounts, true);
  });

  it('the profile is built once per registry, whatever alias names it', () => {
    const profiles = profilesFor();
    assert.equal(profiles.for('docker.io'), profiles.for('index.docker.io'));
    assert.equal(profiles.forHost('registry-1.docker.io'), profiles.for('docker.io'));
    assert.equal(profiles.forHost('auth.example'), undefined, 'a token realm is no registry of the run');
  });

  it('TLS: configured, else plain HTTP on loopback, else verified', () => {
    const profiles = profilesFor(
      { registries: { 'r.example': { tls: 'insecure' } } },
      { plainHttp: ['p.example'] },
    );
    assert.equal(profiles.for('r.example').tls, 'insecure');
    assert.equal(profiles.for('p.example').tls, 'disabled');
    assert.equal(profiles.for('127.0.0.1:5000').tls, 'disabled');
    assert.equal(profiles.for('quay.io').tls, 'verify');
  });
});

describe('credential providers', () => {
  it('an expiring credential is fetched again shortly before it expires, and once on renew()', async () => {
    let clock = 0;
    let fetches = 0;
    const provider = expiringProvider(
      async () => {
        fetches++;
        return {
          credential: { kind: 'basic', username: 'AWS', password: `token-${fetches}` },
          source: 'test issuer',
          expiresAt: clock + 12 * 3600_000,
        };
      },
      () => clock,
    );
    const password = async () => {
      const found = await provider.get();
      return found?.credential.kind === 'basic' ? found.credential.password : undefined;
    };
    assert.equal(await password(), 'token-1');
    clock = 11 * 3600_000;
    assert.equal(await password(), 'token-1', 'still well within its lifetime');
    clock = 12 * 3600_000 - 60_000;
    assert.equal(await password(), 'token-2', 'renewed inside the margin before expiry');
    assert.equal(provider.renew(), true);
    assert.equal(await password(), 'token-3', 'renewed when the registry refused it');
    assert.equal(fetches, 3);
    assert.equal(provider.renewable, true);
  });

  it('concurrent callers share one fetch; a failed fetch is not kept', async () => {
    let fetches = 0;
    let fail = true;
    const provider = expiringProvider(async () => {
      fetches++;
      await new Promise((r) => setTimeout(r, 5));
      if (fail) throw new Error('no AWS credentials');
      return { credential: { kind: 'basic', username: 'u', password: 'p' }, source: 's' };
    });
    await assert.rejects(Promise.all([provider.get(), provider.get(), provider.get()]), /no AWS credentials/);
    assert.equal(fetches, 1);
    fail = false;
    assert.equal((await provider.get())?.source, 's');
    assert.equal(fetches, 2);
  });

  it("a shared fetch survives one caller's abort, and is aborted when every caller has aborted", async () => {
    let fetches = 0;
    let aborted = 0;
    // An issuer (ECR's GetAuthorizationToken) that answers after 600 ms unless its signal aborts first.
    const provider = expiringProvider(
      (signal) =>
        new Promise((resolve, reject) => {
          const n = ++fetches;
          const timer = setTimeout(
            () =>
              resolve({ credential: { kind: 'basic', username: 'AWS', password: `t${n}` }, source: 'api' }),
            600,
          );
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            aborted++;
            reject(new Error('fetch aborted'));
          });
        }),
    );
    const started = Date.now();
    const short = provider.get(AbortSignal.timeout(100));
    const patient = provider.get();
    await assert.rejects(short, AbortedError);
    assert.ok(Date.now() - started < 500, 'the aborted caller leaves at once');
    assert.equal((await patient)?.source, 'api');
    assert.equal(aborted, 0, 'the fetch the patient caller waits for was not aborted');
    assert.equal(provider.renew(), true);
    const first = provider.get(AbortSignal.timeout(100));
    const second = provider.get(AbortSignal.timeout(150));
    await assert.rejects(first, AbortedError);
    await assert.rejects(second, AbortedError);
    assert.equal(aborted, 1, 'nobody waits any more: the fetch is aborted');
    const again = await provider.get();
    assert.equal(again?.credential.kind === 'basic' && again.credential.password, 't3', 'a fresh fetch');
    assert.equal(fetches, 3);
  });

  it('firstOf renews the provider that answered, and a file password is not renewable', async () => {
    const file = sourcesProvider(
      [
        {
          description: 'a file',
          lookup: async (host) =>
            host === 'r.example' ? { kind: 'basic', username: 'u', password: 'p' } : undefined,
        },
      ],
      'r.example',
    );
    let issued = 0;
    const api = expiringProvider(async () => ({
      credential: { kind: 'basic', username: 'AWS', password: `t${++issued}` },
      source: 'api',
    }));
    const both = firstOf([file, api]);
    assert.equal((await both.get())?.source, 'a file');
    assert.equal(both.renewable, false);
    assert.equal(both.renew(), false);
    const apiOnly = firstOf([NO_CREDENTIALS, api]);
    assert.equal((await apiOnly.get())?.source, 'api');
    assert.equal(apiOnly.renewable, true);
    assert.equal(apiOnly.renew(), true);
    await apiOnly.get();
    assert.equal(issued, 2);
  });

  it('a configured anonymous registry gets no credentials even when a login exists', async () => {
    const profiles = new RegistryProfiles({
      vendors: VENDORS,
      env: {},
      settings: (r) => (r === 'r.example' ? { registry: r, anonymous: true } : undefined),
      credentialSources: () => [
        { description: 'everything', lookup: async () => ({ kind: 'basic', username: 'u', password: 'p' }) },
      ],
    });
    assert.equal(await profiles.for('r.example').credentials.get(), undefined);
    assert.equal((await profiles.for('s.example').credentials.get())?.source, 'everything');
  });

  it('credentials typed on the command line come first, before a vendor source and before anonymous', async () => {
    let apiCalls = 0;
    const typed = (r: string) => ({
      description: `--dest-creds for ${r}`,
      lookup: async () => ({ kind: 'basic' as const, username: 'AWS', password: 'typed' }),
    });
    const profiles = new RegistryProfiles({
      vendors: VENDORS,
      env: {},
      settings: (r) =>
        r === 'anon.example'
          ? { registry: r, anonymous: true }
          : r.endsWith('.amazonaws.com')
            ? { registry: r, credentials: { ecr: { region: 'us-east-1' } } }
            : undefined,
      credentialSources: () => [
        {
          description: 'configured',
          lookup: async () => {
            apiCalls++;
            return { kind: 'basic', username: 'u', password: 'p' };
          },
        },
      ],
      givenCredentials: (r) => (r === 'other.example' ? undefined : typed(r)),
    });
    const ecr = await profiles.for('123456789012.dkr.ecr.us-east-1.amazonaws.com').credentials.get();
    assert.equal(ecr?.source, '--dest-creds for 123456789012.dkr.ecr.us-east-1.amazonaws.com');
    assert.equal(
      (await profiles.for('anon.example').credentials.get())?.source,
      '--dest-creds for anon.example',
    );
    assert.equal(apiCalls, 0);
    assert.equal((await profiles.for('other.example').credentials.get())?.source, 'configured');
  });
});

describe('HTTP statuses, sorted in one place', () => {
  it('retries 408, 429 and passing server faults, never 501/505 or client errors', () => {
    for (const s of [408, 429, 500, 502, 503, 504, 522]) assert.equal(isRetryableStatus(s), true, String(s));
    for (const s of [400, 401, 403, 404, 405, 416, 501, 505, 507])
      assert.equal(isRetryableStatus(s), false, String(s));
  });

  it('the engine restarts a transfer exactly when the transport would have retried', () => {
    for (const status of [429, 503, 501, 505, 400]) {
      const err = new RegistryError('x', { status });
      assert.equal(isTransient(err), isRetryableStatus(status), String(status));
    }
  });

  it('401 re-authenticates; 403 is a refusal, unless the vendor means "expired" and can renew', () => {
    assert.equal(classifyStatus(401), 'reauth');
    assert.equal(classifyStatus(403), 'denied');
    assert.equal(classifyStatus(400, { codes: ['DENIED'] }), 'denied');
    assert.equal(classifyStatus(403, { quirks: { deniedMeansExpired: true }, renewable: true }), 'reauth');
    assert.equal(classifyStatus(403, { quirks: { deniedMeansExpired: true }, renewable: false }), 'denied');
    assert.equal(classifyStatus(404), 'not-found');
    assert.equal(classifyStatus(416), 'fail');
    assert.equal(classifyStatus(202), 'ok');
  });
});
