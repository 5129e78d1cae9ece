// Pure helpers of the registry client and the CLI: challenge parsing, Link pagination, Retry-After and
// backoff, loopback detection and URL redaction, size parsing, copy's exit codes and target resolution.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitCodeFor, resolveTargets } from '../../src/cli/commands/copy.js';
import { parseSize } from '../../src/cli/format.js';
import type { ImageResult, TargetResult } from '../../src/copy/result.js';
import { InvalidReferenceError, UsageError } from '../../src/errors.js';
import { parseReference } from '../../src/reference/reference.js';
import { parseChallenges, repositoryScope, scopesCover } from '../../src/registry/auth.js';
import { nextLink } from '../../src/registry/client.js';
import { parseRetryAfter, type RetryPolicy, retryDelay } from '../../src/registry/retry.js';
import { isLoopbackHost, redactUrl } from '../../src/registry/transport.js';

describe('parseChallenges', () => {
  it('returns nothing for a missing or empty header', () => {
    assert.deepEqual(parseChallenges(undefined), []);
    assert.deepEqual(parseChallenges(''), []);
  });

  it('parses a Docker Hub style Bearer challenge', () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"';
    assert.deepEqual(parseChallenges(header), [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/ubuntu:pull',
        },
      },
    ]);
  });

  it('keeps host:port and commas inside a quoted scope', () => {
    const header =
      'Bearer realm="http://127.0.0.1:5001/auth",service="127.0.0.1:5000",scope="repository:localhost:5000/team/app:pull,push"';
    const [c] = parseChallenges(header);
    assert.equal(c?.params.scope, 'repository:localhost:5000/team/app:pull,push');
    assert.equal(c?.params.service, '127.0.0.1:5000');
    assert.equal(c?.params.realm, 'http://127.0.0.1:5001/auth');
  });

  it('parses a Basic challenge, quoted or not', () => {
    assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm=Registry'), [
      { scheme: 'basic', params: { realm: 'Registry' } },
    ]);
  });

  it('lower-cases scheme and parameter names but not values', () => {
    assert.deepEqual(parseChallenges('BEARER Realm="https://A.example/Token"'), [
      { scheme: 'bearer', params: { realm: 'https://A.example/Token' } },
    ]);
  });

  it('splits several challenges in one header', () => {
    const header = 'Bearer realm="https://auth.example/token",service="reg", Basic realm="fallback"';
    assert.deepEqual(parseChallenges(header), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'reg' } },
      { scheme: 'basic', params: { realm: 'fallback' } },
    ]);
  });

  it('does not start a new challenge on a scheme name inside a quoted value', () => {
    assert.deepEqual(parseChallenges('Bearer realm="a, Basic realm=b"'), [
      { scheme: 'bearer', params: { realm: 'a, Basic realm=b' } },
    ]);
  });

  it('unescapes quoted-pair characters', () => {
    const [c] = parseChallenges('Basic realm="say \\"hi\\" \\\\ there"');
    assert.equal(c?.params.realm, 'say "hi" \\ there');
  });

  it('keeps error="insufficient_scope" and tolerates spaces around = and ,', () => {
    const header =
      'Bearer realm = "https://auth.example/token" , scope="repository:a:pull,push",error="insufficient_scope"';
    assert.deepEqual(parseChallenges(header), [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          scope: 'repository:a:pull,push',
          error: 'insufficient_scope',
        },
      },
    ]);
  });

  it('builds repository scopes', () => {
    assert.equal(repositoryScope('org/app', 'pull,push'), 'repository:org/app:pull,push');
  });
});

