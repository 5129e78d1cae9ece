// The CNCF distribution registry (registry:2, Debian's docker-registry) and anything that behaves like it:
// the spec's defaults, nothing to adjust. The kind of every registry regmirror does not recognise.

import type { VendorDefinition } from '../registry/profile/profile.js';

export const distribution: VendorDefinition = {
  kind: 'distribution',
};
