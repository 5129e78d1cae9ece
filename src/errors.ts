// The error classes. Every error the user can see carries an exit code and, where it applies,
// which side (source/target), registry, repository and step it concerns.

import { isRetryableStatus } from './registry/status.js';

export const EXIT_OK = 0;
/** Drift, or partial failure: some images failed, others were done. */
export const EXIT_PARTIAL = 1;
/** Usage, config or auth error before any work was done. */
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export type Side = 'source' | 'target';

export interface ErrorContext {
  side?: Side;
  registry?: string;
  repository?: string;
  /** What was being done: "manifest GET", "blob upload", "token request"... */
  step?: string;
  digest?: string;
}

export class RegmirrorError extends Error {
  readonly exitCode: number = EXIT_PARTIAL;
  readonly context: ErrorContext;
  /** One line saying what the user can do about it. */
  readonly hint: string | undefined;

  constructor(message: string, options: { context?: ErrorContext; hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.context = options.context ?? {};
    this.hint = options.hint;
  }
}

/** Bad command-line usage or an unparsable argument. */
export class UsageError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/** A string that is not a valid image reference. */
export class InvalidReferenceError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/** Malformed or invalid configuration. */
export class ConfigError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/** Credentials missing, rejected, or a credential source failing. */
export class AuthError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/** The registry understood the request and refused it (403, or an error code such as DENIED). */
export class PermissionError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/** Something the registry said does not exist (404 / MANIFEST_UNKNOWN / NAME_UNKNOWN / BLOB_UNKNOWN). */
export class NotFoundError extends RegmirrorError {}

/** A registry answered with an error we could not recover from (4xx other than the above, 5xx after retries). */
export class RegistryError extends RegmirrorError {
  readonly status: number | undefined;
  /** The registry's own error codes, e.g. ["TAG_INVALID"]. */
  readonly codes: string[];
  constructor(
    message: string,
    options: {
      context?: ErrorContext;
      hint?: string;
      cause?: unknown;
      status?: number;
      codes?: string[];
    } = {},
  ) {
    super(message, options);
    this.status = options.status;
    this.codes = options.codes ?? [];
  }
}

/**
 * The registry will not move a tag: the repository's tags are immutable (ECR answers TAG_INVALID). Not a
 * fault to retry and not a credentials problem: the rule that refused it is the repository's.
 */
export class ImmutableTagError extends RegmirrorError {
  readonly tag: string;
  /** The digest the tag keeps pointing at, when the registry told us (a HEAD after the refusal). */
  readonly current: string | undefined;
  readonly wanted: string;
  constructor(
    tag: string,
    wanted: string,
    current: string | undefined,
    options: { context?: ErrorContext; cause?: unknown; detail?: string } = {},
  ) {
    const from = current ? ` from ${current}` : '';
    super(
      `tag "${tag}" is immutable: the repository's tag immutability refused to move it${from} to ${wanted}` +
        (options.detail ? ` (${options.detail})` : ''),
      {
        ...options,
        hint: 'set "overwrite": "never" to keep published tags as they are (reported as kept), or make the repository\'s tags mutable',
      },
    );
    this.tag = tag;
    this.current = current;
    this.wanted = wanted;
  }
}

/**
 * An OCI layout or archive that cannot be used as given: missing, not a layout, an unreadable index.json,
 * a tar that is not an OCI archive, a directory that cannot be written. Fixed by the user, like a bad
 * reference: exit 2 when nothing else was done.
 */
export class LayoutError extends RegmirrorError {
  override readonly exitCode = EXIT_USAGE;
}

/**
 * A registry asked for something the trust rules refuse (registry/trust.ts): an upload Location on
 * another origin, credentials for a host that is not the registry. An answer, never retried or resumed.
 */
export class UntrustedError extends RegistryError {}

/** Could not reach the registry at all: DNS, refused connection, TLS failure, timeout. */
export class NetworkError extends RegmirrorError {}

/**
 * A request did not finish within its deadline (limits.timeouts): the registry is too slow, stalls, or
 * drips its answer. Not retried: the deadline is the budget for the whole request.
 */
export class TimeoutError extends NetworkError {}

/** Content whose bytes do not match the digest that names them. */
export class DigestMismatchError extends RegmirrorError {
  readonly expected: string;
  readonly actual: string;
  constructor(
    expected: string,
    actual: string,
    options: { context?: ErrorContext; cause?: unknown; hint?: string; what?: string } = {},
  ) {
    super(`${options.what ?? 'content'} does not match its digest: expected ${expected}, got ${actual}`, {
      ...options,
      context: { ...options.context, digest: expected },
      hint:
        options.hint ?? 'the source registry served corrupt content; nothing that refers to it was pushed',
    });
    this.expected = expected;
    this.actual = actual;
  }
}

/** The run was interrupted (SIGINT/SIGTERM). */
export class AbortedError extends RegmirrorError {
  override readonly exitCode = EXIT_INTERRUPTED;
  constructor(message = 'interrupted') {
    super(message);
  }
}

/** Why a file could not be read, in words: "does not exist", "is a directory, not a file", ... */
export function whyUnreadable(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'EACCES':
      return 'is not readable (permission denied)';
    default:
      return `cannot be read (${(err as Error).message})`;
  }
}

