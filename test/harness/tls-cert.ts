// A self-signed certificate for a TLS server on 127.0.0.1, made with openssl: an EC key (quick to
// make), the certificate its own CA, valid two days. Tests trust it with --ca-file or give it to a
// registry or an HTTPS server of their own.

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './run-command.js';

export interface TestCertificate {
  /** The key and certificate files (PEM); the certificate is also the CA file to trust. */
  keyFile: string;
  certFile: string;
  key: Buffer;
  cert: Buffer;
}

export async function makeTestCertificate(dir: string, commonName: string): Promise<TestCertificate> {
  await mkdir(dir, { recursive: true });
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await runCommand('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  return { keyFile, certFile, key: await readFile(keyFile), cert: await readFile(certFile) };
}
