import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthError } from '../../src/errors.js';
import {
  CredentialChain,
  defaultCredentialChain,
  findCredential,
} from '../../src/registry/credentials/chain.js';
import { parseDockerConfig, resolveDockerConfig } from '../../src/registry/credentials/docker-config.js';
import {
  configFileSource,
  dockerAuthConfigEnvSource,
  dockerConfigFileSource,
  podmanAuthFilePaths,
  podmanAuthFileSources,
} from '../../src/registry/credentials/docker-config-source.js';
import { envCredentialSource, staticCredentialSource } from '../../src/registry/credentials/env-source.js';
import { getFromCredentialHelper } from '../../src/registry/credentials/helper.js';
import { isRepositoryScopedKey, registryHostOf } from '../../src/registry/credentials/registry-host.js';
import type { Credential } from '../../src/registry/credentials/types.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const basic = (username: string, password: string): Credential => ({ kind: 'basic', username, password });

let root: string;
let counter = 0;
/** A fresh directory under the suite's temp root. */
async function freshDir(): Promise<string> {
  const dir = join(root, `d${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Writes `config` as `<DOCKER_CONFIG>/config.json` and returns a docker config source over it. */
async function dockerSource(config: unknown, extraEnv: Record<string, string> = {}) {
  const dir = await freshDir();
  await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dockerConfigFileSource({ env: { DOCKER_CONFIG: dir, ...extraEnv }, home: '/nonexistent' });
}

async function rejectsAuth(promise: Promise<unknown>, check: (message: string) => void): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected AuthError, got ${String(err)}`);
    check(err.message);
    return true;
  });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'regmirror-credentials-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('registry host normalisation', () => {
  it('drops scheme and path, keeps the port, folds Docker Hub aliases', () => {
    assert.equal(registryHostOf('https://quay.io'), 'quay.io');
    assert.equal(registryHostOf('http://localhost:5000/v2/'), 'localhost:5000');
    assert.equal(registryHostOf('localhost:5000'), 'localhost:5000');
    assert.equal(registryHostOf('Quay.IO/org/repo'), 'quay.io');
    for (const hub of [
      'https://index.docker.io/v1/',
      'docker.io',
      'index.docker.io',
      'registry-1.docker.io',
    ]) {
      assert.equal(registryHostOf(hub), 'docker.io', hub);
    }
  });

  it('tells repository-scoped keys from host keys', () => {
    assert.equal(isRepositoryScopedKey('quay.io/org/repo'), true);
    assert.equal(isRepositoryScopedKey('https://index.docker.io/v1/'), false);
    assert.equal(isRepositoryScopedKey('https://quay.io/'), false);
    assert.equal(isRepositoryScopedKey('quay.io'), false);
  });
});

