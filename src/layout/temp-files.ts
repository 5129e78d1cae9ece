// Temporary files in a layout: every write goes to one first and is renamed into place when complete,
// so a layout never holds half a blob or half an index.json. Their names carry the writer's process id:
// a later run removes those whose writer is gone (killed), and leaves alone those of a live one.

import { randomBytes } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

const TEMP_NAME = /\.regmirror-(\d+)-[0-9a-f]+\.tmp$/;

/** A fresh temporary name for `base` ("" for an anonymous blob): ".index.json.regmirror-<pid>-<hex>.tmp". */
export function tempName(base: string): string {
  return `.${base}${base === '' ? '' : '.'}regmirror-${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove the temporary files in `dir` left by writers that no longer run; returns how many. */
export async function removeStaleTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    await unlink(join(dir, name)).then(
      () => removed++,
      () => {},
    );
  }
  return removed;
}

export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}
