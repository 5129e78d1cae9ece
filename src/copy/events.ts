// Typed events the engine emits. The CLI renders them (spinner, log lines, JSON); the engine never prints.

import type { Digest } from '../oci/digest.js';
import type { ImageResult } from './result.js';

export type BlobAction = 'exists' | 'upload' | 'mount';

/**
 * A change made on a target registry, emitted once the registry has confirmed it: what an audit log
 * records. `tag-move` carries the digest the tag pointed at before; `blob-mount` the repository the blob
 * was linked from; a referrer's manifest, cosign tag or fallback index carries the `subject` it is about;
 * `repository-create` (ECR) the settings the repository was created with.
 */
export type WriteEvent = ContentWriteEvent | RepositoryCreateEvent;

export interface ContentWriteEvent {
  type: 'write';
  action: 'blob-upload' | 'blob-mount' | 'manifest-put' | 'tag-create' | 'tag-move' | 'tag-rewrite';
  /** The source image this write is for. */
  source: string;
  registry: string;
  repository: string;
  digest: Digest;
  size: number;
  mediaType?: string;
  tag?: string;
  previousDigest?: Digest;
  from?: string;
  /** For a referrer (and a fallback referrers index): the manifest it refers to. */
  subject?: Digest;
  artifactType?: string;
}

export interface RepositoryCreateEvent {
  type: 'write';
  action: 'repository-create';
  /** The source image whose copy created it. */
  source: string;
  registry: string;
  repository: string;
  /** What it was created with, in words ("immutable tags, scan on push, AES256 encryption"). */
  settings: string;
}

export type CopyEvent =
  | WriteEvent
  | { type: 'image-start'; source: string; targets: string[] }
  | { type: 'target-up-to-date'; source: string; target: string; digest: Digest }
  | { type: 'blob-start'; source: string; digest: Digest; size: number; uploads: number }
  | { type: 'blob-progress'; digest: Digest; bytes: number }
  | { type: 'blob-done'; target: string; digest: Digest; size: number; action: BlobAction }
  | { type: 'manifest-pushed'; target: string; digest: Digest; selector: string }
  | { type: 'image-done'; result: ImageResult };

export type EventSink = (event: CopyEvent) => void;
