// zot: answers chunk uploads with a short Range (regmirror tracks the offset itself) and supports the
// referrers API.

import type { VendorDefinition } from '../registry/profile/profile.js';

export const zot: VendorDefinition = {
  kind: 'zot',
};
