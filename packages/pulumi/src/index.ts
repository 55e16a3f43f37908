/**
 * @parallel-orchestrator/pulumi: `BatchOrchestrator` (AWS) and `LocalDockerOrchestrator` (a
 * Docker host), the smaller components they are made of, for teams that compose their own, and
 * the deprecated `ParallelOrchestrator`. `BackendConfig` is the shape of `runtimeConfig`, the
 * runtime's `--backend-config` file, re-exported so that a stack reading it needs this package
 * alone (its zod schema is in `@parallel-orchestrator/contracts/schemas`).
 */
export type {
  BackendConfig,
  BatchBackendConfig,
  DockerBackendConfig,
} from '@parallel-orchestrator/contracts';
export {
  BatchBackend,
  type BatchBackendArgs,
  type BatchNetworkArgs,
  COMPUTE_TYPES,
  type ComputeType,
  LOG_RETENTION_DAYS,
  type ModelAccessArgs,
  RETRY_ONLY_ON_CAPACITY_LOSS,
} from './batch-backend.js';
export { BatchRoles, type BatchRolesArgs } from './batch-roles.js';
export { OrchestratorImage, type OrchestratorImageArgs } from './image.js';
export { LocalDockerBackend, type LocalDockerBackendArgs } from './local-docker.js';
export {
  BatchOrchestrator,
  type BatchOrchestratorArgs,
  type BatchSettingsArgs,
  COMPONENT_DEFAULTS,
  findRepositoryRoot,
  type ImageSourceArgs,
  LocalDockerOrchestrator,
  type LocalDockerOrchestratorArgs,
  ParallelOrchestrator,
  type ParallelOrchestratorArgs,
  type PrebuiltImageArgs,
} from './orchestrator.js';
export { PLATFORMS, type Platform } from './platforms.js';
export { ACTIONS_WITHOUT_RESOURCE_SCOPE, type PolicyDocument, type Statement } from './policies.js';
export { StateBucket, type StateBucketArgs } from './state-bucket.js';