describe('docker config parsing and lookup', () => {
  const origin = '/home/u/.docker/config.json';

  it('decodes base64 auth, splitting at the first colon only', () => {
    const config = parseDockerConfig(
      JSON.stringify({ auths: { 'quay.io': { auth: b64('robot:pa:ss:word') } } }),
      origin,
    );
    assert.deepEqual(resolveDockerConfig(config, 'quay.io'), {
      kind: 'credential',
      credential: basic('robot', 'pa:ss:word'),
      key: 'quay.io',
    });
  });

  it('reads username/password fields and identity tokens', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'ghcr.io': { username: 'me', password: 'ghp_x' },
          'idp.example.com': { auth: b64('me:'), identitytoken: 'refresh-123' },
        },
      }),
      origin,
    );
    assert.deepEqual(resolveDockerConfig(config, 'ghcr.io'), {
      kind: 'credential',
      credential: basic('me', 'ghp_x'),
      key: 'ghcr.io',
    });
    assert.deepEqual(resolveDockerConfig(config, 'idp.example.com'), {
      kind: 'credential',
      credential: { kind: 'identity-token', username: 'me', token: 'refresh-123' },
      key: 'idp.example.com',
    });
    assert.equal(resolveDockerConfig(config, 'other.example.com'), undefined);
  });

  it('prefers an exact key, then a host key, over a repository-scoped key', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'quay.io/org/repo': { auth: b64('scoped:x') },
          'https://quay.io': { auth: b64('host:x') },
          'localhost:5000': { auth: b64('exact:x') },
          'http://localhost:5000': { auth: b64('scheme:x') },
        },
      }),
      origin,
    );
    const user = (host: string) => {
      const answer = resolveDockerConfig(config, host);
      return answer?.kind === 'credential' && answer.credential.kind === 'basic'
        ? answer.credential.username
        : '';
    };
    assert.equal(user('quay.io'), 'host');
    assert.equal(user('localhost:5000'), 'exact');
  });

  it('an empty config file is an empty config', () => {
    assert.deepEqual(parseDockerConfig('  \n', origin), {
      auths: [],
      credHelpers: [],
      credsStore: undefined,
    });
  });

  it('rejects malformed content naming the origin and the field, never the value', () => {
    const cases: [unknown, RegExp][] = [
      [[], /must be a JSON object/],
      [{ auths: [] }, /"auths" must be an object/],
      [{ auths: { 'quay.io': { auth: 'not base64 s3cret!' } } }, /auths\["quay.io"\]\.auth is not base64/],
      [
        { auths: { 'quay.io': { auth: b64('s3cret-without-colon') } } },
        /auths\["quay.io"\]\.auth is not base64/,
      ],
      [{ auths: { 'quay.io': { username: 'u' } } }, /username but no password/],
      [{ auths: { 'quay.io': { password: 's3cret' } } }, /password but no username/],
      [{ auths: { 'quay.io': { identitytoken: 42 } } }, /identitytoken must be a string/],
      [
        { credHelpers: { 'quay.io': '../../bin/sh' } },
        /credHelpers\["quay.io"\] must be a credential helper name/,
      ],
      [{ credsStore: 7 }, /"credsStore" must be a credential helper name/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(
        () => parseDockerConfig(JSON.stringify(value), origin),
        (err: unknown) => {
          assert.ok(err instanceof AuthError);
          assert.match(err.message, pattern);
          assert.ok(err.message.startsWith(`${origin}: `), err.message);
          assert.ok(!err.message.includes('s3cret'), err.message);
          return true;
        },
      );
    }
  });
});

describe('docker config file source', () => {
  it('finds Docker Hub credentials under any of its hosts', async () => {
    const source = await dockerSource({
      auths: { 'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pw') } },
    });
    for (const host of ['registry-1.docker.io', 'docker.io', 'index.docker.io']) {
      assert.deepEqual(await source.lookup(host), basic('hubuser', 'hub:pw'), host);
    }
    assert.equal(await source.lookup('quay.io'), undefined);
  });

  it('normalises https:// and /v1/ keys', async () => {
    const source = await dockerSource({
      auths: { 'https://quay.io/v1/': { auth: b64('q:1') }, 'http://localhost:5000': { auth: b64('l:2') } },
    });
    assert.deepEqual(await source.lookup('quay.io'), basic('q', '1'));
    assert.deepEqual(await source.lookup('localhost:5000'), basic('l', '2'));
  });

  it('uses $DOCKER_CONFIG, else ~/.docker/config.json', async () => {
    const home = await freshDir();
    await mkdir(join(home, '.docker'));
    await writeFile(
      join(home, '.docker', 'config.json'),
      JSON.stringify({ auths: { 'quay.io': { auth: b64('h:1') } } }),
    );
    const source = dockerConfigFileSource({ env: {}, home });
    assert.equal(source.description, `docker config ${join(home, '.docker', 'config.json')}`);
    assert.deepEqual(await source.lookup('quay.io'), basic('h', '1'));
  });

  it('a missing file means no credentials', async () => {
    const source = dockerConfigFileSource({
      env: { DOCKER_CONFIG: join(root, 'absent') },
      home: '/nonexistent',
    });
    assert.equal(await source.lookup('quay.io'), undefined);
  });

  it('reads the file once, on the first lookup', async () => {
    const dir = await freshDir();
    const path = join(dir, 'config.json');
    const source = configFileSource('test file', path, { env: {} });
    // Written after the source was created: nothing is read before the first lookup.
    await writeFile(
      path,
      JSON.stringify({
        auths: { 'a.example.com': { auth: b64('a:1') }, 'b.example.com': { auth: b64('b:2') } },
      }),
    );
    assert.deepEqual(await source.lookup('a.example.com'), basic('a', '1'));
    await rm(path);
    assert.deepEqual(await source.lookup('b.example.com'), basic('b', '2'));
  });

  it('malformed JSON is an AuthError naming the file, without the secret', async () => {
    const source = await dockerSource('{"auths": {"quay.io": {"auth": "c2VjcmV0:hunter2-top-secret"}');
    const path = source.description.replace('docker config ', '');
    await rejectsAuth(source.lookup('quay.io'), (message) => {
      assert.ok(message.includes(path), message);
      assert.match(message, /not valid JSON \(line 1, column \d+\)/);
      assert.ok(!message.includes('hunter2'), message);
    });
    // V8 quotes the text around some syntax errors; that text must not reach the message.
    const quoted = await dockerSource('{"auths": hunter2-top-secret}');
    await rejectsAuth(quoted.lookup('quay.io'), (message) => {
      assert.match(message, /not valid JSON/);
      assert.ok(!message.includes('hunter2'), message);
    });
  });

  it('an unreadable path (a directory) is an AuthError naming it', async () => {
    const dir = await freshDir();
    await mkdir(join(dir, 'config.json'));
    const source = dockerConfigFileSource({ env: { DOCKER_CONFIG: dir }, home: '/nonexistent' });
    await rejectsAuth(source.lookup('quay.io'), (message) =>
      assert.ok(message.includes(join(dir, 'config.json'))),
    );
  });
});

