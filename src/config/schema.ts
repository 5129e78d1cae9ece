// The config file's schema: validation, the TypeScript types, and (json-schema.ts) the published JSON
// Schema all come from here, so they cannot disagree. Objects are strict: a misspelt key is an error, not
// a setting silently ignored. Messages say what to write instead; issues.ts adds the file and JSON path.

import { z } from 'zod';
import { isArtifactTypePattern } from '../oci/referrers.js';
import {
  formatRepository,
  isValidDigest,
  isValidTag,
  normaliseRegistry,
  parseReference,
  parseRepository,
  ReferenceSyntaxError,
  type Repository,
  sameRepository,
} from '../reference/reference.js';
import { REGISTRY_KINDS } from '../registry/profile/profile.js';
import { closest, describeValue } from './issues.js';
import { limitsSchema } from './limits-schema.js';
import { semverLib } from './semver.js';
import { BYTE_SIZE_PATTERN, formatByteSize, parseByteSize } from './size.js';
import type { TagRules } from './tags.js';
import {
  expandTarget,
  isTemplate,
  PLACEHOLDERS,
  resolveTarget,
  TemplateError,
  unknownPlaceholders,
} from './template.js';

export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 1024 ** 3;

type Ctx = z.core.$RefinementCtx;

function problem(ctx: Ctx, message: string, path?: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, ...(path ? { path } : {}) });
}

const required =
  (what: string) =>
  (issue: { input?: unknown }): string | undefined =>
    issue.input === undefined ? `required: ${what}` : undefined;

const oneOf = (options: readonly string[], value: unknown): string => {
  const hint = typeof value === 'string' ? closest(value, options) : undefined;
  return hint ? ` (did you mean "${hint}"?)` : '';
};

// --- references ----------------------------------------------------------------------------------

/** Why `value` is not a repository, in words that say what to write; undefined when it is one. */
function repositoryProblem(value: string, role: 'source' | 'target'): string | undefined {
  try {
    parseRepository(value);
    return undefined;
  } catch (err) {
    if (!(err instanceof ReferenceSyntaxError)) throw err;
  }
  try {
    const ref = parseReference(value, { defaultTag: null });
    const what = ref.digest !== undefined ? 'a digest' : 'a tag';
    const fix = role === 'source' ? 'and choose tags with "tags"' : '(tags come from the source)';
    return `"${value}" includes ${what}; give the repository only, "${formatRepository(ref)}", ${fix}`;
  } catch (err) {
    return `${(err as Error).message}; expected a repository such as "quay.io/org/app"`;
  }
}

const sourceSchema = z
  .string({ error: required('the repository to copy from, e.g. "quay.io/org/app"') })
  .superRefine((value, ctx) => {
    const message = repositoryProblem(value, 'source');
    if (message) problem(ctx, message);
  })
  .describe(
    'The repository to copy from, without tag or digest, e.g. "quay.io/org/app" or "ubuntu"; or an OCI ' +
      'layout or archive: "oci:DIR", "oci-archive:FILE.tar" (every image in it), "oci:DIR:quay.io/org/app" ' +
      '(the images named quay.io/org/app:TAG). Paths are relative to the config file.',
  );

const placeholderList = PLACEHOLDERS.map((p) => `{${p}}`).join(', ');

const targetSchema = z
  .string()
  .superRefine((value, ctx) => {
    const unknown = unknownPlaceholders(value);
    if (unknown.length > 0) {
      const names = unknown.map((p) => `{${p}}`).join(', ');
      problem(ctx, `unknown placeholder ${names} in "${value}"; the placeholders are ${placeholderList}`);
      return;
    }
    if (!isTemplate(value)) {
      const message = repositoryProblem(value, 'target');
      if (message) problem(ctx, message);
    }
  })
  .describe(
    'A target repository, or a template: {name} = last path component of the source, {path} = the whole ' +
      'source path, {registry} = the source registry. E.g. "public.ecr.aws/acme/{name}". Or an OCI layout ' +
      '"oci:DIR" or archive "oci-archive:FILE.tar": images are named SOURCE-REPOSITORY:TAG in it.',
  );

