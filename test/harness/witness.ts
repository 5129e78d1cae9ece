import assert from 'node:assert/strict';
import type { Endpoint } from './fixture.js';
import { skopeoInspectRaw, skopeoPullAll } from './skopeo.js';

/**
 * skopeo's view of `repo:tag` on an endpoint: the exact manifest bytes expected, and every child and
 * blob pulled and checked against its digest.
 */
export async function assertSkopeoPulls(
  ep: Endpoint,
  repo: string,
  tag: string,
  expected: Buffer,
): Promise<void> {
  const creds = ep.skopeoCreds ? { creds: ep.skopeoCreds } : {};
  const raw = await skopeoInspectRaw(`${ep.host}/${repo}:${tag}`, creds);
  assert.ok(raw.equals(expected), `${ep.host}/${repo}:${tag} has other manifest bytes`);
  await skopeoPullAll(`${ep.host}/${repo}:${tag}`, creds);
}