describe('DOCKER_AUTH_CONFIG', () => {
  it('reads config.json-shaped JSON from the variable', async () => {
    const env = {
      DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'registry.gitlab.com': { auth: b64('ci:tok') } } }),
    };
    assert.deepEqual(
      await dockerAuthConfigEnvSource({ env }).lookup('registry.gitlab.com'),
      basic('ci', 'tok'),
    );
    assert.equal(await dockerAuthConfigEnvSource({ env: {} }).lookup('registry.gitlab.com'), undefined);
  });

  it('invalid JSON is an AuthError naming the variable', async () => {
    const source = dockerAuthConfigEnvSource({ env: { DOCKER_AUTH_CONFIG: '{"auths": secret-value' } });
    await rejectsAuth(source.lookup('quay.io'), (message) => {
      assert.match(message, /^DOCKER_AUTH_CONFIG environment variable: not valid JSON/);
      assert.ok(!message.includes('secret-value'), message);
    });
  });
});

describe('podman auth.json', () => {
  it('resolves REGISTRY_AUTH_FILE alone, else XDG_RUNTIME_DIR then ~/.config', () => {
    assert.deepEqual(
      podmanAuthFilePaths({ REGISTRY_AUTH_FILE: '/x/auth.json', XDG_RUNTIME_DIR: '/run/u' }, '/h'),
      ['/x/auth.json'],
    );
    assert.deepEqual(podmanAuthFilePaths({ XDG_RUNTIME_DIR: '/run/u' }, '/h'), [
      '/run/u/containers/auth.json',
      '/h/.config/containers/auth.json',
    ]);
    assert.deepEqual(podmanAuthFilePaths({}, '/h'), ['/h/.config/containers/auth.json']);
  });

  it('reads $REGISTRY_AUTH_FILE', async () => {
    const dir = await freshDir();
    const file = join(dir, 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { 'quay.io/org': { auth: b64('pod:man') } } }));
    const [source] = podmanAuthFileSources({ env: { REGISTRY_AUTH_FILE: file }, home: '/nonexistent' });
    assert.ok(source);
    assert.equal(source.description, `podman auth file ${file}`);
    assert.deepEqual(await source.lookup('quay.io'), basic('pod', 'man'));
  });
});