// --- registries ----------------------------------------------------------------------------------

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  error: (issue) =>
    `${describeValue(issue.input)} is not an environment variable name; give the NAME of the variable ` +
    'that holds the value (e.g. "DOCKERHUB_TOKEN"), never the secret itself',
});

const CREDENTIAL_FORMS =
  '"docker", "anonymous", { "env": { "username": "VAR", "password": "VAR" } }, { "ecr": {} } or { "ecrPublic": {} }';

const envSourceSchema = z
  .strictObject({
    username: envVarName.describe('Name of the environment variable holding the user name.'),
    password: envVarName.describe('Name of the environment variable holding the password or token.'),
  })
  .describe('Read the user name and password from these environment variables when the registry asks.');

export type EnvCredentials = z.output<typeof envSourceSchema>;

const awsProfileSchema = z
  .string()
  .min(1)
  .describe(
    'A profile of the AWS shared config files (~/.aws/config, ~/.aws/credentials), e.g. "prod"; SSO ' +
      'profiles work once `aws sso login` has run. Default: the SDK default chain (AWS_PROFILE, ' +
      'environment, web identity, container and instance roles).',
  );

const roleArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, {
    error: (issue) =>
      `${describeValue(issue.input)} is not an IAM role ARN; write one like "arn:aws:iam::123456789012:role/mirror-push"`,
  })
  .describe(
    'An IAM role to assume (sts:AssumeRole) with the credentials found, e.g. ' +
      '"arn:aws:iam::123456789012:role/mirror-push".',
  );

const ecrSourceSchema = z
  .strictObject({
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, {
        error: (issue) => `${describeValue(issue.input)} is not an AWS region; write one like "eu-west-1"`,
      })
      .optional()
      .describe(
        'The region of the registry. Default: from the host name (<account>.dkr.ecr.<region>.amazonaws.com), ' +
          'else the AWS SDK default (AWS_REGION, the profile). Needed for a VPC endpoint or another host name.',
      ),
    registryId: z
      .string()
      .regex(/^\d{12}$/, {
        error: (issue) =>
          `${describeValue(issue.input)} is not an AWS account ID; write the 12 digits, e.g. "123456789012"`,
      })
      .optional()
      .describe(
        'The AWS account that owns the registry. Default: from the host name, else the account of the ' +
          'credentials. Needed for a VPC endpoint or another host name, and for cross-account registries.',
      ),
    profile: awsProfileSchema.optional(),
    roleArn: roleArnSchema.optional(),
  })
  .describe(
    'An ECR authorization token (GetAuthorizationToken, valid 12 hours, renewed as needed) through the ' +
      'AWS SDK default credential chain. Implies "type": "ecr".',
  );

export type EcrCredentials = z.output<typeof ecrSourceSchema>;

const ecrPublicSourceSchema = z
  .strictObject({
    profile: awsProfileSchema.optional(),
    roleArn: roleArnSchema.optional(),
  })
  .describe(
    'An ECR Public authorization token (GetAuthorizationToken in us-east-1, renewed as needed) through the ' +
      'AWS SDK default credential chain. Implies "type": "ecr-public".',
  );

export type EcrPublicCredentials = z.output<typeof ecrPublicSourceSchema>;

/** A credentials source named by its one key. */
export type CredentialSourceConfig =
  | { env: EnvCredentials }
  | { ecr: EcrCredentials }
  | { ecrPublic: EcrPublicCredentials };

