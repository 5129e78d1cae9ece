// The pure parts of issue 10's rules: the credential rule (trust.ts) and the transport that asks it for
// every hop, URLs from typed parts, the sanitiser, --debug redaction, the limits and their config, and
// durations. The hostile-registry suite (test/integration/hostile.test.ts) runs the same rules end to
// end against scripted attacker registries.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { markdownCell } from '../../src/cli/commands/check.js';
import { formatDuration } from '../../src/cli/format.js';
import { buildProfiles, formatWarning } from '../../src/cli/runtime.js';
import { limitsSchema, parseDurationText } from '../../src/config/limits-schema.js';
import { resolveConfig } from '../../src/config/resolve.js';
import { configSchema } from '../../src/config/schema.js';
import {
  AuthError,
  InvalidReferenceError,
  isTransient,
  TimeoutError,
  UntrustedError,
} from '../../src/errors.js';
import {
  apiUrl,
  blobPath,
  manifestPath,
  referrersPath,
  tagsPath,
  uploadsPath,
} from '../../src/registry/api-url.js';
import { DEFAULT_LIMITS, deadlineFor, descriptorProblem, mergeLimits } from '../../src/registry/limits.js';
import { redactUrl, Transport } from '../../src/registry/transport.js';
import { checkRealm, checkUploadLocation, mayAdoptChallenge, mayCarry } from '../../src/registry/trust.js';
import { hasControls, registryText, sanitize } from '../../src/sanitize.js';

describe('the credential rule (trust.ts)', () => {
  const registry = new URL('https://registry.example:5000').origin;

  it('lets credentials go to the registry origin only: same scheme, host and port', () => {
    assert.equal(mayCarry(new URL('https://registry.example:5000/v2/a/blobs/x'), registry), true);
    assert.equal(mayCarry(new URL('https://REGISTRY.example:5000/v2/'), registry), true);
    for (const other of [
      'https://registry.example:5001/v2/',
      'http://registry.example:5000/v2/',
      'https://storage.example/blob',
      'https://registry.example/v2/',
      'https://registry.example.evil:5000/v2/',
    ]) {
      assert.equal(mayCarry(new URL(other), registry), false, other);
    }
  });

  it('treats the default port as the same origin', () => {
    assert.equal(mayCarry(new URL('https://quay.io:443/v2/'), new URL('https://quay.io').origin), true);
  });

  it('never carries credentials to a non-http URL', () => {
    assert.equal(mayCarry(new URL('file:///etc/passwd'), 'null'), false);
    assert.equal(mayCarry(new URL('data:text/plain,x'), 'null'), false);
  });

  it('adopts a challenge only from the registry origin', () => {
    assert.equal(mayAdoptChallenge(new URL('https://registry.example:5000/v2/x'), registry), true);
    assert.equal(mayAdoptChallenge(new URL('https://storage.example/blob'), registry), false);
  });

  it('accepts a realm on HTTPS anywhere, refuses plain HTTP from an HTTPS registry, and odd schemes', () => {
    const https = new URL('https://registry.example');
    assert.equal(checkRealm('https://auth.example/token', https, {}).href, 'https://auth.example/token');
    assert.throws(
      () => checkRealm('http://auth.example/token', https, {}),
      (e: unknown) => {
        return e instanceof AuthError && /refuses to send credentials there in clear text/.test(e.message);
      },
    );
    assert.throws(() => checkRealm('file:///token', https, {}), AuthError);
    assert.throws(() => checkRealm('not a url', https, {}), AuthError);
    assert.throws(() => checkRealm(undefined, https, {}), /without a realm/);
    // A plain-HTTP registry (loopback, or configured so) may name a plain-HTTP realm.
    const http = new URL('http://127.0.0.1:5000');
    assert.equal(checkRealm('http://127.0.0.1:5001/token', http, {}).port, '5001');
  });

  it('keeps an upload session on the registry origin, relative or absolute', () => {
    const answered = new URL('https://registry.example:5000/v2/a/blobs/uploads/');
    assert.equal(
      checkUploadLocation('/v2/a/blobs/uploads/1?_state=x', answered, registry, {}).href,
      'https://registry.example:5000/v2/a/blobs/uploads/1?_state=x',
    );
    assert.equal(
      checkUploadLocation('https://registry.example:5000/v2/a/blobs/uploads/2', answered, registry, {})
        .pathname,
      '/v2/a/blobs/uploads/2',
    );
    for (const elsewhere of [
      'https://storage.example/upload/1',
      'http://registry.example:5000/v2/a/blobs/uploads/1',
      'https://registry.example:6000/v2/a/blobs/uploads/1',
      '//evil.example/v2/a/blobs/uploads/1',
      'file:///tmp/x',
    ]) {
      assert.throws(
        () => checkUploadLocation(elsewhere, answered, registry, {}),
        (e: unknown) => e instanceof UntrustedError && !isTransient(e),
        elsewhere,
      );
    }
  });

  it('prints only what precedes the query of a Location or realm that is not a URL: no signature, no token', () => {
    const answered = new URL('https://registry.example:5000/v2/a/blobs/uploads/');
    assert.throws(
      () => checkUploadLocation(SIGNED_BAD_PORT, answered, registry, {}),
      (e: unknown) =>
        e instanceof UntrustedError &&
        e.message ===
          'the upload Location "https://bucket.s3.example:99999/b" (the rest not shown) is not a URL' &&
        !/SIGSECRET|STSSECRET/.test(e.message),
    );
    assert.throws(
      () => checkUploadLocation('https://user:pw@h:99999/u#frag-secret', answered, registry, {}),
      (e: unknown) =>
        e instanceof UntrustedError &&
        e.message === 'the upload Location "https://h:99999/u" (the rest not shown) is not a URL',
    );
    assert.throws(
      () => checkRealm(SIGNED_BAD_PORT, new URL('https://registry.example'), {}),
      (e: unknown) =>
        e instanceof AuthError &&
        /invalid token realm "https:\/\/bucket\.s3\.example:99999\/b" \(the rest not shown\)$/.test(
          e.message,
        ),
    );
  });
});

