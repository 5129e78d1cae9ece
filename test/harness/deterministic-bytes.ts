import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Reproducible pseudo-random bytes: the AES-128-CTR keystream under a key derived from a seed
 * string. Same seed, same bytes, on every machine, at GB/s (a JS PRNG would dominate the 256 MiB
 * benchmark's run time).
 */

const DEFAULT_CHUNK = 8 * 1024 * 1024;

function keystream(seed: string): (length: number) => Buffer {
  const material = createHash('sha256').update(`regmirror-test:${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', material.subarray(0, 16), material.subarray(16, 32));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** `size` bytes for this seed; without a seed, truly random bytes. */
export function deterministicBytes(size: number, seed?: string): Buffer {
  if (seed === undefined) return randomBytes(size);
  return keystream(seed)(size);
}

/**
 * The same byte sequence as deterministicBytes(size, seed), produced chunk by chunk so large blobs
 * never sit in memory whole. Call again to replay from the start.
 */
export function* deterministicChunks(
  size: number,
  seed: string,
  chunkSize = DEFAULT_CHUNK,
): Generator<Buffer> {
  const next = keystream(seed);
  for (let offset = 0; offset < size; offset += chunkSize) {
    yield next(Math.min(chunkSize, size - offset));
  }
}