describe('explicit and environment credentials', () => {
  it('static source answers only for its host (and Docker Hub aliases)', async () => {
    const source = staticCredentialSource('docker.io', basic('u', 'p'));
    assert.deepEqual(await source.lookup('registry-1.docker.io'), basic('u', 'p'));
    assert.equal(await source.lookup('quay.io'), undefined);
  });

  it('env source reads the variables when asked', async () => {
    const source = envCredentialSource('docker.io', 'HUB_USER', 'HUB_TOKEN', {
      HUB_USER: 'me',
      HUB_TOKEN: 'dckr_pat',
    });
    assert.deepEqual(await source.lookup('registry-1.docker.io'), basic('me', 'dckr_pat'));
    assert.equal(await source.lookup('quay.io'), undefined);
    assert.equal(source.description, 'environment variables HUB_USER and HUB_TOKEN');
  });

  it('an unset or empty variable is an error naming it, never a value', async () => {
    const unset = envCredentialSource('docker.io', 'HUB_USER', 'HUB_TOKEN', { HUB_USER: 'me-the-user' });
    await rejectsAuth(unset.lookup('docker.io'), (message) => {
      assert.match(message, /HUB_TOKEN \(password for docker\.io\) is not set/);
      assert.ok(!message.includes('me-the-user'), message);
    });
    const empty = envCredentialSource('quay.io', 'Q_USER', 'Q_PASS', { Q_USER: '', Q_PASS: 'x' });
    await rejectsAuth(empty.lookup('quay.io'), (message) =>
      assert.match(message, /Q_USER \(username for quay\.io\) is empty/),
    );
    // Not asked about that host: no error.
    assert.equal(await unset.lookup('quay.io'), undefined);
  });
});

describe('credential helpers (a real docker-credential-test script)', () => {
  let binDir: string;
  let log: string;
  let env: Record<string, string>;

  before(async () => {
    binDir = await freshDir();
    log = join(binDir, 'requests.log');
    const script = `#!/bin/sh
url=$(cat)
printf '%s\\n' "$url" >> "$HELPER_LOG"
case "$url" in
  https://index.docker.io/v1/)
    printf '{"ServerURL":"%s","Username":"<token>","Secret":"hub-refresh-token"}\\n' "$url" ;;
  helper.example.com|https://store.example.com)
    printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper:se:cret"}\\n' "$url" ;;
  broken.example.com)
    echo "keyring is locked" >&2; exit 3 ;;
  garbage.example.com)
    echo "not-json leaked-secret-value" ;;
  slow.example.com)
    exec sleep 10 ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
    await writeFile(join(binDir, 'docker-credential-test'), script);
    await chmod(join(binDir, 'docker-credential-test'), 0o755);
    env = { PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}`, HELPER_LOG: log };
  });

  async function requests(): Promise<string[]> {
    return (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  }

  it('speaks the protocol: basic, <token> and not found', async () => {
    assert.deepEqual(
      await getFromCredentialHelper('test', 'helper.example.com', 'helper.example.com', { env }),
      basic('helper-user', 'helper:se:cret'),
    );
    assert.deepEqual(
      await getFromCredentialHelper('test', 'https://index.docker.io/v1/', 'docker.io', { env }),
      {
        kind: 'identity-token',
        token: 'hub-refresh-token',
      },
    );
    assert.equal(
      await getFromCredentialHelper('test', 'unknown.example.com', 'unknown.example.com', { env }),
      undefined,
    );
  });

  it('credHelpers take precedence over auths', async () => {
    const source = await dockerSource(
      {
        credHelpers: { 'helper.example.com': 'test' },
        auths: { 'helper.example.com': { auth: b64('file:pw') } },
      },
      env,
    );
    assert.deepEqual(await source.lookup('helper.example.com'), basic('helper-user', 'helper:se:cret'));
  });

  it('falls back to credsStore for empty or missing auths entries, not for filled ones', async () => {
    const source = await dockerSource(
      {
        credsStore: 'test',
        auths: { 'https://store.example.com': {}, 'file.example.com': { auth: b64('file:pw') } },
      },
      env,
    );
    assert.deepEqual(await source.lookup('store.example.com'), basic('helper-user', 'helper:se:cret'));
    assert.deepEqual(await source.lookup('file.example.com'), basic('file', 'pw'));
    assert.equal(await source.lookup('unknown.example.com'), undefined);
  });

  it('asks for Docker Hub under https://index.docker.io/v1/ and caches the answer per host', async () => {
    await rm(log, { force: true });
    const source = await dockerSource(
      { credsStore: 'test', auths: { 'https://index.docker.io/v1/': {} } },
      env,
    );
    const token = { kind: 'identity-token', token: 'hub-refresh-token' };
    assert.deepEqual(await source.lookup('registry-1.docker.io'), token);
    assert.deepEqual(await source.lookup('docker.io'), token);
    assert.deepEqual(await requests(), ['https://index.docker.io/v1/']);
  });

  it('a helper missing from PATH is an AuthError naming helper and host', async () => {
    const emptyBin = await freshDir();
    const source = await dockerSource(
      { credHelpers: { 'x.example.com': 'nonexistent' } },
      { PATH: emptyBin },
    );
    await rejectsAuth(source.lookup('x.example.com'), (message) => {
      assert.match(message, /docker-credential-nonexistent/);
      assert.match(message, /x\.example\.com/);
      assert.match(message, /not found on PATH/);
    });
  });

  it('reports a failing helper with its stderr', async () => {
    await rejectsAuth(
      getFromCredentialHelper('test', 'broken.example.com', 'broken.example.com', { env }),
      (message) =>
        assert.match(
          message,
          /docker-credential-test for broken\.example\.com: failed \(exit code 3\): keyring is locked/,
        ),
    );
  });

  it('never quotes the stdout of a successful but unparsable answer', async () => {
    await rejectsAuth(
      getFromCredentialHelper('test', 'garbage.example.com', 'garbage.example.com', { env }),
      (message) => {
        assert.match(message, /other than the expected JSON/);
        assert.ok(!message.includes('leaked-secret-value'), message);
      },
    );
  });

  it('kills a helper that does not answer in time', async () => {
    const started = Date.now();
    await rejectsAuth(
      getFromCredentialHelper('test', 'slow.example.com', 'slow.example.com', { env, timeoutMs: 300 }),
      (message) => assert.match(message, /no answer within 0\.3 s/),
    );
    assert.ok(Date.now() - started < 5000);
  });
});

