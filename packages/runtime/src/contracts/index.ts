/**
 * `@parallel-orchestrator/runtime/contracts`: the shared contracts alone (names, layouts,
 * schemas), for programs such as the Pulumi component that need them without the runtime.
 */

export { MODEL_DEFAULTS } from '../models/defaults.js';
export {
  type BackendConfig,
  BackendConfigSchema,
  type BatchBackendConfig,
  BatchBackendConfigSchema,
  BatchSandboxEndpointsSchema,
  type DockerBackendConfig,
  DockerBackendConfigSchema,
} from './backend-config.js';
export {
  BATCH_BLOCKED_REASONS,
  BATCH_INPUT_URL_ENV,
  BATCH_JOB_DEFINITION,
  BATCH_JOB_ENV,
  BATCH_JOB_TAGS,
  BATCH_LIMITS,
  BATCH_RESULT_REF,
  type BatchJobInput,
  BatchJobInputSchema,
  type BatchJobResult,
  BatchJobResultSchema,
  FINAL_VERIFY_TASK_ID,
  SETUP_TASK_ID,
  type StagedObject,
} from './batch-job.js';
export { ENV, ENV_NAMES, type EnvName, SECRET_ENV_NAMES } from './env.js';
export { checkFargateSize, FARGATE_RESOURCES, type FargateSizeProblem } from './fargate.js';
export { IMAGE } from './image.js';
export { S3_LAYOUT } from './s3-layout.js';
export { BATCH_SUBMITTER_ACTIONS, type BatchSubmitterAction } from './submitter-actions.js';