describe('scopesCover', () => {
  it('lets a pull,push token serve a pull, never the other way round, per repository', () => {
    assert.equal(scopesCover(['repository:a/b:pull,push'], 'repository:a/b:pull'), true);
    assert.equal(scopesCover(['repository:a/b:push,pull'], 'repository:a/b:pull,push'), true);
    assert.equal(scopesCover(['repository:a/b:pull'], 'repository:a/b:pull,push'), false);
    assert.equal(scopesCover(['repository:a/b:pull,push'], 'repository:a/c:pull'), false);
    assert.equal(scopesCover(['repository:a/b:pull,push'], 'repository:a/b/c:pull'), false);
    // Names may hold host:port: the actions are after the last colon.
    assert.equal(scopesCover(['repository:r:5000/x:pull,push'], 'repository:r:5000/x:pull'), true);
    assert.equal(scopesCover(['repository:r:5000/x:pull,push'], 'repository:r:5001/x:pull'), false);
  });
});

describe('nextLink', () => {
  const base = new URL('https://registry.example:5000/v2/org/app/tags/list?n=2');

  it('resolves a relative link against the response URL', () => {
    const next = nextLink('</v2/org/app/tags/list?n=2&last=b>; rel="next"', base);
    assert.equal(next?.href, 'https://registry.example:5000/v2/org/app/tags/list?n=2&last=b');
  });

  it('keeps an absolute link on another host', () => {
    const next = nextLink('<https://cdn.example/v2/org/app/tags/list?last=b&n=2>; rel="next"', base);
    assert.equal(next?.href, 'https://cdn.example/v2/org/app/tags/list?last=b&n=2');
  });

  it('accepts rel=next without quotes', () => {
    assert.equal(nextLink('</x?last=c>; rel=next', base)?.href, 'https://registry.example:5000/x?last=c');
  });

  it('picks the rel="next" link among other links', () => {
    const header = '</v2/org/app/tags/list?last=a>; rel="prev", </v2/org/app/tags/list?last=c>; rel="next"';
    assert.equal(nextLink(header, base)?.searchParams.get('last'), 'c');
  });

  it('returns undefined without a next link', () => {
    assert.equal(nextLink(undefined, base), undefined);
    assert.equal(nextLink('', base), undefined);
    assert.equal(nextLink('</x?last=a>; rel="prev"', base), undefined);
  });

  it('matches the rel type "next" as a whole token of a space-separated list (RFC 8288)', () => {
    assert.equal(nextLink('</x?last=c>; rel="prev next"', base)?.searchParams.get('last'), 'c');
    assert.equal(nextLink('</x?last=a>; rel="nextpage"', base), undefined);
  });
});

describe('Retry-After and backoff', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  const policy: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 5_000, maxElapsedMs: 60_000 };

  it('reads delta seconds', () => {
    assert.equal(parseRetryAfter('0', now), 0);
    assert.equal(parseRetryAfter('7', now), 7_000);
    assert.equal(parseRetryAfter(' 3 ', now), 3_000);
  });

  it('reads an HTTP date relative to now, never negative', () => {
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now), 0);
  });

  it('returns undefined for a missing or unreadable value', () => {
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('', now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('5s', now), undefined);
  });

  it('does not read garbage that the lenient Date.parse accepts as "retry now"', () => {
    assert.equal(parseRetryAfter('-1', now), undefined);
    assert.equal(parseRetryAfter('1.5', now), undefined);
    assert.equal(parseRetryAfter('1 2', now), undefined);
  });

  it('honours Retry-After seconds, capped at maxDelayMs', () => {
    assert.equal(
      retryDelay(policy, 1, '2', () => 0.5),
      2_000,
    );
    assert.equal(
      retryDelay(policy, 1, '3600', () => 0.5),
      5_000,
    );
  });

  it('uses exponential backoff with jitter between half the step and the full step', () => {
    // attempt n: step = base * 2^(n-1); delay in [step/2, step].
    assert.equal(
      retryDelay(policy, 1, undefined, () => 0),
      50,
    );
    assert.equal(
      retryDelay(policy, 1, undefined, () => 0.999999),
      100,
    );
    assert.equal(
      retryDelay(policy, 3, undefined, () => 0),
      200,
    );
    assert.equal(
      retryDelay(policy, 3, undefined, () => 0.5),
      300,
    );
    assert.equal(
      retryDelay(policy, 4, undefined, () => 1),
      800,
    );
  });

  it('caps the backoff step at maxDelayMs, even for a huge attempt number', () => {
    assert.equal(
      retryDelay(policy, 30, undefined, () => 0),
      2_500,
    );
    assert.equal(
      retryDelay(policy, 30, undefined, () => 1),
      5_000,
    );
    assert.equal(
      retryDelay(policy, 5_000, undefined, () => 1),
      5_000,
    );
  });

  it('stays within bounds for many random draws', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      for (const r of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]) {
        const d = retryDelay(policy, attempt, undefined, () => r);
        assert.ok(d >= step / 2 && d <= step, `attempt ${attempt}, random ${r}: ${d}`);
      }
    }
  });

  it('falls back to backoff when Retry-After is unreadable', () => {
    assert.equal(
      retryDelay(policy, 2, 'whenever', () => 0),
      100,
    );
  });
});

