// regmirror auth check: before a release, prove that every source can be pulled and every target pushed.
// Reads one tag-list page per source; opens and cancels one upload session per target. Stores nothing.

import { errorKind, formatError } from '../../errors.js';
import { apiHost, formatRepository, isLayoutKey, type Repository } from '../../reference/reference.js';
import type { Output } from '../output.js';
import { table } from '../summary.js';
import { openConfigRun, type SyncFlags, type SyncSession } from './sync.js';

interface Check {
  registry: string;
  repository: string;
  access: 'pull' | 'push';
  credentials: string;
  ok: boolean;
  error?: string;
  errorKind?: string;
}

export async function runAuthCheck(
  flags: SyncFlags,
  session: SyncSession,
  out: Output = session.out,
): Promise<number> {
  // Layouts are checked here, row by row, instead of all before any work.
  const { filepath, mirrors, client, layouts } = await openConfigRun(flags, session, {
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
        let credentials = 'none (anonymous)';
        const check: Check = {
          registry: repo.registry,
          repository: repo.path,
          access,
          credentials,
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
          credentials = await client.authenticator(repo.registry).describeCredentialSource();
          check.credentials = credentials;
          if (access === 'pull') await client.checkPull(repo);
          else await client.checkPush(repo);
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
      table(
        ['registry', 'repository', 'access', 'result', 'credentials'],
        checks.map((c) => [
          c.registry,
          c.repository,
          c.access,
          c.ok ? 'ok' : (c.errorKind ?? 'failed'),
          c.credentials === 'no credentials found' ? 'none (anonymous)' : c.credentials,
        ]),
      ),
    );
    for (const c of failed) {
      const where = isLayoutKey(c.registry)
        ? `${c.registry}${c.repository ? `:${c.repository}` : ''}`
        : `${c.registry}/${c.repository}`;
      out.warn(`✗ ${c.access} ${where}: ${c.error}`);
    }
    out.info(
      failed.length === 0
        ? `all ${checks.length} checks passed (${new Set(checks.map((c) => apiHost(c.registry))).size} registries)`
        : `${failed.length} of ${checks.length} checks failed`,
    );
    return failed.length === 0 ? 0 : 2;
  } finally {
    await client.close();
  }
}
