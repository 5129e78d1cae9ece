// Several sources asked in order, first answer wins; and the default order regmirror uses when the config
// says nothing more specific.

import { homedir } from 'node:os';
import {
  dockerAuthConfigEnvSource,
  dockerConfigFileSource,
  podmanAuthFileSources,
} from './docker-config-source.js';
import type { Env } from './helper.js';
import type { Credential, CredentialSource, FoundCredential } from './types.js';

/** A source made of sources. findCredential looks inside it, so messages name the inner source that answered. */
export class CredentialChain implements CredentialSource {
  readonly description: string;
  readonly sources: readonly CredentialSource[];

  constructor(sources: readonly CredentialSource[], description?: string) {
    this.sources = sources;
    this.description = description ?? sources.map((source) => source.description).join(', ');
  }

  async lookup(host: string): Promise<Credential | undefined> {
    return (await findCredential(this.sources, host))?.credential;
  }
}

/**
 * The first credential any source has for `host`, with that source's description. A source that fails
 * (malformed file, broken helper) stops the search: silently falling through to other credentials
 * would hide the problem behind a confusing 401.
 */
export async function findCredential(
  sources: readonly CredentialSource[],
  host: string,
): Promise<FoundCredential | undefined> {
  for (const source of sources) {
    if (source instanceof CredentialChain) {
      const found = await findCredential(source.sources, host);
      if (found) return found;
      continue;
    }
    const credential = await source.lookup(host);
    if (credential) return { credential, source: source.description };
  }
  return undefined;
}

/** DOCKER_AUTH_CONFIG, then Docker's config.json, then podman's auth.json files. */
export function defaultCredentialChain(
  env: Env = process.env,
  home: string = homedir(),
  options: { helperTimeoutMs?: number } = {},
): CredentialChain {
  const sourceOptions = { ...options, env, home };
  return new CredentialChain([
    dockerAuthConfigEnvSource(sourceOptions),
    dockerConfigFileSource(sourceOptions),
    ...podmanAuthFileSources(sourceOptions),
  ]);
}
