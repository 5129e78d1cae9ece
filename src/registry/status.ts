// The one place where HTTP statuses are sorted: what a registry's answer means for the request that got
// it. The transport asks whether to retry; the client asks whether to re-authenticate and which typed
// error to raise; the copy engine asks (through errors.isTransient) whether a failed transfer is worth
// starting again. They all read this table, so they cannot disagree.

/**
 * - ok: the request did what it asked.
 * - reauth: credentials were missing, expired or refused (401; or a vendor's 403 that means "expired").
 * - retry: a fault that may pass (408, 429, most 5xx): back off and send again.
 * - not-found: the thing named does not exist (404).
 * - denied: understood and refused (403, or an error code DENIED): an answer, never retried.
 * - fail: anything else (400, 405, 416, 501, ...): a registry error, not retried.
 */
export type StatusClass = 'ok' | 'reauth' | 'retry' | 'not-found' | 'denied' | 'fail';

/** Vendor behaviour that changes the meaning of an answer (from the registry's profile). */
export interface StatusQuirks {
  /** A 403 with the registry error code DENIED means the credential expired (ECR): renew it and retry. */
  deniedMeansExpired?: boolean;
}

/**
 * Server errors that will not pass by sending the same request again: 501 Not Implemented, 505 HTTP
 * Version Not Supported, 507 Insufficient Storage, 508 Loop Detected, 510 Not Extended, 511 Network
 * Authentication Required.
 */
const PERMANENT_5XX = new Set([501, 505, 507, 508, 510, 511]);

/** Whether sending the same request again, after a pause, may succeed. */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && !PERMANENT_5XX.has(status);
}

/**
 * What an answer means. `codes` are the registry's own error codes from the body (`{"errors":[{code}]}`),
 * when the caller has read them; `renewable` says whether the credential in use can be fetched again.
 */
export function classifyStatus(
  status: number,
  options: { codes?: readonly string[]; quirks?: StatusQuirks; renewable?: boolean } = {},
): StatusClass {
  if (status >= 200 && status < 400) return 'ok';
  if (status === 401) return 'reauth';
  if (isRetryableStatus(status)) return 'retry';
  if (status === 404) return 'not-found';
  const denied = status === 403 || (options.codes ?? []).includes('DENIED');
  if (denied) {
    // ECR answers an expired token with 403 DENIED and no challenge: renewing is the only way on.
    if (status === 403 && options.quirks?.deniedMeansExpired && options.renewable) return 'reauth';
    return 'denied';
  }
  return 'fail';
}
