export type {
  BackendConfig,
  BatchBackendConfig,
  DockerBackendConfig,
} from '@parallel-orchestrator/contracts';
export {
  BackendConfigSchema,
  BatchBackendConfigSchema,
  BatchSandboxEndpointsSchema,
  DockerBackendConfigSchema,
} from '@parallel-orchestrator/contracts/schemas';