/** A signed storage URL whose port is out of range: `new URL` throws on it. */
const SIGNED_BAD_PORT =
  'https://bucket.s3.example:99999/b?X-Amz-Signature=SIGSECRET&X-Amz-Security-Token=STSSECRET';

describe('the transport asks the rule for every hop', () => {
  // Two origins on loopback: 127.0.0.1 redirects, 127.0.0.2 is "storage".
  let registry: Server;
  let storage: Server;
  let registryUrl: string;
  let storageUrl: string;
  const seen: Array<{ at: string; path: string; authorization?: string }> = [];
  const note = (at: string, req: IncomingMessage) =>
    seen.push({
      at,
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });

  before(async () => {
    storage = createServer((req, res) => {
      note('storage', req);
      res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    registry = createServer((req, res) => {
      note('registry', req);
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/to-storage') res.writeHead(302, { location: `${storageUrl}/blob` }).end();
      else if (url.pathname === '/loop') res.writeHead(302, { location: '/loop' }).end();
      else if (url.pathname === '/file') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      else if (url.pathname === '/bad-port') res.writeHead(302, { location: SIGNED_BAD_PORT }).end();
      else if (url.pathname === '/slow') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('x');
        // ...and nothing more: the deadline must end it.
      } else res.writeHead(200, { 'content-length': '2' }).end('ok');
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => storage.listen(0, '127.0.0.2', r));
    registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
    storageUrl = `http://127.0.0.2:${(storage.address() as AddressInfo).port}`;
  });
  after(async () => {
    registry.closeAllConnections();
    storage.closeAllConnections();
    await Promise.all([new Promise((r) => registry.close(r)), new Promise((r) => storage.close(r))]);
  });

  const transport = () =>
    new Transport({
      settings: () => ({ tls: 'disabled', concurrency: 4 }),
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20, maxElapsedMs: 1000 },
    });

  it('attaches credentials on the registry origin and drops them on a redirect to another origin', async () => {
    seen.length = 0;
    const t = transport();
    const res = await t.send({
      method: 'GET',
      url: new URL(`${registryUrl}/to-storage`),
      credentials: { authorization: 'Basic c2VjcmV0', origin: new URL(registryUrl).origin },
    });
    await res.body.resume();
    await t.close();
    assert.deepEqual(
      seen.map((s) => [s.at, s.authorization]),
      [
        ['registry', 'Basic c2VjcmV0'],
        ['storage', undefined],
      ],
    );
  });

  it('refuses an Authorization header passed any other way', async () => {
    const t = transport();
    await assert.rejects(
      t.send({ method: 'GET', url: new URL(registryUrl), headers: { Authorization: 'Basic x' } }),
      /pass credentials as TransportRequest.credentials/,
    );
    await t.close();
  });

  it('calls a redirect loop and a file: redirect registry errors, without retrying', async () => {
    seen.length = 0;
    const t = transport();
    await assert.rejects(t.send({ method: 'GET', url: new URL(`${registryUrl}/loop`) }), (e: unknown) => {
      return e instanceof Error && e.name === 'RegistryError' && /redirect loop/.test(e.message);
    });
    await assert.rejects(
      t.send({ method: 'GET', url: new URL(`${registryUrl}/file`) }),
      /redirected to a file: URL \(file:\/\/\/etc\/passwd\); only http and https are followed/,
    );
    assert.equal(t.stats.retries, 0);
    assert.equal(seen.length, 2);
    await t.close();
  });

  it('prints only what precedes the query of a redirect that is not a URL: no signature, no token', async () => {
    const t = transport();
    await assert.rejects(
      t.send({ method: 'GET', url: new URL(`${registryUrl}/bad-port`) }),
      (e: unknown) =>
        e instanceof Error &&
        e.name === 'RegistryError' &&
        /redirected to something that is not a URL \("https:\/\/bucket\.s3\.example:99999\/b" \(the rest not shown\)\)$/.test(
          e.message,
        ) &&
        !/SIGSECRET|STSSECRET|X-Amz/.test(e.message),
    );
    await t.close();
  });

  it('ends a request whose body does not finish by its deadline, with a TimeoutError naming the setting', async () => {
    const t = transport();
    const started = Date.now();
    const res = await t.send({
      method: 'GET',
      url: new URL(`${registryUrl}/slow`),
      deadline: { ms: 300, what: 'the request', setting: 'limits.timeouts.manifest' },
    });
    await assert.rejects(
      (async () => {
        for await (const _ of res.body) {
          // read until the deadline cuts it
        }
      })(),
      (e: unknown) =>
        e instanceof TimeoutError &&
        /did not finish within 0\.3 s/.test(e.message) &&
        /limits\.timeouts\.manifest/.test(e.hint ?? '') &&
        !isTransient(e),
    );
    assert.ok(Date.now() - started < 5_000);
    await t.close();
  });
});

describe('URLs from typed parts (api-url.ts)', () => {
  const base = new URL('https://registry.example');
  const repo = { registry: 'registry.example', path: 'mirror/app' };

  it('builds the spec paths, digests with their colon', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(
      apiUrl(base, repo, manifestPath('v1.2')).href,
      'https://registry.example/v2/mirror/app/manifests/v1.2',
    );
    assert.equal(apiUrl(base, repo, blobPath(digest)).pathname, `/v2/mirror/app/blobs/${digest}`);
    assert.equal(
      apiUrl(base, repo, tagsPath(1000)).href,
      'https://registry.example/v2/mirror/app/tags/list?n=1000',
    );
    assert.equal(apiUrl(base, repo, uploadsPath()).pathname, '/v2/mirror/app/blobs/uploads/');
    const mount = apiUrl(base, repo, uploadsPath({ digest, from: 'other/app' }));
    assert.equal(mount.searchParams.get('mount'), digest);
    assert.equal(mount.searchParams.get('from'), 'other/app');
    const referrers = apiUrl(base, repo, referrersPath(digest, 'application/vnd.dev.sigstore.bundle+json'));
    assert.equal(referrers.pathname, `/v2/mirror/app/referrers/${digest}`);
    assert.equal(referrers.searchParams.get('artifactType'), 'application/vnd.dev.sigstore.bundle+json');
  });

  it('refuses a selector that is neither a tag nor a digest: it never becomes a path', () => {
    for (const bad of [
      'x/../../../victim/manifests/prod',
      '../victim',
      '..',
      'a b',
      'v1\u001b[2J',
      'a'.repeat(129),
    ]) {
      assert.throws(() => manifestPath(bad), InvalidReferenceError, bad);
    }
  });

  it('refuses a repository path outside the grammar and dot segments', () => {
    assert.throws(
      () => apiUrl(base, { registry: 'r', path: 'a/../b' }, manifestPath('v1')),
      InvalidReferenceError,
    );
    assert.throws(() => apiUrl(base, repo, { segments: ['..', 'x'] }), InvalidReferenceError);
    assert.throws(() => apiUrl(base, repo, { segments: ['', 'x'] }), InvalidReferenceError);
  });

  it('encodes what a segment must not carry', () => {
    const url = apiUrl(base, repo, { segments: ['x/y?z#w%'] });
    assert.equal(url.pathname, '/v2/mirror/app/x%2Fy%3Fz%23w%25');
  });
});

