// regmirror auth check: before a release, prove that every source can be pulled and every target pushed.
// Reads one tag-list page per source; opens and cancels one upload session per target. Stores nothing.

import { isAnonymous, type ResolvedConfig, registrySettings } from '../../config/resolve.js';
import { errorKind, formatError } from '../../errors.js';
import { apiHost, formatRepository, isLayoutKey, type Repository } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { plural } from '../format.js';
import type { Output } from '../output.js';
import { outputWidth, renderTable } from '../table.js';
import { openConfigRun, type SyncFlags, type SyncSession } from './sync.js';

interface Check {
  registry: string;
  repository: string;
  access: 'pull' | 'push';
  credentials: string;
  /** When the credentials are a token an API issued (ECR): it was obtained, and when it expires. */
  token?: { expiresAt: string };
  /**
   * Targets on registries where regmirror creates repositories (ECR with createRepositories): whether it
   * exists, or would be created by a sync (with these settings).
   */
  repositoryState?: 'exists' | 'would-create';
  repositorySettings?: string;
  ok: boolean;
  error?: string;
  errorKind?: string;
}

/**
 * Where the credentials for `registry` come from, in words that are true: "anonymous (configured)"
 * for a registry the config sets to anonymous, the variables (and which is unset) for an env source,
 * the file or helper that answered, or "none found (anonymous)".
 */
export async function credentialLabel(
  client: RegistryClient,
  config: ResolvedConfig,
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const settings = registrySettings(config, registry);
  if (isAnonymous(settings)) return 'anonymous (configured)';
  if (typeof settings.credentials === 'object' && 'env' in settings.credentials) {
    const { username, password } = settings.credentials.env;
    const unset = [username, password].filter((name) => !env[name]);
    if (unset.length > 0) {
      return `environment variables ${username}, ${password} (${unset.join(' and ')} ${unset.length === 1 ? 'is' : 'are'} not set)`;
    }
  }
  try {
    const source = await client.authenticator(registry).describeCredentialSource();
    return source === 'no credentials found' ? 'none found (anonymous)' : source;
  } catch (err) {
    // A credential source that fails (a malformed file, a broken helper) is named in the check's error.
    return `unreadable (${errorKind(err)})`;
  }
}

/** "token obtained (expires 20:15 UTC); repository would be created: immutable tags" */
function detailOf(c: Check): string {
  const parts: string[] = [];
  if (c.token) parts.push(`token obtained (expires ${c.token.expiresAt.slice(11, 16)} UTC)`);
  if (c.repositoryState === 'exists') parts.push('repository exists');
  if (c.repositoryState === 'would-create')
    parts.push(`repository would be created (${c.repositorySettings})`);
  return parts.join('; ') || '-';
}

export async function runAuthCheck(
  flags: SyncFlags,
  session: SyncSession,
  out: Output = session.out,
): Promise<number> {
  // Layouts are checked here, row by row, instead of all before any work.
  const { filepath, config, mirrors, client, layouts } = await openConfigRun(flags, session, {
    prepareLayouts: false,
  });
  const wanted = new Map<string, { repo: Repository; access: 'pull' | 'push' }>();
  for (const m of mirrors) {
    wanted.set(`pull ${formatRepository(m.source)}`, { repo: m.source, access: 'pull' });
    for (const t of m.targets) wanted.set(`push ${formatRepository(t)}`, { repo: t, access: 'push' });
  }
  try {
    const checks: Check[] = await Promise.all(
      [...wanted.values()].map(async ({ repo, access }) => {
        const check: Check = {
          registry: repo.registry,
          repository: repo.path,
          access,
          // Credentials an API issues (an ECR token) can fail to come: the column says so, the error why.
          credentials: 'could not be obtained',
          ok: false,
        };
        try {
          if (repo.layout) {
            // Files: readable as a layout (pull), or a place a layout can be written (push).
            check.credentials = 'file system';
            if (access === 'pull') await layouts.checkSource(repo);
            else await layouts.checkTarget(repo);
            check.ok = true;
            return check;
          }
          check.credentials = await credentialLabel(client, config, repo.registry, session.env);
          const found = await client.profile(repo.registry).credentials.get(session.signal);
          if (found?.expiresAt !== undefined) {
            check.token = { expiresAt: new Date(found.expiresAt).toISOString() };
          }
          const state = access === 'push' ? await client.repositoryState(repo) : 'unmanaged';
          if (state === 'missing') {
            // No upload session can open in a repository that does not exist yet; a sync creates it first.
            check.repositoryState = 'would-create';
            check.repositorySettings = client.repositorySettings(repo) ?? 'registry defaults';
          } else {
            if (state === 'exists') check.repositoryState = 'exists';
            if (access === 'pull') await client.checkPull(repo);
            else await client.checkPush(repo);
          }
          check.ok = true;
        } catch (err) {
          check.error = formatError(err);
          check.errorKind = errorKind(err);
        }
        return check;
      }),
    );
    checks.sort((a, b) => `${a.registry}/${a.repository}`.localeCompare(`${b.registry}/${b.repository}`));
    const failed = checks.filter((c) => !c.ok);
    if (flags.json) {
      out.result(
        JSON.stringify({ command: 'auth check', config: filepath, ok: failed.length === 0, checks }, null, 2),
      );
    }
    out.info(
      renderTable(
        [
          { header: 'registry', shrink: 'middle' },
          { header: 'repository', shrink: 'middle' },
          { header: 'access' },
          { header: 'result' },
          { header: 'credentials', shrink: 'end', min: 24 },
          { header: 'detail', shrink: 'end' },
        ],
        checks.map((c) => [
          c.registry,
          c.repository,
          c.access,
          c.ok ? 'ok' : (c.errorKind ?? 'failed'),
          c.credentials,
          detailOf(c),
        ]),
        outputWidth(),
      ),
    );
    for (const c of failed) {
      const where = isLayoutKey(c.registry)
        ? `${c.registry}${c.repository ? `:${c.repository}` : ''}`
        : `${c.registry}/${c.repository}`;
      out.warn(`✗ ${c.access} ${where}: ${c.error}`);
    }
    const registries = new Set(checks.map((c) => apiHost(c.registry))).size;
    out.info(
      failed.length === 0
        ? `all ${plural(checks.length, 'check')} passed (${plural(registries, 'registry', 'registries')})`
        : `${failed.length} of ${plural(checks.length, 'check')} failed`,
    );
    return failed.length === 0 ? 0 : 2;
  } finally {
    await client.close();
  }
}
