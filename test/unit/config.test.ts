import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigValidationError } from '../../src/config/issues.js';
import { loadConfig } from '../../src/config/load.js';
import { credentialSourcesFor, isAnonymous, registrySettings } from '../../src/config/resolve.js';
import { ConfigError, EXIT_USAGE } from '../../src/errors.js';
import { makeTempDir, removeDir } from '../harness/temp-dir.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const DIGEST = `sha256:${'a'.repeat(64)}`;

let root: string;
let counter = 0;

before(async () => {
  root = await makeTempDir('config');
});
after(async () => {
  await removeDir(root);
});

/** A fresh directory holding `files` (objects are written as JSON). */
async function project(files: Record<string, unknown>): Promise<string> {
  const dir = join(root, `p${++counter}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(
      join(dir, name),
      typeof content === 'string' ? content : JSON.stringify(content, null, 2),
    );
  }
  return dir;
}

const MINIMAL = { mirrors: [{ source: 'quay.io/org/app', targets: ['public.ecr.aws/org/app'] }] };

/** A config whose only mirror has `fields` in addition to (or instead of) the minimal ones. */
function withMirror(fields: Record<string, unknown>, rest: Record<string, unknown> = {}): unknown {
  return { ...rest, mirrors: [{ ...MINIMAL.mirrors[0], ...fields }] };
}

/** Loads and expects a ConfigError (exit code 2); returns its message. */
async function failure(options: { cwd: string; file?: string }): Promise<string> {
  try {
    await loadConfig(options);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, EXIT_USAGE);
    return err.message;
  }
  assert.fail('the config loaded');
}

/** The message for a mirror.config.json holding `config`, which must name the file. */
async function invalid(config: unknown): Promise<string> {
  const message = await failure({ cwd: await project({ 'mirror.config.json': config }) });
  assert.match(message, /^config mirror\.config\.json is invalid \(\d+ problems?\):\n/);
  return message;
}

describe('loadConfig: malformed files', () => {
  it('reports malformed JSON with file, line, column and the line itself', async () => {
    const text = '{\n  "mirrors": [\n    { "source": "quay.io/org/app", "targets": ["a.io/x"], },\n  ]\n}\n';
    const message = await failure({ cwd: await project({ 'mirror.config.json': text }) });
    assert.equal(
      message,
      'config mirror.config.json:3:59: invalid JSON: trailing comma before "}"; remove it\n' +
        '  3 |     { "source": "quay.io/org/app", "targets": ["a.io/x"], },\n' +
        `    | ${' '.repeat(58)}^`,
    );
  });

  it('reports a missing comma where it is missing', async () => {
    const text = '{\n  "defaults": { "concurrency": 2 }\n  "mirrors": []\n}\n';
    const message = await failure({ cwd: await project({ 'mirror.config.json': text }) });
    assert.match(
      message,
      /^config mirror\.config\.json:3:3: invalid JSON: unexpected "\\""; expected "," or "}"/,
    );
  });

  it('explains single quotes and comments in JSON', async () => {
    let message = await failure({ cwd: await project({ 'mirror.config.json': "{ 'mirrors': [] }" }) });
    assert.match(
      message,
      /mirror\.config\.json:1:3: invalid JSON: single quotes; JSON strings need double quotes/,
    );
    message = await failure({ cwd: await project({ 'mirror.config.json': '{\n  // mine\n}' }) });
    assert.match(message, /:2:3: invalid JSON: comments are not allowed in JSON \(use \.mirrorrc\.yaml/);
  });

  it('reports malformed YAML with file, line and column', async () => {
    const text = 'mirrors:\n  - source: quay.io/org/app\n   targets: [a.io/x]\n';
    const message = await failure({ cwd: await project({ '.mirrorrc.yaml': text }) });
    assert.match(
      message,
      /^config \.mirrorrc\.yaml:3:4: invalid YAML: bad indentation of a sequence entry\n/,
    );
    assert.match(message, /\n {2}3 \| {4}targets: \[a\.io\/x\]\n/);
  });

  it('reports an unterminated YAML flow list', async () => {
    const text = 'mirrors:\n  - source: quay.io/org/app\n    targets: [a.io/x\n';
    const message = await failure({ cwd: await project({ '.mirrorrc.yml': text }) });
    assert.match(message, /^config \.mirrorrc\.yml:\d+:\d+: invalid YAML: /);
  });

  it('says so when the file is empty', async () => {
    const dir = await project({ 'empty.json': '  \n' });
    assert.equal(
      await failure({ cwd: dir, file: 'empty.json' }),
      'config empty.json is empty; it needs at least "mirrors" (mirror.config.example.json shows one)',
    );
  });

  it('says where it looked and how to start when there is no config', async () => {
    const dir = await project({ 'README.md': 'no config here' });
    const message = await failure({ cwd: dir });
    assert.equal(
      message,
      `no config file found in ${dir}; looked for a "mirror" key in package.json, .mirrorrc, .mirrorrc.json, ` +
        '.mirrorrc.yaml, .mirrorrc.yml, mirror.config.json, mirror.config.js, mirror.config.mjs. ' +
        'Create mirror.config.json (mirror.config.example.json shows one) or pass --config FILE',
    );
  });

  it('names a --config file that does not exist', async () => {
    const dir = await project({});
    assert.equal(await failure({ cwd: dir, file: 'nope.json' }), 'config file nope.json does not exist');
  });

  it('refuses TypeScript configs with what to write instead', async () => {
    const dir = await project({ 'mirror.config.ts': 'export default {};' });
    assert.match(
      await failure({ cwd: dir }),
      /mirror\.config\.ts is there, but TypeScript configs are not supported/,
    );
    assert.equal(
      await failure({ cwd: dir, file: 'mirror.config.ts' }),
      'config mirror.config.ts: TypeScript config files are not supported (compiling them needs the ' +
        'typescript package at run time); write mirror.config.mjs or mirror.config.json instead',
    );
  });

  it('wraps a JavaScript config that throws', async () => {
    const dir = await project({ 'mirror.config.mjs': 'throw new Error("boom");' });
    assert.equal(await failure({ cwd: dir }), 'config mirror.config.mjs could not be loaded: boom');
  });
});

describe('loadConfig: invalid content', () => {
  it('names an unknown key by its path and suggests the near miss', async () => {
    const message = await invalid(withMirror({ platfroms: 'all' }));
    assert.match(message, /\n {2}mirrors\[0\]\.platfroms: unknown key \(did you mean "platforms"\?\)$/);
  });

  it('lists the accepted keys when nothing is close', async () => {
    const message = await invalid({ ...MINIMAL, defaults: { retries: 3 } });
    assert.match(
      message,
      /defaults\.retries: unknown key; expected one of: platforms, overwrite, concurrency, referrers/,
    );
  });

  it('reports a wrong type with what was expected', async () => {
    const message = await invalid({ ...MINIMAL, defaults: { concurrency: '8', referrers: 'yes' } });
    assert.match(message, /\n {2}defaults\.concurrency: expected a number, got "8"/);
    assert.match(
      message,
      /\n {2}defaults\.referrers: expected true, false, or \{ "artifactTypes": \[\.\.\.\], "exclude": \[\.\.\.\] \}, got "yes"/,
    );
  });

  it('reports a missing required key', async () => {
    const message = await invalid({ mirrors: [{ source: 'quay.io/org/app' }] });
    assert.match(
      message,
      /mirrors\[0\]\.targets: required: the repositories to copy to, e\.g\. \["public\.ecr\.aws\/org\/app"\]/,
    );
    assert.match(await invalid({}), /\(top level\)|mirrors: required: list what to mirror/);
  });

  it('reports an invalid regular expression with its path and value', async () => {
    const message = await invalid(withMirror({ tags: { exclude: ['-rc', '(beta'] } }));
    assert.match(
      message,
      /mirrors\[0\]\.tags\.exclude\[1\]: "\(beta" is not a valid regular expression \(Invalid regular expression: .*\); write a JavaScript regular expression/,
    );
  });

  it('reports an invalid semver range with examples of valid ones', async () => {
    const message = await invalid({
      mirrors: [
        MINIMAL.mirrors[0],
        MINIMAL.mirrors[0],
        withMirrorEntry({ name: 'x', tags: { semver: 'newest' } }),
      ],
    });
    assert.match(
      message,
      /mirrors\[2\]\.tags\.semver: "newest" is not a semver range; write one like ">=1\.2\.0", "\^15"/,
    );
  });

  it('reports an unknown credentials source, as a name or as an object key', async () => {
    const message = await invalid({
      ...MINIMAL,
      registries: {
        'quay.io': { credentials: 'dockr' },
        'public.ecr.aws': { credentials: { ecrpublic: {} } },
        'gcr.io': { credentials: { gcloud: {} } },
      },
    });
    assert.match(
      message,
      /registries\["quay\.io"\]\.credentials: unknown credentials source "dockr" \(did you mean "docker"\?\); expected "docker", "anonymous", \{ "env": \{ "username": "VAR", "password": "VAR" \} \}, \{ "ecr": \{\} \} or \{ "ecrPublic": \{\} \}/,
    );
    assert.match(
      message,
      /registries\["public\.ecr\.aws"\]\.credentials\.ecrpublic: unknown credentials source "ecrpublic" \(did you mean "ecrPublic"\?\)/,
    );
    assert.match(
      message,
      /registries\["gcr\.io"\]\.credentials\.gcloud: unknown credentials source "gcloud"; expected/,
    );
  });

  it('refuses a secret where an environment variable name belongs', async () => {
    const message = await invalid({
      ...MINIMAL,
      registries: {
        'docker.io': { credentials: { env: { username: 'DOCKERHUB_USER', password: 'dckr_pat_x-y' } } },
      },
    });
    assert.match(
      message,
      /credentials\.env\.password: "dckr_pat_x-y" is not an environment variable name; give the NAME/,
    );
  });

  it('reports empty targets', async () => {
    const message = await invalid(withMirror({ targets: [] }));
    assert.match(message, /mirrors\[0\]\.targets: is empty; list at least one target repository/);
  });

  it('reports a bad platform and a bad platforms value', async () => {
    let message = await invalid(withMirror({ platforms: ['linux/amd64', 'arm64'] }));
    assert.match(
      message,
      /mirrors\[0\]\.platforms\[1\]: "arm64" is not a platform; write os\/arch or os\/arch\/variant/,
    );
    message = await invalid({ ...MINIMAL, defaults: { platforms: 'linux/amd64' } });
    assert.match(
      message,
      /defaults\.platforms: expected "all" or a list of platforms like \["linux\/amd64", "linux\/arm64"\], got "linux\/amd64"/,
    );
  });

  it('reports bad references: a tag in the source, an invalid target, unknown placeholders', async () => {
    const message = await invalid(
      withMirror({
        source: 'quay.io/org/app:1.0',
        targets: ['public.ecr.aws/Org/app', 'public.ecr.aws/org/{repo}'],
      }),
    );
    assert.match(
      message,
      /mirrors\[0\]\.source: "quay\.io\/org\/app:1\.0" includes a tag; give the repository only, "quay\.io\/org\/app", and choose tags with "tags"/,
    );
    assert.match(
      message,
      /mirrors\[0\]\.targets\[0\]: invalid reference "public\.ecr\.aws\/Org\/app": repository names must be lower-case/,
    );
    assert.match(
      message,
      /mirrors\[0\]\.targets\[1\]: unknown placeholder \{repo\} in "public\.ecr\.aws\/org\/\{repo\}"; the placeholders are \{name\}, \{path\}, \{registry\}/,
    );
  });

  it('reports a template that expands to an invalid repository, and a target equal to the source', async () => {
    const message = await invalid(withMirror({ targets: ['r.io/acme/{name}-', 'quay.io/org/{name}'] }));
    assert.match(
      message,
      /mirrors\[0\]\.targets\[0\]: "r\.io\/acme\/\{name\}-" expands to "r\.io\/acme\/app-", which is not a repository: invalid reference/,
    );
    assert.match(
      message,
      /mirrors\[0\]\.targets\[1\]: "quay\.io\/org\/\{name\}" \(quay\.io\/org\/app\) is the source itself/,
    );
  });

  it('reports bad tag rules: empty list, bad pin, conflicting pins, includePrerelease without semver', async () => {
    let message = await invalid(withMirror({ tags: [] }));
    assert.match(
      message,
      /mirrors\[0\]\.tags: is empty, which selects no tag; remove "tags" to mirror every tag/,
    );
    message = await invalid(withMirror({ tags: ['1.0', '1.1@sha256:abc'] }));
    assert.match(message, /mirrors\[0\]\.tags\[1\]: "sha256:abc" is not a digest/);
    message = await invalid(
      withMirror({ tags: { list: [`1.0@${DIGEST}`], digests: { '1.0': `sha256:${'b'.repeat(64)}` } } }),
    );
    assert.match(
      message,
      /mirrors\[0\]\.tags\.list\[0\]: pins "1\.0" to sha256:a+, but it is also pinned to sha256:b+; keep one/,
    );
    message = await invalid(withMirror({ tags: { includePrerelease: true } }));
    assert.match(message, /mirrors\[0\]\.tags\.includePrerelease: only applies to "semver"/);
    message = await invalid(withMirror({ tags: '1.0' }));
    assert.match(
      message,
      /mirrors\[0\]\.tags: expected a list of tags like \["1\.2\.3", "1\.3\.0"\], or an object/,
    );
  });

  it('reports registry problems: scheme in a key, a chunk size out of range, a bad tls value', async () => {
    const message = await invalid({
      ...MINIMAL,
      registries: {
        'https://ghcr.io': {},
        'quay.io': { chunkSize: '2GiB', tls: 'disable' },
        'public.ecr.aws': { chunkSize: 512 },
      },
    });
    assert.match(message, /registries\["https:\/\/ghcr\.io"\]: leave out the scheme: write "ghcr\.io"/);
    assert.match(
      message,
      /registries\["quay\.io"\]\.chunkSize: chunk size "2GiB" \(2 GiB\) is out of range; use between 1 KiB and 1 GiB/,
    );
    assert.match(
      message,
      /registries\["quay\.io"\]\.tls: expected "verify", "disabled" \(plain HTTP\), .* got "disable" \(did you mean "disabled"\?\)/,
    );
    assert.match(
      message,
      /registries\["public\.ecr\.aws"\]\.chunkSize: chunk size 512 bytes is out of range/,
    );
    const wrongType = await invalid({ ...MINIMAL, registries: { 'quay.io': { chunkSize: 'big' } } });
    assert.match(
      wrongType,
      /registries\["quay\.io"\]\.chunkSize: "big" is not a size; write bytes as a number, or a string like "8MiB"/,
    );
  });

  it('reports two keys for the same registry and two mirrors with the same name', async () => {
    const message = await invalid({
      registries: { 'docker.io': {}, 'index.docker.io': {} },
      mirrors: [MINIMAL.mirrors[0], { ...MINIMAL.mirrors[0], targets: ['b.io/app'] }],
    });
    assert.match(
      message,
      /registries\["index\.docker\.io"\]: is the same registry as "docker\.io" \(both are docker\.io\)/,
    );
    assert.match(
      message,
      /mirrors\[1\]: has the same name as mirrors\[0\] \("quay\.io\/org\/app"\); give one of them a distinct "name"/,
    );
  });

  it('shows every problem, one per line, up to ten', async () => {
    const mirrors = Array.from({ length: 12 }, (_, i) => ({
      name: `m${i}`,
      source: 'quay.io/org/app',
      targets: [],
    }));
    let dir = await project({ 'mirror.config.json': { mirrors } });
    let err: unknown;
    try {
      await loadConfig({ cwd: dir });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigValidationError);
    assert.equal(err.file, 'mirror.config.json');
    assert.equal(err.issues.length, 12);
    const lines = err.message.split('\n');
    assert.equal(lines[0], 'config mirror.config.json is invalid (12 problems):');
    assert.equal(lines.length, 1 + 10 + 1);
    assert.equal(
      lines[1],
      '  mirrors[0].targets: is empty; list at least one target repository, e.g. ["public.ecr.aws/org/{name}"]',
    );
    assert.equal(lines[11], '  ... and 2 more');

    dir = await project({ 'mirror.config.json': withMirror({ overwrite: 'sometimes' }) });
    assert.equal(
      await failure({ cwd: dir }),
      'config mirror.config.json is invalid (1 problem):\n' +
        '  mirrors[0].overwrite: expected "changed" or "never" or "always", got "sometimes"',
    );
  });

  it('prefixes paths with "mirror" in package.json and names --config files as given', async () => {
    const dir = await project({
      'package.json': { name: 'x', mirror: withMirror({ concurrency: 0 }) },
      'conf/bad.yaml':
        'mirrors:\n  - source: quay.io/org/app\n    targets: [a.io/x]\n    tags: {latest: 0}\n',
    });
    assert.match(
      await failure({ cwd: dir }),
      /^config package\.json is invalid \(1 problem\):\n {2}mirror\.mirrors\[0\]\.concurrency: must be at least 1, got 0$/,
    );
    assert.match(
      await failure({ cwd: dir, file: 'conf/bad.yaml' }),
      /^config conf\/bad\.yaml is invalid \(1 problem\):\n {2}mirrors\[0\]\.tags\.latest: must be at least 1/,
    );
  });
});

/** A mirror entry, for configs with several. */
function withMirrorEntry(fields: Record<string, unknown>): Record<string, unknown> {
  return { ...MINIMAL.mirrors[0], ...fields };
}

describe('loadConfig: discovery', () => {
  it('finds mirror.config.json', async () => {
    const dir = await project({ 'mirror.config.json': MINIMAL });
    const loaded = await loadConfig({ cwd: dir });
    assert.equal(loaded.filepath, join(dir, 'mirror.config.json'));
    assert.equal(loaded.config.mirrors[0]?.name, 'quay.io/org/app');
  });

  it('finds .mirrorrc.yaml', async () => {
    const dir = await project({
      '.mirrorrc.yaml':
        '# comments are fine here\nmirrors:\n  - source: ubuntu\n    targets: ["a.io/mirror/{path}"]\n',
    });
    const loaded = await loadConfig({ cwd: dir });
    assert.equal(loaded.filepath, join(dir, '.mirrorrc.yaml'));
    assert.deepEqual(loaded.config.mirrors[0]?.targets, [
      { registry: 'a.io', path: 'mirror/library/ubuntu' },
    ]);
  });

  it('finds the "mirror" key in package.json, and skips a package.json without one', async () => {
    let dir = await project({ 'package.json': { name: 'x', mirror: MINIMAL } });
    assert.equal((await loadConfig({ cwd: dir })).filepath, join(dir, 'package.json'));
    dir = await project({ 'package.json': { name: 'x' }, '.mirrorrc': JSON.stringify(MINIMAL) });
    assert.equal((await loadConfig({ cwd: dir })).filepath, join(dir, '.mirrorrc'));
  });

  it('loads mirror.config.mjs', async () => {
    const dir = await project({ 'mirror.config.mjs': `export default ${JSON.stringify(MINIMAL)};` });
    assert.equal((await loadConfig({ cwd: dir })).config.mirrors.length, 1);
  });

  it('reads --config relative to cwd, whatever its name', async () => {
    const dir = await project({ 'configs/prod.json': MINIMAL, 'mirror.config.json': '{ broken' });
    const loaded = await loadConfig({ cwd: dir, file: 'configs/prod.json' });
    assert.equal(loaded.filepath, join(dir, 'configs', 'prod.json'));
  });
});

describe('loadConfig: resolution', () => {
  it('expands {name}, {path} and {registry} from the source', async () => {
    const dir = await project({
      'mirror.config.json': {
        mirrors: [
          {
            source: 'quay.io/gravitational/teleport',
            targets: ['public.ecr.aws/acme/{name}', 'r.io/{registry}/{path}', 'docker.io/acme/{name}-mirror'],
          },
          { source: 'alpine', targets: ['public.ecr.aws/acme/{name}', 'r.io/hub/{path}'] },
        ],
      },
    });
    const [teleport, alpine] = (await loadConfig({ cwd: dir })).config.mirrors;
    assert.deepEqual(teleport?.source, { registry: 'quay.io', path: 'gravitational/teleport' });
    assert.deepEqual(teleport?.targets, [
      { registry: 'public.ecr.aws', path: 'acme/teleport' },
      { registry: 'r.io', path: 'quay.io/gravitational/teleport' },
      { registry: 'docker.io', path: 'acme/teleport-mirror' },
    ]);
    assert.equal(alpine?.name, 'docker.io/library/alpine');
    assert.deepEqual(alpine?.targets, [
      { registry: 'public.ecr.aws', path: 'acme/alpine' },
      { registry: 'r.io', path: 'hub/library/alpine' },
    ]);
  });

  it('takes each policy from the mirror, else defaults, else the built-in defaults', async () => {
    const dir = await project({
      'mirror.config.json': {
        defaults: { overwrite: 'never', concurrency: 2 },
        mirrors: [
          withMirrorEntry({ name: 'a' }),
          withMirrorEntry({
            name: 'b',
            overwrite: 'always',
            platforms: ['linux/amd64', 'linux/arm64/v8'],
            referrers: true,
            concurrency: 6,
          }),
        ],
      },
    });
    const { defaults, mirrors } = (await loadConfig({ cwd: dir })).config;
    assert.deepEqual(defaults, {
      platforms: 'all',
      overwrite: 'never',
      concurrency: 2,
      referrers: {},
      cosignTags: true,
    });
    assert.deepEqual(
      mirrors.map(({ name, platforms, overwrite, concurrency, referrers }) => ({
        name,
        platforms,
        overwrite,
        concurrency,
        referrers,
      })),
      [
        // A mirror without its own cap has none: the run's bound (defaults.concurrency, -c) is its bound.
        { name: 'a', platforms: 'all', overwrite: 'never', concurrency: undefined, referrers: {} },
        {
          name: 'b',
          platforms: [
            { os: 'linux', architecture: 'amd64' },
            { os: 'linux', architecture: 'arm64', variant: 'v8' },
          ],
          overwrite: 'always',
          concurrency: 6,
          referrers: {},
        },
      ],
    );
    const bare = (await loadConfig({ cwd: await project({ 'mirror.config.json': MINIMAL }) })).config;
    assert.deepEqual(bare.defaults, {
      platforms: 'all',
      overwrite: 'changed',
      concurrency: 16,
      referrers: {},
      cosignTags: true,
    });
  });

  it('resolves referrers: true, false, a filter (a mirror replaces the defaults as a whole), cosignTags', async () => {
    const dir = await project({
      'mirror.config.json': {
        defaults: { referrers: { exclude: ['application/vnd.in-toto*'] }, cosignTags: false },
        mirrors: [
          withMirrorEntry({ name: 'a' }),
          withMirrorEntry({ name: 'b', referrers: false }),
          withMirrorEntry({
            name: 'c',
            referrers: { artifactTypes: ['application/spdx+json'] },
            cosignTags: true,
          }),
          withMirrorEntry({ name: 'd', referrers: true }),
        ],
      },
    });
    const { defaults, mirrors } = (await loadConfig({ cwd: dir })).config;
    assert.deepEqual(defaults.referrers, { exclude: ['application/vnd.in-toto*'] });
    assert.deepEqual(
      mirrors.map((m) => [m.name, m.referrers, m.cosignTags]),
      [
        ['a', { exclude: ['application/vnd.in-toto*'] }, false],
        ['b', false, false],
        ['c', { artifactTypes: ['application/spdx+json'] }, true],
        ['d', {}, false],
      ],
    );
  });

  it('refuses artifact types that are not media types, empty lists and unknown keys in referrers', async () => {
    const message = await invalid({
      ...MINIMAL,
      defaults: { referrers: { artifactTypes: ['spdx'], exclude: [] }, cosignTags: 'yes' },
    });
    assert.match(
      message,
      /defaults\.referrers\.artifactTypes\[0\]: "spdx" is not an artifact type; write a media type such as "application\/spdx\+json"/,
    );
    assert.match(message, /defaults\.referrers\.exclude: is empty; list artifact types, or remove the key/);
    assert.match(message, /defaults\.cosignTags: expected true or false, got "yes"/);
    const typo = await invalid({ ...MINIMAL, defaults: { referrers: { artifactType: ['a/b'] } } });
    assert.match(typo, /defaults\.referrers\.artifactType: unknown key \(did you mean "artifactTypes"\?\)/);
  });

  it('normalises tag rules: the list form with pins becomes list + digests', async () => {
    const dir = await project({
      'mirror.config.json': {
        mirrors: [
          withMirrorEntry({ name: 'a', tags: ['1.0', `1.1@${DIGEST}`, '1.0'] }),
          withMirrorEntry({ name: 'b', tags: { semver: '^1', latest: 3, exclude: ['-rc'] } }),
          withMirrorEntry({ name: 'c' }),
        ],
      },
    });
    const [a, b, c] = (await loadConfig({ cwd: dir })).config.mirrors;
    assert.deepEqual(a?.tags, { list: ['1.0'], digests: { '1.1': DIGEST } });
    assert.deepEqual(b?.tags, { semver: '^1', latest: 3, exclude: ['-rc'] });
    assert.equal(c?.tags, undefined);
  });

  it('keys registries by normalised name and resolves their settings', async () => {
    const dir = await project({
      'conf/mirror.json': {
        registries: {
          'index.docker.io': { credentials: { env: { username: 'HUB_USER', password: 'HUB_TOKEN' } } },
          'Quay.IO': { credentials: 'anonymous', concurrency: 3, chunkSize: '8MiB' },
          'localhost:5000': { tls: { caFile: 'ca/local.pem' } },
          'registry.internal:5000': { tls: 'disabled', chunkSize: 5_242_880 },
        },
        ...MINIMAL,
      },
    });
    const { config } = await loadConfig({ cwd: dir, file: 'conf/mirror.json' });
    assert.deepEqual(
      [...config.registries.keys()],
      ['docker.io', 'quay.io', 'localhost:5000', 'registry.internal:5000'],
    );
    assert.deepEqual(config.registries.get('quay.io'), {
      registry: 'quay.io',
      credentials: 'anonymous',
      concurrency: 3,
      chunkSize: 8 * 1024 * 1024,
    });
    assert.deepEqual(config.registries.get('localhost:5000')?.tls, {
      caFile: join(dir, 'conf', 'ca', 'local.pem'),
    });
    assert.equal(config.registries.get('registry.internal:5000')?.chunkSize, 5_242_880);

    const hub = registrySettings(config, 'registry-1.docker.io');
    assert.equal(hub.registry, 'docker.io');
    assert.equal(isAnonymous(hub), false);
    assert.equal(isAnonymous(registrySettings(config, 'quay.io')), true);
    assert.deepEqual(registrySettings(config, 'ghcr.io'), { registry: 'ghcr.io', credentials: 'docker' });
    assert.deepEqual(credentialSourcesFor(registrySettings(config, 'ghcr.io')), []);
    assert.deepEqual(credentialSourcesFor(registrySettings(config, 'quay.io')), []);

    const [source] = credentialSourcesFor(hub, { HUB_USER: 'me', HUB_TOKEN: 'secret' });
    assert.ok(source);
    assert.equal(source.description, 'environment variables HUB_USER and HUB_TOKEN');
    assert.deepEqual(await source.lookup('registry-1.docker.io'), {
      kind: 'basic',
      username: 'me',
      password: 'secret',
    });
    assert.equal(await source.lookup('quay.io'), undefined);
    const [unset] = credentialSourcesFor(hub, {});
    await assert.rejects(
      unset!.lookup('docker.io'),
      /environment variable HUB_USER \(username for docker\.io\) is not set/,
    );
  });
});

describe('mirror.config.example.json', () => {
  it('is a valid config', async () => {
    const { config } = await loadConfig({ cwd: REPO_ROOT, file: 'mirror.config.example.json' });
    assert.equal(config.mirrors.length, 3);
    assert.deepEqual(
      config.mirrors.map((m) => m.targets.map((t) => `${t.registry}/${t.path}`)),
      [
        ['public.ecr.aws/gravitational/teleport', 'docker.io/gravitational/teleport'],
        ['registry.internal:5000/mirror/quay.io/prometheus/node-exporter'],
        ['public.ecr.aws/acme/alpine'],
      ],
    );
    assert.equal(config.registries.get('public.ecr.aws')?.chunkSize, 8 * 1024 * 1024);
  });
});
