// Docker's config.json (also podman's auth.json and GitLab's DOCKER_AUTH_CONFIG, which share the format):
// validation at the boundary and the per-host lookup rules. Pure: running a credential helper is the
// caller's business, so this module only says which helper to ask.

import { AuthError } from '../../errors.js';
import {
  DOCKER_HUB_SERVER_URL,
  isDockerHub,
  isRepositoryScopedKey,
  registryHostOf,
} from './registry-host.js';
import type { Credential } from './types.js';

export interface DockerAuthEntry {
  /** The key as written in the file, e.g. "https://index.docker.io/v1/". */
  key: string;
  /** Undefined for an entry without credentials ({}), which Docker writes when a credsStore holds them. */
  credential: Credential | undefined;
}

export interface DockerConfig {
  /** In file order. */
  auths: DockerAuthEntry[];
  /** Per-registry helpers, in file order: `{ key: "123.dkr.ecr...", helper: "ecr-login" }`. */
  credHelpers: { key: string; helper: string }[];
  credsStore: string | undefined;
}

/** What the config says about one host: a credential, or which helper to ask and under which server URLs. */
export type DockerConfigAnswer =
  | { kind: 'credential'; credential: Credential; key: string }
  | { kind: 'helper'; helper: string; serverUrls: string[] };

// Helper names become part of an executable name; anything else could run an arbitrary program.
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parses config.json text. `origin` names where it came from (a file path or an environment variable) and
 * leads every error message; the messages never quote the content, since it holds secrets.
 */
export function parseDockerConfig(text: string, origin: string): DockerConfig {
  // Docker treats an empty file as an empty config; so do we.
  if (text.trim() === '') return { auths: [], credHelpers: [], credsStore: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message can quote the text around the error, which may be a secret: report only the position.
    const position = err instanceof Error ? /at position (\d+)/.exec(err.message)?.[1] : undefined;
    throw invalid(
      origin,
      `not valid JSON${position === undefined ? '' : ` (${lineColumn(text, Number(position))})`}`,
    );
  }
  return validateDockerConfig(value, origin);
}

/** Validates an already-parsed config.json value by hand (it is external input), decoding `auth` fields. */
export function validateDockerConfig(value: unknown, origin: string): DockerConfig {
  if (!isObject(value)) throw invalid(origin, 'the top level must be a JSON object');

  const auths: DockerAuthEntry[] = [];
  if (value.auths !== undefined) {
    if (!isObject(value.auths)) throw invalid(origin, '"auths" must be an object');
    for (const [key, entry] of Object.entries(value.auths)) {
      auths.push({ key, credential: parseAuthEntry(entry, `auths[${JSON.stringify(key)}]`, origin) });
    }
  }

  const credHelpers: DockerConfig['credHelpers'] = [];
  if (value.credHelpers !== undefined) {
    if (!isObject(value.credHelpers)) throw invalid(origin, '"credHelpers" must be an object');
    for (const [key, helper] of Object.entries(value.credHelpers)) {
      credHelpers.push({ key, helper: helperName(helper, `credHelpers[${JSON.stringify(key)}]`, origin) });
    }
  }

  let credsStore: string | undefined;
  // Docker treats "credsStore": "" as no store.
  if (value.credsStore !== undefined && value.credsStore !== '') {
    credsStore = helperName(value.credsStore, '"credsStore"', origin);
  }
  return { auths, credHelpers, credsStore };
}

/**
 * Looks a registry host up the way Docker does: a credHelpers entry decides alone; otherwise an `auths`
 * entry with credentials; otherwise (no entry, or an empty one) the credsStore.
 */
export function resolveDockerConfig(config: DockerConfig, host: string): DockerConfigAnswer | undefined {
  const helper = bestMatch(config.credHelpers, host);
  if (helper)
    return { kind: 'helper', helper: helper.helper, serverUrls: helperServerUrls(host, helper.key) };

  const entry = bestMatch(config.auths, host);
  if (entry?.credential) return { kind: 'credential', credential: entry.credential, key: entry.key };

  if (config.credsStore) {
    return { kind: 'helper', helper: config.credsStore, serverUrls: helperServerUrls(host, entry?.key) };
  }
  return undefined;
}

/**
 * The server URLs to ask a helper for, best first. Helpers store credentials under the exact string
 * `docker login` used: Docker Hub's is always DOCKER_HUB_SERVER_URL, others are the host or the key that
 * the config file shows for it (e.g. "https://quay.io").
 */
function helperServerUrls(host: string, key: string | undefined): string[] {
  const urls = [isDockerHub(host) ? DOCKER_HUB_SERVER_URL : undefined, key, host];
  return [...new Set(urls.filter((url): url is string => url !== undefined))];
}

/** The entry whose key names this host: the exact key first, then host-level keys, then repository-scoped ones. */
function bestMatch<T extends { key: string }>(entries: T[], host: string): T | undefined {
  const exact = entries.find((entry) => entry.key === host);
  if (exact) return exact;
  const wanted = registryHostOf(host);
  const matching = entries.filter((entry) => registryHostOf(entry.key) === wanted);
  return matching.find((entry) => !isRepositoryScopedKey(entry.key)) ?? matching[0];
}

function parseAuthEntry(entry: unknown, where: string, origin: string): Credential | undefined {
  if (!isObject(entry)) throw invalid(origin, `${where} must be an object`);
  const auth = optionalString(entry.auth, `${where}.auth`, origin);
  const identityToken = optionalString(entry.identitytoken, `${where}.identitytoken`, origin);
  let username = optionalString(entry.username, `${where}.username`, origin);
  let password = optionalString(entry.password, `${where}.password`, origin);

  if (auth) {
    const decoded = decodeAuth(auth);
    if (decoded === undefined) throw invalid(origin, `${where}.auth is not base64 of "username:password"`);
    ({ username, password } = decoded);
  }
  // Docker writes an identity token together with an `auth` holding "username:" and an empty password.
  if (identityToken)
    return { kind: 'identity-token', token: identityToken, ...(username ? { username } : {}) };
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw invalid(
      origin,
      `${where} has a ${username === undefined ? 'password but no username' : 'username but no password'}`,
    );
  }
  return { kind: 'basic', username, password };
}

function decodeAuth(auth: string): { username: string; password: string } | undefined {
  const compact = auth.replace(/\s+/g, '');
  if (!BASE64.test(compact)) return undefined;
  const text = Buffer.from(compact, 'base64').toString('utf8');
  // User names cannot contain ':', passwords (and tokens) can: split at the first one only.
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function helperName(value: unknown, where: string, origin: string): string {
  if (typeof value !== 'string' || !HELPER_NAME.test(value)) {
    throw invalid(origin, `${where} must be a credential helper name such as "desktop" or "ecr-login"`);
  }
  return value;
}

function optionalString(value: unknown, where: string, origin: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(origin, `${where} must be a string`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lineColumn(text: string, position: number): string {
  const before = text.slice(0, position).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function invalid(origin: string, what: string): AuthError {
  return new AuthError(`${origin}: ${what}`, { hint: 'fix or remove that credential configuration' });
}
