import { ENV, type EnvName } from './env.js';
import { IMAGE } from './image.js';

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

/**
 * The job definition's fixed parts, shared by the Pulumi component (which registers it on AWS)
 * and the local Batch sandbox (which runs it on Docker).
 */
export const BATCH_JOB_DEFINITION = {
  command: [IMAGE.commands.batchExecutor],
  /**
   * The job starts as root so that it can keep its credentials from the agent: it runs Claude
   * Code and `--verify` as an unprivileged user of their own (see the Batch entrypoint).
   */
  user: 'root',
  /** The image's writable places, with the root filesystem read-only. */
  writablePaths: [IMAGE.output, '/home/executor', '/tmp'],
  /** Log streams are named `<prefix>/<container>/<task id>`. */
  logStreamPrefix: 'task',
  /**
   * Batch retries a job only when its host or its Spot capacity went away; any other end is
   * final, and the orchestrator decides on a new attempt.
   */
  retryOnCapacityLoss: [
    { onStatusReason: 'Host EC2*', action: 'RETRY' },
    // Fargate Spot's stop reason when AWS reclaims the capacity.
    { onStatusReason: 'Your Spot Task was interrupted*', action: 'RETRY' },
    { onReason: '*', action: 'EXIT' },
  ],
} as const;

/**
 * Why a RUNNABLE job cannot start, as Batch puts it at the head of its statusReason; the only
 * reasons a job queue's `jobStateTimeLimitActions` act on.
 */
export const BATCH_BLOCKED_REASONS = [
  'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
  'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE',
  'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
] as const;
