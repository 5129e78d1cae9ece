import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { closeServer, forwardableHeaders, listen } from './http-server.js';
import { MANIFEST_ACCEPT } from './oci-builders.js';

/**
 * A local stand-in for Amazon ECR or ECR Public: what no local registry can show. Two small HTTP servers:
 *
 * - the **API**, reached by the AWS SDK through AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_ECR_PUBLIC: the
 *   JSON-1.1 protocol (X-Amz-Target AmazonEC2ContainerRegistry_V20150921.* for ECR,
 *   SpencerFrontendService.* for ECR Public), every request's SigV4 signature recomputed from the static
 *   test secret and refused when it does not match, and recorded with the service and region it was
 *   signed for. GetAuthorizationToken, DescribeRepositories, CreateRepository, DescribeRegistries (ECR
 *   Public's aliases). IAM actions can be denied per test.
 * - the **registry**, in front of a real distribution registry (or a proxy in front of one), imposing
 *   ECR's rules: Basic AWS:<token> (ECR) or Bearer tokens from its own /token endpoint fetched with that
 *   Basic (ECR Public); an expired token answered 403 DENIED; NAME_UNKNOWN until the repository was
 *   created through the API; mounts answered 202 (an upload session); PATCH answered 201 with a Range
 *   stuck at the first chunk boundary; parts under 5 MiB other than the last refused at commit; a moving
 *   tag refused with TAG_INVALID in an immutable repository (ECR: also a re-push of the same digest, as
 *   ECR does); tag lists with n > 1000 refused. Blob GETs are redirected when the upstream is a proxy with
 *   redirectBlobGets.
 */

export type Flavour = 'ecr' | 'ecr-public';

export interface StaticAwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/**
 * The keys the API accepts: access key ID → secret (and session token, for temporary credentials that
 * STS handed out). Share one between stand-ins so that credentials from one's STS work at the other.
 */
export type Keyring = Map<string, { secretAccessKey: string; sessionToken?: string }>;

export function keyringOf(...credentials: StaticAwsCredentials[]): Keyring {
  return new Map(credentials.map((c) => [c.accessKeyId, { secretAccessKey: c.secretAccessKey }]));
}

export interface EcrStandInOptions {
  flavour: Flavour;
  /** The registry holding the content (distribution, or a proxy in front of one). */
  upstreamUrl: string;
  /** The keys the API accepts (its STS adds the temporary ones it issues). */
  keyring: Keyring;
  /** Default 123456789012. */
  accountId?: string;
  /** ECR: the registry's region (default eu-west-1). ECR Public's API is in us-east-1 whatever this says. */
  region?: string;
  /** ECR Public: the caller's registry alias (default regmirror-test). */
  alias?: string;
  /** Lifetime of authorization tokens (announced and enforced). Default 12 hours, as ECR. */
  tokenLifetimeSeconds?: number;
}

export interface ApiCall {
  /** "GetAuthorizationToken", "CreateRepository"... */
  operation: string;
  /** The X-Amz-Target prefix, or "sts" for STS (form-encoded): which API was spoken to. */
  api: 'AmazonEC2ContainerRegistry_V20150921' | 'SpencerFrontendService' | 'sts' | string;
  /** What the SigV4 credential scope said. */
  service: string;
  region: string;
  accessKeyId: string;
  /** The signature was recomputed and matched (STS AssumeRoleWithWebIdentity is not signed: false). */
  signatureValid: boolean;
  /** Signed with temporary credentials (with the x-amz-security-token that STS issued with them). */
  temporary: boolean;
  input: Record<string, unknown>;
  status: number;
  /** The error's __type when the call failed. */
  error?: string;
}

export interface RegistryRecord {
  method: string;
  path: string;
  query: string;
  status: number;
  hasAuthorization: boolean;
  /** Content-Length of the request body (PATCH parts, PUT commits). */
  size: number;
}

