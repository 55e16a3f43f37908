import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AWS_CHAIN_ENV, ENV, MODEL_ENV, type SecretEnvName } from '../contracts/env.js';
import type { AgentSettings } from '../contracts/executor.js';
import { UsageError } from '../errors.js';
import { AwsCredentialsError, findAwsCredentials } from '../util/aws-credentials.js';
import { MODEL_DEFAULTS } from './defaults.js';

export { MODEL_DEFAULTS };

export type ModelProvider = 'anthropic' | 'bedrock';

export interface ModelFlags {
  plannerModel?: string;
  executorModel?: string;
  bedrock?: boolean;
  bedrockRegion?: string;
}

export interface ModelAccess {
  provider: ModelProvider;
  plannerModel: string;
  executorModel: string;
  /** A gateway that speaks the Messages API, or Bedrock's endpoint (ANTHROPIC_BEDROCK_BASE_URL). */
  baseURL?: string;
  /** Bedrock's region. */
  region?: string;
  /** Which credentials were found and where: names only, never values. */
  credentials: string[];
  /** Secret values: held in memory and handed to executors as environment, nowhere else. */
  secrets: Partial<Record<SecretEnvName, string>>;
  /** Non-secret settings of the AWS credential chain that executors need too. */
  awsEnv: Record<string, string>;
}

/**
 * Reads a secret from `NAME` or from the file named by `NAME_FILE` (Docker and Kubernetes
 * secrets), trimmed. Both at once is ambiguous, and a `_FILE` that cannot be read is a
 * configuration error.
 */
