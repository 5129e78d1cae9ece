// What the layout store needs from a layout, whether a directory (oci:) or a tar file (oci-archive:).

import type { Readable } from 'node:stream';
import type { UploadSink } from '../copy/store.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import type { LayoutIndex } from './index-file.js';

/** The extra file a bundle carries beside index.json: which source each image came from (bundle.ts). */
export const BUNDLE_FILE = 'regmirror-bundle.json';

/** Told about every blob file opened for reading (--debug traces; tests count them). */
export type ReadTrace = (location: string) => void;

export interface LayoutReader {
  /** The directory or file, for messages. */
  readonly where: string;
  /** Exists, is a layout, index.json parses: else a LayoutError that says which and what to do. */
  checkReadable(): Promise<void>;
  index(): Promise<LayoutIndex>;
  /** Size of a blob, undefined when the layout does not hold it. */
  blobSize(digest: Digest): Promise<number | undefined>;
  /** The blob's bytes as stored (the caller verifies them). */
  openBlob(digest: Digest): Promise<Readable>;
  /** A small blob (a manifest) whole, at most `limit` bytes. */
  readBlob(digest: Digest, limit: number): Promise<Buffer>;
  /** Where a blob is, for messages: "/media/bundle/blobs/sha256/…", "bundle.tar:blobs/sha256/…". */
  blobLocation(digest: Digest): string;
  readExtra(name: string): Promise<Buffer | undefined>;
}

export interface LayoutWriter extends LayoutReader {
  /** Missing, an empty directory or a layout: else a LayoutError. Writes nothing. */
  checkWritable(): Promise<void>;
  /** A session that writes one blob (temporary file, verified, renamed into place). */
  startBlob(): Promise<UploadSink>;
  putBlob(digest: Digest, bytes: Uint8Array): Promise<void>;
  /** Add the image to index.json, under `name` (moving the name if another image had it) or unnamed. */
  nameImage(desc: Descriptor, name: string | undefined): Promise<void>;
  writeExtra(name: string, bytes: Uint8Array): Promise<void>;
  /**
   * At the end of a run: an archive is written here when `commit` (not after an interrupt). 'staged':
   * an archive whose new content waits in its staging directory for a run that completes it.
   */
  close(commit: boolean): Promise<'done' | 'staged'>;
}
