// TLS settings per registry. Verification is on unless a registry is explicitly configured otherwise.
// Node's bundled CAs plus NODE_EXTRA_CA_CERTS are the default trust; the system bundle is added too
// (Node 20 does not read it by itself), and a registry may name its own CA file.

import { existsSync, readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/** "verify" (default), "disabled" = plain HTTP, "insecure" = HTTPS without verification, or a CA file. */
export type TlsMode = 'verify' | 'disabled' | 'insecure' | { caFile: string };

const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

let baseCas: string[] | undefined;

function readIfExists(path: string | undefined): string | undefined {
  if (!path || !existsSync(path)) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function trustedCas(): string[] {
  if (!baseCas) {
    const extra = [process.env.SSL_CERT_FILE, ...SYSTEM_BUNDLES, process.env.NODE_EXTRA_CA_CERTS]
      .map(readIfExists)
      .filter((s): s is string => s !== undefined);
    baseCas = [...rootCertificates, ...extra];
  }
  return baseCas;
}

/**
 * Parsing ~150 root certificates costs ~100 ms of CPU: done once per trust set, not per connection.
 */
const contexts = new Map<string, SecureContext>();

function contextFor(key: string, cas: () => string[]): SecureContext {
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = createSecureContext({ ca: cas() });
    contexts.set(key, ctx);
  }
  return ctx;
}

export function connectOptions(mode: TlsMode): {
  secureContext?: SecureContext;
  rejectUnauthorized?: boolean;
} {
  if (mode === 'insecure') return { rejectUnauthorized: false };
  if (typeof mode === 'object') {
    const secureContext = contextFor(`file:${mode.caFile}`, () => {
      let ca: string;
      try {
        ca = readFileSync(mode.caFile, 'utf8');
      } catch (err) {
        throw new Error(`cannot read CA file ${mode.caFile}: ${(err as Error).message}`);
      }
      return [...trustedCas(), ca];
    });
    return { secureContext, rejectUnauthorized: true };
  }
  return { secureContext: contextFor('default', trustedCas), rejectUnauthorized: true };
}
