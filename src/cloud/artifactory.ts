// JFrog Artifactory: storage redirects that fail when they carry two auth mechanisms (regmirror never
// sends Authorization to a redirect's host).

import type { VendorDefinition } from '../registry/profile/profile.js';

export const artifactory: VendorDefinition = {
  kind: 'artifactory',
  matchesHost: (host) => host.endsWith('.jfrog.io'),
};
