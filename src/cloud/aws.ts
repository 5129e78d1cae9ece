// What ECR and ECR Public share: the AWS SDK v3 (loaded lazily, inside the hooks, so that a run that never
// talks to AWS never loads it), the credentials it signs with (the SDK default chain, a named profile, an
// assumed role), authorization tokens turned into renewable registry credentials, SDK errors turned into
// regmirror's errors that name the IAM action, and the repository-creation rules of the config.
//
// Endpoints are never overridden here: the SDK's own AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_ECR_PUBLIC
// (and the shared config's endpoint_url) keep working, which is also how the tests reach a local stand-in.

import type { ECRClientConfig } from '@aws-sdk/client-ecr';
import type { RepositoryCreationRule, VendorSettings } from '../config/resolve.js';
import type { RepositorySettings } from '../config/schema.js';
import {
  AuthError,
  ConfigError,
  type ErrorContext,
  isAbort,
  NetworkError,
  PermissionError,
  RegistryError,
} from '../errors.js';
import { type ExpiringCredential, expiringProvider } from '../registry/profile/credential-provider.js';
import type { CredentialProvider, VendorContext } from '../registry/profile/profile.js';

/** What an authorization token is worth when the API does not say (ECR: 12 hours). */
const DEFAULT_TOKEN_LIFETIME_MS = 12 * 60 * 60 * 1000;

/**
 * The vendor settings of a profile, as config/resolve.ts wrote them (ECR credential forms, repository
 * creation). The profile carries them untyped so that the generic layer knows nothing of them.
 */
export function vendorSettings(ctx: VendorContext): VendorSettings {
  return (ctx.settings.vendor ?? {}) as VendorSettings;
}

/**
 * Before an SDK client is made: the SDK warns on stderr, once per process, that its releases after January
 * 2027 will need Node 22. That is advice for whoever upgrades the dependency, not for someone mirroring
 * images; regmirror runs on Node 20 with the SDK it ships. A user who sets the variable keeps their choice.
 */
export function quietSdkNodeWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** Where the AWS credentials come from: the SDK default chain, or a named profile, maybe then a role. */
export interface AwsIdentityConfig {
  profile?: string | undefined;
  roleArn?: string | undefined;
}

/** "the AWS SDK default chain", "AWS profile prod, then role arn:…": for messages, never a secret. */
export function describeIdentity(identity: AwsIdentityConfig): string {
  const base = identity.profile ? `AWS profile ${identity.profile}` : 'the AWS SDK default chain';
  return identity.roleArn ? `${base}, then role ${identity.roleArn}` : base;
}

/**
 * The credentials an SDK client signs with; undefined lets the client use the default chain (environment,
 * SSO and shared profiles, web identity as in GitHub Actions OIDC, container and instance roles).
 */
export async function awsCredentials(
  identity: AwsIdentityConfig,
  region: string | undefined,
): Promise<ECRClientConfig['credentials']> {
  if (!identity.profile && !identity.roleArn) return undefined;
  const providers = await import('@aws-sdk/credential-providers');
  const base = identity.profile ? providers.fromIni({ profile: identity.profile }) : undefined;
  if (!identity.roleArn) return base;
  return providers.fromTemporaryCredentials({
    ...(base ? { masterCredentials: base } : {}),
    params: { RoleArn: identity.roleArn, RoleSessionName: 'regmirror' },
    ...(region ? { clientConfig: { region } } : {}),
  });
}

/** The part of an SDK error this module reads. */
interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

function asSdkError(err: unknown): SdkError {
  return typeof err === 'object' && err !== null ? (err as SdkError) : { message: String(err) };
}

/** The SDK error's name ("RepositoryNotFoundException"), for the callers that expect some. */
export function awsErrorName(err: unknown): string | undefined {
  return asSdkError(err).name;
}

const REJECTED_CREDENTIALS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'ExpiredToken',
]);

const DENIED = new Set(['AccessDeniedException', 'AccessDenied', 'UnauthorizedOperation']);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE']);

export const CREDENTIALS_HINT =
  'give the AWS SDK credentials: AWS_PROFILE or a profile in the config, AWS_ACCESS_KEY_ID and ' +
  'AWS_SECRET_ACCESS_KEY, `aws sso login`, a web identity token (GitHub Actions OIDC), or an instance or ' +
  'container role';

/**
 * An SDK failure as regmirror's error: a refused IAM permission names the action (`ecr:CreateRepository`)
 * to grant; missing or rejected AWS credentials, an unreachable API and a missing region say what to do.
 * `identity` says where the AWS credentials came from.
 */
