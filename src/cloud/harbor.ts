// Harbor (self-hosted, so only by `type: "harbor"` in the config): robot accounts named robot$project+name,
// 401 on a mount from a project the robot cannot read (regmirror then uploads), the referrers API from
// 2.8 and OCI-Subject from 2.9.

import type { VendorDefinition } from '../registry/profile/profile.js';

export const harbor: VendorDefinition = {
  kind: 'harbor',
};
