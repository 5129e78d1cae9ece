// What a copy reports, per image and per target. Shapes are part of the --json report: change with care.

import type { ErrorKind } from '../errors.js';
import type { Digest } from '../oci/digest.js';

/**
 * copied: done in this run; up-to-date: the tag already had the digest; kept: the tag points elsewhere
 * and overwrite "never" left it; planned: a dry run found work to do; failed: see error.
 */
export type TargetStatus = 'copied' | 'up-to-date' | 'kept' | 'planned' | 'failed';

/** What happens to the target tag: created, moved from previousDigest, kept as it is, or nothing to do. */
export type TagAction = 'create' | 'move' | 'keep' | 'none';

export type RefusalRule = 'overwrite-never' | 'immutable-tags';

export interface TargetResult {
  target: string;
  status: TargetStatus;
  /** Digest the target tag points at after the copy. */
  digest?: Digest;
  /** Digest the target tag pointed at before, when it moved (or would move). */
  previousDigest?: Digest;
  tagAction?: TagAction;
  /** In a plan: what would be uploaded / mounted / pushed. */
  blobsUploaded: number;
  blobsMounted: number;
  blobsExisting: number;
  bytesUploaded: number;
  /** Bytes of the blobs mounted (or, in a plan, to be mounted): moved inside the registry, not sent. */
  bytesMounted: number;
  manifestsPushed: number;
  /** Plan only, set by the caller that looked: the target repository does not exist yet. */
  newRepository?: boolean;
  /** Referrers (signatures, SBOMs, attestations, cosign tags) brought to the target; in a plan, to bring. */
  referrersCopied: number;
  /** Which: each with the manifest it refers to. Absent when none. */
  referrers?: ReferrerEntry[];
  /**
   * The target repository did not exist and was created for this copy (in a plan: would be created);
   * registries that need it: ECR, ECR Public.
   */
  repositoryCreated?: boolean;
  /**
   * The rule that left the target tag where it was: "overwrite-never" (the mirror's overwrite policy, status
   * kept) or "immutable-tags" (the repository refused to move it: kept with overwrite "never", else failed).
   */
  refusedBy?: RefusalRule;
  error?: string;
  errorKind?: ErrorKind;
}

/** A referrer copied to a target (or, in a plan, to be copied). */
export interface ReferrerEntry {
  digest: Digest;
  /** The manifest it refers to. */
  subject: Digest;
  artifactType?: string;
  /** cosign's tag it is found under (kept at the target). */
  tag?: string;
}

export interface ImageResult {
  source: string;
  digest?: Digest;
  mediaType?: string;
  /** With a platform filter: the digest of the filtered index the targets get (differs from `digest`). */
  filteredDigest?: Digest;
  platforms?: string[];
  targets: TargetResult[];
  /** A failure before any target could be worked on (source unreadable...). */
  error?: string;
  errorKind?: ErrorKind;
  /** ISO time the image was started. */
  startedAt?: string;
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
    bytesMounted: 0,
    manifestsPushed: 0,
    referrersCopied: 0,
  };
}
