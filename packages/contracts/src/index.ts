/**
 * `@parallel-orchestrator/contracts`: the names, layouts and types that the runtime, the Pulumi
 * component and the Batch sandbox share, defined once here, so a Pulumi stack that installs the
 * component does not install the runtime. This entry loads no zod: the schemas are in
 * `@parallel-orchestrator/contracts/schemas`. Named re-exports only: Node's
 * CommonJS lexer finds them, so ES modules can import these names too.
 */

export type {
  BackendConfig,
  BatchBackendConfig,
  BatchSandboxEndpoints,
  DockerBackendConfig,
  ModelAccessConfig,
} from './backend-config.js';
export {
  BATCH_BLOCKED_REASONS,
  BATCH_JOB_DEFINITION,
  BATCH_JOB_ENV,
} from './batch-job-definition.js';
export {
  AWS_CHAIN_ENV,
  ENV,
  ENV_NAMES,
  type EnvName,
  INHERITED_HOST_ENV,
  MODEL_ENV,
  MODEL_PROXY_TOKEN_ENV,
  SECRET_ENV_NAMES,
  SETUP_NETWORK_ENV,
  type SecretEnvName,
  setupNetworkEnv,
} from './env.js';
export { checkFargateSize, FARGATE_RESOURCES, type FargateSizeProblem } from './fargate.js';
export { IMAGE } from './image.js';
export { MODEL_DEFAULTS } from './model-defaults.js';
export { S3_LAYOUT } from './s3-layout.js';
export { BATCH_SUBMITTER_ACTIONS, type BatchSubmitterAction } from './submitter-actions.js';
