import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ALICE, BOB, READER, startWorld, type World } from '../harness/fixture.js';
import {
  MediaType,
  ociArtifact,
  pushManifestTree,
  RegistryClient,
  RegistryHttpError,
  type SeededImage,
  seedImage,
  seedLargeBlobImage,
} from '../harness/seed.js';
import { skopeoInspectRaw, skopeoListTags } from '../harness/skopeo.js';
import { parseScope, startTokenServer } from '../harness/token-server.js';

// Proves the harness itself: real registries start, seeding is byte-exact as seen by skopeo, auth is
// enforced, the proxy counts and redirects. Everything runs on loopback.

describe('integration harness', { timeout: 120_000 }, () => {
  let world: World;
  let index: SeededImage;
  let list: SeededImage;

  before(async () => {
    world = await startWorld();
    index = await seedImage(world.source.seedTarget, 'team/app', 'v1', 'oci-index-with-attestations');
    list = await seedImage(world.source.seedTarget, 'team/legacy', '1.0', 'docker-manifest-list');
  });

  after(async () => {
    await world?.stop();
  });

  it('seeds an OCI index with attestations and a Docker manifest list that skopeo reads back byte for byte', async () => {
    const creds = world.source.skopeoCreds;
    assert.equal(index.children.length, 4);
    assert.equal(index.mediaType, MediaType.ociIndex);
    assert.equal(list.children.length, 2);
    assert.equal(list.mediaType, MediaType.dockerManifestList);

    for (const seeded of [index, list]) {
      const ref = `${world.source.host}/${seeded.repo}`;
      assert.deepEqual(await skopeoInspectRaw(`${ref}:${seeded.tag}`, { creds }), seeded.bytes);
      for (const child of seeded.children) {
        assert.deepEqual(await skopeoInspectRaw(`${ref}@${child.digest}`, { creds }), child.bytes);
      }
      assert.deepEqual(await skopeoListTags(ref, { creds }), [seeded.tag]);
    }

    const attestation = index.children[2];
    assert.equal(attestation?.descriptor.annotations?.['vnd.docker.reference.type'], 'attestation-manifest');
    assert.equal(
      attestation?.descriptor.annotations?.['vnd.docker.reference.digest'],
      index.children[0]?.digest,
    );
  });

  it('refuses anonymous access to the token registry', async () => {
    await assert.rejects(
      skopeoInspectRaw(`${world.source.host}/team/app:v1`),
      /unauthorized|authentication required/i,
    );
    const anonymous = new RegistryClient({ url: world.source.url });
    await assert.rejects(anonymous.getManifest('team/app', 'v1'), (err: unknown) => {
      assert.ok(err instanceof RegistryHttpError);
      assert.equal(err.status, 401);
      return true;
    });
  });

  it('lets the pull-only user read but not push', async () => {
    const reader = new RegistryClient({ url: world.source.url, ...READER });
    const got = await reader.getManifest('team/app', 'v1');
    assert.deepEqual(got.bytes, index.bytes);
    assert.equal(got.digest, index.digest);
    await assert.rejects(seedImage(reader, 'team/app', 'v2', 'oci-image'), /HTTP 401/);
  });

  it('counts requests at the proxy and token requests at the token server', () => {
    const proxy = world.source.proxy;
    const manifestsPushed = index.manifests.length + list.manifests.length;
    assert.equal(manifestsPushed, 5 + 3);
    assert.equal(proxy.count({ method: 'PUT', kind: 'manifest', status: 201 }), manifestsPushed);
    const blobsPushed = index.blobs.length + list.blobs.length;
    assert.equal(
      proxy.count({ method: 'PUT', kind: 'upload', status: 201, query: 'digest=sha256:' }),
      blobsPushed,
    );
    assert.ok(proxy.count({ kind: 'manifest', method: 'GET', status: 200 }) >= 1 + index.children.length);
    assert.ok(proxy.count({ status: 401 }) >= 1, 'the registry challenged at least once');
    assert.ok(proxy.requests.filter((r) => r.status === 201).every((r) => r.hasAuthorization));
    assert.ok(proxy.count({ repo: 'team/legacy' }) > 0);
    assert.ok(world.tokenServer.requests.some((r) => r.ok && r.user === ALICE.username));
  });

  it('redirects blob GETs to a storage host that never sees Authorization', async () => {
    const proxy = world.source.proxy;
    proxy.reset();
    proxy.settings.redirectBlobGets = true;
    try {
      const layer = index.children[0]?.blobs[1];
      assert.ok(layer);
      const client = new RegistryClient(world.source.seedTarget);
      assert.deepEqual(await client.getBlob('team/app', layer.digest), layer.bytes);
      assert.equal(proxy.count({ method: 'GET', kind: 'blob', status: 307 }), 1);
      assert.equal(proxy.storageRequests.length, 1);
      assert.equal(proxy.storageRequests[0]?.hasAuthorization, false);

      // A client that forwards its registry token to the storage host is refused, as S3 does.
      const redirect = await fetch(`${world.source.url}/v2/team/app/blobs/${layer.digest}`, {
        redirect: 'manual',
        headers: {
          authorization: `Bearer ${world.tokenServer.issueToken(ALICE.username, ['repository:team/app:pull'])}`,
        },
      });
      assert.equal(redirect.status, 307);
      const location = redirect.headers.get('location');
      assert.ok(location !== null);
      assert.match(location, /^http:\/\/127\.0\.0\.2:\d+\/blob\//);
      const leaky = await fetch(location, { headers: { authorization: 'Bearer leaked' } });
      await leaky.arrayBuffer();
      assert.equal(leaky.status, 400);
    } finally {
      proxy.settings.redirectBlobGets = false;
    }
  });

  it('injects faults: error statuses and bodies cut midway', async () => {
    const proxy = world.source.proxy;
    const client = new RegistryClient(world.source.seedTarget);
    const config = index.children[0]?.blobs[0];
    assert.ok(config);
    try {
      proxy.settings.fault = (req) =>
        req.kind === 'manifest' ? { status: 503, headers: { 'retry-after': '1' } } : undefined;
      await assert.rejects(client.getManifest('team/app', 'v1'), /HTTP 503/);

      proxy.settings.fault = (req) =>
        req.kind === 'blob' && req.method === 'GET' ? { cutBodyAfterBytes: 10 } : undefined;
      await assert.rejects(client.getBlob('team/app', config.digest));
    } finally {
      proxy.settings.fault = undefined;
    }
    assert.deepEqual(await client.getBlob('team/app', config.digest), config.bytes);
  });

  it('serves the Basic and open registries, and the Basic one rejects a wrong password', async () => {
    const wrong = new RegistryClient({ url: world.basic.url, username: BOB.username, password: 'wrong' });
    assert.equal((await wrong.ping()).status, 401);
    await assert.rejects(skopeoListTags(`${world.basic.host}/team/app`, { creds: `${BOB.username}:wrong` }));
    const right = new RegistryClient(world.basic.seedTarget);
    assert.equal((await right.ping()).status, 200);

    const image = await seedImage(world.basic.seedTarget, 'team/app', 'v1', 'oci-image');
    assert.deepEqual(
      await skopeoInspectRaw(`${world.basic.host}/team/app:v1`, { creds: world.basic.skopeoCreds }),
      image.bytes,
    );

    const open = await seedImage(world.open.seedTarget, 'mirror/app', 'v1', 'oci-image', {
      sharedLayers: image.blobs.slice(1),
    });
    assert.deepEqual(await skopeoInspectRaw(`${world.open.host}/mirror/app:v1`), open.bytes);
  });

  it('pushes an OCI 1.1 artifact with a subject; distribution 2.8 has no referrers API', async () => {
    const subject = index.children[0];
    assert.ok(subject);
    const artifact = ociArtifact({ seed: 'sbom', subject: subject.descriptor });
    await pushManifestTree(world.source.seedTarget, 'team/app', artifact);
    const got = await new RegistryClient(world.source.seedTarget).getManifest('team/app', artifact.digest);
    assert.deepEqual(got.bytes, artifact.bytes);

    const proxy = world.source.proxy;
    const referrers = await new RegistryClient(world.source.seedTarget).request(
      'GET',
      `/v2/team/app/referrers/${subject.digest}`,
      { repo: 'team/app' },
    );
    await referrers.arrayBuffer();
    assert.equal(referrers.status, 404);
    assert.ok(proxy.count({ kind: 'referrers', status: 404 }) >= 1);
  });

  it('pushes a large layer in chunks', async () => {
    const large = await seedLargeBlobImage(
      world.open.seedTarget,
      'bench/large',
      'v1',
      20 * 1024 * 1024 + 123,
    );
    assert.equal(large.layer.size, 20 * 1024 * 1024 + 123);
    assert.equal(
      world.open.proxy.count({ method: 'PATCH', kind: 'upload', status: 202, repo: 'bench/large' }),
      3,
    );
    assert.deepEqual(await skopeoInspectRaw(`${world.open.host}/bench/large:v1`), large.manifest.bytes);
  });

  it('issues tokens through the OAuth2 POST form, with refresh tokens', async () => {
    const ts = world.tokenServer;
    const post = (form: Record<string, string>): Promise<Response> =>
      fetch(ts.realm, { method: 'POST', body: new URLSearchParams({ service: ts.service, ...form }) });
    const scope = 'repository:team/app:pull';

    const wrong = await post({ grant_type: 'password', username: ALICE.username, password: 'nope', scope });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();

    const login = await post({
      grant_type: 'password',
      ...ALICE,
      access_type: 'offline',
      scope,
      client_id: 'test',
    });
    assert.equal(login.status, 200);
    const { refresh_token } = (await login.json()) as { refresh_token?: string };
    assert.ok(refresh_token);

    const refreshed = await post({ grant_type: 'refresh_token', refresh_token, scope, client_id: 'test' });
    const body = (await refreshed.json()) as { access_token: string; expires_in?: number };
    assert.equal(body.expires_in, 300);
    const res = await fetch(`${world.source.url}/v2/team/app/manifests/v1`, {
      headers: { authorization: `Bearer ${body.access_token}`, accept: MediaType.ociIndex },
    });
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), index.bytes);

    const quay = await startTokenServer({ users: {}, anonymousPull: true, omitExpiresIn: true });
    try {
      const res = await fetch(`${quay.realm}?service=${quay.service}&scope=${scope}&scope=repository:x:push`);
      const anon = (await res.json()) as { token: string; expires_in?: number };
      assert.equal(anon.expires_in, undefined);
      const claims = JSON.parse(Buffer.from(anon.token.split('.')[1] ?? '', 'base64url').toString()) as {
        access: unknown;
      };
      // Anonymous pull is granted, push is not (granted = requested ∩ allowed).
      assert.deepEqual(claims.access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    } finally {
      await quay.stop();
    }
  });

  it('parses scopes whose names contain host:port', () => {
    assert.deepEqual(parseScope('repository:localhost:5000/team/app:pull,push'), {
      type: 'repository',
      name: 'localhost:5000/team/app',
      actions: ['pull', 'push'],
    });
    assert.equal(parseScope('garbage'), undefined);
  });
});
