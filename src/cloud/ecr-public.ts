// Amazon ECR Public: public.ecr.aws/<registry alias>/<repository>, its API in us-east-1 only. The same
// upload rules as ECR (parts of at least 5 MiB, PATCH → 201, a Range that stops advancing), an expired
// token answered 403 DENIED, mounts answered 202, no server-side tag immutability.

import type { VendorDefinition } from '../registry/profile/profile.js';

const MIB = 1024 * 1024;

export const ecrPublic: VendorDefinition = {
  kind: 'ecr-public',
  matchesHost: (host) => host === 'public.ecr.aws',
  upload: { chunkSize: 8 * MIB, minChunkSize: 5 * MIB },
  quirks: { mounts: false, tagPageSize: 1000, tagImmutability: false, deniedMeansExpired: true },
};
