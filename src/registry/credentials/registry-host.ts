// Credential files name a registry in many ways ("quay.io", "https://quay.io", "https://quay.io/v1/",
// "quay.io/org/repo"), and Docker Hub goes by several hosts. Everything that matches a host against such a
// key goes through registryHostOf so that the sources agree on what "the same registry" means.

/** The key Docker (and every credential helper) stores Docker Hub credentials under. */
export const DOCKER_HUB_SERVER_URL = 'https://index.docker.io/v1/';

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set([
  DOCKER_HUB,
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

/**
 * The registry host a credential key or host refers to: scheme and path dropped, lower-cased (host names
 * are case-insensitive), and every Docker Hub alias folded into "docker.io".
 */
export function registryHostOf(keyOrHost: string): string {
  let host = keyOrHost.trim().toLowerCase();
  // Only "scheme://" counts as a scheme: "localhost:5000" must keep its port.
  host = host.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

export function isDockerHub(keyOrHost: string): boolean {
  return registryHostOf(keyOrHost) === DOCKER_HUB;
}

/** True for keys scoped below the host ("quay.io/org/repo"); "https://host/v1/" is Docker's host form. */
export function isRepositoryScopedKey(key: string): boolean {
  const path = key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^/]*/, '');
  return path !== '' && path !== '/' && !/^\/v[12]\/?$/.test(path);
}
