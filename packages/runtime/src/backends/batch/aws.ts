import { BatchClient } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { S3Client } from '@aws-sdk/client-s3';
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
 * the environment). Against a local sandbox: its endpoints, signed with the keys it made.
 */
export function awsClients(
  settings: Pick<BatchSettings, 'region' | 'sandbox'>,
  maxAttempts = MAX_ATTEMPTS,
): AwsClients {
  const common = {
    region: settings.region,
    maxAttempts,
    requestHandler: HTTP_TIMEOUTS,
    // A copy: the SDK marks the object it is given (`$source`), which the settings must not carry.
    ...(settings.sandbox && { credentials: { ...settings.sandbox.credentials } }),
  };
  const endpoint = (url: string | undefined) => (url ? { endpoint: url } : {});
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
