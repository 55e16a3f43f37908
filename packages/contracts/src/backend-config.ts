/**
 * What a deployed stack tells the CLI (`--backend-config FILE`), as plain types: the Pulumi
 * component's `runtimeConfig` output has exactly this shape. The zod schemas that check it
 * (`@parallel-orchestrator/contracts/schemas`) parse to these types, which a compile-time check
 * keeps so; these stay free of zod, whose declarations do not compile in a CommonJS project
 * without `esModuleInterop` (Pulumi's TypeScript template).
 */
export interface DockerBackendConfig {
  version: 1;
  backend: 'docker';
  /** The executor image, built on the Docker host by the stack. */
  image: string;
  /** The network executor containers join. */
  network: string;
}

/** How Batch jobs reach the model. */
export type ModelAccessConfig =
  | { provider: 'anthropic'; apiKeySecretArn: string }
  | { provider: 'bedrock'; region: string; model: string };

/** A local Batch sandbox in place of AWS: its services' URLs and the submitter's key pair. */
export interface BatchSandboxEndpoints {
  batch: string;
  s3: string;
  logs: string;
  /** STS (GetCallerIdentity) and IAM (SimulatePrincipalPolicy), which `doctor` calls. */
  sts?: string | undefined;
  iam?: string | undefined;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface BatchBackendConfig {
  version: 1;
  backend: 'batch';
  region: string;
  jobQueueArn: string;
  jobDefinitionArn: string;
  bucketName: string;
  /** Where runs live in the bucket (`S3_LAYOUT.runsRoot`). */
  runsPrefix: string;
  logGroupName: string;
  /** The image the job definition runs, pinned by digest. */
  imageRef: string;
  /** The compute environment's ceiling: more executors than this queue in Batch. */
  maxVcpus: number;
  vcpusPerJob: number;
  model: ModelAccessConfig;
  /** A Bedrock stack: every model id its job role may invoke, the stack's model first. */
  bedrockModels?: string[] | undefined;
  sandbox?: BatchSandboxEndpoints | undefined;
}

export type BackendConfig = DockerBackendConfig | BatchBackendConfig;
