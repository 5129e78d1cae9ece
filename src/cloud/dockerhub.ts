// Docker Hub: `docker.io` names, served by registry-1.docker.io, tokens from auth.docker.io. Pull quotas
// count manifest GETs (not HEADs) and are reported in ratelimit-limit / ratelimit-remaining.

import { isDockerHub } from '../reference/reference.js';
import type { VendorDefinition } from '../registry/profile/profile.js';

export const dockerhub: VendorDefinition = {
  kind: 'dockerhub',
  matchesHost: (host) => isDockerHub(host),
};
