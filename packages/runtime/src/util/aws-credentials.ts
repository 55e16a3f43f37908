import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors.js';

/** Resolved AWS credentials: held in memory, never written or shown. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** Why the chain gave nothing, and what to do: one line as a UsageError, two parts for doctor. */
export class AwsCredentialsError extends UsageError {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${problem}: ${fix}`);
  }
}

export interface FoundCredentials {
  credentials: AwsCredentials;
  /** Where the chain found them, in words ("profile dev (~/.aws/config, SSO)"); no value. */
  source: string;
}

/** The shared files the chain reads, as the SDK finds them: the variables, else under HOME. */
function sharedFiles(env: NodeJS.ProcessEnv): { config: string; credentials: string } {
  const home = env.HOME ?? os.homedir();
  return {
    config: env.AWS_CONFIG_FILE ?? path.join(home, '.aws', 'config'),
    credentials: env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials'),
  };
}

/** The path with the home directory as `~`, fit to show. */
function shown(file: string, env: NodeJS.ProcessEnv): string {
  const home = env.HOME ?? os.homedir();
  return file.startsWith(`${home}/`) ? `~${file.slice(home.length)}` : file;
}

/**
 * The SDK marks credentials with the providers that made them (`$source`, the feature ids of
 * @aws-sdk/core's setCredentialFeature); each, in words. The first match wins: a profile's SSO
 * credentials also carry the profile's id.
 */
const SOURCES: [feature: string, words: (profile: string) => string][] = [
  ['CREDENTIALS_ENV_VARS', () => 'environment variables (AWS_ACCESS_KEY_ID)'],
  ['CREDENTIALS_PROFILE_SSO', (p) => `${p}, SSO`],
  ['CREDENTIALS_PROFILE_SSO_LEGACY', (p) => `${p}, SSO`],
  ['CREDENTIALS_SSO', (p) => `${p}, SSO`],
  ['CREDENTIALS_PROFILE_LOGIN', (p) => `${p}, aws login`],
  ['CREDENTIALS_PROFILE_PROCESS', (p) => `${p}, credential_process`],
  ['CREDENTIALS_PROFILE_STS_WEB_ID_TOKEN', (p) => `${p}, web identity`],
  ['CREDENTIALS_PROFILE_SOURCE_PROFILE', (p) => `${p}, assumed role`],
  ['CREDENTIALS_STS_ASSUME_ROLE', (p) => `${p}, assumed role`],
  ['CREDENTIALS_PROFILE', (p) => p],
  [
    'CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN',
    () => 'web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)',
  ],
  ['CREDENTIALS_HTTP', () => 'container credentials (the task role)'],
  ['CREDENTIALS_IMDS', () => 'instance role (EC2 instance metadata)'],
];

function describeSource(credentials: object, env: NodeJS.ProcessEnv): string {
  const features = Object.keys((credentials as { $source?: object }).$source ?? {});
  const profileName = env.AWS_PROFILE ?? 'default';
  const files = sharedFiles(env);
  const profile = `profile ${profileName} (${shown(files.config, env)} or ${shown(files.credentials, env)}`;
  for (const [feature, words] of SOURCES)
    if (features.includes(feature)) {
      const said = words(profile);
      return said.startsWith('profile ') ? `${said})` : said;
    }
  return 'the AWS default credential chain';
}

/**
 * AWS_PROFILE names a profile one of the shared files holds, or a UsageError naming the
 * profiles they do hold: the chain's own error ("Could not resolve credentials using profile")
 * says neither which files it read nor what is in them.
 */
async function checkProfile(env: NodeJS.ProcessEnv): Promise<void> {
  const profile = env.AWS_PROFILE;
  if (!profile) return;
  const files = sharedFiles(env);
  const { loadSharedConfigFiles } = await import('@smithy/core/config');
  const { configFile, credentialsFile } = await loadSharedConfigFiles({
    filepath: files.credentials,
    configFilepath: files.config,
    ignoreCache: true,
  });
  const names = [...new Set([...Object.keys(configFile), ...Object.keys(credentialsFile)])];
  if (names.includes(profile)) return;
  throw new AwsCredentialsError(
    `AWS_PROFILE=${profile} names no profile in ${shown(files.config, env)} or ${shown(files.credentials, env)} (${names.length > 0 ? `they have: ${names.sort().join(', ')}` : 'they have none'})`,
    'fix the name, or unset AWS_PROFILE',
  );
}

/**
 * The AWS default chain (environment, profiles and SSO, web identity, container and instance
 * roles), bounded in time, and where it found credentials. A broken AWS_PROFILE, an expired SSO
 * session or an empty chain is a UsageError that says which and what to do.
 */
export async function findAwsCredentials(
  env: NodeJS.ProcessEnv,
  timeoutMs = 10_000,
): Promise<FoundCredentials> {
  await checkProfile(env);
  // Loaded on demand: the AWS SDK is large and most runs never need it.
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  const files = sharedFiles(env);
  const chain = fromNodeProviderChain({
    ...(env.AWS_PROFILE && { profile: env.AWS_PROFILE }),
    filepath: files.credentials,
    configFilepath: files.config,
    timeout: Math.min(timeoutMs, 2_000),
    maxRetries: 0,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const credentials = await Promise.race([
      chain(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { credentials, source: describeSource(credentials, env) };
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
    if (/sso/i.test(message) && /expired|invalid|refresh/i.test(message))
      throw new AwsCredentialsError(
        `the SSO session of profile ${env.AWS_PROFILE ?? 'default'} has expired`,
        `run aws sso login --profile ${env.AWS_PROFILE ?? 'default'}`,
      );
    throw new AwsCredentialsError(
      `no AWS credentials found (${message})`,
      `set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE (a profile of ${shown(files.config, env)}), run aws sso login, or run where a role provides them`,
    );
  } finally {
    clearTimeout(timer);
  }
}
