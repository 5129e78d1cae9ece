// The registry client's referrers request against small scripted registries (what a real one in this
// test world cannot show: pages of a referrers list, the filter header, a Link to another host, the
// kinds of "not supported"), and how it learns a registry's mode once.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { RegistryError } from '../../src/errors.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/registry/client.js';

const SUBJECT = `sha256:${'5'.repeat(64)}`;
const desc = (n: number, artifactType: string) => ({
  mediaType: OCI_MANIFEST,
  digest: `sha256:${String(n).padStart(64, '0')}`,
  size: n,
  artifactType,
});

type Handler = (req: IncomingMessage, url: URL, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; host: string; log: string[] }> {
  const log: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    log.push(`${req.method} ${url.pathname}${url.search}`);
    req.resume();
    req.on('end', () => handler(req, url, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, log };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(text.length),
    ...headers,
  });
  res.end(text);
};
const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });

let withApi: Awaited<ReturnType<typeof serve>>;
let withoutApi: Awaited<ReturnType<typeof serve>>;
let elsewhere: Awaited<ReturnType<typeof serve>>;

before(async () => {
  elsewhere = await serve((_req, url, res) => {
    // A storage host that a referrers GET was redirected to, linking on to a page of its own.
    if (url.pathname === `/v2/redirected/referrers/${SUBJECT}` && !url.searchParams.has('page')) {
      json(res, 200, index([desc(1, 'a/b')]), { link: `<${url.pathname}?page=1>; rel="next"` });
      return;
    }
    json(res, 200, index([]));
  });
  withApi = await serve((req, url, res) => {
    if (url.pathname === `/v2/app/referrers/${SUBJECT}`) {
      const filtered: Record<string, string> = url.searchParams.has('artifactType')
        ? { 'oci-filters-applied': 'artifactType' }
        : {};
      if (url.searchParams.get('page') === '1') {
        json(res, 200, index([desc(3, 'application/vnd.c')]), filtered);
        return;
      }
      const next = new URLSearchParams(url.searchParams);
      next.set('page', '1');
      // Page 1 carries the filter header, page 0 does not: the answer is not known to be filtered.
      json(res, 200, index([desc(1, 'application/vnd.a'), desc(2, 'application/vnd.b')]), {
        link: `<${url.pathname}?${next}>; rel="next"`,
      });
      return;
    }
    if (url.pathname === `/v2/evil/referrers/${SUBJECT}`) {
      json(res, 200, index([desc(1, 'a/b')]), {
        link: `<http://${elsewhere.host}/v2/evil/referrers/${SUBJECT}?page=1>; rel="next"`,
      });
      return;
    }
    if (url.pathname === `/v2/redirected/referrers/${SUBJECT}`) {
      res
        .writeHead(302, { location: `http://${elsewhere.host}${url.pathname}`, 'content-length': '0' })
        .end();
      return;
    }
    if (url.pathname === `/v2/missing/referrers/${SUBJECT}`) {
      json(res, 404, {
        errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
      });
      return;
    }
    if (req.method === 'PUT' && url.pathname.startsWith('/v2/app/manifests/')) {
      res.writeHead(201, { 'oci-subject': SUBJECT, 'content-length': '0' }).end();
      return;
    }
    json(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
  });
  withoutApi = await serve((_req, _url, res) => {
    // What distribution 2.8 answers for a route it does not have.
    res
      .writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'content-length': '19' })
      .end('404 page not found\n');
  });
});
after(async () => {
  for (const s of [withApi, withoutApi, elsewhere]) {
    await new Promise<void>((r) => {
      s.server.close(() => r());
      s.server.closeAllConnections();
    });
  }
});

function client(): RegistryClient {
  return new RegistryClient({
    profiles: buildProfiles({ flags: { hostConcurrency: 4 }, env: {} }),
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1000 },
  });
}

describe('RegistryClient.referrers', () => {
  it('follows every page; filtered only when every page says the registry applied the filter', async () => {
    const c = client();
    withApi.log.length = 0;
    const all = await c.referrers({ registry: withApi.host, path: 'app' }, SUBJECT);
    assert.deepEqual(all, {
      api: true,
      descriptors: [desc(1, 'application/vnd.a'), desc(2, 'application/vnd.b'), desc(3, 'application/vnd.c')],
      filtered: false,
    });
    const asked = await c.referrers({ registry: withApi.host, path: 'app' }, SUBJECT, 'application/vnd.a');
    assert.equal(asked.api === true && asked.filtered, false);
    assert.deepEqual(withApi.log, [
      `GET /v2/app/referrers/${SUBJECT}`,
      `GET /v2/app/referrers/${SUBJECT}?page=1`,
      `GET /v2/app/referrers/${SUBJECT}?artifactType=application%2Fvnd.a`,
      `GET /v2/app/referrers/${SUBJECT}?artifactType=application%2Fvnd.a&page=1`,
    ]);
    assert.equal(c.referrersApi(withApi.host), true);
    assert.equal(c.profile(withApi.host).referrers, 'api', 'kept in the registry profile');
    await c.close();
  });

  it('does not follow a Link to another host (our credentials stay with the registry)', async () => {
    const c = client();
    elsewhere.log.length = 0;
    await assert.rejects(c.referrers({ registry: withApi.host, path: 'evil' }, SUBJECT), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.match(err.message, new RegExp(`links to another host \\(${elsewhere.host}\\)`));
      return true;
    });
    assert.deepEqual(elsewhere.log, []);
    await c.close();
  });

  it("does not follow a Link on the host a redirect led to: the registry's origin decides, not where it sent us", async () => {
    const c = client();
    elsewhere.log.length = 0;
    await assert.rejects(
      c.referrers({ registry: withApi.host, path: 'redirected' }, SUBJECT),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.match(err.message, new RegExp(`links to another host \\(${elsewhere.host}\\)`));
        return true;
      },
    );
    assert.deepEqual(
      elsewhere.log,
      [`GET /v2/redirected/referrers/${SUBJECT}`],
      'only the redirect was followed',
    );
    await c.close();
  });

  it('learns "no API" from a 404 once per registry: concurrent first requests wait, later ones ask nothing', async () => {
    const c = client();
    withoutApi.log.length = 0;
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map(() => c.referrers({ registry: withoutApi.host, path: 'app' }, SUBJECT)),
    );
    assert.deepEqual(answers, Array(5).fill({ api: false }));
    assert.equal(
      await c.referrers({ registry: withoutApi.host, path: 'other' }, SUBJECT).then((a) => a.api),
      false,
    );
    assert.deepEqual(withoutApi.log, [`GET /v2/app/referrers/${SUBJECT}`]);
    assert.equal(c.referrersApi(withoutApi.host), false);
    assert.equal(c.profile(withoutApi.host).referrers, 'tag-schema');
    await c.close();
  });

  it('decides nothing from NAME_UNKNOWN (no repository yet); learns the API from OCI-Subject on a PUT', async () => {
    const c = client();
    const repo = { registry: withApi.host, path: 'missing' };
    assert.deepEqual(await c.referrers(repo, SUBJECT), { api: undefined });
    assert.equal(c.referrersApi(withApi.host), undefined);
    await c
      .manifestPut({ registry: withApi.host, path: 'app' }, 'v1', Buffer.from('{}'), OCI_MANIFEST)
      .catch(() => {});
    assert.equal(c.referrersApi(withApi.host), true);
    await c.close();
  });
});
