/**
 * `@parallel-orchestrator/contracts/schemas`: the zod schemas of the contracts, apart from the
 * zod-free entry so that a program importing only names and types never loads zod's declarations.
 */
export {
  BackendConfigSchema,
  BatchBackendConfigSchema,
  BatchSandboxEndpointsSchema,
  DockerBackendConfigSchema,
} from './backend-config-schema.js';