// One key names the source: { "env": {...} }, { "ecr": {...} } or { "ecrPublic": {...} }.
const credentialSourceSchema = z
  .strictObject(
    {
      env: envSourceSchema.optional(),
      ecr: ecrSourceSchema.optional(),
      ecrPublic: ecrPublicSourceSchema.optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown credentials source ${issue.keys.map((k) => `"${k}"`).join(', ')}${oneOf(['env', 'ecr', 'ecrPublic'], issue.keys[0])}; expected ${CREDENTIAL_FORMS}`
          : undefined,
    },
  )
  .superRefine((source, ctx) => {
    // An unknown key was reported already; "no source" would only repeat it.
    if (ctx.issues.length > 0) return;
    const keys = Object.keys(source);
    if (keys.length === 0) problem(ctx, `names no credentials source; expected ${CREDENTIAL_FORMS}`);
    else if (keys.length > 1) {
      problem(ctx, `names ${keys.length} credentials sources (${keys.join(', ')}); keep one`);
    }
  })
  .transform((source): CredentialSourceConfig => {
    if (source.ecr) return { ecr: source.ecr };
    if (source.ecrPublic) return { ecrPublic: source.ecrPublic };
    return { env: source.env! };
  })
  .describe('Credentials from a named source.');

const CREDENTIAL_NAMES = ['docker', 'anonymous'] as const;

const credentialsSchema = z
  .union(
    [
      z
        .enum(CREDENTIAL_NAMES)
        .describe(
          '"docker": DOCKER_AUTH_CONFIG, docker config.json, podman auth.json, then what the platform ' +
            'provides (an ECR token from the AWS SDK default chain for ECR hosts) (the default); "anonymous": none.',
        ),
      credentialSourceSchema,
    ],
    {
      error: (issue) =>
        typeof issue.input === 'string'
          ? `unknown credentials source "${issue.input}"${oneOf(CREDENTIAL_NAMES, issue.input)}; expected ${CREDENTIAL_FORMS}`
          : `expected ${CREDENTIAL_FORMS}, got ${describeValue(issue.input)}`,
    },
  )
  .describe('Where the credentials for this registry come from. Default "docker".');

const TLS_NAMES = ['verify', 'disabled', 'insecure'] as const;

const tlsSchema = z
  .union(
    [
      z
        .enum(TLS_NAMES)
        .describe(
          '"verify": HTTPS, verified (default); "disabled": plain HTTP; "insecure": HTTPS, not verified.',
        ),
      z.strictObject({
        caFile: z
          .string()
          .min(1)
          .describe('PEM file of a CA to trust for this registry, relative to the config file.'),
      }),
    ],
    {
      error: (issue) =>
        `expected "verify", "disabled" (plain HTTP), "insecure" (HTTPS without verification) or ` +
        `{ "caFile": "ca.pem" }, got ${describeValue(issue.input)}${oneOf(TLS_NAMES, issue.input)}`,
    },
  )
  .describe(
    'How to connect: "verify" (default; loopback hosts default to plain HTTP), "disabled", "insecure", or { "caFile" }.',
  );

function chunkSizeRange(value: unknown, bytes: number | undefined): string {
  const size =
    typeof value === 'number'
      ? `${value} bytes`
      : bytes === undefined
        ? describeValue(value)
        : `${describeValue(value)} (${formatByteSize(bytes)})`;
  return `chunk size ${size} is out of range; use between 1 KiB and 1 GiB, e.g. "8MiB"`;
}

const chunkSizeSchema = z
  .union(
    [
      z
        .number()
        .int()
        .min(MIN_CHUNK_SIZE, { error: (issue) => chunkSizeRange(issue.input, Number(issue.input)) })
        .max(MAX_CHUNK_SIZE, { error: (issue) => chunkSizeRange(issue.input, Number(issue.input)) }),
      z.string().regex(new RegExp(BYTE_SIZE_PATTERN), {
        error: (issue) =>
          `${describeValue(issue.input)} is not a size; write bytes as a number, or a string like "8MiB" or "5MB"`,
      }),
    ],
    {
      error: (issue) =>
        `expected a size: bytes as a number, or a string like "8MiB" or "5MB", got ${describeValue(issue.input)}`,
    },
  )
  .transform((value, ctx) => {
    const bytes = typeof value === 'number' ? value : parseByteSize(value);
    if (bytes === undefined || bytes < MIN_CHUNK_SIZE || bytes > MAX_CHUNK_SIZE) {
      ctx.issues.push({ code: 'custom', input: value, message: chunkSizeRange(value, bytes) });
      return z.NEVER;
    }
    return bytes;
  })
  .describe('Upload chunk size for this registry: bytes, or "8MiB" / "5MB". Between 1 KiB and 1 GiB.');

const positiveInt = z.number().int().min(1);

const registryTypeSchema = z
  .enum(REGISTRY_KINDS, {
    error: (issue) =>
      `unknown registry type ${describeValue(issue.input)}${oneOf(REGISTRY_KINDS, issue.input)}; expected one of ${REGISTRY_KINDS.map((k) => `"${k}"`).join(', ')}`,
  })
  .describe(
    'What kind of registry this is, for its quirks and defaults. Well-known hosts are recognised ' +
      '(public.ecr.aws, *.dkr.ecr.<region>.amazonaws.com, docker.io, quay.io, ghcr.io); set it for ' +
      'self-hosted Harbor, Quay, zot, Artifactory, or an ECR VPC endpoint.',
  );

export const TAG_MUTABILITY = ['immutable', 'mutable'] as const;
/** What ECR Public's catalog accepts for architectures and operating systems. */
export const CATALOG_ARCHITECTURES = ['ARM', 'ARM 64', 'x86', 'x86-64'] as const;
export const CATALOG_OPERATING_SYSTEMS = ['Linux', 'Windows'] as const;

const catalogDataSchema = z
  .strictObject({
    description: z
      .string()
      .max(1024)
      .optional()
      .describe('A short description shown in the ECR Public Gallery (at most 1024 characters).'),
    aboutText: z
      .string()
      .max(10240)
      .optional()
      .describe('The "About" section of the gallery page, in Markdown (at most 10240 characters).'),
    usageText: z
      .string()
      .max(10240)
      .optional()
      .describe('The "Usage" section of the gallery page, in Markdown (at most 10240 characters).'),
    architectures: z
      .array(z.enum(CATALOG_ARCHITECTURES))
      .optional()
      .describe('Architectures shown in the gallery: "ARM", "ARM 64", "x86", "x86-64".'),
    operatingSystems: z
      .array(z.enum(CATALOG_OPERATING_SYSTEMS))
      .optional()
      .describe('Operating systems shown in the gallery: "Linux", "Windows".'),
  })
  .describe('ECR Public only: the gallery catalog data a new repository gets.');

const repositorySettingsSchema = z
  .strictObject({
    tagMutability: z
      .enum(TAG_MUTABILITY)
      .optional()
      .describe(
        'ECR only: "immutable" (a pushed tag can never move: the registry refuses it) or "mutable" ' +
          '(ECR\'s default). ECR Public has none: use "overwrite": "never" there.',
      ),
    scanOnPush: z
      .boolean()
      .optional()
      .describe('ECR only: scan every pushed image for vulnerabilities (basic scanning). Default false.'),
    encryption: z
      .union([
        z.literal('AES256'),
        z.strictObject({
          kmsKey: z.string().min(1).describe('The KMS key ARN, ID or alias that encrypts the repository.'),
        }),
      ])
      .optional()
      .describe('ECR only: "AES256" (the default, S3-managed keys) or { "kmsKey": "arn:aws:kms:..." }.'),
    catalogData: catalogDataSchema.optional(),
  })
  .describe('The settings a new repository is created with.');

/** How new repositories are created; `true` in the config is {} (the registry's own defaults). */
export type RepositorySettings = z.output<typeof repositorySettingsSchema>;

const createRepositoriesSchema = z
  .union([z.boolean(), repositorySettingsSchema], {
    error: (issue) =>
      `expected true, false, or { "tagMutability", "scanOnPush", "encryption", "catalogData" }, got ${describeValue(issue.input)}`,
  })
  .transform((value): RepositorySettings | false => (value === true ? {} : value))
  .describe(
    'ECR and ECR Public: create a target repository that does not exist yet (once per run, before the ' +
      'first push), with these settings; true = the registry defaults. Needs ecr:CreateRepository or ' +
      'ecr-public:CreateRepository.',
  );

export const registrySchema = z
  .strictObject({
    type: registryTypeSchema.optional(),
    credentials: credentialsSchema.optional(),
    tls: tlsSchema.optional(),
    concurrency: positiveInt
      .optional()
      .describe(
        'Requests in flight to this registry at once, a fixed bound (default: adaptive, 16 growing to 64 while ' +
          'the registry answers well, halved on 429/503). It can still shrink when the registry refuses.',
      ),
    chunkSize: chunkSizeSchema.optional(),
    mounts: z
      .boolean()
      .optional()
      .describe(
        'Ask for cross-repository blob mounts. Default true, false for ECR and ECR Public (they answer ' +
          'every mount with an upload session unless the account enabled blob mounting: set true then).',
      ),
    limits: limitsSchema.optional(),
    createRepositories: createRepositoriesSchema.optional(),
  })
  .superRefine((registry, ctx) => {
    // The ECR credential forms say what the registry is; a `type` that says otherwise is a mistake.
    const credentials = registry.credentials;
    if (typeof credentials !== 'object' || registry.type === undefined) return;
    const implied = 'ecr' in credentials ? 'ecr' : 'ecrPublic' in credentials ? 'ecr-public' : undefined;
    if (implied !== undefined && registry.type !== implied) {
      const form = implied === 'ecr' ? 'ecr' : 'ecrPublic';
      problem(
        ctx,
        `{ "${form}": ... } credentials are for an ${implied} registry, but "type" is "${registry.type}"; ` +
          `set "type": "${implied}" or choose other credentials`,
        ['credentials'],
      );
    }
  })
  .describe('Settings for one registry host.');

/** Why `key` cannot name a registry in "registries"; undefined when it can. */
function registryKeyProblem(key: string): string | undefined {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(key);
  if (scheme) {
    return `leave out the scheme: write "${key.slice(scheme[0].length).replace(/\/.*$/, '')}"`;
  }
  if (key.includes('/')) {
    return `not a registry host: settings apply to a whole registry, write "${key.slice(0, key.indexOf('/'))}"`;
  }
  try {
    if (parseRepository(`${key}/x`).registry === normaliseRegistry(key)) return undefined;
  } catch (err) {
    if (!(err instanceof ReferenceSyntaxError)) throw err;
  }
  return 'not a registry host; write host or host:port, e.g. "quay.io", "registry.internal:5000"';
}

const registryKeySchema = z.string().superRefine((key, ctx) => {
  const message = registryKeyProblem(key);
  if (message) problem(ctx, message);
});

// --- policies ------------------------------------------------------------------------------------

const PLATFORM_PATTERN = /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)?$/;

const platformsSchema = z
  .union(
    [
      z.literal('all'),
      z
        .array(
          z.string().regex(PLATFORM_PATTERN, {
            error: (issue) =>
              `${describeValue(issue.input)} is not a platform; write os/arch or os/arch/variant, e.g. "linux/amd64", "linux/arm64/v8"`,
          }),
        )
        .min(1, { error: 'is empty; write "all", or list platforms like ["linux/amd64", "linux/arm64"]' }),
    ],
    {
      error: (issue) =>
        `expected "all" or a list of platforms like ["linux/amd64", "linux/arm64"], got ${describeValue(issue.input)}`,
    },
  )
  .describe(
    '"all" keeps the source index byte-exact (default); a list builds an index of those platforms only, ' +
      "whose digest differs from the source's.",
  );

export const OVERWRITE_POLICIES = ['changed', 'never', 'always'] as const;

const artifactTypesSchema = z
  .array(
    z.string().superRefine((value, ctx) => {
      if (!isArtifactTypePattern(value)) {
        problem(
          ctx,
          `${describeValue(value)} is not an artifact type; write a media type such as ` +
            '"application/spdx+json", or one with * wildcards such as "application/vnd.in-toto*"',
        );
      }
    }),
  )
  .min(1, { error: 'is empty; list artifact types, or remove the key' });

const REFERRERS_FORMS = 'true, false, or { "artifactTypes": [...], "exclude": [...] }';

const referrersSchema = z
  .union(
    [
      z.boolean(),
      z.strictObject({
        artifactTypes: artifactTypesSchema
          .optional()
          .describe(
            'Only referrers of these artifact types, e.g. ["application/spdx+json"]; * is a wildcard.',
          ),
        exclude: artifactTypesSchema
          .optional()
          .describe('Never referrers of these artifact types, e.g. ["application/vnd.in-toto*"].'),
      }),
    ],
    { error: (issue) => `expected ${REFERRERS_FORMS}, got ${describeValue(issue.input)}` },
  )
  .describe(
    'Copy the referrers of every manifest (signatures, SBOMs, attestations attached with `subject`, OCI ' +
      '1.1) after their subject, and compare them on every run. Default true. An object copies only some ' +
      'artifact types.',
  );

const policyShape = {
  platforms: platformsSchema.optional(),
  overwrite: z
    .enum(OVERWRITE_POLICIES)
    .optional()
    .describe(
      'When a target tag already points elsewhere: "changed" moves it (default), "never" leaves it and ' +
        'reports it (immutable releases), "always" re-pushes even when identical.',
    ),
  concurrency: positiveInt
    .optional()
    .describe(
      'Images in flight at once. In defaults: for the whole run (default 16; -c replaces it). In a ' +
        'mirror: a further cap for that mirror alone.',
    ),
  referrers: referrersSchema.optional(),
  cosignTags: z
    .boolean()
    .optional()
    .describe(
      "With referrers on: also copy cosign's tags (sha256-<hex>.sig, .att, .sbom) of every manifest, " +
        'under the same names. Default true.',
    ),
};

const defaultsSchema = z
  .strictObject({ ...policyShape, limits: limitsSchema.optional() })
  .describe(
    'Policies for every mirror that does not set its own, and limits for every registry that does not set its own.',
  );

// --- tags ----------------------------------------------------------------------------------------

const TAG_HELP = 'letters, digits, _ . -; not starting with . or -; at most 128 characters';

/** Why `item` is neither "tag" nor "tag@sha256:..."; undefined when it is one. */
function tagItemProblem(item: string): string | undefined {
  const at = item.indexOf('@');
  const tag = at < 0 ? item : item.slice(0, at);
  if (!isValidTag(tag)) return `"${tag}" is not a valid tag (${TAG_HELP})`;
  if (at >= 0 && !isValidDigest(item.slice(at + 1))) {
    return `"${item.slice(at + 1)}" is not a digest; pin a tag as "1.2.3@sha256:<64 lower-case hex digits>"`;
  }
  return undefined;
}

const tagItemSchema = z.string().superRefine((item, ctx) => {
  const message = tagItemProblem(item);
  if (message) problem(ctx, message);
});

const tagListSchema = z
  .array(tagItemSchema)
  .min(1, { error: 'is empty, which selects no tag; remove "tags" to mirror every tag, or list some' })
  .describe('Tags to mirror by name; "1.2.3@sha256:..." pins a tag to a digest.');

const regexSchema = z
  .string()
  .min(1)
  .superRefine((source, ctx) => {
    try {
      new RegExp(source);
    } catch (err) {
      problem(
        ctx,
        `"${source}" is not a valid regular expression (${(err as Error).message}); ` +
          'write a JavaScript regular expression, e.g. "-rc" or "^v?1\\\\."',
      );
    }
  });

const semverRangeSchema = z
  .string()
  .min(1)
  .superRefine((range, ctx) => {
    if (semverLib().validRange(range) === null) {
      problem(
        ctx,
        `"${range}" is not a semver range; write one like ">=1.2.0", "^15", "~1.4 || ^2", ">=1.0.0 <2"`,
      );
    }
  });

const tagRulesObjectSchema = z
  .strictObject({
    list: tagListSchema.optional(),
    include: z
      .array(regexSchema)
      .min(1)
      .optional()
      .describe(
        'Regular expressions; a tag must match at least one (anywhere in the tag; anchor with ^ and $).',
      ),
    exclude: z
      .array(regexSchema)
      .min(1)
      .optional()
      .describe('Regular expressions; a tag matching any is dropped, e.g. "-rc", "^sha256-".'),
    semver: semverRangeSchema
      .optional()
      .describe(
        'A semver range (npm syntax): only tags that are versions ("1.2.3", "v1.2.3") in the range. ' +
          'Pre-releases only when the range names one on the same version, or with includePrerelease.',
      ),
    includePrerelease: z
      .boolean()
      .optional()
      .describe('Let "semver" select pre-releases (1.3.0-rc.1, 1.2.3-alpine) of versions in the range.'),
    latest: positiveInt
      .optional()
      .describe('Keep the newest N of the tags the filters selected: by semver, versions above other tags.'),
    digests: z
      .record(
        z.string().superRefine((tag, ctx) => {
          if (!isValidTag(tag)) problem(ctx, `"${tag}" is not a valid tag (${TAG_HELP})`);
        }),
        z.string().superRefine((digest, ctx) => {
          if (!isValidDigest(digest)) {
            problem(ctx, `"${digest}" is not a digest; expected "sha256:" and 64 lower-case hex digits`);
          }
        }),
      )
      .optional()
      .describe('Tags pinned to digests: { "1.2.3": "sha256:..." } copies that digest under the tag.'),
  })
  .superRefine((rules, ctx) => {
    if (Object.keys(rules).length === 0) {
      problem(
        ctx,
        'selects nothing; remove "tags" to mirror every tag, or add list, include, exclude, semver, latest or digests',
      );
    }
    if (rules.includePrerelease !== undefined && rules.semver === undefined) {
      problem(ctx, 'only applies to "semver"; add a semver range or remove it', ['includePrerelease']);
    }
  });

/** The array form becomes { list, digests }; "tag@digest" items become pins. A tag pinned twice must agree. */
function normaliseTagRules(
  input: string[] | z.output<typeof tagRulesObjectSchema>,
  ctx: z.core.$RefinementCtx,
): TagRules {
  const { list: items = [], digests: pinned, ...filters } = Array.isArray(input) ? { list: input } : input;
  const digests: Record<string, string> = { ...pinned };
  const list: string[] = [];
  items.forEach((item, i) => {
    const at = item.indexOf('@');
    if (at < 0) {
      if (!list.includes(item)) list.push(item);
      return;
    }
    const [tag, digest] = [item.slice(0, at), item.slice(at + 1)];
    if (digests[tag] !== undefined && digests[tag] !== digest) {
      const path = Array.isArray(input) ? [i] : ['list', i];
      problem(ctx, `pins "${tag}" to ${digest}, but it is also pinned to ${digests[tag]}; keep one`, path);
    }
    digests[tag] = digest;
  });
  return {
    ...filters,
    ...(list.length > 0 ? { list } : {}),
    ...(Object.keys(digests).length > 0 ? { digests } : {}),
  };
}

export const tagRulesSchema = z
  .union([tagListSchema, tagRulesObjectSchema], {
    error: (issue) =>
      `expected a list of tags like ["1.2.3", "1.3.0"], or an object with list, include, exclude, semver, ` +
      `latest, digests; got ${describeValue(issue.input)}`,
  })
  .transform(normaliseTagRules)
  .describe(
    'Which tags of the source to mirror; without "tags", every tag. A list of names, or filters: ' +
      'include/exclude (regular expressions), semver (a range), latest (newest N), plus list and digests ' +
      '(always selected).',
  );

// --- mirrors -------------------------------------------------------------------------------------

// Refinements can run even when a field inside already failed, so these checks skip what is reported.

function checkTargets(mirror: { source: string; targets: string[] }, ctx: Ctx): void {
  if (!Array.isArray(mirror.targets)) return;
  let source: Repository;
  try {
    source = parseRepository(mirror.source);
  } catch {
    return;
  }
  // A whole layout as the source ("oci:bundle") fills templates per name prefix found in it, at run time.
  const wholeLayout = source.layout !== undefined && source.path === '';
  const seen = new Map<string, number>();
  mirror.targets.forEach((template, i) => {
    const path = ['targets', i];
    if (typeof template !== 'string' || unknownPlaceholders(template).length > 0) return;
    if (wholeLayout && isTemplate(template)) return;
    let target: Repository;
    let expanded: string;
    try {
      expanded = expandTarget(template, source);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      problem(ctx, err.message, path);
      return;
    }
    try {
      target = resolveTarget(template, source);
    } catch (err) {
      if (isTemplate(template)) {
        problem(
          ctx,
          `"${template}" expands to "${expanded}", which is not a repository: ${(err as Error).message}`,
          path,
        );
      }
      return;
    }
    const name = formatRepository(target);
    const shown = template === name ? `"${template}"` : `"${template}" (${name})`;
    if (sameRepository(target, source)) {
      problem(ctx, `${shown} is the source itself; a target must be another repository`, path);
    } else if (seen.has(name)) {
      problem(
        ctx,
        `${shown} is the same repository as targets[${seen.get(name)}]; list each target once`,
        path,
      );
    } else {
      seen.set(name, i);
    }
  });
}

export const mirrorSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .optional()
      .describe('A name for reports and --only; default the source repository ("quay.io/org/app").'),
    source: sourceSchema,
    targets: z
      .array(targetSchema, {
        error: required('the repositories to copy to, e.g. ["public.ecr.aws/org/app"]'),
      })
      .min(1, { error: 'is empty; list at least one target repository, e.g. ["public.ecr.aws/org/{name}"]' })
      .describe('Where to copy: one or more repositories or templates.'),
    tags: tagRulesSchema.optional(),
    ...policyShape,
    createRepositories: createRepositoriesSchema
      .optional()
      .describe(
        "Repository creation for this mirror's targets, instead of their registry's createRepositories " +
          '(ECR and ECR Public).',
      ),
  })
  .superRefine(checkTargets)
  .describe('One source repository and where its tags go.');

// --- the file ------------------------------------------------------------------------------------

/** The name a mirror goes by: its own, else the normalised source ("docker.io/library/ubuntu"). */
export function mirrorName(mirror: { name?: string | undefined; source: string }): string {
  return mirror.name ?? formatRepository(parseRepository(mirror.source));
}

function checkFile(
  config: { registries?: Record<string, unknown> | undefined; mirrors: { name?: string; source: string }[] },
  ctx: Ctx,
): void {
  const registries = new Map<string, string>();
  for (const key of Object.keys(config.registries ?? {})) {
    const registry = normaliseRegistry(key);
    const earlier = registries.get(registry);
    if (earlier !== undefined) {
      problem(ctx, `is the same registry as "${earlier}" (both are ${registry}); merge them into one entry`, [
        'registries',
        key,
      ]);
    } else {
      registries.set(registry, key);
    }
  }
  const names = new Map<string, number>();
  config.mirrors.forEach((mirror, i) => {
    let name: string;
    try {
      name = mirrorName(mirror);
    } catch {
      return;
    }
    const earlier = names.get(name);
    if (earlier === undefined) {
      names.set(name, i);
      return;
    }
    const path = mirror.name === undefined ? ['mirrors', i] : ['mirrors', i, 'name'];
    problem(
      ctx,
      `has the same name as mirrors[${earlier}] ("${name}"); give one of them a distinct "name"`,
      path,
    );
  });
}

export const configSchema = z
  .strictObject({
    $schema: z
      .string()
      .optional()
      .describe('The JSON Schema of this file, for editors: "./mirror.schema.json".'),
    defaults: defaultsSchema.optional(),
    registries: z
      .record(registryKeySchema, registrySchema)
      .optional()
      .describe(
        'Settings per registry host ("quay.io", "registry.internal:5000"; "docker.io" for Docker Hub).',
      ),
    mirrors: z
      .array(mirrorSchema, {
        error: required(
          'list what to mirror, e.g. [{ "source": "quay.io/org/app", "targets": ["public.ecr.aws/org/app"] }]',
        ),
      })
      .min(1, { error: 'is empty; add at least one mirror with "source" and "targets"' })
      .describe('What to mirror: each entry copies the selected tags of one source to its targets.'),
  })
  .superRefine(checkFile)
  .meta({
    title: 'regmirror config',
    description: 'Configuration of regmirror: which repositories to mirror where, and how.',
  });

/** The config as written (chunkSize may be "8MiB", tags may be a list). */
export type ConfigInput = z.input<typeof configSchema>;
/** The config after validation and normalisation. */
export type Config = z.output<typeof configSchema>;
export type RegistryConfig = z.output<typeof registrySchema>;
/** "docker": the default chain (DOCKER_AUTH_CONFIG, docker config.json, podman auth.json); "anonymous": none. */
export type CredentialsConfig = z.output<typeof credentialsSchema>;
export type MirrorConfig = z.output<typeof mirrorSchema>;
export type Overwrite = (typeof OVERWRITE_POLICIES)[number];
export type ReferrersConfig = z.output<typeof referrersSchema>;
export type TagRulesInput = z.input<typeof tagRulesSchema>;
