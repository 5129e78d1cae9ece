// Quay (quay.io and self-hosted Red Hat Quay): tokens without expires_in (the auth layer assumes 60 s),
// robot accounts named org+name, the referrers API without OCI-Subject, a mount without `from` refused
// with 400 (regmirror always sends `from`).

import type { VendorDefinition } from '../registry/profile/profile.js';

export const quay: VendorDefinition = {
  kind: 'quay',
  matchesHost: (host) => host === 'quay.io',
};
