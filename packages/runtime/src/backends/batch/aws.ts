import { BatchClient } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { IAMClient } from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentials } from '../../util/aws-credentials.js';
import { HTTP_TIMEOUTS } from './aws-basics.js';
import type { BatchSettings } from './settings.js';

export interface AwsClients {
  batch: BatchClient;
  /** For submissions, which the submitter retries itself (through its rate limit). */
  submit: BatchClient;
  s3: S3Client;
  /** Signs the URLs jobs use (the sandbox's S3 listens where jobs reach it too). */
  presign: S3Client;
  logs: CloudWatchLogsClient;
}

/**
 * The SDK retries throttling and 5xx answers itself, with exponential backoff and jitter; a run
 * outlives a few seconds of throttling, so it is given more tries than the default three.
 */
const MAX_ATTEMPTS = 8;

/**
 * Clients for the backend's region, with the default credential chain (profiles, SSO, roles,
 * the environment) or the `credentials` found in it. Against a local sandbox: its endpoints,
 * signed with the keys it made.
 */
export function awsClients(
  settings: Pick<BatchSettings, 'region' | 'sandbox'>,
  maxAttempts = MAX_ATTEMPTS,
  credentials?: AwsCredentials,
): AwsClients {
  const common = commonConfig(settings, maxAttempts, credentials);
  return {
    batch: new BatchClient({ ...common, ...endpoint(settings.sandbox?.batch) }),
    submit: new BatchClient({ ...common, maxAttempts: 1, ...endpoint(settings.sandbox?.batch) }),
    s3: new S3Client({ ...common, ...endpoint(settings.sandbox?.s3) }),
    presign: new S3Client({
      ...common,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      ...endpoint(settings.sandbox?.s3),
    }),
    logs: new CloudWatchLogsClient({ ...common, ...endpoint(settings.sandbox?.logs) }),
  };
}

const endpoint = (url: string | undefined) => (url ? { endpoint: url } : {});

function commonConfig(
  settings: Pick<BatchSettings, 'region' | 'sandbox'>,
  maxAttempts: number,
  credentials?: AwsCredentials,
) {
  return {
    region: settings.region,
    maxAttempts,
    requestHandler: HTTP_TIMEOUTS,
    // A copy: the SDK marks the object it is given (`$source`), which the settings must not carry.
    ...(settings.sandbox
      ? { credentials: { ...settings.sandbox.credentials } }
      : credentials && { credentials }),
  };
}

/**
 * Who the caller is (STS) and what IAM would let it do (IAM's policy simulator): what `doctor`
 * asks besides the calls a run makes. `credentials`: already resolved from the default chain.
 */
export async function identityClients(
  settings: Pick<BatchSettings, 'region' | 'sandbox'>,
  credentials?: AwsCredentials,
): Promise<{ sts: STSClient; iam: IAMClient }> {
  // Loaded on demand: only doctor needs them, and the image ships neither.
  const [{ STSClient }, { IAMClient }] = await Promise.all([
    import('@aws-sdk/client-sts'),
    import('@aws-sdk/client-iam'),
  ]);
  const common = commonConfig(settings, 1, credentials);
  return {
    sts: new STSClient({ ...common, ...endpoint(settings.sandbox?.sts) }),
    iam: new IAMClient({ ...common, ...endpoint(settings.sandbox?.iam) }),
  };
}
