import { DescribeJobQueuesCommand } from '@aws-sdk/client-batch';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { UsageError } from '../../errors.js';
import { awsClients } from './aws.js';
import { awsErrorMessage, isMissingCredentials } from './aws-basics.js';
import type { BatchSettings } from './settings.js';

/** Checks the stack answers: the queue exists and takes jobs, the bucket is reachable. */
export async function checkBatch(settings: BatchSettings): Promise<void> {
  // One retry: a stack that does not answer is a configuration problem, said at once.
  const { batch, submit, s3, logs } = awsClients(settings, 2);
  try {
    const answer = await batch
      .send(new DescribeJobQueuesCommand({ jobQueues: [settings.jobQueue] }))
      .catch((error: unknown) => {
        throw new UsageError(
          isMissingCredentials(error)
            ? `no AWS credentials for the batch backend in ${settings.region}: sign in (AWS_PROFILE, aws sso login) or run where a role provides them`
            : `cannot reach AWS Batch in ${settings.region}: ${awsErrorMessage(error)}`,
        );
      });
    const queue = answer.jobQueues?.[0];
    if (!queue)
      throw new UsageError(
        `AWS Batch job queue ${settings.jobQueue} not found in ${settings.region}`,
      );
    if (queue.state !== 'ENABLED' || queue.status !== 'VALID')
      throw new UsageError(
        `job queue ${queue.jobQueueName} is ${queue.state} and ${queue.status}${queue.statusReason ? `: ${queue.statusReason}` : ''}`,
      );
    await s3.send(new HeadBucketCommand({ Bucket: settings.bucket })).catch((error: unknown) => {
      throw new UsageError(
        `cannot use the state bucket ${settings.bucket}: ${awsErrorMessage(error)}`,
      );
    });
  } finally {
    for (const client of [batch, submit, s3, logs]) client.destroy();
  }
}
