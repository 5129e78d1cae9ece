// Amazon ECR (private): <account>.dkr.ecr.<region>.amazonaws.com. Every upload part but the last must be
// at least 5 MiB (refused only at commit), PATCH answers 201 with a Range that stops advancing (the client
// tracks its own offset), an expired token is answered 403 DENIED without a challenge, mounts answer 202
// unless the account enabled blob mounting, tag lists refuse n > 1000, tags can be immutable (a moving tag
// is refused with TAG_INVALID).
//
// Hooks: credentials are an authorization token from GetAuthorizationToken (Basic AWS:<token>, valid 12 h,
// renewed before it expires and when the registry refuses it), asked for with `{ "ecr": {...} }` in the
// config or by default when nothing else has credentials for the host; repositories are created with
// DescribeRepositories + CreateRepository when the config says createRepositories. Repository names are
// the path after the host. The account and region come from the config, else the host name.

import type { ECRClient } from '@aws-sdk/client-ecr';
import type { RepositorySettings } from '../config/schema.js';
import { ConfigError, type ErrorContext } from '../errors.js';
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

const MIB = 1024 * 1024;

/** <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: the account and region, or undefined. */
export function parseEcrHost(host: string): { accountId: string; region: string } | undefined {
  const m = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host.toLowerCase());
  return m ? { accountId: m[1]!, region: m[2]! } : undefined;
}

/** One ECR registry as the API sees it: account, region, credentials, and a client made on first use. */
interface EcrRegistry {
  registry: string;
  region: string | undefined;
  registryId: string | undefined;
  identity: AwsIdentityConfig;
  client(): Promise<ECRClient>;
}

/** The hooks of one profile share its registry (and so one SDK client). */
const registries = new WeakMap<VendorContext, EcrRegistry>();

