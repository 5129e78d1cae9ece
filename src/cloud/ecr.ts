// Amazon ECR (private): <account>.dkr.ecr.<region>.amazonaws.com. Every upload part but the last must be
// at least 5 MiB (refused only at commit), PATCH answers 201 with a Range that stops advancing (the client
// tracks its own offset), an expired token is answered 403 DENIED without a challenge, mounts answer 202
// unless the account enabled blob mounting, tag lists refuse n > 1000, tags can be immutable.

import type { VendorDefinition } from '../registry/profile/profile.js';

const MIB = 1024 * 1024;

/** <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: the account and region, or undefined. */
export function parseEcrHost(host: string): { accountId: string; region: string } | undefined {
  const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host.toLowerCase());
  return m ? { accountId: m[1]!, region: m[2]! } : undefined;
}

export const ecr: VendorDefinition = {
  kind: 'ecr',
  matchesHost: (host) => parseEcrHost(host) !== undefined,
  upload: { chunkSize: 8 * MIB, minChunkSize: 5 * MIB },
  quirks: { mounts: false, tagPageSize: 1000, tagImmutability: true, deniedMeansExpired: true },
};