export interface Refusal {
  rule:
    | 'no-credentials'
    | 'expired-token'
    | 'unknown-token'
    | 'name-unknown'
    | 'part-too-small'
    | 'tag-invalid'
    | 'pagination'
    | 'anonymous-write';
  method: string;
  path: string;
  detail?: string;
}

export interface StandInRepository {
  /** The API's name (ECR Public: without the alias). */
  name: string;
  /** As the registry sees it (ECR Public: alias/name). */
  registryPath: string;
  immutable: boolean;
  createInput: Record<string, unknown>;
}

export interface EcrStandIn {
  flavour: Flavour;
  /** For AWS_ENDPOINT_URL_ECR(_PUBLIC). */
  apiUrl: string;
  /** host:port of the registry, as references name it. */
  registryHost: string;
  registryUrl: string;
  accountId: string;
  region: string;
  alias: string;
  calls: ApiCall[];
  registryRequests: RegistryRecord[];
  refusals: Refusal[];
  repositories: Map<string, StandInRepository>;
  /** Every secret handed out (authorization tokens, registry passwords, bearer tokens, STS keys), for leak tests. */
  issued: string[];
  /** IAM actions to refuse with AccessDeniedException, e.g. "ecr-public:CreateRepository". */
  deny: Set<string>;
  /** Make every token issued so far invalid now (the API keeps announcing the expiry it gave). */
  revokeTokens(): void;
  /** The lifetime of tokens issued from now on. */
  setTokenLifetime(seconds: number): void;
  /** A registry password valid for `seconds`, for skopeo (user "AWS"). */
  mintPassword(seconds?: number): string;
  /** Create a repository as the API would (a test's precondition). */
  createRepository(name: string, immutable?: boolean): void;
  /** Writes the registry received (POST, PATCH, PUT, DELETE). */
  writes(): RegistryRecord[];
  reset(): void;
  stop(): Promise<void>;
}

const MIB = 1024 * 1024;
const MIN_PART = 5 * MIB;
const ECR_TARGET = 'AmazonEC2ContainerRegistry_V20150921';
const PUBLIC_TARGET = 'SpencerFrontendService';
const PUBLIC_REGION = 'us-east-1';
const MAX_API_BODY = 1024 * 1024;

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** RFC 3986 encoding as SigV4 wants it for each path segment. */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseSigV4(header: string | undefined): ParsedAuthorization | undefined {
  const m =
    /^AWS4-HMAC-SHA256\s+Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(
      header?.trim() ?? '',
    );
  if (!m) return undefined;
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(';'),
    signature: m[6]!,
  };
}

/**
 * Recompute a SigV4 signature (canonical request, string to sign, signing key derived from the secret)
 * and compare it with the one sent. Exported for the harness's own test.
 */