describe('the sanitiser', () => {
  it('escapes terminal controls, C1, DEL and bidirectional overrides', () => {
    assert.equal(sanitize('a\u001b[2Jb\rc\bd\u0007'), 'a\\u001b[2Jb\\rc\\bd\\u0007');
    assert.equal(sanitize('\u009b31m\u007f\u202etxt\u2028'), '\\u009b31m\\u007f\\u202etxt\\u2028');
    assert.equal(sanitize('plain text, ünïcödé ✓'), 'plain text, ünïcödé ✓');
    assert.equal(hasControls('x\u001by'), true);
    assert.equal(hasControls('x y'), false);
  });

  it('keeps our own newlines and tabs in "lines" mode, escapes them in "line" mode', () => {
    assert.equal(sanitize('a\n\tb\u001b', 'lines'), 'a\n\tb\\u001b');
    assert.equal(sanitize('a\n\tb', 'line'), 'a\\n\\tb');
  });

  it('leaves JSON valid and meaning the same', () => {
    const value = { message: 'x\u001b]0;t\u0007\u009b\u202e\u2028y', list: ['\u0085'] };
    const text = sanitize(JSON.stringify(value, null, 2), 'lines');
    assert.equal(hasControls(text.replace(/\n/g, '')), false);
    assert.deepEqual(JSON.parse(text), value);
  });

  it('cuts long registry text and puts it on one line', () => {
    assert.equal(registryText('a\nb'), 'a\\nb');
    assert.equal(registryText('x'.repeat(10), 4), 'xxxx…');
  });

  it('escapes Markdown that would render links, images or HTML in a CI summary', () => {
    assert.equal(
      markdownCell('![x](http://t/p) <img> | `c`'),
      '\\!\\[x\\](http://t/p) \\<img\\> \\| \\`c\\`',
    );
  });

  it('formats client warnings with their context', () => {
    assert.equal(
      formatWarning({
        context: { registry: 'r', repository: 'a/b', step: 'tag list' },
        message: 'skipped 1 tag',
      }),
      'warning: registry r, repository a/b, tag list: skipped 1 tag',
    );
  });
});

