// Amazon ECR Public: public.ecr.aws/<registry alias>/<repository>, its API in us-east-1 only. The same
// upload rules as ECR (parts of at least 5 MiB, PATCH → 201, a Range that stops advancing), an expired
// token answered 403 DENIED, mounts answered 202, no server-side tag immutability. Its API takes about
// ten image (manifest) pushes a second per account: faster ones are answered 429, so they are paced.
//
// Hooks: the registry speaks Bearer tokens from its own /token endpoint, fetched (by the generic auth
// layer) with Basic AWS:<password>, the password being the API's authorization token (GetAuthorizationToken,
// renewed before it expires and when the registry or its token endpoint refuses it). Without AWS
// credentials at all, access is anonymous: ECR Public serves pulls to anyone. Repositories are created
// with DescribeRepositories + CreateRepository (with catalog data) when the config says createRepositories;
// the API's repository name is the path without the registry alias, which must be one of the caller's own
// (DescribeRegistries).

import type { ECRPUBLICClient } from '@aws-sdk/client-ecr-public';
import type { RepositorySettings } from '../config/schema.js';
import { ConfigError, type ErrorContext, PermissionError } from '../errors.js';
import type {
  CredentialProvider,
  RepositoryManager,
  VendorContext,
  VendorDefinition,
} from '../registry/profile/profile.js';
import {
  type AwsIdentityConfig,
  awsCredentials,
  awsErrorName,
  awsFailure,
  CreationRules,
  describeIdentity,
  once,
  quietSdkNodeWarning,
  tokenProvider,
  unsupportedSetting,
  vendorSettings,
} from './aws.js';
import { parseEcrHost } from './ecr.js';

const MIB = 1024 * 1024;

/** ECR Public's API exists in this region only. */
export const ECR_PUBLIC_REGION = 'us-east-1';

/** <alias>/<name...> → the alias and the API's repository name; undefined for a path with no alias. */
export function splitPublicPath(path: string): { alias: string; repositoryName: string } | undefined {
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) return undefined;
  return { alias: path.slice(0, slash), repositoryName: path.slice(slash + 1) };
}

interface PublicRegistry {
  registry: string;
  identity: AwsIdentityConfig;
  /** Whether the config named { "ecrPublic": ... } (else: the default chain, optional). */
  configured: boolean;
  client(): Promise<ECRPUBLICClient>;
}

const registries = new WeakMap<VendorContext, PublicRegistry>();

function publicRegistry(ctx: VendorContext): PublicRegistry {
  let found = registries.get(ctx);
  if (found) return found;
  const configured = vendorSettings(ctx).ecrPublic;
  if (parseEcrHost(ctx.host)) {
    throw new ConfigError(
      `config registries["${ctx.registry}"]: ${ctx.host} is ECR (private), not ECR Public; use { "ecr": {} } credentials or "type": "ecr"`,
    );
  }
  const identity: AwsIdentityConfig = { profile: configured?.profile, roleArn: configured?.roleArn };
  let client: Promise<ECRPUBLICClient> | undefined;
  found = {
    registry: ctx.registry,
    identity,
    configured: configured !== undefined,
    client() {
      client ??= (async () => {
        quietSdkNodeWarning();
        const { ECRPUBLICClient } = await import('@aws-sdk/client-ecr-public');
        const credentials = await awsCredentials(identity, ECR_PUBLIC_REGION);
        return new ECRPUBLICClient({
          region: ECR_PUBLIC_REGION,
          ...(identity.profile ? { profile: identity.profile } : {}),
          ...(credentials ? { credentials } : {}),
        });
      })();
      return client;
    },
  };
  registries.set(ctx, found);
  return found;
}

function publicTokenProvider(r: PublicRegistry): CredentialProvider {
  const identity = describeIdentity(r.identity);
  return tokenProvider({
    // ECR Public's token also needs sts:GetServiceBearerToken: both are named when it is refused.
    action: 'ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken',
    registry: r.registry,
    identity,
    source: `ECR Public token from GetAuthorizationToken (${ECR_PUBLIC_REGION}; AWS credentials from ${identity})`,
    // Without any AWS credentials, public.ecr.aws is still readable anonymously.
    optional: !r.configured,
    async fetch(signal) {
      const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr-public');
      const client = await r.client();
      const out = await client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
      return {
        token: out.authorizationData?.authorizationToken,
        expiresAt: out.authorizationData?.expiresAt,
      };
    },
  });
}

/** "catalog data: description, about, usage, ARM 64, x86-64, Linux" */
export function describePublicSettings(s: RepositorySettings): string {
  const c = s.catalogData;
  if (!c) return 'no catalog data';
  const parts = [
    ...(c.description !== undefined ? ['description'] : []),
    ...(c.aboutText !== undefined ? ['about text'] : []),
    ...(c.usageText !== undefined ? ['usage text'] : []),
    ...(c.architectures ?? []),
    ...(c.operatingSystems ?? []),
  ];
  return parts.length > 0 ? `catalog data: ${parts.join(', ')}` : 'no catalog data';
}

class PublicRepositories implements RepositoryManager {
  private readonly ensured = once<'exists' | 'created'>();
  private readonly aliasLookup = once<string[]>();

  constructor(
    private readonly r: PublicRegistry,
    private readonly rules: CreationRules,
  ) {}

  manages(path: string): boolean {
    return this.rules.for(path) !== false;
  }

  describeSettings(path: string): string {
    const s = this.rules.for(path);
    return s === false ? 'not created by regmirror' : describePublicSettings(s);
  }

