import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './run-command.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/**
 * skopeo as an independent witness: after a copy, what does another client see? Every call runs
 * isolated from the developer's own configuration (empty auth file, HOME in a temp dir), so a
 * `docker login` on the machine can never make a test pass.
 */

export interface SkopeoOptions {
  /** `user:password`; without it skopeo goes anonymous (--no-creds). */
  creds?: string;
}

/** Run skopeo in a throwaway HOME with an empty auth file; `args` gets that auth file's path. */
async function runIsolated(args: (dir: string, authfile: string) => string[]): Promise<Buffer> {
  const dir = await makeTempDir('skopeo');
  try {
    const authfile = join(dir, 'auth.json');
    await writeFile(authfile, '{"auths":{}}\n');
    const { stdout } = await runCommand('skopeo', args(dir, authfile), {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        XDG_RUNTIME_DIR: dir,
        XDG_CONFIG_HOME: dir,
      },
      cwd: dir,
    });
    return stdout;
  } finally {
    await removeDir(dir);
  }
}

function runSkopeo(
  subcommand: string,
  ref: string,
  opts: SkopeoOptions,
  extra: string[] = [],
): Promise<Buffer> {
  const auth = opts.creds !== undefined ? ['--creds', opts.creds] : ['--no-creds'];
  return runIsolated((_dir, authfile) => [
    subcommand,
    ...extra,
    '--tls-verify=false',
    '--authfile',
    authfile,
    ...auth,
    `docker://${ref}`,
  ]);
}

/** The manifest exactly as the registry serves it; `ref` is `host:port/repo:tag` or `...@sha256:...`. */
export function skopeoInspectRaw(ref: string, opts: SkopeoOptions = {}): Promise<Buffer> {
  return runSkopeo('inspect', ref, opts, ['--raw']);
}

/** Tags of `host:port/repo`. */
export async function skopeoListTags(repoRef: string, opts: SkopeoOptions = {}): Promise<string[]> {
  const out = await runSkopeo('list-tags', repoRef, opts);
  const parsed = JSON.parse(out.toString('utf8')) as { Tags?: string[] | null };
  return parsed.Tags ?? [];
}

/**
 * Pull the whole image (every child, every blob) into a throwaway directory: skopeo verifies each blob
 * against its digest on the way, so this fails on any missing or corrupt content. `all` copies every
 * platform of an index.
 */
export async function skopeoPullAll(ref: string, opts: SkopeoOptions = {}): Promise<void> {
  const auth = opts.creds !== undefined ? ['--src-creds', opts.creds] : ['--src-no-creds'];
  await runIsolated((dir, authfile) => [
    'copy',
    '--all',
    '--src-tls-verify=false',
    '--authfile',
    authfile,
    ...auth,
    `docker://${ref}`,
    `dir:${join(dir, 'image')}`,
  ]);
}

/**
 * skopeo on a non-registry reference (`oci:DIR[:NAME]`, `oci-archive:FILE[:NAME]`): the manifest bytes
 * exactly as skopeo reads them from the layout.
 */
export function skopeoInspectRawLayout(ref: string): Promise<Buffer> {
  return runIsolated(() => ['inspect', '--raw', ref]);
}

/**
 * Copy a layout image (every platform) to a throwaway `dir:`: skopeo reads every manifest and blob and
 * checks each against its digest, so this fails on any missing or corrupt content in the layout.
 */
export async function skopeoVerifyLayout(ref: string): Promise<void> {
  await runIsolated((dir) => ['copy', '--all', '--preserve-digests', ref, `dir:${join(dir, 'image')}`]);
}

/** skopeo writing a layout: `docker://ref` (every platform, digests kept) into `dest` (oci:… / oci-archive:…). */
export async function skopeoCopyToLayout(ref: string, dest: string, opts: SkopeoOptions = {}): Promise<void> {
  const auth = opts.creds !== undefined ? ['--src-creds', opts.creds] : ['--src-no-creds'];
  await runIsolated((_dir, authfile) => [
    'copy',
    '--all',
    '--preserve-digests',
    '--src-tls-verify=false',
    '--authfile',
    authfile,
    ...auth,
    `docker://${ref}`,
    dest,
  ]);
}
