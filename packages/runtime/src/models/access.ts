import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AWS_CHAIN_ENV, ENV, MODEL_ENV, type SecretEnvName } from '../contracts/env.js';
import type { AgentSettings } from '../contracts/executor.js';
import { UsageError } from '../errors.js';
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
    credentials = [await findChainCredentials({ ...env, ...awsEnv }, awsTimeoutMs)];
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

/** Resolves the AWS default chain once, bounded in time; says where the credentials came from. */
async function findChainCredentials(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  // Loaded on demand: the AWS SDK is large and most runs never need it.
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  const chain = fromNodeProviderChain({
    profile: env.AWS_PROFILE,
    filepath: env.AWS_SHARED_CREDENTIALS_FILE,
    configFilepath: env.AWS_CONFIG_FILE,
    timeout: Math.min(timeoutMs, 2_000),
    maxRetries: 0,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      chain(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return `AWS credential chain${env.AWS_PROFILE ? ` (profile ${env.AWS_PROFILE})` : ''}${found.expiration ? ', temporary' : ''}`;
  } catch (error) {
    throw new UsageError(
      `USE_BEDROCK needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE), AWS_PROFILE, or run with a role (${error instanceof Error ? error.message.split('\n')[0] : error})`,
    );
  } finally {
    clearTimeout(timer);
  }
}