/**
 * A fault that may pass if the work is done again (a dropped connection, a 5xx or 429 that outlasted the
 * transport's retries, an upload session the registry lost): worth restarting a blob transfer for.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof TimeoutError) return false;
  if (err instanceof NetworkError || err instanceof UploadInterruptedError) return true;
  if (err instanceof RegistryError) return err.status !== undefined && isRetryableStatus(err.status);
  return false;
}

/** An upload session that cannot go on from where it was (the registry lost or refused its offset). */
export class UploadInterruptedError extends RegmirrorError {}

export function isAbort(err: unknown): boolean {
  return (
    err instanceof AbortedError ||
    (err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR'))
  );
}

/** "source registry quay.io, repository org/app, manifest GET"; "target layout oci:/media/bundle, ..." */
export function describeContext(ctx: ErrorContext): string {
  const parts: string[] = [];
  // A layout's "registry" is its key, "oci:PATH" / "oci-archive:FILE" (see reference.ts).
  const where = ctx.registry && /^oci(-archive)?:/.test(ctx.registry) ? 'layout' : 'registry';
  if (ctx.registry) parts.push(`${ctx.side ? `${ctx.side} ` : ''}${where} ${ctx.registry}`);
  else if (ctx.side) parts.push(ctx.side);
  if (ctx.repository) parts.push(`repository ${ctx.repository}`);
  if (ctx.step) parts.push(ctx.step);
  return parts.join(', ');
}

/** The one-line text shown to a user for any error. */
export function formatError(err: unknown): string {
  if (err instanceof RegmirrorError) {
    const where = describeContext(err.context);
    let text = where ? `${where}: ${err.message}` : err.message;
    if (err.hint) text += ` (${err.hint})`;
    return text;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof RegmirrorError) return err.exitCode;
  if (isAbort(err)) return EXIT_INTERRUPTED;
  return EXIT_PARTIAL;
}

export type ErrorKind =
  | 'usage'
  | 'config'
  | 'reference'
  | 'auth'
  | 'permission'
  | 'not-found'
  | 'digest-mismatch'
  | 'network'
  | 'registry'
  | 'immutable'
  | 'layout'
  | 'interrupted'
  | 'internal';

/** A stable, machine-readable kind for reports. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof UsageError) return 'usage';
  if (err instanceof ConfigError) return 'config';
  if (err instanceof InvalidReferenceError) return 'reference';
  if (err instanceof AuthError) return 'auth';
  if (err instanceof PermissionError) return 'permission';
  if (err instanceof NotFoundError) return 'not-found';
  if (err instanceof DigestMismatchError) return 'digest-mismatch';
  if (err instanceof NetworkError) return 'network';
  if (err instanceof ImmutableTagError) return 'immutable';
  if (err instanceof LayoutError) return 'layout';
  if (isAbort(err)) return 'interrupted';
  if (err instanceof RegmirrorError) return 'registry';
  return 'internal';
}

/** Kinds that mean "could not start": bad input or credentials, exit 2 when nothing else was done. */
export function isSetupKind(kind: ErrorKind | undefined): boolean {
  return (
    kind === 'usage' ||
    kind === 'config' ||
    kind === 'reference' ||
    kind === 'auth' ||
    kind === 'permission' ||
    kind === 'layout'
  );
}