export function verifySigV4(
  req: { method: string; url: string; headers: IncomingHttpHeaders },
  body: Buffer,
  secretAccessKey: string,
  now: number = Date.now(),
): { auth: ParsedAuthorization; valid: boolean; why?: string } | undefined {
  const auth = parseSigV4(req.headers.authorization);
  if (!auth) return undefined;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(auth.date))
    return { auth, valid: false, why: 'x-amz-date does not match the scope' };
  const signedAt = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  if (!Number.isFinite(signedAt) || Math.abs(now - signedAt) > 15 * 60_000) {
    return { auth, valid: false, why: 'signed more than 15 minutes away from now' };
  }
  const url = new URL(req.url, 'http://stand-in.invalid');
  const canonicalUri = url.pathname.split('/').map(encodeSegment).join('/') || '/';
  const canonicalQuery = [...url.searchParams]
    .map(([k, v]) => [encodeSegment(k), encodeSegment(v)] as const)
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = auth.signedHeaders
    .map((name) => {
      const value = req.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const payloadHash = String(req.headers['x-amz-content-sha256'] ?? sha256Hex(body));
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${secretAccessKey}`, auth.date), auth.region), auth.service),
    'aws4_request',
  );
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
  const given = Buffer.from(auth.signature);
  const valid = expected.length === given.length && timingSafeEqual(expected, given);
  return valid ? { auth, valid } : { auth, valid, why: 'signature mismatch' };
}

interface Token {
  password: string;
  expiresAt: number;
}

interface Bearer {
  /** The API token the bearer was fetched with; undefined for anonymous (pull only). */
  from: Token | undefined;
  expiresAt: number;
}

interface UploadSession {
  parts: number[];
  /** The Range ECR keeps answering: the end of the first chunk. */
  stuckRange?: string;
}

function registryError(res: ServerResponse, method: string, status: number, code: string, message: string) {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length) });
  res.end(method === 'HEAD' ? undefined : body);
}

export async function startEcrStandIn(options: EcrStandInOptions): Promise<EcrStandIn> {
  const { flavour } = options;
  const accountId = options.accountId ?? '123456789012';
  const region = flavour === 'ecr-public' ? PUBLIC_REGION : (options.region ?? 'eu-west-1');
  const alias = options.alias ?? 'regmirror-test';
  let lifetimeMs = (options.tokenLifetimeSeconds ?? 12 * 60 * 60) * 1000;
  const upstream = new URL(options.upstreamUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  const calls: ApiCall[] = [];
  const registryRequests: RegistryRecord[] = [];
  const refusals: Refusal[] = [];
  const repositories = new Map<string, StandInRepository>();
  const issued: string[] = [];
  const deny = new Set<string>();
  const tokens = new Map<string, Token>();
  const bearers = new Map<string, Bearer>();
  const sessions = new Map<string, UploadSession>();
  let registryHost = '';

  function mintToken(ms = lifetimeMs): { token: Token; authorizationToken: string } {
    const token: Token = { password: randomBytes(32).toString('base64url'), expiresAt: Date.now() + ms };
    tokens.set(token.password, token);
    const authorizationToken = Buffer.from(`AWS:${token.password}`).toString('base64');
    issued.push(token.password, authorizationToken);
    return { token, authorizationToken };
  }

  // ---- the API -----------------------------------------------------------------------------------

  const iamPrefix = flavour === 'ecr' ? 'ecr' : 'ecr-public';
  const arnOf = (name: string) =>
    flavour === 'ecr'
      ? `arn:aws:ecr:${region}:${accountId}:repository/${name}`
      : `arn:aws:ecr-public::${accountId}:repository/${name}`;
  const uriOf = (name: string) =>
    flavour === 'ecr' ? `${registryHost}/${name}` : `${registryHost}/${alias}/${name}`;

  class ApiError extends Error {
    constructor(
      readonly type: string,
      message: string,
      readonly status = 400,
    ) {
      super(message);
    }
  }

  function describeRepository(r: StandInRepository): Record<string, unknown> {
    const base = {
      repositoryArn: arnOf(r.name),
      registryId: accountId,
      repositoryName: r.name,
      repositoryUri: uriOf(r.name),
      createdAt: Date.now() / 1000,
    };
    if (flavour === 'ecr-public') return base;
    return {
      ...base,
      imageTagMutability: r.immutable ? 'IMMUTABLE' : 'MUTABLE',
      imageScanningConfiguration: r.createInput.imageScanningConfiguration ?? { scanOnPush: false },
      encryptionConfiguration: r.createInput.encryptionConfiguration ?? { encryptionType: 'AES256' },
    };
  }

  function checkRegistryId(input: Record<string, unknown>): void {
    if (input.registryId !== undefined && input.registryId !== accountId) {
      throw new ApiError('RegistryNotFoundException', `registry ${String(input.registryId)} not found`);
    }
  }

  function operate(operation: string, input: Record<string, unknown>): Record<string, unknown> {
    const action = `${iamPrefix}:${operation}`;
    if (deny.has(action)) {
      const resource =
        typeof input.repositoryName === 'string' ? arnOf(input.repositoryName) : `arn:aws:${iamPrefix}:*`;
      throw new ApiError(
        'AccessDeniedException',
        `User: arn:aws:iam::${accountId}:user/regmirror-test is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
      );
    }
    switch (operation) {
      case 'GetAuthorizationToken': {
        const { token, authorizationToken } = mintToken();
        const data = { authorizationToken, expiresAt: token.expiresAt / 1000 };
        return flavour === 'ecr'
          ? { authorizationData: [{ ...data, proxyEndpoint: `http://${registryHost}` }] }
          : { authorizationData: data };
      }
      case 'DescribeRegistries':
        if (flavour !== 'ecr-public') break;
        return {
          registries: [
            {
              registryId: accountId,
              registryArn: `arn:aws:ecr-public::${accountId}:registry/${accountId}`,
              registryUri: `${registryHost}/${alias}`,
              verified: false,
              aliases: [
                { name: alias, status: 'ACTIVE', primaryRegistryAlias: true, defaultRegistryAlias: true },
              ],
            },
          ],
        };
      case 'DescribeRepositories': {
        checkRegistryId(input);
        const names = Array.isArray(input.repositoryNames) ? (input.repositoryNames as string[]) : undefined;
        const found = names
          ? names.map((n) => {
              const r = repositories.get(n);
              if (!r) {
                throw new ApiError(
                  'RepositoryNotFoundException',
                  `The repository with name '${n}' does not exist in the registry with id '${accountId}'`,
                );
              }
              return r;
            })
          : [...repositories.values()];
        return { repositories: found.map(describeRepository) };
      }
      case 'CreateRepository': {
        checkRegistryId(input);
        const name = String(input.repositoryName ?? '');
        if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(name)) {
          throw new ApiError('InvalidParameterException', `Invalid parameter at 'repositoryName'`);
        }
        if (repositories.has(name)) {
          throw new ApiError(
            'RepositoryAlreadyExistsException',
            `The repository with name '${name}' already exists in the registry with id '${accountId}'`,
          );
        }
        if (
          flavour === 'ecr-public' &&
          (input.imageTagMutability !== undefined || input.encryptionConfiguration)
        ) {
          throw new ApiError('InvalidParameterException', 'ECR Public has no such repository settings');
        }
        const r: StandInRepository = {
          name,
          registryPath: flavour === 'ecr' ? name : `${alias}/${name}`,
          immutable: input.imageTagMutability === 'IMMUTABLE',
          createInput: input,
        };
        repositories.set(name, r);
        return {
          repository: describeRepository(r),
          ...(flavour === 'ecr-public' ? { catalogData: input.catalogData ?? {} } : {}),
        };
      }
    }
    throw new ApiError('UnknownOperationException', `unknown operation ${operation}`);
  }

  function apiAnswer(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
    const bytes = Buffer.from(JSON.stringify(body));
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': String(bytes.length),
      'x-amzn-requestid': randomUUID(),
      ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
    });
    res.end(bytes);
  }

  /**
   * STS (query protocol, XML answers), reached through AWS_ENDPOINT_URL_STS: AssumeRole (signed, for a
   * configured roleArn) and AssumeRoleWithWebIdentity (not signed: the OIDC token is the credential, as
   * in GitHub Actions). The temporary keys go into the keyring.
   */
  function sts(
    res: ServerResponse,
    body: Buffer,
    verified: ReturnType<typeof verifySigV4>,
    call: ApiCall,
  ): boolean {
    const form = new URLSearchParams(body.toString('utf8'));
    const action = form.get('Action') ?? '';
    call.api = 'sts';
    call.operation = action;
    call.input = { RoleArn: form.get('RoleArn'), RoleSessionName: form.get('RoleSessionName') };
    const xml = (status: number, text: string) => {
      call.status = status;
      res.writeHead(status, {
        'content-type': 'text/xml',
        'content-length': String(Buffer.byteLength(text)),
      });
      res.end(text);
    };
    const fail = (status: number, code: string, message: string): boolean => {
      call.error = code;
      xml(
        status,
        `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
      return false;
    };
    if (action === 'AssumeRole') {
      if (!call.signatureValid || verified?.auth.service !== 'sts') {
        return fail(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match');
      }
    } else if (action === 'AssumeRoleWithWebIdentity') {
      if (!form.get('WebIdentityToken')) return fail(400, 'InvalidIdentityToken', 'no web identity token');
    } else {
      return fail(400, 'InvalidAction', `unknown action ${action}`);
    }
    if (deny.has(`sts:${action}`))
      return fail(403, 'AccessDenied', `not authorized to perform: sts:${action}`);
    const key = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(48).toString('base64'),
    };
    options.keyring.set(key.accessKeyId, {
      secretAccessKey: key.secretAccessKey,
      sessionToken: key.sessionToken,
    });
    issued.push(key.secretAccessKey, key.sessionToken);
    const role = form.get('RoleArn') ?? '';
    const session = form.get('RoleSessionName') ?? 'session';
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    xml(
      200,
      `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result>` +
        `<Credentials><AccessKeyId>${key.accessKeyId}</AccessKeyId><SecretAccessKey>${key.secretAccessKey}</SecretAccessKey>` +
        `<SessionToken>${key.sessionToken}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>AROAREGMIRRORTEST:${session}</AssumedRoleId>` +
        `<Arn>${role.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${session}</Arn></AssumedRoleUser>` +
        `</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
    );
    return true;
  }

  const api = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req, MAX_API_BODY);
      const target = String(req.headers['x-amz-target'] ?? '');
      const dot = target.indexOf('.');
      const apiName = dot > 0 ? target.slice(0, dot) : target;
      const operation = dot > 0 ? target.slice(dot + 1) : '';
      const key = options.keyring.get(parseSigV4(req.headers.authorization)?.accessKeyId ?? '');
      const verified = verifySigV4(
        { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers },
        body,
        key?.secretAccessKey ?? '',
      );
      const token = req.headers['x-amz-security-token'];
      const call: ApiCall = {
        operation,
        api: apiName,
        service: verified?.auth.service ?? '',
        region: verified?.auth.region ?? '',
        accessKeyId: verified?.auth.accessKeyId ?? '',
        // Temporary credentials are only good with their session token, signed along.
        signatureValid:
          (verified?.valid ?? false) &&
          (key?.sessionToken === undefined ||
            (token === key.sessionToken &&
              verified?.auth.signedHeaders.includes('x-amz-security-token') === true)),
        temporary: key?.sessionToken !== undefined,
        input: {},
        status: 0,
      };
      calls.push(call);
      if (String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
        sts(res, body, verified, call);
        return;
      }
      const fail = (status: number, type: string, message: string) => {
        call.status = status;
        call.error = type;
        apiAnswer(res, status, { __type: type, message }, type);
      };
      try {
        call.input = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        return fail(400, 'SerializationException', 'body is not JSON');
      }
      const input = call.input;
      if (!verified) return fail(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      if (!key) {
        return fail(
          400,
          'UnrecognizedClientException',
          'The security token included in the request is invalid.',
        );
      }
      if (!call.signatureValid) {
        return fail(
          400,
          'InvalidSignatureException',
          `The request signature we calculated does not match the signature you provided (${verified.why}).`,
        );
      }
      const wantedApi = flavour === 'ecr' ? ECR_TARGET : PUBLIC_TARGET;
      const wantedService = flavour === 'ecr' ? 'ecr' : 'ecr-public';
      if (
        apiName !== wantedApi ||
        verified.auth.service !== wantedService ||
        verified.auth.region !== region
      ) {
        return fail(
          400,
          'InvalidSignatureException',
          `Credential should be scoped to ${wantedService} in ${region}, not ${verified.auth.service} in ${verified.auth.region} (target ${apiName})`,
        );
      }
      try {
        const out = operate(operation, input);
        call.status = 200;
        apiAnswer(res, 200, out);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        fail(err.status, err.type, err.message);
      }
    })().catch((err: unknown) => {
      if (!res.headersSent)
        apiAnswer(res, 500, { __type: 'ServerException', message: String(err) }, 'ServerException');
    });
  });

  // ---- the registry ------------------------------------------------------------------------------

  function validToken(password: string | undefined): 'ok' | 'expired' | 'unknown' {
    const t = password === undefined ? undefined : tokens.get(password);
    if (!t) return 'unknown';
    return Date.now() < t.expiresAt ? 'ok' : 'expired';
  }

  function basicPassword(header: string | undefined): { user: string; password: string } | undefined {
    if (!header?.toLowerCase().startsWith('basic ')) return undefined;
    const text = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = text.indexOf(':');
    return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) };
  }

  const refuse = (rule: Refusal['rule'], req: IncomingMessage, path: string, detail?: string) =>
    refusals.push({ rule, method: req.method ?? '', path, ...(detail ? { detail } : {}) });

  /** ECR Public's /token: Basic AWS:<password> (or nothing, for anonymous pulls) → a Bearer token. */
  function tokenEndpoint(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const basic = basicPassword(req.headers.authorization);
    let from: Token | undefined;
    if (basic) {
      const state = basic.user === 'AWS' ? validToken(basic.password) : 'unknown';
      if (state !== 'ok') {
        refuse(state === 'expired' ? 'expired-token' : 'unknown-token', req, url.pathname, 'token endpoint');
        registryError(
          res,
          'GET',
          401,
          'DENIED',
          'Your authorization token has expired. Reauthenticate and try again.',
        );
        return;
      }
      from = tokens.get(basic.password);
    }
    const bearer = randomBytes(32).toString('base64url');
    bearers.set(bearer, { from, expiresAt: from?.expiresAt ?? Date.now() + lifetimeMs });
    issued.push(bearer);
    // Like ECR Public: no expires_in (clients assume 60 s).
    const body = Buffer.from(JSON.stringify({ token: bearer }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  }

  /** Whether the request may go on; answers it when not. `write`: it changes something. */
  function authorized(req: IncomingMessage, res: ServerResponse, path: string, write: boolean): boolean {
    const method = req.method ?? 'GET';
    const header = req.headers.authorization;
    /** ECR's 401 with its Basic challenge. */
    const challengeBasic = (reason: 'no-credentials' | 'unknown-token'): false => {
      refuse(reason, req, path);
      res.setHeader('www-authenticate', `Basic realm="http://${registryHost}/",service="ecr.amazonaws.com"`);
      registryError(res, method, 401, 'UNAUTHORIZED', 'Not Authorized');
      return false;
    };
    /** An expired token: 403 DENIED and no challenge, as both flavours answer. */
    const expired = (): false => {
      refuse('expired-token', req, path);
      registryError(
        res,
        method,
        403,
        'DENIED',
        'Your authorization token has expired. Reauthenticate and try again.',
      );
      return false;
    };
    if (flavour === 'ecr') {
      const basic = basicPassword(header);
      if (!basic) return challengeBasic('no-credentials');
      const state = basic.user === 'AWS' ? validToken(basic.password) : 'unknown';
      if (state === 'expired') return expired();
      if (state === 'unknown') return challengeBasic('unknown-token');
      return true;
    }
    const bearer = header?.toLowerCase().startsWith('bearer ')
      ? bearers.get(header.slice(7).trim())
      : undefined;
    if (!bearer) {
      refuse('no-credentials', req, path);
      res.setHeader(
        'www-authenticate',
        `Bearer realm="http://${registryHost}/token",service="public.ecr.aws",scope="aws"`,
      );
      registryError(res, method, 401, 'UNAUTHORIZED', 'Not Authorized');
      return false;
    }
    if (Date.now() >= (bearer.from?.expiresAt ?? bearer.expiresAt)) return expired();
    if (write && !bearer.from) {
      refuse('anonymous-write', req, path);
      registryError(res, method, 403, 'DENIED', 'Not Authorized');
      return false;
    }
    return true;
  }

  function repositoryOf(name: string): StandInRepository | undefined {
    if (flavour === 'ecr') return repositories.get(name);
    if (!name.startsWith(`${alias}/`)) return undefined;
    return repositories.get(name.slice(alias.length + 1));
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    record: RegistryRecord,
    opts: {
      body?: Buffer;
      path?: string;
      rewrite?: (status: number, headers: OutgoingHttpHeaders) => number;
    } = {},
  ): void {
    const headers = forwardableHeaders(req.headers, ['authorization']);
    if (opts.body) headers['content-length'] = String(opts.body.length);
    const up = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: opts.path ?? req.url,
      // The Host header stays ours, so the registry's Location headers point back here.
      headers,
      agent,
    });
    up.on('response', (upRes) => {
      const out = forwardableHeaders(upRes.headers, ['authorization']);
      const status = opts.rewrite ? opts.rewrite(upRes.statusCode ?? 502, out) : (upRes.statusCode ?? 502);
      record.status = status;
      res.writeHead(status, out);
      upRes.pipe(res);
    });
    up.on('error', () => {
      record.status = 502;
      if (!res.headersSent)
        registryError(res, req.method ?? 'GET', 502, 'UNAVAILABLE', 'upstream unreachable');
      else res.destroy();
    });
    if (opts.body) up.end(opts.body);
    else req.pipe(up);
  }

  /** HEAD the upstream manifest: its digest, or undefined. */
  function upstreamDigest(name: string, tag: string): Promise<string | undefined> {
    return new Promise((resolve) => {
      const up = httpRequest({
        host: upstream.hostname,
        port: upstream.port,
        method: 'HEAD',
        path: `/v2/${name}/manifests/${tag}`,
        headers: { accept: MANIFEST_ACCEPT, host: registryHost },
        agent,
      });
      up.on('response', (r) => {
        r.resume();
        const digest = r.headers['docker-content-digest'];
        resolve(r.statusCode === 200 && typeof digest === 'string' ? digest : undefined);
      });
      up.on('error', () => resolve(undefined));
      up.end();
    });
  }

  const registry = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in.invalid');
    const method = req.method ?? 'GET';
    const record: RegistryRecord = {
      method,
      path: url.pathname,
      query: url.search,
      status: 0,
      hasAuthorization: req.headers.authorization !== undefined,
      size: Number(req.headers['content-length'] ?? 0),
    };
    registryRequests.push(record);
    const answer = (status: number, code: string, message: string) => {
      record.status = status;
      req.resume();
      registryError(res, method, status, code, message);
    };
    if (flavour === 'ecr-public' && url.pathname === '/token') {
      record.status = 200;
      tokenEndpoint(req, res, url);
      return;
    }
    if (!url.pathname.startsWith('/v2/')) return answer(404, 'NOT_FOUND', 'no such endpoint');
    const write = method !== 'GET' && method !== 'HEAD';
    if (!authorized(req, res, url.pathname, write)) {
      record.status = res.statusCode;
      req.resume();
      return;
    }
    if (url.pathname === '/v2/' || url.pathname === '/v2') return forward(req, res, record);
    const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)\/(.*)$/.exec(url.pathname);
    if (!m) return answer(404, 'NOT_FOUND', 'no such endpoint');
    const [, name, kind, rest] = m as unknown as [string, string, string, string];
    const repo = repositoryOf(name);
    if (!repo) {
      refuse('name-unknown', req, url.pathname);
      return answer(
        404,
        'NAME_UNKNOWN',
        `The repository with name '${name}' does not exist in the registry with id '${accountId}'`,
      );
    }
    if (kind === 'tags') {
      const n = Number(url.searchParams.get('n') ?? '0');
      if (n > 1000) {
        refuse('pagination', req, url.pathname, `n=${n}`);
        return answer(400, 'PAGINATION_NUMBER_INVALID', 'n must be at most 1000');
      }
      return forward(req, res, record);
    }
    if (kind === 'blobs' && rest.startsWith('uploads')) {
      const uuid = /^uploads\/([^/]+)$/.exec(rest)?.[1];
      if (method === 'POST') {
        // Mounts are declined (an upload session instead), as ECR does without blob mounting.
        if (url.searchParams.has('mount')) {
          url.searchParams.delete('mount');
          url.searchParams.delete('from');
          return forward(req, res, record, { path: `${url.pathname}${url.search}` });
        }
        return forward(req, res, record);
      }
      if (!uuid) return forward(req, res, record);
      let session = sessions.get(uuid);
      if (!session) {
        session = { parts: [] };
        sessions.set(uuid, session);
      }
      const s = session;
      if (method === 'PATCH') {
        const length = Number(req.headers['content-length'] ?? 0);
        return forward(req, res, record, {
          rewrite(status, headers) {
            if (status !== 202) return status;
            s.parts.push(length);
            // ECR's Range stops at the first chunk boundary (aws/containers-roadmap#2831).
            s.stuckRange ??= String(headers.range ?? '');
            headers.range = s.stuckRange;
            return 201;
          },
        });
      }
      if (method === 'GET') {
        return forward(req, res, record, {
          rewrite(status, headers) {
            if (s.stuckRange) headers.range = s.stuckRange;
            return status;
          },
        });
      }
      if (method === 'PUT') {
        const last = Number(req.headers['content-length'] ?? 0);
        const parts = last > 0 ? [...s.parts, last] : s.parts;
        const small = parts.slice(0, -1).findIndex((p) => p < MIN_PART);
        if (small >= 0) {
          refuse(
            'part-too-small',
            req,
            url.pathname,
            `part ${small + 1} of ${parts.length}: ${parts[small]} bytes`,
          );
          return answer(
            400,
            'BLOB_UPLOAD_INVALID',
            `LayerPartTooSmallException: layer part ${small + 1} is ${parts[small]} bytes; every part but the last must be at least ${MIN_PART} bytes`,
          );
        }
        return forward(req, res, record);
      }
      return forward(req, res, record);
    }
    if (kind === 'manifests' && method === 'PUT' && !rest.startsWith('sha256:') && repo.immutable) {
      void (async () => {
        const body = await readBody(req, 16 * MIB);
        const current = await upstreamDigest(name, rest);
        if (current !== undefined) {
          const pushed = `sha256:${sha256Hex(body)}`;
          refuse(
            'tag-invalid',
            req,
            url.pathname,
            current === pushed ? 'same digest' : `${current} → ${pushed}`,
          );
          return answer(
            400,
            'TAG_INVALID',
            `The image tag '${rest}' already exists in the '${name}' repository and cannot be overwritten because the repository is immutable.`,
          );
        }
        forward(req, res, record, { body });
      })().catch(() => res.destroy());
      return;
    }
    forward(req, res, record);
  });

  const apiPort = await listen(api, '127.0.0.1');
  const registryPort = await listen(registry, '127.0.0.1');
  registryHost = `127.0.0.1:${registryPort}`;

  return {
    flavour,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    registryHost,
    registryUrl: `http://${registryHost}`,
    accountId,
    region,
    alias,
    calls,
    registryRequests,
    refusals,
    repositories,
    issued,
    deny,
    revokeTokens() {
      for (const t of tokens.values()) t.expiresAt = Math.min(t.expiresAt, Date.now());
    },
    setTokenLifetime(seconds) {
      lifetimeMs = seconds * 1000;
    },
    mintPassword(seconds = 3600) {
      return mintToken(seconds * 1000).token.password;
    },
    createRepository(name, immutable = false) {
      repositories.set(name, {
        name,
        registryPath: flavour === 'ecr' ? name : `${alias}/${name}`,
        immutable,
        createInput: { repositoryName: name },
      });
    },
    writes() {
      return registryRequests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
    },
    reset() {
      calls.length = 0;
      registryRequests.length = 0;
      refusals.length = 0;
    },
    async stop() {
      await Promise.all([closeServer(api), closeServer(registry)]);
      agent.destroy();
    },
  };
}
