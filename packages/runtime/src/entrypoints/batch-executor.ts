/**
 * The AWS Batch executor, the image's default command. Its S3 staging comes with the Batch
 * backend; until then it checks its configuration and says what it cannot do yet.
 */
import { ENV } from '../contracts/env.js';
import { fail } from './common.js';

const REQUIRED = [ENV.TASK_ID, ENV.S3_BUCKET, ENV.S3_PREFIX, ENV.AWS_REGION] as const;

const missing = REQUIRED.filter((name) => !process.env[name]?.trim());
if (missing.length > 0) {
  fail(`the batch executor needs ${REQUIRED.join(', ')} (missing: ${missing.join(', ')})`);
}
fail(
  'the batch executor cannot stage tasks from S3 yet: run the docker executor (/app/docker-executor) instead',
);
