// Platforms ("linux/arm64/v8") as they appear in index descriptors and as users write them.

import { z } from 'zod';

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof platformSchema>;

/** "linux/arm64/v8" */
export function formatPlatform(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

/** Parse "linux/amd64" or "linux/arm64/v8". Returns undefined when the text is not os/arch[/variant]. */
export function parsePlatform(text: string): Platform | undefined {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((s) => !/^[a-z0-9._-]+$/i.test(s))) return undefined;
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Whether a descriptor's platform matches a wanted one; a wanted platform without variant matches any variant. */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || want.variant === have.variant;
}
