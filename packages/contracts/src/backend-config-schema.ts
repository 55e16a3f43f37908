import { z } from 'zod';
import type {
  BackendConfig,
  BatchBackendConfig,
  BatchSandboxEndpoints,
  DockerBackendConfig,
} from './backend-config.js';

/**
 * What a deployed stack tells the CLI (`--backend-config FILE`). The Pulumi component's
 * `runtimeConfig` output has exactly this shape:
 *   pulumi stack output runtimeConfig --json > backend.json
 */
export const DockerBackendConfigSchema = z.strictObject({
  version: z.literal(1),
  backend: z.literal('docker'),
  /** The executor image, built on the Docker host by the stack. */
  image: z.string().min(1),
  /** The network executor containers join. */
  network: z.string().min(1),
});

const ModelAccessConfigSchema = z.discriminatedUnion('provider', [
  z.strictObject({
    provider: z.literal('anthropic'),
    /** Secrets Manager secret holding the API key; jobs get it through the job definition. */
    apiKeySecretArn: z.string().startsWith('arn:'),
  }),
  z.strictObject({
    provider: z.literal('bedrock'),
    region: z.string().min(1),
    model: z.string().min(1),
  }),
]);

/**
 * A local Batch sandbox (`pnpm sandbox:batch`) in place of AWS: where its services listen, and
 * the key pair it made for the submitter. The CLI signs with that pair instead of the default
 * chain's, so no real AWS credential is ever sent to the sandbox; the sandbox checks every
 * signature and authorizes every call as the stack's submitter policy would.
 */
export const BatchSandboxEndpointsSchema = z.strictObject({
  batch: z.url(),
  s3: z.url(),
  logs: z.url(),
  /** STS (GetCallerIdentity) and IAM (SimulatePrincipalPolicy), which `doctor` calls. */
  sts: z.url().optional(),
  iam: z.url().optional(),
  credentials: z.strictObject({
    accessKeyId: z.string().min(1),
    secretAccessKey: z.string().min(1),
  }),
});

export const BatchBackendConfigSchema = z.strictObject({
  version: z.literal(1),
  backend: z.literal('batch'),
  region: z.string().min(1),
  jobQueueArn: z.string().startsWith('arn:'),
  jobDefinitionArn: z.string().startsWith('arn:'),
  bucketName: z.string().min(3),
  /** Where runs live in the bucket (`S3_LAYOUT.runsRoot`). */
  runsPrefix: z.string().min(1),
  logGroupName: z.string().min(1),
  /** The image the job definition runs, pinned by digest. */
  imageRef: z.string().includes('@sha256:'),
  /** The compute environment's ceiling: more executors than this queue in Batch. */
  maxVcpus: z.number().int().positive(),
  vcpusPerJob: z.number().positive(),
  model: ModelAccessConfigSchema,
  /**
   * A Bedrock stack: every model id its job role may invoke, the stack's model first (the CLI
   * refuses an executor model outside them before any job). Absent: only `model.model`.
   */
  bedrockModels: z.array(z.string().min(1)).min(1).optional(),
  sandbox: BatchSandboxEndpointsSchema.optional(),
});

export const BackendConfigSchema = z.discriminatedUnion('backend', [
  DockerBackendConfigSchema,
  BatchBackendConfigSchema,
]);

/** True when A and B are the same type: each schema parses to exactly its zod-free type. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const SCHEMAS_MATCH_TYPES: [
  Same<z.infer<typeof DockerBackendConfigSchema>, DockerBackendConfig>,
  Same<z.infer<typeof BatchSandboxEndpointsSchema>, BatchSandboxEndpoints>,
  Same<z.infer<typeof BatchBackendConfigSchema>, BatchBackendConfig>,
  Same<z.infer<typeof BackendConfigSchema>, BackendConfig>,
] = [true, true, true, true];