describe('--debug redaction', () => {
  it("redacts Docker Hub's verify= and ticket=, distribution's _state=, and signatures", () => {
    const out = new URL(
      redactUrl(
        new URL(
          'https://production.cloudflare.docker.com/registry-v2/x?verify=1700000000-abc&ticket=t1&_state=s2&digest=sha256:1&n=10',
        ),
      ),
    );
    for (const key of ['verify', 'ticket', '_state'])
      assert.equal(out.searchParams.get(key), 'REDACTED', key);
    assert.equal(out.searchParams.get('digest'), 'sha256:1');
    assert.equal(out.searchParams.get('n'), '10');
  });
});

describe('durations', () => {
  it('never print "1 min 60 s"', () => {
    assert.equal(formatDuration(119_600), '2 min 0 s');
    assert.equal(formatDuration(59_990), '1 min 0 s');
    assert.equal(formatDuration(59_940), '59.9 s');
    assert.equal(formatDuration(61_000), '1 min 1 s');
    assert.equal(formatDuration(3_725_000), '1 h 2 min');
    assert.equal(formatDuration(250), '250 ms');
  });
});

describe('limits', () => {
  it('scales a blob deadline by its size and the minimum throughput', () => {
    const limits = mergeLimits(DEFAULT_LIMITS, { timeouts: { blob: 10_000 }, minThroughput: 1024 * 1024 });
    assert.equal(deadlineFor(limits, 'blob', 'x', 5 * 1024 * 1024).ms, 15_000);
    assert.equal(deadlineFor(limits, 'manifest', 'x').ms, DEFAULT_LIMITS.timeouts.manifest);
    assert.equal(deadlineFor(limits, 'manifest', 'x').setting, 'limits.timeouts.manifest');
  });

  it('merges key by key, timeouts too', () => {
    const merged = mergeLimits(DEFAULT_LIMITS, { maxTags: 5, timeouts: { token: 1000 } });
    assert.equal(merged.maxTags, 5);
    assert.equal(merged.maxTagPages, DEFAULT_LIMITS.maxTagPages);
    assert.equal(merged.timeouts.token, 1000);
    assert.equal(merged.timeouts.manifest, DEFAULT_LIMITS.timeouts.manifest);
  });

  it('refuses descriptors absurd for their media type or above the ceiling', () => {
    const limits = DEFAULT_LIMITS;
    assert.match(
      descriptorProblem(
        { mediaType: 'application/vnd.oci.image.config.v1+json', size: 64 * 1024 * 1024 },
        limits,
      ) ?? '',
      /limits\.maxManifestSize .* for a config/,
    );
    assert.match(
      descriptorProblem(
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 17 * 1024 * 1024 },
        limits,
      ) ?? '',
      /for a manifest/,
    );
    assert.equal(
      descriptorProblem({ mediaType: 'application/vnd.oci.image.layer.v1.tar', size: 2 ** 33 }, limits),
      undefined,
    );
    assert.match(
      descriptorProblem({ mediaType: 'application/vnd.oci.image.layer.v1.tar', size: 2 ** 52 }, limits) ?? '',
      /limits\.maxBlobSize/,
    );
  });

  it('are read from the config: sizes, durations, counts; registries over defaults over built-ins', () => {
    const config = configSchema.parse({
      defaults: { limits: { maxTags: 500, timeouts: { manifest: '5s' } } },
      registries: {
        'quay.io': {
          limits: { maxBlobSize: '2GiB', timeouts: { blob: 90, idle: '1500ms' }, minThroughput: '1MiB' },
        },
      },
      mirrors: [{ source: 'quay.io/a/b', targets: ['ghcr.io/a/b'] }],
    });
    const profiles = buildProfiles({ flags: {}, config: resolveConfig(config, { baseDir: '/' }), env: {} });
    const quay = profiles.for('quay.io').limits;
    assert.equal(quay.maxTags, 500);
    assert.equal(quay.maxBlobSize, 2 * 1024 ** 3);
    assert.equal(quay.timeouts.manifest, 5_000);
    assert.equal(quay.timeouts.blob, 90_000);
    assert.equal(quay.timeouts.idle, 1_500);
    assert.equal(quay.minThroughput, 1024 * 1024);
    const ghcr = profiles.for('ghcr.io').limits;
    assert.equal(ghcr.maxTags, 500);
    assert.equal(ghcr.maxBlobSize, DEFAULT_LIMITS.maxBlobSize);
    assert.equal(profiles.for('docker.io').limits.timeouts.manifest, 5_000);
  });

  it('say what is wrong with a bad value', () => {
    const bad = limitsSchema.safeParse({ maxTags: 0, timeouts: { token: 'soon' }, maxManifestSize: '5GiB' });
    assert.equal(bad.success, false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    assert.match(messages, /timeouts\.token: "soon" is not a duration/);
    assert.match(messages, /maxManifestSize: "5GiB" is out of range/);
    assert.match(messages, /maxTags/);
    assert.equal(parseDurationText('90s'), 90_000);
    assert.equal(parseDurationText('2m'), 120_000);
    assert.equal(parseDurationText('90'), undefined);
  });
});
