// Docker Hub: `docker.io` names ("ubuntu" = docker.io/library/ubuntu), served by registry-1.docker.io,
// tokens from auth.docker.io, credentials stored under https://index.docker.io/v1/ (the reference parser
// and the credential sources know those). What is particular to it here is the pull quota: manifest GETs
// count against it (HEADs do not), and every manifest answer reports it in ratelimit-limit /
// ratelimit-remaining ("100;w=21600": 100 pulls per 6-hour window; paid accounts get no headers).
// regmirror keeps a tenth of the quota in reserve: below that, GETs are spaced out (pull-quota.ts).

import { isDockerHub } from '../reference/reference.js';
import type { VendorDefinition } from '../registry/profile/profile.js';
import { type PullQuotaPolicy, ReportedPullQuota } from '../registry/profile/pull-quota.js';

export const DOCKER_HUB_QUOTA: PullQuotaPolicy = {
  name: 'Docker Hub pull quota',
  reserveFraction: 0.1,
  // Docker Hub's window is 6 hours; it says so in `w=`, this is for an answer that does not.
  defaultWindowSeconds: 6 * 3600,
  hint: 'wait for the quota to refill, or pull with a Docker Hub account (docker login, or credentials for docker.io in the config): authenticated pulls have a larger quota; --retry-max-time lets a run wait longer',
};

export const dockerhub: VendorDefinition = {
  kind: 'dockerhub',
  matchesHost: (host) => isDockerHub(host),
  pullQuota: (ctx) => new ReportedPullQuota(ctx.registry, DOCKER_HUB_QUOTA),
};
