import { DescribeJobQueuesCommand, type JobQueueDetail } from '@aws-sdk/client-batch';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { UsageError } from '../../errors.js';
import { type FoundCredentials, findAwsCredentials } from '../../util/aws-credentials.js';
import { awsClients } from './aws.js';
import { awsErrorMessage } from './aws-basics.js';
import type { BatchSettings } from './settings.js';

/**
 * The credentials calls are signed with: a sandbox's own keys (undefined here), else the AWS
 * default chain's, or a UsageError naming what is wrong with it (a broken AWS_PROFILE, an
 * expired SSO session, nothing at all).
 */
async function batchCredentials(
  settings: Pick<BatchSettings, 'region' | 'sandbox'>,
  env: NodeJS.ProcessEnv,
): Promise<FoundCredentials | undefined> {
  if (settings.sandbox) return undefined;
  return findAwsCredentials(env).catch((error: unknown) => {
    throw new UsageError(
      `no AWS credentials for the batch backend in ${settings.region}: ${(error as Error).message}`,
    );
  });
}

/** Why the queue takes no jobs (absent, disabled, invalid), or undefined when it does. */
export function queueProblem(
  settings: Pick<BatchSettings, 'jobQueue' | 'region'>,
  queue: JobQueueDetail | undefined,
): string | undefined {
  if (!queue) return `AWS Batch job queue ${settings.jobQueue} not found in ${settings.region}`;
  if (queue.state !== 'ENABLED' || queue.status !== 'VALID')
    return `job queue ${queue.jobQueueName} is ${queue.state} and ${queue.status}${queue.statusReason ? `: ${queue.statusReason}` : ''}`;
  return undefined;
}

/** Checks the stack answers: the queue exists and takes jobs, the bucket is reachable. */
export async function checkBatch(settings: BatchSettings): Promise<void> {
  const found = await batchCredentials(settings, process.env);
  // One retry: a stack that does not answer is a configuration problem, said at once.
  const { batch, submit, s3, logs, presign } = awsClients(settings, 2, found?.credentials);
  try {
    const answer = await batch
      .send(new DescribeJobQueuesCommand({ jobQueues: [settings.jobQueue] }))
      .catch((error: unknown) => {
        throw new UsageError(
          `cannot reach AWS Batch in ${settings.region}: ${awsErrorMessage(error)}`,
        );
      });
    const problem = queueProblem(settings, answer.jobQueues?.[0]);
    if (problem) throw new UsageError(problem);
    await s3.send(new HeadBucketCommand({ Bucket: settings.bucket })).catch((error: unknown) => {
      throw new UsageError(
        `cannot use the state bucket ${settings.bucket}: ${awsErrorMessage(error)}`,
      );
    });
  } finally {
    for (const client of [batch, submit, s3, logs, presign]) client.destroy();
  }
}
