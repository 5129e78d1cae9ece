// Every vendor regmirror knows. A new vendor: one file here with its VendorDefinition, listed below, and a
// section in docs/registries.md. Order matters only for host matching: the first match wins.

import type { VendorDefinition } from '../registry/profile/profile.js';
import { artifactory } from './artifactory.js';
import { distribution } from './distribution.js';
import { dockerhub } from './dockerhub.js';
import { ecr } from './ecr.js';
import { ecrPublic } from './ecr-public.js';
import { ghcr } from './ghcr.js';
import { harbor } from './harbor.js';
import { quay } from './quay.js';
import { zot } from './zot.js';

export const VENDORS: readonly VendorDefinition[] = [
  ecr,
  ecrPublic,
  dockerhub,
  quay,
  ghcr,
  harbor,
  artifactory,
  zot,
  distribution,
];
