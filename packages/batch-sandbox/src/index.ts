/**
 * `@parallel-orchestrator/batch-sandbox`: a local AWS Batch (Batch, S3 and CloudWatch Logs
 * endpoints, jobs as Docker containers) for tests and for running the Batch backend offline.
 */
export type { JobMatch } from './faults.js';
export type { Decision, PolicyDocument } from './iam.js';
export { type ReclaimKind, STATUS_REASONS } from './jobs.js';
export type { ApiCall, SandboxRecord, Submission, Transition } from './record.js';
export {
  BLOCKED_REASONS,
  type JobDefinitionInput,
  type JobQueueInput,
  type JobStatus,
  SANDBOX_ACCOUNT,
} from './registry.js';
export {
  type BatchSandbox,
  type BatchSandboxOptions,
  DEFAULT_IMAGE,
  modelKeySecretArn,
  PLACEHOLDER_ANTHROPIC_KEY,
  startBatchSandbox,
} from './sandbox.js';
export {
  type Registration,
  type SandboxStack,
  type StackOutputs,
  sandboxStackFrom,
} from './stack.js';
