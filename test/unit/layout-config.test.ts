// Layouts in the config: paths relative to the config file, the default image names in a layout target,
// templates filled from a layout source's name prefix, a whole layout expanded per prefix, and the
// mistakes each refused with what to write instead.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveTargets } from '../../src/cli/commands/copy.js';
import { expandLayoutMirror, resolveConfig } from '../../src/config/resolve.js';
import { configSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { formatReference, formatRepository, parseReference } from '../../src/reference/reference.js';

const BASE = '/srv/mirror';

function resolved(mirrors: unknown[]) {
  return resolveConfig(configSchema.parse({ mirrors }), { baseDir: BASE });
}

function problems(mirrors: unknown[]): string[] {
  const r = configSchema.safeParse({ mirrors });
  assert.ok(!r.success, 'the config was accepted');
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('layouts in the config', () => {
  it('a layout target names images after the source repository; paths are relative to the config file', () => {
    const [m] = resolved([
      {
        source: 'quay.io/acme/app',
        targets: [
          'oci:bundle',
          'oci-archive:out/bundle.tar',
          'oci:/abs/dir:{path}',
          'harbor.internal/{path}',
        ],
      },
    ]).mirrors;
    assert.deepEqual(m!.targets.map(formatRepository), [
      `oci:${join(BASE, 'bundle')}:quay.io/acme/app`,
      `oci-archive:${join(BASE, 'out/bundle.tar')}:quay.io/acme/app`,
      'oci:/abs/dir:acme/app',
      'harbor.internal/acme/app',
    ]);
  });

  it('a layout source with a name prefix fills templates from it', () => {
    const [m] = resolved([
      {
        source: 'oci:bundle:quay.io/acme/app',
        targets: ['harbor.internal/mirror/{path}', 'r.io/{registry}/{name}'],
      },
    ]).mirrors;
    assert.equal(formatRepository(m!.source), `oci:${join(BASE, 'bundle')}:quay.io/acme/app`);
    assert.deepEqual(m!.targets.map(formatRepository), [
      'harbor.internal/mirror/acme/app',
      'r.io/quay.io/app',
    ]);
  });

  it('a whole layout as the source becomes one mirror per name prefix', () => {
    const [m] = resolved([{ source: 'oci-archive:bundle.tar', targets: ['harbor.internal/{path}'] }]).mirrors;
    assert.deepEqual(m!.targets, []);
    const expanded = expandLayoutMirror(m!, [
      'quay.io/acme/app:1.0',
      'quay.io/acme/app:1.1',
      'ghcr.io/acme/worker:2',
    ]);
    assert.deepEqual(
      expanded.map((e) => [e.name, formatRepository(e.source), e.targets.map(formatRepository)]),
      [
        [
          'oci-archive:bundle.tar:ghcr.io/acme/worker',
          `oci-archive:${join(BASE, 'bundle.tar')}:ghcr.io/acme/worker`,
          ['harbor.internal/acme/worker'],
        ],
        [
          'oci-archive:bundle.tar:quay.io/acme/app',
          `oci-archive:${join(BASE, 'bundle.tar')}:quay.io/acme/app`,
          ['harbor.internal/acme/app'],
        ],
      ],
    );
  });

  it('a whole layout into one literal repository: only with one prefix', () => {
    const [m] = resolved([{ source: 'oci:skopeo-out', targets: ['harbor.internal/acme/app'] }]).mirrors;
    assert.deepEqual(
      expandLayoutMirror(m!, ['v1', 'v2']).map((e) => e.targets.map(formatRepository)),
      [['harbor.internal/acme/app']],
    );
    assert.throws(
      () => expandLayoutMirror(m!, ['v1', 'quay.io/acme/app:1.0']),
      (err: unknown) =>
        err instanceof ConfigError &&
        /holds the images of 2 repositories .*use \{path\} or \{name\}/.test(err.message),
    );
  });

  it('a whole layout into a layout: each prefix keeps its names', () => {
    const [m] = resolved([{ source: 'oci:in', targets: ['oci-archive:all.tar'] }]).mirrors;
    assert.deepEqual(
      expandLayoutMirror(m!, ['v1', 'quay.io/acme/app:1.0']).map((e) => e.targets.map(formatRepository)),
      [[`oci-archive:${join(BASE, 'all.tar')}`], [`oci-archive:${join(BASE, 'all.tar')}:quay.io/acme/app`]],
    );
  });

  it('templates cannot be filled from bare names', () => {
    const [m] = resolved([{ source: 'oci:skopeo-out', targets: ['harbor.internal/{path}'] }]).mirrors;
    assert.throws(
      () => expandLayoutMirror(m!, ['v1']),
      (err: unknown) => err instanceof ConfigError && /has none; name the images' prefix/.test(err.message),
    );
  });

  it('refuses a layout source with a tag, and a template a name prefix cannot fill', () => {
    assert.match(
      problems([{ source: 'oci:bundle:quay.io/acme/app:1.0', targets: ['harbor.internal/app'] }]).join('\n'),
      /mirrors\.0\.source: .*includes a tag; give the repository only, "oci:bundle:quay\.io\/acme\/app"/,
    );
    assert.match(
      problems([{ source: 'oci:bundle:Not_A_Repo', targets: ['harbor.internal/{path}'] }]).join('\n'),
      /mirrors\.0\.targets\.0: .*needs a repository name from the source/,
    );
  });
});

describe('copy targets in layouts', () => {
  it('a layout target without a name names the image after the source; an explicit name is kept', () => {
    const source = parseReference('quay.io/acme/app:1.4.2');
    assert.deepEqual(resolveTargets(source, ['oci:out', 'oci-archive:b.tar:release']).map(formatReference), [
      'oci:out:quay.io/acme/app:1.4.2',
      'oci-archive:b.tar:release',
    ]);
    const fromLayout = parseReference('oci:in:quay.io/acme/app:1.4.2');
    assert.deepEqual(
      resolveTargets(fromLayout, ['harbor.internal/acme/app', 'oci:copy']).map(formatReference),
      ['harbor.internal/acme/app:1.4.2', 'oci:copy:quay.io/acme/app:1.4.2'],
    );
  });

  it('refuses what cannot be named: a digest-only source into a layout, a layout name that is no tag', () => {
    const byDigest = parseReference(`quay.io/acme/app@sha256:${'c'.repeat(64)}`);
    assert.throws(() => resolveTargets(byDigest, ['oci:out']), /name it: oci:out:NAME/);
    assert.throws(
      () => resolveTargets(parseReference('oci:in:acme/app'), ['harbor.internal/x']),
      /"acme\/app" is not a tag a registry takes; give the target one: harbor\.internal\/x:TAG/,
    );
  });
});