  private context(path: string, step: string): ErrorContext {
    return { side: 'target', registry: this.r.registry, repository: path, step };
  }

  private failure(err: unknown, action: string, path: string, step: string): Error {
    return awsFailure(err, {
      action,
      context: this.context(path, step),
      identity: describeIdentity(this.r.identity),
    });
  }

  /** The caller's registry aliases (DescribeRegistries), asked once per run. */
  private aliases(path: string, signal?: AbortSignal): Promise<string[]> {
    return this.aliasLookup('', async () => {
      const { DescribeRegistriesCommand } = await import('@aws-sdk/client-ecr-public');
      const client = await this.r.client();
      try {
        const out = await client.send(new DescribeRegistriesCommand({}), { abortSignal: signal });
        return (out.registries ?? []).flatMap((reg) => (reg.aliases ?? []).map((a) => a.name ?? ''));
      } catch (err) {
        throw this.failure(err, 'ecr-public:DescribeRegistries', path, 'registry alias lookup');
      }
    });
  }

  /** The API's repository name for `path`, once its alias is known to be the caller's. */
  private async repositoryName(path: string, signal?: AbortSignal): Promise<string> {
    const split = splitPublicPath(path);
    if (!split) {
      throw new PermissionError(`"${path}" names no registry alias`, {
        context: this.context(path, 'repository check'),
        hint: 'ECR Public repositories are <registry alias>/<repository>, e.g. public.ecr.aws/acme/app',
      });
    }
    const aliases = await this.aliases(path, signal);
    if (!aliases.includes(split.alias)) {
      throw new PermissionError(
        `the registry alias "${split.alias}" is not this AWS account's (its aliases: ${aliases.join(', ') || 'none'})`,
        {
          context: this.context(path, 'repository check'),
          hint: 'ECR Public repositories are created under your own registry alias; check the target or the AWS credentials',
        },
      );
    }
    return split.repositoryName;
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    const repositoryName = await this.repositoryName(path, signal);
    const { DescribeRepositoriesCommand } = await import('@aws-sdk/client-ecr-public');
    const client = await this.r.client();
    try {
      await client.send(new DescribeRepositoriesCommand({ repositoryNames: [repositoryName] }), {
        abortSignal: signal,
      });
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'RepositoryNotFoundException') return false;
      throw this.failure(err, 'ecr-public:DescribeRepositories', path, 'repository check');
    }
  }

  ensure(path: string, signal?: AbortSignal): Promise<'exists' | 'created'> {
    return this.ensured(path, async () => {
      if (await this.exists(path, signal)) return 'exists';
      const repositoryName = await this.repositoryName(path, signal);
      const settings = this.rules.for(path);
      const catalog = settings === false ? undefined : settings.catalogData;
      const { CreateRepositoryCommand } = await import('@aws-sdk/client-ecr-public');
      const client = await this.r.client();
      try {
        await client.send(
          new CreateRepositoryCommand({ repositoryName, ...(catalog ? { catalogData: catalog } : {}) }),
          { abortSignal: signal },
        );
        return 'created';
      } catch (err) {
        if (awsErrorName(err) === 'RepositoryAlreadyExistsException') return 'exists';
        throw this.failure(err, 'ecr-public:CreateRepository', path, 'repository create');
      }
    });
  }
}

export const ecrPublic: VendorDefinition = {
  kind: 'ecr-public',
  matchesHost: (host) => host === 'public.ecr.aws',
  upload: { chunkSize: 8 * MIB, minChunkSize: 5 * MIB },
  quirks: {
    mounts: false,
    tagPageSize: 1000,
    tagImmutability: false,
    deniedMeansExpired: true,
    missingRepositoryHint:
      'ECR Public needs a repository before the first push: create it, or set "createRepositories": true for this registry in the config',
  },
  rates: { manifestPut: 10 },
  hints: {
    noCredentials:
      'give the AWS SDK credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, aws sso login, a web identity token, an instance or container role) or { "ecrPublic": { "profile": ... } } in the config; docker login also works, without renewal',
    denied:
      'check the IAM policy of these AWS credentials: pushing needs ecr-public:InitiateLayerUpload, ecr-public:UploadLayerPart, ecr-public:CompleteLayerUpload, ecr-public:PutImage and ecr-public:BatchCheckLayerAvailability (docs/registries.md has the minimal policy)',
  },
  configuredCredentials(ctx) {
    return vendorSettings(ctx).ecrPublic ? publicTokenProvider(publicRegistry(ctx)) : undefined;
  },
  platformCredentials(ctx) {
    return publicTokenProvider(publicRegistry(ctx));
  },
  repositories(ctx) {
    const rules = CreationRules.of(vendorSettings(ctx));
    if (!rules) return undefined;
    for (const rule of rules.all()) {
      if (rule.settings === false) continue;
      if (rule.settings.tagMutability === 'immutable') {
        throw unsupportedSetting(
          rule,
          'tagMutability',
          'ECR Public has no server-side tag immutability; remove it and set "overwrite": "never" on the ' +
            'mirrors (or in "defaults"): regmirror then never moves a tag that exists',
        );
      }
      if (rule.settings.scanOnPush !== undefined) {
        throw unsupportedSetting(rule, 'scanOnPush', 'ECR Public does not scan images; remove it');
      }
      if (rule.settings.encryption !== undefined) {
        throw unsupportedSetting(
          rule,
          'encryption',
          'ECR Public repositories cannot be given an encryption setting; remove it',
        );
      }
    }
    return new PublicRepositories(publicRegistry(ctx), rules);
  },
};
