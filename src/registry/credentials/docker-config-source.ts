// Credential sources backed by config.json-shaped data: Docker's config file, the DOCKER_AUTH_CONFIG
// variable (GitLab CI), and podman's auth.json files. Environment and home directory are always passed in,
// so tests (and anything embedding regmirror) never read the real user's files by accident.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AuthError } from '../../errors.js';
import { type DockerConfig, parseDockerConfig, resolveDockerConfig } from './docker-config.js';
import { type Env, getFromCredentialHelper, type HelperOptions } from './helper.js';
import { registryHostOf } from './registry-host.js';
import type { Credential, CredentialSource } from './types.js';

export const DOCKER_AUTH_CONFIG = 'DOCKER_AUTH_CONFIG';

/**
 * A source answering from config.json-shaped data, loaded on the first lookup and kept. Helper answers are
 * kept per host too: a helper may be slow (ecr-login calls AWS) and the auth layer asks on every token.
 */
export class DockerConfigSource implements CredentialSource {
  readonly description: string;
  readonly #load: () => Promise<DockerConfig | undefined>;
  readonly #helperOptions: HelperOptions;
  #config: Promise<DockerConfig | undefined> | undefined;
  readonly #answers = new Map<string, Promise<Credential | undefined>>();

  constructor(
    description: string,
    load: () => Promise<DockerConfig | undefined>,
    helperOptions: HelperOptions,
  ) {
    this.description = description;
    this.#load = load;
    this.#helperOptions = helperOptions;
  }

  lookup(host: string): Promise<Credential | undefined> {
    const key = registryHostOf(host);
    let answer = this.#answers.get(key);
    if (!answer) {
      answer = this.#lookup(host);
      this.#answers.set(key, answer);
      // A failure (helper timed out, keyring locked) may be transient: let the next lookup try again.
      answer.catch(() => this.#answers.delete(key));
    }
    return answer;
  }

  async #lookup(host: string): Promise<Credential | undefined> {
    this.#config ??= this.#load();
    const config = await this.#config;
    const answer = config && resolveDockerConfig(config, host);
    if (!answer) return undefined;
    if (answer.kind === 'credential') return answer.credential;
    for (const serverUrl of answer.serverUrls) {
      const credential = await getFromCredentialHelper(answer.helper, serverUrl, host, this.#helperOptions);
      if (credential) return credential;
    }
    return undefined;
  }
}

export interface SourceOptions {
  /** Read for file locations and DOCKER_AUTH_CONFIG, and given to credential helpers (their PATH). */
  env: Env;
  home: string;
  helperTimeoutMs?: number;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: Env, home: string): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(home, '.docker', 'config.json');
}

/**
 * Podman's auth files, in the order containers/image reads them: `$REGISTRY_AUTH_FILE` alone when set,
 * else `$XDG_RUNTIME_DIR/containers/auth.json` (where `podman login` writes), then
 * `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`.
 */
export function podmanAuthFilePaths(env: Env, home: string): string[] {
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE];
  const paths: string[] = [];
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'));
  return paths;
}

/** A config.json-format file; a missing file means "no credentials here". */
export function configFileSource(
  description: string,
  path: string,
  options: Omit<SourceOptions, 'home'>,
): DockerConfigSource {
  return new DockerConfigSource(description, () => readConfigFile(path), helperOptions(options));
}

export function dockerConfigFileSource(options: SourceOptions): DockerConfigSource {
  const path = dockerConfigPath(options.env, options.home);
  return configFileSource(`docker config ${path}`, path, options);
}

export function podmanAuthFileSources(options: SourceOptions): DockerConfigSource[] {
  return podmanAuthFilePaths(options.env, options.home).map((path) =>
    configFileSource(`podman auth file ${path}`, path, options),
  );
}

/** GitLab CI passes registry credentials as config.json text in DOCKER_AUTH_CONFIG; unset or empty = none. */
export function dockerAuthConfigEnvSource(options: Omit<SourceOptions, 'home'>): DockerConfigSource {
  const text = options.env[DOCKER_AUTH_CONFIG];
  const description = `${DOCKER_AUTH_CONFIG} environment variable`;
  return new DockerConfigSource(
    description,
    async () => (text ? parseDockerConfig(text, description) : undefined),
    helperOptions(options),
  );
}

async function readConfigFile(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new AuthError(`${path}: cannot be read (${code ?? String(err)})`, {
      hint: 'check the permissions of that credential file',
    });
  }
  return parseDockerConfig(text, path);
}

function helperOptions(options: Omit<SourceOptions, 'home'>): HelperOptions {
  return options.helperTimeoutMs
    ? { env: options.env, timeoutMs: options.helperTimeoutMs }
    : { env: options.env };
}
