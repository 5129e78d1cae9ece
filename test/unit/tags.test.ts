import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareTags,
  parseSemverTag,
  type SelectedTag,
  selectTags,
  sortByTag,
  type TagRules,
} from '../../src/config/tags.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

/** Just the tag names, in the order selectTags returns them. */
function names(available: string[], rules: TagRules | undefined): string[] {
  return selectTags(available, rules).map((s) => s.tag);
}

describe('compareTags', () => {
  const sorted = (tags: string[]) => [...tags].sort(compareTags);

  it('orders versions by semver precedence, with or without a v prefix', () => {
    assert.deepEqual(sorted(['1.10.0', 'v1.9.0', '1.9.0-rc.1', '2.0.0', '1.2.3']), [
      '1.2.3',
      '1.9.0-rc.1',
      'v1.9.0',
      '1.10.0',
      '2.0.0',
    ]);
  });

  it('keeps the order total when "v1.2.3" and "1.2.3" are the same version', () => {
    assert.deepEqual(sorted(['v1.2.3', '1.2.3']), ['1.2.3', 'v1.2.3']);
    assert.deepEqual(sorted(['1.2.3', 'v1.2.3']), ['1.2.3', 'v1.2.3']);
  });

  it('orders other tags as text with digit runs by value', () => {
    assert.deepEqual(sorted(['3.9', '3.10', 'edge', 'build-100', 'build-99', '20240110', '20231231']), [
      '3.9',
      '3.10',
      '20231231',
      '20240110',
      'build-99',
      'build-100',
      'edge',
    ]);
  });

  it('ranks versions above tags that are not versions', () => {
    assert.deepEqual(sorted(['latest', '1.0.0', 'zzz', '0.1.0', '3.10']), [
      '3.10',
      'latest',
      'zzz',
      '0.1.0',
      '1.0.0',
    ]);
  });

  it('does not read partial versions as semver', () => {
    assert.equal(parseSemverTag('1.2'), undefined);
    assert.equal(parseSemverTag('20240101'), undefined);
    assert.equal(parseSemverTag('v1.2.3')?.version, '1.2.3');
    assert.equal(parseSemverTag('1.2.3-rc.1+build.5')?.version, '1.2.3-rc.1');
    assert.equal(parseSemverTag('1.2.3.4'), undefined);
    assert.equal(parseSemverTag('01.2.3'), undefined);
    assert.equal(parseSemverTag('r0001'), undefined);
  });

  it('sorts with keys parsed once (sortByTag) exactly as compareTags does', () => {
    const tags = [
      ...Array.from({ length: 300 }, (_, i) => `r${String((i * 7919) % 1000).padStart(4, '0')}`),
      ...Array.from(
        { length: 100 },
        (_, i) => `${i % 3}.${(i * 13) % 17}.${i % 5}${i % 4 === 0 ? '-rc.1' : ''}`,
      ),
      ...Array.from({ length: 50 }, (_, i) => `v${i % 2}.${i}.0`),
      'latest',
      'edge',
      '3.10',
      '3.9',
      'build-100',
      'build-99',
    ];
    const expected = [...tags].sort(compareTags);
    assert.deepEqual(
      sortByTag(tags, (t) => t),
      expected,
    );
    const objects = sortByTag(
      tags.map((tag) => ({ tag })),
      (o) => o.tag,
    ).map((o) => o.tag);
    assert.deepEqual(objects, expected);
  });
});

