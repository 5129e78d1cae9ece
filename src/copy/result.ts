// What a copy reports, per image and per target. Shapes are part of the --json report: change with care.

import type { ErrorKind } from '../errors.js';
import type { Digest } from '../oci/digest.js';

export type TargetStatus = 'copied' | 'up-to-date' | 'failed';

export interface TargetResult {
  target: string;
  status: TargetStatus;
  /** Digest the target tag points at after the copy. */
  digest?: Digest;
  /** Digest the target tag pointed at before, when it moved. */
  previousDigest?: Digest;
  blobsUploaded: number;
  blobsMounted: number;
  blobsExisting: number;
  bytesUploaded: number;
  manifestsPushed: number;
  error?: string;
  errorKind?: ErrorKind;
}

export interface ImageResult {
  source: string;
  digest?: Digest;
  mediaType?: string;
  targets: TargetResult[];
  /** A failure before any target could be worked on (source unreadable...). */
  error?: string;
  errorKind?: ErrorKind;
  durationMs: number;
}

export function newTargetResult(target: string): TargetResult {
  return {
    target,
    status: 'copied',
    blobsUploaded: 0,
    blobsMounted: 0,
    blobsExisting: 0,
    bytesUploaded: 0,
    manifestsPushed: 0,
  };
}