export function readSecret(
  env: NodeJS.ProcessEnv,
  name: SecretEnvName,
): { value: string; source: string } | undefined {
  const direct = env[name]?.trim();
  const file = env[`${name}_FILE`];
  if (direct && file) {
    throw new UsageError(`both ${name} and ${name}_FILE are set: unset the one not to use`);
  }
  if (direct) return { value: direct, source: name };
  if (!file) return undefined;
  let value: string;
  try {
    value = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new UsageError(
      `cannot read ${name}_FILE (${file}): ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
  if (!value) throw new UsageError(`${name}_FILE (${file}) is empty`);
  return { value, source: `${name}_FILE` };
}

/**
 * A URL fit to show and to write down: credentials a gateway URL may carry (user info, a query)
 * are dropped. The full URL reaches executors as environment only.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(an unparsable URL)';
  }
}

/** What an executor needs to know about model access: no secrets, a redacted gateway URL. */
export function agentSettingsFor(
  access: ModelAccess,
  limits: { maxTurns: number; allowedTools: readonly string[]; maxBudgetUsd?: number },
): AgentSettings {
  return {
    provider: access.provider,
    model: access.executorModel,
    ...(access.baseURL && { baseURL: redactUrl(access.baseURL) }),
    ...(access.region && { region: access.region }),
    maxTurns: limits.maxTurns,
    allowedTools: [...limits.allowedTools],
    ...(limits.maxBudgetUsd !== undefined && { maxBudgetUsd: limits.maxBudgetUsd }),
  };
}

/** `1`, `true` or `yes`: how the contract's flags (USE_BEDROCK, USE_REAL_EXECUTORS) are set. */
export const truthyEnv = (value: string | undefined) =>
  value !== undefined && /^(1|true|yes)$/i.test(value.trim());

/** AWS chain settings to pass on; profiles keep working when executors get their own HOME. */
function awsChainEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of AWS_CHAIN_ENV) if (env[name]) out[name] = env[name] as string;
  const home = env.HOME ?? os.homedir();
  for (const [name, file] of [
    ['AWS_CONFIG_FILE', 'config'],
    ['AWS_SHARED_CREDENTIALS_FILE', 'credentials'],
  ] as const) {
    const candidate = path.join(home, '.aws', file);
    if (!out[name] && existsSync(candidate)) out[name] = candidate;
  }
  return out;
}

/**
 * Works out which model provider to use and with which credentials, from the environment (the
 * original system's names) and flags, which win. Bedrock without static keys checks the AWS
 * default chain (profiles, SSO, web identity, container and instance roles) within `awsTimeoutMs`.
 * Throws UsageError naming what is missing.
 */
export async function resolveModelAccess(
  env: NodeJS.ProcessEnv,
  flags: ModelFlags = {},
  awsTimeoutMs = 10_000,
): Promise<ModelAccess> {
  const bedrock = flags.bedrock ?? truthyEnv(env[ENV.USE_BEDROCK]);
  if (!bedrock) {
    const apiKey = readSecret(env, ENV.ANTHROPIC_API_KEY);
    const authToken = readSecret(env, MODEL_ENV.ANTHROPIC_AUTH_TOKEN);
    if (!apiKey && !authToken) {
      throw new UsageError(
        'no model credentials: set ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE), ANTHROPIC_AUTH_TOKEN with ANTHROPIC_BASE_URL for a gateway, or USE_BEDROCK=1 with AWS credentials',
      );
    }
    const model = env[MODEL_ENV.ANTHROPIC_MODEL]?.trim() || MODEL_DEFAULTS.model;
    const baseURL = env[MODEL_ENV.ANTHROPIC_BASE_URL]?.trim() || undefined;
    return {
      provider: 'anthropic',
      plannerModel: flags.plannerModel ?? model,
      executorModel: flags.executorModel ?? model,
      ...(baseURL && { baseURL }),
      credentials: [apiKey, authToken].filter((c) => c !== undefined).map((c) => c.source),
      secrets: {
        ...(apiKey && { [ENV.ANTHROPIC_API_KEY]: apiKey.value }),
        ...(authToken && { [MODEL_ENV.ANTHROPIC_AUTH_TOKEN]: authToken.value }),
      },
      awsEnv: {},
    };
  }
  const region =
    flags.bedrockRegion ??
    (env[ENV.BEDROCK_REGION]?.trim() ||
      env[ENV.AWS_REGION]?.trim() ||
      MODEL_DEFAULTS.bedrockRegion);
  const model = env[ENV.BEDROCK_MODEL]?.trim() || MODEL_DEFAULTS.bedrockModel;
  const accessKeyId = readSecret(env, ENV.AWS_ACCESS_KEY_ID);
  const secretAccessKey = readSecret(env, ENV.AWS_SECRET_ACCESS_KEY);
  const sessionToken = readSecret(env, ENV.AWS_SESSION_TOKEN);
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    throw new UsageError('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be given together');
  }
  const awsEnv = awsChainEnv(env);
  let credentials: string[];
  if (accessKeyId && secretAccessKey) {
    credentials = [accessKeyId, secretAccessKey, sessionToken]
      .filter((c) => c !== undefined)
      .map((c) => c.source);
  } else {
    const found = await findAwsCredentials({ ...env, ...awsEnv }, awsTimeoutMs).catch(
      (error: unknown) => {
        throw error instanceof AwsCredentialsError
          ? new AwsCredentialsError(`USE_BEDROCK: ${error.problem}`, error.fix)
          : error;
      },
    );
    credentials = [`AWS ${found.source}`];
  }
  const baseURL = env[MODEL_ENV.ANTHROPIC_BEDROCK_BASE_URL]?.trim() || undefined;
  return {
    provider: 'bedrock',
    plannerModel: flags.plannerModel ?? model,
    executorModel: flags.executorModel ?? model,
    ...(baseURL && { baseURL }),
    region,
    credentials,
    secrets: {
      ...(accessKeyId && { [ENV.AWS_ACCESS_KEY_ID]: accessKeyId.value }),
      ...(secretAccessKey && { [ENV.AWS_SECRET_ACCESS_KEY]: secretAccessKey.value }),
      ...(sessionToken && { [ENV.AWS_SESSION_TOKEN]: sessionToken.value }),
    },
    awsEnv,
  };
}

/** How long a model probe may take: doctor says "does not answer" after this. */
const PROBE_TIMEOUT_MS = 5_000;

export type ProbeResult =
  | { ok: true; detail: string }
  | { ok: false; status: 'missing' | 'warn'; detail: string; fix: string };

/**
 * Why a request got no answer, under an SDK's wrapping: the system error code (fetch failed →
 * ECONNREFUSED), else the innermost cause's message.
 */
function noAnswerReason(error: unknown): string {
  let innermost = error as { code?: unknown; cause?: unknown; message?: string } | undefined;
  for (let e = innermost; e; e = e.cause as typeof e) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
    innermost = e;
  }
  return innermost?.message?.split('\n')[0] ?? String(error);
}

/**
 * Whether the model credentials are taken, with one free call and no retry, within 5 s.
 * Anthropic or a gateway: the models list (GET /v1/models). Bedrock: STS GetCallerIdentity with
 * the credentials found (IAM answers it for any valid key; whether Bedrock allows the model is
 * the job role's or the account's, which only an invocation shows).
 */
export async function probeModelAccess(
  access: ModelAccess,
  env: NodeJS.ProcessEnv,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<ProbeResult> {
  const result = await probe(access, env, timeoutMs);
  // An SDK's message may quote the request's URL, credentials and all, or a key: never shown.
  const query = access.baseURL ? URL.parse(access.baseURL)?.search : undefined;
  const secrets = [...Object.values(access.secrets), query].filter((s): s is string => Boolean(s));
  const scrubbed = secrets
    .reduce((text, secret) => text.split(secret).join('(secret)'), result.detail)
    .replace(/\/\/[^/@\s]+@/g, '//');
  return { ...result, detail: scrubbed };
}

async function probe(
  access: ModelAccess,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<ProbeResult> {
  if (access.provider === 'bedrock') {
    const { STSClient, GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
    const {
      [ENV.AWS_ACCESS_KEY_ID]: accessKeyId,
      [ENV.AWS_SECRET_ACCESS_KEY]: secretAccessKey,
      [ENV.AWS_SESSION_TOKEN]: sessionToken,
    } = access.secrets;
    const credentials =
      accessKeyId && secretAccessKey
        ? { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) }
        : (await findAwsCredentials({ ...env, ...access.awsEnv }, timeoutMs)).credentials;
    const sts = new STSClient({
      region: access.region,
      credentials,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs },
    });
    try {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      return {
        ok: true,
        detail: `Bedrock in ${access.region}: AWS takes ${identity.Arn}, from ${access.credentials.join(', ')}`,
      };
    } catch (error) {
      const e = error as { name?: string; message?: string; $metadata?: object };
      // An answer from AWS carries its metadata; a call that got none does not.
      const code =
        e.$metadata && 'httpStatusCode' in e.$metadata ? undefined : noAnswerReason(error);
      return {
        ok: false,
        status: 'missing',
        detail: code
          ? `STS in ${access.region} does not answer (${code})`
          : `AWS refused the credentials (${e.name}: ${e.message?.split('\n')[0]})`,
        fix: code
          ? 'check the network and BEDROCK_REGION'
          : 'sign in again (aws sso login), or give valid AWS keys',
      };
    } finally {
      sts.destroy();
    }
  }
  const { default: Anthropic } = await import('@anthropic-ai/sdk');
  const where = access.baseURL ? `gateway ${redactUrl(access.baseURL)}` : 'the Anthropic API';
  const client = new Anthropic({
    apiKey: access.secrets[ENV.ANTHROPIC_API_KEY] ?? null,
    authToken: access.secrets[MODEL_ENV.ANTHROPIC_AUTH_TOKEN] ?? null,
    baseURL: access.baseURL ?? null,
    maxRetries: 0,
    timeout: timeoutMs,
  });
  const keyName = access.credentials.join(', ');
  try {
    await client.models.list({ limit: 1 });
    return { ok: true, detail: `${where} takes ${keyName}` };
  } catch (error) {
    const status = (error as { status?: number }).status;
    if (status === 401 || status === 403)
      return {
        ok: false,
        status: 'missing',
        detail: `${where} refused ${keyName} (${status})`,
        fix: `check ${keyName}: it is not a key ${where} accepts`,
      };
    if (status === 404)
      return {
        ok: false,
        status: 'warn',
        detail: `${where} answers but serves no /v1/models (404): the key was not checked`,
        fix: 'a gateway that forwards /v1/models lets doctor check the key',
      };
    const reason =
      (error as Error).name === 'APIConnectionTimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : noAnswerReason(error);
    return {
      ok: false,
      status: 'missing',
      detail:
        status === undefined
          ? `${where} does not answer (${reason})`
          : `${where} answered ${status}: ${(error as Error).message.split('\n')[0]}`,
      fix: access.baseURL
        ? 'check ANTHROPIC_BASE_URL and that the gateway is running'
        : 'check the network (a proxy: HTTPS_PROXY)',
    };
  }
}
