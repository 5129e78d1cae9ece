// --audit-log FILE: one JSON line per write the run made on a target registry (repository created, blob
// upload, blob mount, manifest put, tag created / moved / rewritten), appended with a synchronous write as
// each happens, so that a run killed at any moment leaves a true record of what it did. Never a credential:
// the identity is the user name the registry knows us by, nothing else.

import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CopyEvent, WriteEvent } from '../copy/events.js';
import { UsageError } from '../errors.js';
import { isLayoutKey } from '../reference/reference.js';
import { sanitize } from '../sanitize.js';

export interface AuditEntry {
  time: string;
  action: WriteEvent['action'];
  registry: string;
  repository: string;
  /** Absent for repository-create. */
  digest?: string;
  size?: number;
  mediaType?: string;
  tag?: string;
  previousDigest?: string;
  /** For a mount: the repository the blob was linked from. */
  from?: string;
  /** For a referrer (its manifest, cosign tag or fallback index): the manifest it refers to. */
  subject?: string;
  artifactType?: string;
  /** For repository-create: what the repository was created with. */
  settings?: string;
  source: string;
  /** The user name the registry was given, when there was one (anonymous access: absent). */
  identity?: string;
}

export class AuditLog {
  private fd: number | undefined;
  private readonly identities = new Map<string, string | undefined>();

  private constructor(
    readonly path: string,
    fd: number,
    private readonly identityOf: (registry: string) => Promise<string | undefined>,
  ) {
    this.fd = fd;
  }

  /** Open (create or append to) the file; a path that cannot be written is a usage error, before any work. */
  static open(path: string, identityOf: (registry: string) => Promise<string | undefined>): AuditLog {
    const full = resolve(path);
    try {
      return new AuditLog(full, openSync(full, 'a', 0o600), identityOf);
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      throw new UsageError(`--audit-log: cannot open ${full} for appending (${code})`);
    }
  }

  /** Learn the identities used for these registries now, so that writes are logged without waiting. */
  async prime(registries: Iterable<string>): Promise<void> {
    await Promise.all(
      [...new Set(registries)].map(async (r) => {
        if (!this.identities.has(r)) this.identities.set(r, await this.identityOf(r).catch(() => undefined));
      }),
    );
  }

  readonly onEvent = (e: CopyEvent): void => {
    if (e.type !== 'write') return;
    if (this.identities.has(e.registry)) {
      this.append(e, this.identities.get(e.registry));
      return;
    }
    const time = new Date();
    void this.prime([e.registry]).then(() => this.append(e, this.identities.get(e.registry), time));
  };

  private append(e: WriteEvent, identity: string | undefined, time = new Date()): void {
    if (this.fd === undefined) return;
    const entry: AuditEntry =
      e.action === 'repository-create'
        ? {
            time: time.toISOString(),
            action: e.action,
            registry: e.registry,
            repository: e.repository,
            settings: e.settings,
            source: e.source,
            ...(identity !== undefined ? { identity } : {}),
          }
        : {
            time: time.toISOString(),
            action: e.action,
            registry: e.registry,
            repository: e.repository,
            digest: e.digest,
            size: e.size,
            ...(e.mediaType !== undefined ? { mediaType: e.mediaType } : {}),
            ...(e.tag !== undefined ? { tag: e.tag } : {}),
            ...(e.previousDigest !== undefined ? { previousDigest: e.previousDigest } : {}),
            ...(e.from !== undefined ? { from: e.from } : {}),
            ...(e.subject !== undefined ? { subject: e.subject } : {}),
            ...(e.artifactType !== undefined ? { artifactType: e.artifactType } : {}),
            source: e.source,
            ...(identity !== undefined ? { identity } : {}),
          };
    // One write(2) per line on an O_APPEND descriptor: complete lines, in the kernel as soon as written.
    // Media types come from registries: sanitised (losslessly, JSON stays the same) like every output.
    writeSync(this.fd, `${sanitize(JSON.stringify(entry), 'line')}\n`);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * The audit log a command asked for (--audit-log), with the identities for `registries` already looked
 * up through the client; undefined without the flag.
 */
export async function openAuditLog(
  path: string | undefined,
  client: { authenticator(registry: string): { identity(): Promise<string | undefined> } },
  registries: Iterable<string>,
): Promise<AuditLog | undefined> {
  if (path === undefined) return undefined;
  // A layout has no identity: the files are written as whoever runs regmirror.
  const log = AuditLog.open(path, (registry) =>
    isLayoutKey(registry) ? Promise.resolve(undefined) : client.authenticator(registry).identity(),
  );
  await log.prime(registries);
  return log;
}

/** Call every sink with each event. */
export function allOf(...sinks: (((e: CopyEvent) => void) | undefined)[]): (e: CopyEvent) => void {
  const live = sinks.filter((s): s is (e: CopyEvent) => void => s !== undefined);
  return (e) => {
    for (const s of live) s(e);
  };
}
