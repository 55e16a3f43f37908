/**
 * The container environment contract. The names come from the original system and are kept so
 * existing scripts keep working; the Docker image, the Batch job definition and the backends
 * import them from here.
 */
export const ENV = {
  EXECUTOR_ID: 'EXECUTOR_ID',
  OUTPUT_DIR: 'OUTPUT_DIR',
  REQUIREMENTS: 'REQUIREMENTS',
  USE_REAL_EXECUTORS: 'USE_REAL_EXECUTORS',
  MAX_EXECUTORS: 'MAX_EXECUTORS',
  ANTHROPIC_API_KEY: 'ANTHROPIC_API_KEY',
  USE_BEDROCK: 'USE_BEDROCK',
  AWS_ACCESS_KEY_ID: 'AWS_ACCESS_KEY_ID',
  AWS_SECRET_ACCESS_KEY: 'AWS_SECRET_ACCESS_KEY',
  AWS_SESSION_TOKEN: 'AWS_SESSION_TOKEN',
  BEDROCK_REGION: 'BEDROCK_REGION',
  BEDROCK_MODEL: 'BEDROCK_MODEL',
  TASK_ID: 'TASK_ID',
  S3_BUCKET: 'S3_BUCKET',
  S3_PREFIX: 'S3_PREFIX',
  AWS_REGION: 'AWS_REGION',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Every name of the contract, in the original system's order. */
export const ENV_NAMES: readonly EnvName[] = Object.values(ENV);

/**
 * Model-access names beyond the original contract: a gateway (base URL and bearer token) and the
 * variables Claude Code reads for Bedrock and for its model.
 */
export const MODEL_ENV = {
  ANTHROPIC_BASE_URL: 'ANTHROPIC_BASE_URL',
  ANTHROPIC_AUTH_TOKEN: 'ANTHROPIC_AUTH_TOKEN',
  ANTHROPIC_MODEL: 'ANTHROPIC_MODEL',
  /** Bedrock through a VPC endpoint or gateway instead of the regional endpoint. */
  ANTHROPIC_BEDROCK_BASE_URL: 'ANTHROPIC_BEDROCK_BASE_URL',
  CLAUDE_CODE_USE_BEDROCK: 'CLAUDE_CODE_USE_BEDROCK',
  /** Claude Code sends its API requests over this Unix socket (the model proxy's). */
  ANTHROPIC_UNIX_SOCKET: 'ANTHROPIC_UNIX_SOCKET',
  /** Claude Code leaves Bedrock requests unsigned: the model proxy signs them. */
  CLAUDE_CODE_SKIP_BEDROCK_AUTH: 'CLAUDE_CODE_SKIP_BEDROCK_AUTH',
} as const;

/**
 * How a containerised executor is told its model proxy token: a file (`*_FILE`, like any
 * secret), so that `docker inspect` shows no token.
 */
export const MODEL_PROXY_TOKEN_ENV = 'MODEL_PROXY_TOKEN';

/** Names whose values are secrets: never written to disk, logs, commits or container metadata. */
export const SECRET_ENV_NAMES = [
  ENV.ANTHROPIC_API_KEY,
  MODEL_ENV.ANTHROPIC_AUTH_TOKEN,
  ENV.AWS_ACCESS_KEY_ID,
  ENV.AWS_SECRET_ACCESS_KEY,
  ENV.AWS_SESSION_TOKEN,
] as const;
export type SecretEnvName = (typeof SECRET_ENV_NAMES)[number];

/** AWS settings (not secrets) that the default credential chain reads: profiles, SSO, roles. */
export const AWS_CHAIN_ENV = [
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_EC2_METADATA_DISABLED',
] as const;

/** Host variables an executor process may inherit; everything else is dropped. */
export const INHERITED_HOST_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;

/**
 * What a `--setup` with the network open also gets of the orchestrator's environment: the
 * certificates this network makes tools trust, and its proxies. No credential of the user's.
 */
export const SETUP_NETWORK_ENV = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'PIP_CERT',
  'CURL_CA_BUNDLE',
  'GIT_SSL_CAINFO',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
] as const;

/** SETUP_NETWORK_ENV's values here, for a setup with the network open. */
export function setupNetworkEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    SETUP_NETWORK_ENV.flatMap((name) => (env[name] ? [[name, env[name] as string]] : [])),
  );
}
