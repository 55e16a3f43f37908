import { ENV, type EnvName } from './env.js';

/**
 * How each name of the environment contract reaches a Batch job. The Pulumi component writes the
 * job definition from this; the Batch backend sets the per-task names when it submits.
 */
export const BATCH_JOB_ENV = {
  /** Fixed by the stack, in the job definition's environment. */
  definition: [ENV.OUTPUT_DIR, ENV.S3_BUCKET, ENV.AWS_REGION, ENV.USE_BEDROCK],
  /** In the job definition too, when the model is reached through Bedrock. */
  definitionWithBedrock: [ENV.BEDROCK_REGION, ENV.BEDROCK_MODEL],
  /** From Secrets Manager through the definition's `secrets`, when the Anthropic API is used. */
  secretWithAnthropic: [ENV.ANTHROPIC_API_KEY],
  /** Per task, in the container overrides of each submission. */
  submission: [
    ENV.EXECUTOR_ID,
    ENV.TASK_ID,
    ENV.REQUIREMENTS,
    ENV.USE_REAL_EXECUTORS,
    ENV.MAX_EXECUTORS,
    ENV.S3_PREFIX,
  ],
  /** Never passed: the job role's temporary credentials stand in for static keys. */
  fromJobRole: [ENV.AWS_ACCESS_KEY_ID, ENV.AWS_SECRET_ACCESS_KEY, ENV.AWS_SESSION_TOKEN],
} as const satisfies Record<string, readonly EnvName[]>;
