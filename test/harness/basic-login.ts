// A credential provider holding one user and password for a registry host, as a docker login would: for
// tests of the auth layer against a real token server.

import { sourcesProvider } from '../../src/registry/profile/credential-provider.js';
import type { CredentialProvider } from '../../src/registry/profile/profile.js';

export function basicLogin(
  host: string,
  username = 'u',
  password = 'p',
  description = 'a docker login',
): CredentialProvider {
  return sourcesProvider(
    [{ description, lookup: async () => ({ kind: 'basic', username, password }) }],
    host,
  );
}
