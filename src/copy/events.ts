// Typed events the engine emits. The CLI renders them (spinner, log lines, JSON); the engine never prints.

import type { Digest } from '../oci/digest.js';
import type { ImageResult } from './result.js';

export type BlobAction = 'exists' | 'upload' | 'mount';

export type CopyEvent =
  | { type: 'image-start'; source: string; targets: string[] }
  | { type: 'target-up-to-date'; source: string; target: string; digest: Digest }
  | { type: 'blob-start'; source: string; digest: Digest; size: number; uploads: number }
  | { type: 'blob-progress'; digest: Digest; bytes: number }
  | { type: 'blob-done'; target: string; digest: Digest; size: number; action: BlobAction }
  | { type: 'manifest-pushed'; target: string; digest: Digest; selector: string }
  | { type: 'image-done'; result: ImageResult };

export type EventSink = (event: CopyEvent) => void;
