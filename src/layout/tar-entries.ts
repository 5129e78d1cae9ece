// Where each file of a tar archive is: one pass over the headers (node-tar decodes them, PAX and GNU
// long names included), skipping the bodies, so that an OCI archive can be read in place — any blob
// streamed straight from its byte range — without unpacking it to disk.

import type { FileHandle } from 'node:fs/promises';
import type { HeaderData } from 'tar';
import { LayoutError } from '../errors.js';
import { registryText } from '../sanitize.js';

export interface TarEntry {
  /** Normalised: no leading "./". */
  path: string;
  /** Where the body starts in the file. */
  offset: number;
  size: number;
  /** Regular file, or something else (a directory, a link...), which an OCI archive reader does not follow. */
  regular: boolean;
}

const BLOCK = 512;
/** PAX and GNU long-name bodies larger than this are not believed. */
const META_LIMIT = 1024 * 1024;
const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);

function normalise(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  return p.replace(/\/+$/, '');
}

async function readAt(file: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/**
 * The entries of the tar archive open as `file` (`where` names it in errors), by normalised path; a path
 * that appears twice maps to its last entry, as extracting would leave it.
 */
export async function readTarEntries(file: FileHandle, where: string): Promise<Map<string, TarEntry>> {
  // node-tar is loaded when an archive is read, not at every command's start.
  const { Header, Pax } = await import('tar');
  const { size: fileSize } = await file.stat();
  const entries = new Map<string, TarEntry>();
  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  let position = 0;
  for (;;) {
    const block = await readAt(file, position, BLOCK);
    if (position === 0 && block.length >= 2 && block[0] === 0x1f && block[1] === 0x8b) {
      throw new LayoutError(`${where} is gzip-compressed; an OCI archive is a plain tar`, {
        hint: `gunzip it first, then give the .tar`,
      });
    }
    if (block.length < BLOCK) {
      if (position === 0)
        throw new LayoutError(`${where} is not a tar archive (shorter than one tar header)`);
      // An archive whose end-of-archive blocks are missing: what was read is all there is.
      if (block.length === 0) break;
      throw new LayoutError(`${where} is truncated: a tar header at byte ${position} is cut short`);
    }
    if (block.every((b) => b === 0)) break;
    const header = new Header(block, 0, ex, gex);
    if (!header.cksumValid) {
      if (position === 0)
        throw new LayoutError(`${where} is not a tar archive (no valid tar header at its start)`);
      throw new LayoutError(`${where} is damaged: the tar header at byte ${position} has a bad checksum`);
    }
    const size = header.size ?? 0;
    const bodyAt = position + BLOCK;
    if (bodyAt + size > fileSize) {
      throw new LayoutError(
        `${where} is truncated: "${registryText(header.path ?? '', 120)}" needs ${size} bytes at byte ${bodyAt}, the file ends at ${fileSize}`,
      );
    }
    const type = header.type;
    if (type === 'ExtendedHeader' || type === 'GlobalExtendedHeader' || type === 'NextFileHasLongPath') {
      if (size > META_LIMIT)
        throw new LayoutError(`${where}: a tar extended header at byte ${position} is too large`);
      const body = (await readAt(file, bodyAt, size)).toString('utf8');
      if (type === 'ExtendedHeader') ex = Pax.parse(body, ex, false);
      else if (type === 'GlobalExtendedHeader') gex = Pax.parse(body, gex, true);
      else ex = { ...ex, path: body.replace(/\0.*$/s, '') };
    } else {
      const path = normalise(header.path ?? '');
      if (path !== '') entries.set(path, { path, offset: bodyAt, size, regular: REGULAR.has(type) });
      ex = undefined;
    }
    position = bodyAt + BLOCK * Math.ceil(size / BLOCK);
  }
  return entries;
}