function ecrRegistry(ctx: VendorContext): EcrRegistry {
  let found = registries.get(ctx);
  if (found) return found;
  const configured = vendorSettings(ctx).ecr ?? {};
  const where = `config registries["${ctx.registry}"].credentials.ecr`;
  if (ctx.host === 'public.ecr.aws') {
    throw new ConfigError(`${where}: public.ecr.aws is ECR Public; write { "ecrPublic": {} } instead`);
  }
  const fromHost = parseEcrHost(ctx.host);
  if (fromHost && configured.region && configured.region !== fromHost.region) {
    throw new ConfigError(
      `${where}.region: "${configured.region}" is not the region of ${ctx.host} (${fromHost.region}); remove it`,
    );
  }
  if (fromHost && configured.registryId && configured.registryId !== fromHost.accountId) {
    throw new ConfigError(
      `${where}.registryId: "${configured.registryId}" is not the account of ${ctx.host} (${fromHost.accountId}); remove it`,
    );
  }
  const region = configured.region ?? fromHost?.region;
  const identity: AwsIdentityConfig = { profile: configured.profile, roleArn: configured.roleArn };
  let client: Promise<ECRClient> | undefined;
  found = {
    registry: ctx.registry,
    region,
    registryId: configured.registryId ?? fromHost?.accountId,
    identity,
    client() {
      client ??= (async () => {
        quietSdkNodeWarning();
        const { ECRClient } = await import('@aws-sdk/client-ecr');
        const credentials = await awsCredentials(identity, region);
        return new ECRClient({
          ...(region ? { region } : {}),
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

function ecrTokenProvider(r: EcrRegistry): CredentialProvider {
  const identity = describeIdentity(r.identity);
  return tokenProvider({
    action: 'ecr:GetAuthorizationToken',
    registry: r.registry,
    identity,
    source: `ECR token from GetAuthorizationToken (${r.region ?? 'default region'}; AWS credentials from ${identity})`,
    async fetch(signal) {
      const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
      const client = await r.client();
      const out = await client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
      const data = out.authorizationData?.[0];
      return { token: data?.authorizationToken, expiresAt: data?.expiresAt };
    },
  });
}

/** "immutable tags, scan on push, KMS key alias/ecr" */
export function describeEcrSettings(s: RepositorySettings): string {
  const parts = [s.tagMutability === 'immutable' ? 'immutable tags' : 'mutable tags'];
  if (s.scanOnPush) parts.push('scan on push');
  if (typeof s.encryption === 'object') parts.push(`KMS key ${s.encryption.kmsKey}`);
  else parts.push('AES256 encryption');
  return parts.join(', ');
}

/** DescribeRepositories, then CreateRepository with the configured settings. */
class EcrRepositories implements RepositoryManager {
  private readonly ensured = once<'exists' | 'created'>();

  constructor(
    private readonly r: EcrRegistry,
    private readonly rules: CreationRules,
  ) {}

  manages(path: string): boolean {
    return this.rules.for(path) !== false;
  }

  describeSettings(path: string): string {
    const s = this.rules.for(path);
    return s === false ? 'not created by regmirror' : describeEcrSettings(s);
  }

  private context(path: string, step: string): ErrorContext {
    return { side: 'target', registry: this.r.registry, repository: path, step };
  }

  private get registryId() {
    return this.r.registryId ? { registryId: this.r.registryId } : {};
  }

  async exists(path: string, signal?: AbortSignal): Promise<boolean> {
    const { DescribeRepositoriesCommand } = await import('@aws-sdk/client-ecr');
    const client = await this.r.client();
    try {
      await client.send(new DescribeRepositoriesCommand({ ...this.registryId, repositoryNames: [path] }), {
        abortSignal: signal,
      });
      return true;
    } catch (err) {
      if (awsErrorName(err) === 'RepositoryNotFoundException') return false;
      throw awsFailure(err, {
        action: 'ecr:DescribeRepositories',
        context: this.context(path, 'repository check'),
        identity: describeIdentity(this.r.identity),
      });
    }
  }

  ensure(path: string, signal?: AbortSignal): Promise<'exists' | 'created'> {
    return this.ensured(path, async () => {
      if (await this.exists(path, signal)) return 'exists';
      const settings = this.rules.for(path) || {};
      const { CreateRepositoryCommand } = await import('@aws-sdk/client-ecr');
      const client = await this.r.client();
      try {
        await client.send(
          new CreateRepositoryCommand({
            ...this.registryId,
            repositoryName: path,
            ...(settings.tagMutability
              ? { imageTagMutability: settings.tagMutability === 'immutable' ? 'IMMUTABLE' : 'MUTABLE' }
              : {}),
            ...(settings.scanOnPush !== undefined
              ? { imageScanningConfiguration: { scanOnPush: settings.scanOnPush } }
              : {}),
            ...(settings.encryption
              ? {
                  encryptionConfiguration:
                    settings.encryption === 'AES256'
                      ? { encryptionType: 'AES256' }
                      : { encryptionType: 'KMS', kmsKey: settings.encryption.kmsKey },
                }
              : {}),
          }),
          { abortSignal: signal },
        );
        return 'created';
      } catch (err) {
        // Another run (or a person) created it in between: what we wanted.
        if (awsErrorName(err) === 'RepositoryAlreadyExistsException') return 'exists';
        throw awsFailure(err, {
          action: 'ecr:CreateRepository',
          context: this.context(path, 'repository create'),
          identity: describeIdentity(this.r.identity),
        });
      }
    });
  }
}

export const ecr: VendorDefinition = {
  kind: 'ecr',
  matchesHost: (host) => parseEcrHost(host) !== undefined,
  upload: { chunkSize: 8 * MIB, minChunkSize: 5 * MIB },
  quirks: {
    mounts: false,
    tagPageSize: 1000,
    tagImmutability: true,
    deniedMeansExpired: true,
    missingRepositoryHint:
      'ECR needs a repository before the first push: create it, or set "createRepositories": true for this registry in the config',
  },
  hints: {
    noCredentials:
      'give the AWS SDK credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, aws sso login, a web identity token, an instance or container role) or { "ecr": { "profile": ... } } in the config; docker login also works, without renewal',
    denied:
      'check the IAM policy of these AWS credentials: pushing needs ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage and ecr:BatchCheckLayerAvailability (docs/registries.md has the minimal policy)',
  },
  configuredCredentials(ctx) {
    return vendorSettings(ctx).ecr ? ecrTokenProvider(ecrRegistry(ctx)) : undefined;
  },
  platformCredentials(ctx) {
    return ecrTokenProvider(ecrRegistry(ctx));
  },
  repositories(ctx) {
    const rules = CreationRules.of(vendorSettings(ctx));
    if (!rules) return undefined;
    for (const rule of rules.all()) {
      if (rule.settings !== false && rule.settings.catalogData !== undefined) {
        throw unsupportedSetting(
          rule,
          'catalogData',
          'catalog data is for ECR Public repositories; ECR (private) has none, remove it',
        );
      }
    }
    return new EcrRepositories(ecrRegistry(ctx), rules);
  },
};