describe('credential chain', () => {
  it('tries DOCKER_AUTH_CONFIG, then docker config, then podman, and says which answered', async () => {
    const home = await freshDir();
    await mkdir(join(home, '.docker'));
    await mkdir(join(home, '.config', 'containers'), { recursive: true });
    await writeFile(
      join(home, '.docker', 'config.json'),
      JSON.stringify({
        auths: { 'quay.io': { auth: b64('docker:1') }, 'ghcr.io': { auth: b64('docker:2') } },
      }),
    );
    await writeFile(
      join(home, '.config', 'containers', 'auth.json'),
      JSON.stringify({
        auths: { 'quay.io': { auth: b64('podman:1') }, 'harbor.example.com': { auth: b64('podman:3') } },
      }),
    );
    const env = { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'ghcr.io': { auth: b64('gitlab:2') } } }) };
    const chain = defaultCredentialChain(env, home);
    assert.ok(chain instanceof CredentialChain);

    assert.deepEqual(await findCredential([chain], 'ghcr.io'), {
      credential: basic('gitlab', '2'),
      source: 'DOCKER_AUTH_CONFIG environment variable',
    });
    assert.deepEqual(await findCredential([chain], 'quay.io'), {
      credential: basic('docker', '1'),
      source: `docker config ${join(home, '.docker', 'config.json')}`,
    });
    assert.deepEqual(await findCredential([chain], 'harbor.example.com'), {
      credential: basic('podman', '3'),
      source: `podman auth file ${join(home, '.config', 'containers', 'auth.json')}`,
    });
    assert.deepEqual(await chain.lookup('quay.io'), basic('docker', '1'));
    assert.equal(await findCredential([chain], 'nowhere.example.com'), undefined);
  });

  it('explicit sources placed first win over the default chain', async () => {
    const home = await freshDir();
    const found = await findCredential(
      [
        staticCredentialSource('quay.io', basic('flag', 'x'), 'command line'),
        defaultCredentialChain({}, home),
      ],
      'quay.io',
    );
    assert.deepEqual(found, { credential: basic('flag', 'x'), source: 'command line' });
  });

  it('with no files at all finds nothing and does not fail', async () => {
    assert.equal(await findCredential([defaultCredentialChain({}, await freshDir())], 'quay.io'), undefined);
  });
});