describe('selectTags', () => {
  const AVAILABLE = [
    'latest',
    '1.0.0',
    '1.1.0',
    '1.2.0-rc.1',
    '1.2.0',
    'v2.0.0',
    '2.1.0-rc.1',
    'edge',
    'sha-abc123',
  ];

  it('selects every tag when there are no rules, oldest first and each once', () => {
    assert.deepEqual(names([...AVAILABLE, '1.0.0'], undefined), [
      'edge',
      'latest',
      'sha-abc123',
      '1.0.0',
      '1.1.0',
      '1.2.0-rc.1',
      '1.2.0',
      'v2.0.0',
      '2.1.0-rc.1',
    ]);
    assert.equal(names(AVAILABLE, undefined).length, AVAILABLE.length);
  });

  it('treats rules without filters or tags like no rules', () => {
    assert.equal(names(AVAILABLE, {}).length, AVAILABLE.length);
  });

  it('selects an explicit list and nothing else, marking tags the source lacks', () => {
    assert.deepEqual(selectTags(AVAILABLE, { list: ['1.1.0', 'latest', '9.9.9'] }), [
      { tag: 'latest' },
      { tag: '1.1.0' },
      { tag: '9.9.9', missing: true },
    ]);
  });

  it('copies pinned digests under their tags, present at the source or not', () => {
    const selected = selectTags(AVAILABLE, { list: ['1.0.0'], digests: { '1.1.0': D1, 'old-1': D2 } });
    assert.deepEqual(selected, [
      { tag: 'old-1', digest: D2 },
      { tag: '1.0.0' },
      { tag: '1.1.0', digest: D1 },
    ]);
  });

  it('pins a tag the filters also select, once, with its digest', () => {
    const selected = selectTags(AVAILABLE, { semver: '^1', digests: { '1.1.0': D1 } });
    assert.deepEqual(selected, [{ tag: '1.0.0' }, { tag: '1.1.0', digest: D1 }, { tag: '1.2.0' }]);
  });

  it('include keeps tags matching any expression, anywhere in the tag', () => {
    assert.deepEqual(names(AVAILABLE, { include: ['^1\\.', 'sha-'] }), [
      'sha-abc123',
      '1.0.0',
      '1.1.0',
      '1.2.0-rc.1',
      '1.2.0',
    ]);
  });

  it('exclude drops tags matching any expression, anywhere in the tag', () => {
    assert.deepEqual(names(AVAILABLE, { exclude: ['-rc', '^sha-', 'latest|edge'] }), [
      '1.0.0',
      '1.1.0',
      '1.2.0',
      'v2.0.0',
    ]);
  });

  it('include and exclude together', () => {
    assert.deepEqual(names(AVAILABLE, { include: ['^v?\\d'], exclude: ['-rc'] }), [
      '1.0.0',
      '1.1.0',
      '1.2.0',
      'v2.0.0',
    ]);
  });

  it('semver accepts tags with and without a v prefix and leaves out non-versions', () => {
    assert.deepEqual(names(AVAILABLE, { semver: '>=1.1.0' }), ['1.1.0', '1.2.0', 'v2.0.0']);
    assert.deepEqual(names(['v1.0.0', 'v1.5.0', 'v2.0.0', 'main'], { semver: '^1' }), ['v1.0.0', 'v1.5.0']);
  });

  it('semver leaves out pre-releases unless the range names one on the same version', () => {
    assert.deepEqual(names(AVAILABLE, { semver: '>=1.0.0' }), ['1.0.0', '1.1.0', '1.2.0', 'v2.0.0']);
    // npm semantics: 1.2.0-rc.0 in the range lets in 1.2.0 pre-releases, not 2.1.0-rc.1.
    assert.deepEqual(names(AVAILABLE, { semver: '>=1.2.0-rc.0' }), ['1.2.0-rc.1', '1.2.0', 'v2.0.0']);
  });

  it('includePrerelease lets semver select every pre-release in the range', () => {
    assert.deepEqual(names(AVAILABLE, { semver: '>=1.1.0', includePrerelease: true }), [
      '1.1.0',
      '1.2.0-rc.1',
      '1.2.0',
      'v2.0.0',
      '2.1.0-rc.1',
    ]);
  });

  it('latest keeps the newest N semver tags', () => {
    const tags = ['1.9.0', '1.10.0', '1.2.0', 'v1.11.0', '1.8.5'];
    assert.deepEqual(names(tags, { latest: 2 }), ['1.10.0', 'v1.11.0']);
    assert.deepEqual(names(tags, { latest: 10 }), ['1.2.0', '1.8.5', '1.9.0', '1.10.0', 'v1.11.0']);
  });

  it('latest orders non-semver tags as text, digit runs by value', () => {
    assert.deepEqual(names(['3.8', '3.9', '3.10', '3.11'], { latest: 2 }), ['3.10', '3.11']);
    assert.deepEqual(names(['nightly-20240101', 'nightly-20231231', 'nightly-20240215'], { latest: 1 }), [
      'nightly-20240215',
    ]);
  });

  it('latest in a mixed set prefers versions and fills up with other tags only when short', () => {
    const mixed = ['latest', 'edge', '1.4.2', '1.5.0', 'stable'];
    assert.deepEqual(names(mixed, { latest: 2 }), ['1.4.2', '1.5.0']);
    assert.deepEqual(names(mixed, { latest: 3 }), ['stable', '1.4.2', '1.5.0']);
  });

  it('latest counts pre-releases as versions when no range filters them', () => {
    assert.deepEqual(names(AVAILABLE, { latest: 1 }), ['2.1.0-rc.1']);
    assert.deepEqual(names(AVAILABLE, { exclude: ['-rc'], latest: 1 }), ['v2.0.0']);
  });

  it('semver + exclude + latest: latest applies after the filters', () => {
    const tags = [
      '14.3.0',
      '15.0.0',
      '15.0.1-rc.1',
      '15.0.1',
      '15.1.0',
      '15.1.0-fips',
      'v15.2.0',
      '15.3.0-rc.1',
      '15.3.0',
      '16.0.0',
      'latest',
    ];
    const rules: TagRules = {
      semver: '>=15.0.0 <16',
      includePrerelease: true,
      exclude: ['-rc'],
      latest: 3,
    };
    // The fips build survives (-fips is not excluded), rc builds do not, 16 is outside the range.
    assert.deepEqual(names(tags, rules), ['15.1.0', 'v15.2.0', '15.3.0']);
    assert.deepEqual(names(tags, { ...rules, latest: 4 }), ['15.1.0-fips', '15.1.0', 'v15.2.0', '15.3.0']);
  });

  it('explicit tags are added to the filtered ones and do not count towards latest', () => {
    const selected: SelectedTag[] = selectTags(AVAILABLE, {
      semver: '^1',
      latest: 1,
      list: ['latest', '0.0.1'],
    });
    assert.deepEqual(selected, [{ tag: 'latest' }, { tag: '0.0.1', missing: true }, { tag: '1.2.0' }]);
  });

  it('explicit tags are kept even when a filter would drop them', () => {
    assert.deepEqual(names(AVAILABLE, { exclude: ['-rc'], list: ['1.2.0-rc.1'] }), [
      'edge',
      'latest',
      'sha-abc123',
      '1.0.0',
      '1.1.0',
      '1.2.0-rc.1',
      '1.2.0',
      'v2.0.0',
    ]);
  });

  it('returns nothing when the filters match nothing and no tag is explicit', () => {
    assert.deepEqual(selectTags(AVAILABLE, { semver: '>=9' }), []);
    assert.deepEqual(selectTags([], { latest: 3 }), []);
  });

  it('is deterministic whatever the order of the input', () => {
    const shuffled = [...AVAILABLE].reverse();
    assert.deepEqual(
      selectTags(shuffled, { exclude: ['-rc'], latest: 4 }),
      selectTags(AVAILABLE, { exclude: ['-rc'], latest: 4 }),
    );
  });
});
