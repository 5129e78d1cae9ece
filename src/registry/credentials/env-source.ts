// Credentials given explicitly for one registry: in the config as environment variable names
// (`{ env: { username: "DOCKERHUB_USER", password: "DOCKERHUB_TOKEN" } }`), or as values from elsewhere.

import { AuthError } from '../../errors.js';
import type { Env } from './helper.js';
import { registryHostOf } from './registry-host.js';
import type { Credential, CredentialSource } from './types.js';

/** Always answers `credential` for `host` (and its aliases, for Docker Hub); nothing for other hosts. */
export function staticCredentialSource(
  host: string,
  credential: Credential,
  description = `explicit credentials for ${host}`,
): CredentialSource {
  const wanted = registryHostOf(host);
  return {
    description,
    lookup: async (asked) => (registryHostOf(asked) === wanted ? credential : undefined),
  };
}

/**
 * Username and password for `host` read from two environment variables when asked, so that a registry this
 * run never touches does not need them. Unset or empty is an error naming the variable: CI systems hand an
 * empty string for a secret that is not available (e.g. to pull requests from forks).
 */
export function envCredentialSource(
  host: string,
  usernameVar: string,
  passwordVar: string,
  env: Env = process.env,
): CredentialSource {
  const wanted = registryHostOf(host);
  const read = (name: string, role: string): string => {
    const value = env[name];
    if (value === undefined || value === '') {
      throw new AuthError(
        `environment variable ${name} (${role} for ${host}) is ${value === undefined ? 'not set' : 'empty'}`,
        {
          context: { registry: host },
          hint: `set ${name}, or change the credentials configured for ${host}`,
        },
      );
    }
    return value;
  };
  return {
    description: `environment variables ${usernameVar} and ${passwordVar}`,
    lookup: async (asked) => {
      if (registryHostOf(asked) !== wanted) return undefined;
      return {
        kind: 'basic',
        username: read(usernameVar, 'username'),
        password: read(passwordVar, 'password'),
      };
    },
  };
}
