// Content digests: "sha256:<64 hex>". Computing, parsing and streaming verification.

import { createHash, type Hash } from 'node:crypto';

export type Digest = string;

const DIGEST_RE = /^(sha256|sha512):([a-f0-9]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export function parseDigest(digest: string): { algorithm: 'sha256' | 'sha512'; hex: string } | undefined {
  const m = DIGEST_RE.exec(digest);
  if (!m) return undefined;
  const algorithm = m[1] as 'sha256' | 'sha512';
  if (m[2]!.length !== HEX_LENGTH[algorithm]) return undefined;
  return { algorithm, hex: m[2]! };
}

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && parseDigest(value) !== undefined;
}

export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Incremental digest for streamed content. */
export class Digester {
  private readonly hash: Hash;
  private readonly algorithm: string;
  size = 0;
  constructor(algorithm: 'sha256' | 'sha512' = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.byteLength;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** The algorithm a digest uses, so content is verified with the same one. */
export function algorithmOf(digest: Digest): 'sha256' | 'sha512' {
  return parseDigest(digest)?.algorithm ?? 'sha256';
}

/** "sha256:abcdef..." → "sha256:abcdef012345" for display. */
export function shortDigest(digest: Digest): string {
  const p = parseDigest(digest);
  return p ? `${p.algorithm}:${p.hex.slice(0, 12)}` : digest;
}

/**
 * The referrers tag schema (distribution-spec 1.1) used where a registry has no referrers API:
 * sha256:abc… → "sha256-abc…", the algorithm cut to 32 characters and the hex to 64, so that a sha512
 * digest still makes a valid tag.
 */
export function referrersTagFor(digest: Digest): string {
  const at = digest.indexOf(':');
  const algorithm = digest.slice(0, at).slice(0, 32);
  const encoded = digest.slice(at + 1).slice(0, 64);
  return `${algorithm}-${encoded}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}