export function awsFailure(
  err: unknown,
  call: { action: string; context: ErrorContext; identity: string },
): Error {
  if (isAbort(err)) return err as Error;
  const e = asSdkError(err);
  const name = e.name ?? 'Error';
  const message = (e.message ?? '').replace(/\s+/g, ' ').trim();
  const { action, context } = call;
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new AuthError(`no AWS credentials for ${action} (from ${call.identity}): ${message}`, {
      context,
      hint: CREDENTIALS_HINT,
      cause: err,
    });
  }
  if (DENIED.has(name)) {
    return new PermissionError(`AWS denied ${action} to the credentials from ${call.identity}: ${message}`, {
      context,
      hint: `grant ${action} to this AWS identity; docs/registries.md has the minimal IAM policy`,
      cause: err,
    });
  }
  if (REJECTED_CREDENTIALS.has(name)) {
    return new AuthError(`AWS rejected the credentials from ${call.identity} (${name}): ${message}`, {
      context,
      hint: 'check the AWS credentials; an SSO session may need `aws sso login` again',
      cause: err,
    });
  }
  if (/region is missing/i.test(message)) {
    return new ConfigError(`${action}: the AWS region is unknown`, {
      context,
      hint: 'set "region" in the registry\'s { "ecr": { ... } } credentials, or AWS_REGION',
      cause: err,
    });
  }
  if ((e.code && NETWORK_CODES.has(e.code)) || name === 'TimeoutError') {
    return new NetworkError(`cannot reach the AWS API for ${action}: ${e.code ?? name} ${message}`.trim(), {
      context,
      hint: 'check the network, or AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_ECR_PUBLIC when set',
      cause: err,
    });
  }
  const status = e.$metadata?.httpStatusCode;
  return new RegistryError(`${action} failed: ${name}${message ? `: ${message}` : ''}`, {
    context,
    cause: err,
    ...(status !== undefined ? { status } : {}),
  });
}

/** The registry credentials in an authorization token: base64 of "AWS:<password>". */
export function decodeAuthorizationToken(token: string): { username: string; password: string } | undefined {
  const text = Buffer.from(token, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export interface TokenFetch {
  /** The API's token and its expiry; throws the SDK's error. */
  fetch(signal?: AbortSignal): Promise<{ token: string | undefined; expiresAt: Date | undefined }>;
  /** "ecr:GetAuthorizationToken" */
  action: string;
  /** For messages: "ECR token from GetAuthorizationToken (eu-west-1, the AWS SDK default chain)". */
  source: string;
  identity: string;
  registry: string;
  /**
   * No AWS credentials at all is not an error (anonymous access, as ECR Public allows for pulls): the
   * provider then has nothing, and says why through `missing`.
   */
  optional?: boolean;
}

/** A renewable registry credential from an authorization-token API, renewed before it expires. */
export function tokenProvider(t: TokenFetch): CredentialProvider & { missing(): string | undefined } {
  let missing: string | undefined;
  const context: ErrorContext = { registry: t.registry, step: 'authorization token' };
  const provider = expiringProvider(async (signal): Promise<ExpiringCredential | undefined> => {
    let answer: Awaited<ReturnType<TokenFetch['fetch']>>;
    try {
      answer = await t.fetch(signal);
    } catch (err) {
      const failure = awsFailure(err, { action: t.action, context, identity: t.identity });
      if (t.optional && failure instanceof AuthError && asSdkError(err).name === 'CredentialsProviderError') {
        missing = failure.message;
        return undefined;
      }
      throw failure;
    }
    const decoded = answer.token ? decodeAuthorizationToken(answer.token) : undefined;
    if (!decoded) {
      throw new AuthError(`${t.action} answered without a usable authorization token`, { context });
    }
    missing = undefined;
    return {
      credential: { kind: 'basic', username: decoded.username, password: decoded.password },
      source: t.source,
      expiresAt: answer.expiresAt?.getTime() ?? Date.now() + DEFAULT_TOKEN_LIFETIME_MS,
    };
  });
  return Object.assign(provider, { missing: () => missing });
}

/**
 * Repository creation as the config asks for it: the registry's createRepositories, and per target
 * repository a mirror's own, which wins.
 */
export class CreationRules {
  constructor(
    private readonly registry: RepositoryCreationRule | undefined,
    private readonly byPath: Record<string, RepositoryCreationRule>,
  ) {}

  static of(settings: VendorSettings): CreationRules | undefined {
    const byPath = settings.repositoryCreation ?? {};
    const rules = new CreationRules(settings.createRepositories, byPath);
    return rules.all().some((r) => r.settings !== false) ? rules : undefined;
  }

  /** The settings `path` is created with, or false: not created by this run. */
  for(path: string): RepositorySettings | false {
    return (this.byPath[path] ?? this.registry)?.settings ?? false;
  }

  /** Every rule, for validation against what the vendor supports. */
  all(): RepositoryCreationRule[] {
    return [...(this.registry ? [this.registry] : []), ...Object.values(this.byPath)];
  }
}

/** A setting the vendor cannot honour, as a config error at its place in the config. */
export function unsupportedSetting(rule: RepositoryCreationRule, key: string, why: string): ConfigError {
  return new ConfigError(`config ${rule.at}.${key}: ${why}`);
}

/** Run `fn` once per key; a failure is forgotten so that the next caller tries again. */
export function once<T>(): (key: string, fn: () => Promise<T>) => Promise<T> {
  const inflight = new Map<string, Promise<T>>();
  return (key, fn) => {
    let p = inflight.get(key);
    if (!p) {
      p = fn();
      p.catch(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  };
}
