// Chunk upload resume, against a small HTTP registry double whose sessions can be resumed (GCS-style
// and Harbor-style: `GET <location>` → 204 with `Range: 0-<last byte>`). distribution 2.8 cannot show
// this: its session state is signed together with the offset, so it cancels a session that is asked
// about after a lost answer — that path (start the blob again) is covered in the integration tests.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildProfiles } from '../../src/cli/runtime.js';
import { UploadInterruptedError } from '../../src/errors.js';
import { digestOf } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/registry/client.js';

interface Session {
  bytes: Buffer;
}

type Plan = (
  method: string,
  session: Session,
  body: Buffer,
) => 'ok' | 'lose-answer' | 'apply-half' | 'forget';

let server: Server;
let host: string;
const sessions = new Map<string, Session>();
let plan: Plan = () => 'ok';
/** OCI-Chunk-Min-Length the double announces when a session opens (0: none). */
let chunkMinLength = 0;
const log: string[] = [];

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

before(async () => {
  let next = 0;
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const body = await readBody(req);
    log.push(`${req.method} ${req.headers['content-range'] ?? ''}`.trim());
    const range = (s: Session) => ({ range: `0-${Math.max(0, s.bytes.length - 1)}` });
    if (req.method === 'POST' && url.pathname === '/v2/app/blobs/uploads/') {
      const id = String(++next);
      sessions.set(id, { bytes: Buffer.alloc(0) });
      res
        .writeHead(202, {
          location: `/v2/app/blobs/uploads/${id}`,
          'content-length': '0',
          ...(chunkMinLength ? { 'oci-chunk-min-length': String(chunkMinLength) } : {}),
        })
        .end();
      return;
    }
    const m = /^\/v2\/app\/blobs\/uploads\/(\d+)$/.exec(url.pathname);
    const session = m ? sessions.get(m[1]!) : undefined;
    if (!session) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}');
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(204, { ...range(session), 'content-length': '0' }).end();
      return;
    }
    if (req.method === 'PATCH') {
      const [start] = String(req.headers['content-range']).split('-').map(Number);
      if (start !== session.bytes.length) {
        res.writeHead(416, { ...range(session), 'content-length': '0' }).end();
        return;
      }
      const what = plan('PATCH', session, body);
      if (what === 'forget') {
        sessions.delete(m![1]!);
        req.socket.destroy();
        return;
      }
      const taken = what === 'apply-half' ? body.subarray(0, body.length >> 1) : body;
      session.bytes = Buffer.concat([session.bytes, taken]);
      if (what === 'lose-answer' || what === 'apply-half') {
        req.socket.destroy();
        return;
      }
      res.writeHead(202, { ...range(session), location: url.pathname, 'content-length': '0' }).end();
      return;
    }
    if (req.method === 'PUT') {
      session.bytes = Buffer.concat([session.bytes, body]);
      const ok = digestOf(session.bytes) === url.searchParams.get('digest');
      res.writeHead(ok ? 201 : 400, { 'content-length': '0' }).end();
      return;
    }
    if (req.method === 'DELETE') {
      sessions.delete(m![1]!);
      res.writeHead(204).end();
      return;
    }
    res.writeHead(405).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

function client(): RegistryClient {
  return new RegistryClient({
    profiles: buildProfiles({ flags: { hostConcurrency: 4 }, env: {} }),
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1000 },
  });
}

const blob = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
const chunks = [blob.subarray(0, 1000), blob.subarray(1000, 2000), blob.subarray(2000)];

async function upload(c: RegistryClient): Promise<void> {
  const opened = await c.uploadStart({ registry: host, path: 'app' });
  assert.equal(opened.mounted, false);
  if (opened.mounted) return;
  await opened.session.patch(chunks[0]!);
  await opened.session.patch(chunks[1]!);
  await opened.session.finish(digestOf(blob), chunks[2]);
}

describe('a chunk upload whose PATCH fails', () => {
  it('goes on when the chunk arrived and only the answer was lost (GET says so)', async () => {
    log.length = 0;
    let patches = 0;
    plan = (method) => (method === 'PATCH' && ++patches === 2 ? 'lose-answer' : 'ok');
    const c = client();
    await upload(c);
    await c.close();
    assert.deepEqual(log, ['POST', 'PATCH 0-999', 'PATCH 1000-1999', 'GET', 'PUT 2000-2999']);
  });

  it('sends only the rest of a chunk the registry took half of', async () => {
    log.length = 0;
    let patches = 0;
    plan = (method) => (method === 'PATCH' && ++patches === 2 ? 'apply-half' : 'ok');
    const c = client();
    await upload(c);
    await c.close();
    assert.deepEqual(log, [
      'POST',
      'PATCH 0-999',
      'PATCH 1000-1999',
      'GET',
      'PATCH 1500-1999',
      'PUT 2000-2999',
    ]);
  });

  it('gives up the session (UploadInterruptedError, to start the blob again) when the registry lost it', async () => {
    log.length = 0;
    let patches = 0;
    plan = (method) => (method === 'PATCH' && ++patches === 2 ? 'forget' : 'ok');
    const c = client();
    await assert.rejects(upload(c), (err) => {
      assert.ok(err instanceof UploadInterruptedError);
      assert.match(err.message, /no longer knows the session/);
      return true;
    });
    await c.close();
    assert.deepEqual(log, ['POST', 'PATCH 0-999', 'PATCH 1000-1999', 'GET']);
  });
});

describe('an upload session takes its chunk size from the registry profile', () => {
  it('the configured size, raised to the OCI-Chunk-Min-Length the registry announces', async () => {
    const sized = (chunkSize: number) =>
      new RegistryClient({ profiles: buildProfiles({ flags: { chunkSize }, env: {} }) });
    const c = sized(1500);
    try {
      chunkMinLength = 0;
      const plain = await c.uploadStart({ registry: host, path: 'app' });
      assert.ok(!plain.mounted);
      if (!plain.mounted) {
        assert.equal(plain.session.chunkSize, 1500);
        await plain.session.cancel();
      }
      chunkMinLength = 4000;
      const raised = await c.uploadStart({ registry: host, path: 'app' });
      assert.ok(!raised.mounted);
      if (!raised.mounted) {
        assert.equal(raised.session.chunkSize, 4000);
        await raised.session.cancel();
      }
    } finally {
      chunkMinLength = 0;
      await c.close();
    }
  });
});
