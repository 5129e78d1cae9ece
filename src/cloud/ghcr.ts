// GitHub Container Registry: relative upload Locations, no referrers API (the tag schema works), and
// request bodies of about 4 MiB at most, so chunks stay at 4 MiB and larger blobs never go in one PUT.

import type { VendorDefinition } from '../registry/profile/profile.js';

const FOUR_MIB = 4 * 1024 * 1024;

export const ghcr: VendorDefinition = {
  kind: 'ghcr',
  matchesHost: (host) => host === 'ghcr.io',
  upload: { chunkSize: FOUR_MIB, maxChunkSize: FOUR_MIB, monolithicMaxSize: FOUR_MIB },
};
