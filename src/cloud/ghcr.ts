// GitHub Container Registry: relative upload Locations (resolved against the answer's URL by the
// client), no referrers API (the tag schema works), and request bodies of about 4 MiB at most, so chunks
// stay at 4 MiB and larger blobs never go in one PUT. In GitHub Actions the job's GITHUB_TOKEN (or a
// GH_TOKEN) is a password GHCR accepts with any user name: used when nothing else gives credentials.

import type { CredentialSource } from '../registry/credentials/types.js';
import { sourcesProvider } from '../registry/profile/credential-provider.js';
import type { VendorDefinition } from '../registry/profile/profile.js';

const FOUR_MIB = 4 * 1024 * 1024;

/** Token variables in the order they are asked: Actions' own name first, then the gh CLI's. */
export const GITHUB_TOKEN_VARIABLES = ['GITHUB_TOKEN', 'GH_TOKEN'] as const;

/**
 * GITHUB_TOKEN, else GH_TOKEN, as the password; the user name is GITHUB_ACTOR (set in every Actions job),
 * else "regmirror" (GHCR checks the token, not the name). Empty variables count as unset: Actions hands
 * an empty string for a secret a workflow run may not see (pull requests from forks).
 */
export function githubTokenSource(env: NodeJS.ProcessEnv): CredentialSource | undefined {
  const name = GITHUB_TOKEN_VARIABLES.find((v) => env[v]);
  if (!name) return undefined;
  const password = env[name]!;
  const actor = env.GITHUB_ACTOR;
  const username = actor || 'regmirror';
  return {
    description: `environment variable ${name}${actor ? ' (user from GITHUB_ACTOR)' : ''}`,
    lookup: async () => ({ kind: 'basic', username, password }),
  };
}

export const ghcr: VendorDefinition = {
  kind: 'ghcr',
  matchesHost: (host) => host === 'ghcr.io',
  upload: { chunkSize: FOUR_MIB, maxChunkSize: FOUR_MIB, monolithicMaxSize: FOUR_MIB },
  platformCredentials(ctx) {
    const source = githubTokenSource(ctx.env);
    return source ? sourcesProvider([source], ctx.host) : undefined;
  },
  hints: {
    noCredentials:
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, meant literally
      "in GitHub Actions, pass the job's token: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}; elsewhere, docker login ghcr.io with a personal access token (classic) with read:packages / write:packages",
    denied:
      'a GITHUB_TOKEN needs "permissions: packages: write" in the workflow, and the package must give this repository access (package settings, "Manage Actions access"); a personal token needs the write:packages scope',
  },
};