describe('isLoopbackHost', () => {
  it('recognises localhost, 127.0.0.0/8 and [::1], with or without a port', () => {
    for (const host of [
      'localhost',
      'localhost:5000',
      '127.0.0.1',
      '127.0.0.1:5000',
      '127.8.9.10',
      '[::1]',
      '[::1]:5000',
    ]) {
      assert.equal(isLoopbackHost(host), true, host);
    }
  });

  it('does not treat other hosts as loopback', () => {
    for (const host of [
      '10.0.0.1:5000',
      'localhost.example.com',
      'mylocalhost',
      '128.0.0.1',
      '[::2]:5000',
      'quay.io',
    ]) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });

  it('accepts what URL.host gives for an IPv6 loopback', () => {
    assert.equal(isLoopbackHost(new URL('http://[::1]:5000/v2/').host), true);
  });
});

describe('redactUrl', () => {
  it('redacts signatures, credentials and tokens in the query, keeps the rest', () => {
    const url = new URL(
      'https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA&X-Amz-Signature=abc&X-Amz-Security-Token=tok&X-Amz-Expires=900&digest=sha256:1',
    );
    const out = new URL(redactUrl(url));
    assert.equal(out.searchParams.get('X-Amz-Credential'), 'REDACTED');
    assert.equal(out.searchParams.get('X-Amz-Signature'), 'REDACTED');
    assert.equal(out.searchParams.get('X-Amz-Security-Token'), 'REDACTED');
    assert.equal(out.searchParams.get('X-Amz-Algorithm'), 'AWS4');
    assert.equal(out.searchParams.get('X-Amz-Expires'), '900');
    assert.equal(out.searchParams.get('digest'), 'sha256:1');
    assert.equal(out.pathname, '/blob');
  });

  it('redacts CloudFront and Azure style parameters', () => {
    const out = new URL(
      redactUrl(new URL('https://cdn.example/x?Policy=p&Key-Pair-Id=k&Signature=s&sig=z&se=2030')),
    );
    for (const key of ['Policy', 'Key-Pair-Id', 'Signature', 'sig'])
      assert.equal(out.searchParams.get(key), 'REDACTED', key);
    assert.equal(out.searchParams.get('se'), '2030');
  });

  it('removes user info', () => {
    const text = redactUrl(new URL('https://user:secret@registry.example/v2/'));
    assert.equal(text.includes('secret'), false);
    assert.equal(text.includes('user'), false);
    assert.equal(text, 'https://registry.example/v2/');
  });

  it('does not modify the URL it is given', () => {
    const url = new URL('https://h/x?token=abc');
    redactUrl(url);
    assert.equal(url.searchParams.get('token'), 'abc');
  });

  it('redacts the value of every query key it does not know to be harmless, whatever its name', () => {
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?hdnts=exp=1700000000~acl=/*~hmac=0123abcd')),
      'https://cdn.example/b?hdnts=REDACTED',
    );
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?jwt=eyJhbGciOiJIUzI1NiJ9.e30.c2ln&x=1')),
      'https://cdn.example/b?jwt=REDACTED&x=REDACTED',
    );
  });

  it('redacts a bare token, a key that is no plain name, and parameters after a ";"', () => {
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl')),
      'https://cdn.example/b?REDACTED',
    );
    assert.equal(redactUrl(new URL('https://cdn.example/b?abc123')), 'https://cdn.example/b?REDACTED');
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?%74oken=s3cret&a.b=c')),
      'https://cdn.example/b?REDACTED&REDACTED',
    );
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?p=1;token=s3cret')),
      'https://cdn.example/b?p=REDACTED;token=REDACTED',
    );
    assert.equal(
      redactUrl(new URL('https://r.example/v2/a/tags/list?n=10;token=s3cret')),
      'https://r.example/v2/a/tags/list?n=10;token=REDACTED',
    );
  });

  it('drops the fragment', () => {
    assert.equal(
      redactUrl(new URL('https://cdn.example/b?n=1#access_token=s3cret')),
      'https://cdn.example/b?n=1',
    );
    assert.equal(redactUrl(new URL('https://cdn.example/b#s3cret')), 'https://cdn.example/b');
  });

  it('keeps what a --debug trace of registry traffic needs: pages, mounts, digests, scopes', () => {
    for (const url of [
      'https://r.example/v2/a/tags/list?n=1000&last=v1.2',
      'https://r.example/v2/a/blobs/uploads/?mount=sha256:abc&from=b/c',
      'https://r.example/v2/a/blobs/uploads/u1?digest=sha256:abc',
      'https://r.example/v2/a/referrers/sha256:abc?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson',
      'https://auth.example/token?service=r.example&scope=repository:a:pull,push&scope=repository:b:pull',
    ]) {
      assert.equal(redactUrl(new URL(url)), url);
    }
  });
});

describe('parseSize', () => {
  it('reads binary and decimal units, case-insensitively', () => {
    assert.equal(parseSize('8MiB', 'x'), 8 * 1024 * 1024);
    assert.equal(parseSize('5MB', 'x'), 5_000_000);
    assert.equal(parseSize('16mb', 'x'), 16_000_000);
    assert.equal(parseSize('1KiB', 'x'), 1024);
    assert.equal(parseSize('2kb', 'x'), 2000);
    assert.equal(parseSize('1GiB', 'x'), 1024 ** 3);
    assert.equal(parseSize('1GB', 'x'), 1e9);
  });

  it('reads a bare unit letter as binary, plain numbers and B as bytes', () => {
    assert.equal(parseSize('5M', 'x'), 5 * 1024 * 1024);
    assert.equal(parseSize('1048576', 'x'), 1_048_576);
    assert.equal(parseSize('100B', 'x'), 100);
  });

  it('accepts fractions and surrounding spaces', () => {
    assert.equal(parseSize('1.5KiB', 'x'), 1536);
    assert.equal(parseSize(' 2 MiB ', 'x'), 2 * 1024 * 1024);
  });

  it('rejects what is not a size, naming the option', () => {
    for (const text of ['', 'abc', '-1', '5TB', '1e6', 'MiB', '5 M B']) {
      assert.throws(
        () => parseSize(text, '--chunk-size'),
        (err: unknown) =>
          err instanceof UsageError && err.message.startsWith('--chunk-size: ') && err.exitCode === 2,
        text,
      );
    }
  });

  it('rejects zero', () => {
    assert.throws(() => parseSize('0', '--chunk-size'), /at least 1 byte/);
    assert.throws(() => parseSize('0MiB', '--chunk-size'), /at least 1 byte/);
  });
});

describe('copy command: resolveTargets', () => {
  it('gives a target without a tag the source tag', () => {
    const src = parseReference('quay.io/org/app:1.2');
    assert.deepEqual(resolveTargets(src, ['ghcr.io/org/app', 'localhost:5000/app']), [
      { registry: 'ghcr.io', path: 'org/app', tag: '1.2' },
      { registry: 'localhost:5000', path: 'app', tag: '1.2' },
    ]);
  });

  it('keeps a target tag, and does not add "latest" to a bare target', () => {
    const src = parseReference('quay.io/org/app:1.2');
    assert.deepEqual(resolveTargets(src, ['ghcr.io/org/app:stable']), [
      { registry: 'ghcr.io', path: 'org/app', tag: 'stable' },
    ]);
    assert.equal(resolveTargets(parseReference('quay.io/a'), ['ghcr.io/a'])[0]?.tag, 'latest');
  });

  it('gives a target the source digest when the source has no tag', () => {
    const digest = `sha256:${'d'.repeat(64)}`;
    const src = parseReference(`quay.io/org/app@${digest}`);
    assert.deepEqual(resolveTargets(src, ['ghcr.io/org/app']), [
      { registry: 'ghcr.io', path: 'org/app', digest },
    ]);
  });

  it('refuses a target that names a digest', () => {
    const src = parseReference('quay.io/org/app:1');
    assert.throws(
      () => resolveTargets(src, [`ghcr.io/org/app@sha256:${'d'.repeat(64)}`]),
      (err: unknown) => err instanceof UsageError && /names a digest/.test(err.message),
    );
  });

  it('refuses an invalid target with an exit-2 reference error naming the argument', () => {
    const src = parseReference('quay.io/org/app:1');
    assert.throws(
      () => resolveTargets(src, ['ghcr.io/Org/App']),
      (err: unknown) =>
        err instanceof InvalidReferenceError && err.exitCode === 2 && err.message.startsWith('target: '),
    );
  });
});

describe('copy command: exitCodeFor', () => {
  const target = (status: TargetResult['status'], extra: Partial<TargetResult> = {}): TargetResult => ({
    target: 'reg.example/app:1',
    status,
    blobsUploaded: 0,
    blobsMounted: 0,
    blobsExisting: 0,
    bytesUploaded: 0,
    bytesMounted: 0,
    manifestsPushed: 0,
    referrersCopied: 0,
    ...extra,
  });
  const image = (targets: TargetResult[], extra: Partial<ImageResult> = {}): ImageResult => ({
    source: 'src.example/app:1',
    targets,
    durationMs: 1,
    ...extra,
  });

  it('is 0 when every target is copied or up to date', () => {
    assert.equal(exitCodeFor([image([target('copied'), target('up-to-date')])]), 0);
    assert.equal(exitCodeFor([]), 0);
  });

  it('is 1 when some targets failed and others were done', () => {
    const failed = target('failed', { error: 'denied', errorKind: 'permission' });
    assert.equal(exitCodeFor([image([target('copied'), failed])]), 1);
  });

  it('is 2 when nothing was done and every failure is a setup failure (auth, permission, usage)', () => {
    const auth = target('failed', { error: 'no', errorKind: 'auth' });
    const perm = target('failed', { error: 'no', errorKind: 'permission' });
    assert.equal(exitCodeFor([image([auth, perm])]), 2);
  });

  it('is 2 when the source could not be read for an auth reason', () => {
    const r = image([target('failed', { errorKind: 'auth' })], { error: 'auth failed', errorKind: 'auth' });
    assert.equal(exitCodeFor([r]), 2);
  });

  it('is 1 when nothing was done but a failure is not a setup failure', () => {
    const auth = target('failed', { errorKind: 'auth' });
    const net = target('failed', { errorKind: 'network' });
    assert.equal(exitCodeFor([image([auth, net])]), 1);
    const mismatch = target('failed', { errorKind: 'digest-mismatch' });
    assert.equal(exitCodeFor([image([mismatch])]), 1);
  });

  it('is 1 when the image has an error even though no target is marked failed', () => {
    assert.equal(exitCodeFor([image([], { error: 'source gone', errorKind: 'not-found' })]), 1);
  });
});
