import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  type BackendConfig,
  IMAGE,
  MODEL_DEFAULTS,
  S3_LAYOUT,
} from '@parallel-orchestrator/runtime/contracts';
import * as pulumi from '@pulumi/pulumi';
import {
  BatchBackend,
  type BatchNetworkArgs,
  type ComputeType,
  type ModelAccessArgs,
} from './batch-backend.js';
import { OrchestratorImage } from './image.js';
import { LocalDockerBackend } from './local-docker.js';
import { PLATFORMS, type Platform } from './platforms.js';
import { StateBucket } from './state-bucket.js';
import { checkInteger, invalidArgument } from './validation.js';

export interface BatchSettingsArgs {
  computeType?: ComputeType;
  /** The image platform jobs run on; one of `platforms`. */
  platform?: Platform;
  maxVcpus?: number;
  vcpus?: number;
  memoryMib?: number;
  instanceTypes?: string[];
  /** Existing subnets and security groups; a VPC is created without them. */
  network?: BatchNetworkArgs;
  /** A created VPC: jobs behind a NAT gateway in private subnets instead of public IPs (costs while idle). */
  natGateway?: boolean;
  attemptDurationSeconds?: number;
  retryAttempts?: number;
  runnableTimeoutSeconds?: number;
}

export interface ParallelOrchestratorArgs {
  /** `batch`: the image in ECR, the state bucket and AWS Batch. `docker`: a local image and network, no AWS. */
  backend?: 'batch' | 'docker';
  /** The repository root (build context of docker/Dockerfile); found above the working directory by default. */
  context?: string;
  /** Platforms the image is built for. */
  platforms?: Platform[];
  /** Claude Code in the image; the runtime's pinned version by default. */
  claudeCodeVersion?: pulumi.Input<string>;
  /** Tag of the pushed image index. */
  imageTag?: string;
  /** Image manifests kept in ECR. */
  keepImages?: number;
  /** Names that must be known in advance start with this; `<project>-<stack>` by default. */
  namePrefix?: string;
  /** Preview stacks: destroy the bucket and the repository with their contents. */
  forceDestroy?: boolean;
  /** Prod: refuse to delete the state bucket. */
  protectState?: boolean;
  expireRunsAfterDays?: number;
  logRetentionDays?: number;
  batch?: BatchSettingsArgs;
  /** How Batch executors reach the model: Bedrock with the runtime's default model unless set. */
  model?: ModelAccessArgs;
  /** Docker stacks: the local image name and the executor network's name. */
  docker?: { imageName?: string; networkName?: string };
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** Defaults of the component, in one place (the README's table lists them). */
export const COMPONENT_DEFAULTS = {
  backend: 'batch',
  platforms: [...PLATFORMS] as Platform[],
  imageTag: 'latest',
  keepImages: 10,
  expireRunsAfterDays: 30,
  logRetentionDays: 30,
  computeType: 'FARGATE_SPOT' as ComputeType,
  platform: 'linux/amd64' as Platform,
  maxVcpus: 64,
  vcpus: 2,
  memoryMib: 4096,
  attemptDurationSeconds: 3600,
  retryAttempts: 3,
  runnableTimeoutSeconds: 1800,
} as const;

/**
 * parallel-orchestrator's infrastructure: for `batch`, the multi-arch image in ECR, the state
 * bucket and the Batch backend with its IAM and logs; for `docker`, a local image and network.
 * `runtimeConfig` is what the CLI's `--backend-config` reads.
 */
export class ParallelOrchestrator extends pulumi.ComponentResource {
  readonly imageRef: pulumi.Output<string>;
  readonly repositoryUrl: pulumi.Output<string | undefined>;
  readonly bucketName: pulumi.Output<string | undefined>;
  readonly jobQueueArn: pulumi.Output<string | undefined>;
  readonly jobDefinitionArn: pulumi.Output<string | undefined>;
  readonly logGroupName: pulumi.Output<string | undefined>;
  readonly submitterPolicyArn: pulumi.Output<string | undefined>;
  readonly region: pulumi.Output<string | undefined>;
  readonly runtimeConfig: pulumi.Output<BackendConfig>;

  constructor(
    name: string,
    args: ParallelOrchestratorArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('parallel-orchestrator:index:ParallelOrchestrator', name, {}, opts);
    const context = this.context(args.context);
    const platforms = this.platforms(args.platforms);
    const namePrefix = args.namePrefix ?? `${pulumi.getProject()}-${pulumi.getStack()}`;
    const none = pulumi.output(undefined);

    if ((args.backend ?? COMPONENT_DEFAULTS.backend) === 'docker') {
      const local = new LocalDockerBackend(
        name,
        {
          context,
          imageName: args.docker?.imageName ?? `parallel-orchestrator:${pulumi.getStack()}`,
          networkName: args.docker?.networkName ?? `${namePrefix}-executors`,
          ...(args.claudeCodeVersion !== undefined && {
            claudeCodeVersion: args.claudeCodeVersion,
          }),
        },
        { parent: this },
      );
      this.imageRef = local.imageName;
      this.repositoryUrl = this.bucketName = this.jobQueueArn = this.jobDefinitionArn = none;
      this.logGroupName = this.submitterPolicyArn = this.region = none;
      this.runtimeConfig = pulumi
        .all([local.imageName, local.networkName])
        .apply(
          ([image, network]): BackendConfig => ({ version: 1, backend: 'docker', image, network }),
        );
    } else {
      const batch = { ...COMPONENT_DEFAULTS, ...definedOnly(args.batch ?? {}) };
      if (!platforms.includes(batch.platform)) {
        throw invalidArgument(
          this,
          'batch.platform',
          `${batch.platform} is not among the image's platforms (${platforms.join(', ')})`,
        );
      }
      const keepImages = args.keepImages ?? COMPONENT_DEFAULTS.keepImages;
      checkInteger(this, 'keepImages', keepImages, platforms.length + 1, 1000);
      const expireRunsAfterDays =
        args.expireRunsAfterDays ?? COMPONENT_DEFAULTS.expireRunsAfterDays;
      checkInteger(this, 'expireRunsAfterDays', expireRunsAfterDays, 1, 3650);
      const model = args.model ?? { provider: 'bedrock' };

      const image = new OrchestratorImage(
        name,
        {
          context,
          platforms,
          tag: args.imageTag ?? COMPONENT_DEFAULTS.imageTag,
          keepImages,
          forceDelete: args.forceDestroy ?? false,
          ...(args.claudeCodeVersion !== undefined && {
            claudeCodeVersion: args.claudeCodeVersion,
          }),
          tags: args.tags,
        },
        { parent: this },
      );
      const state = new StateBucket(
        name,
        {
          expireRunsAfterDays,
          forceDestroy: args.forceDestroy ?? false,
          ...(args.protectState !== undefined && { protect: args.protectState }),
          tags: args.tags,
        },
        { parent: this },
      );
      const backend = new BatchBackend(
        name,
        {
          namePrefix,
          imageRef: image.imageRef,
          repositoryArn: image.repository.arn,
          bucketName: state.bucketName,
          bucketArn: state.bucketArn,
          platform: batch.platform,
          computeType: batch.computeType,
          maxVcpus: batch.maxVcpus,
          vcpus: batch.vcpus,
          memoryMib: batch.memoryMib,
          ...(batch.instanceTypes && { instanceTypes: batch.instanceTypes }),
          ...(batch.network && { network: batch.network }),
          ...(batch.natGateway !== undefined && { natGateway: batch.natGateway }),
          attemptDurationSeconds: batch.attemptDurationSeconds,
          retryAttempts: batch.retryAttempts,
          runnableTimeoutSeconds: batch.runnableTimeoutSeconds,
          logRetentionDays: args.logRetentionDays ?? COMPONENT_DEFAULTS.logRetentionDays,
          model,
          tags: args.tags,
        },
        { parent: this },
      );

      this.imageRef = image.imageRef;
      this.repositoryUrl = image.repositoryUrl;
      this.bucketName = state.bucketName;
      this.jobQueueArn = backend.jobQueueArn;
      this.jobDefinitionArn = backend.jobDefinitionArn;
      this.logGroupName = backend.logGroupName;
      this.submitterPolicyArn = backend.submitterPolicyArn;
      this.region = backend.region;
      this.runtimeConfig = pulumi
        .all([
          backend.region,
          backend.jobQueueArn,
          backend.jobDefinitionArn,
          state.bucketName,
          backend.logGroupName,
          image.imageRef,
          backend.apiKeySecretArn,
        ])
        .apply(
          ([
            region,
            jobQueueArn,
            jobDefinitionArn,
            bucketName,
            logGroupName,
            imageRef,
            keyArn,
          ]): BackendConfig => ({
            version: 1,
            backend: 'batch',
            region,
            jobQueueArn,
            jobDefinitionArn,
            bucketName,
            runsPrefix: S3_LAYOUT.runsRoot,
            logGroupName,
            imageRef,
            maxVcpus: batch.maxVcpus,
            vcpusPerJob: batch.vcpus,
            model:
              model.provider === 'anthropic'
                ? { provider: 'anthropic', apiKeySecretArn: keyArn as string }
                : {
                    provider: 'bedrock',
                    region: model.region ?? MODEL_DEFAULTS.bedrockRegion,
                    model: model.modelId ?? MODEL_DEFAULTS.bedrockModel,
                  },
          }),
        );
    }

    this.registerOutputs({
      imageRef: this.imageRef,
      repositoryUrl: this.repositoryUrl,
      bucketName: this.bucketName,
      jobQueueArn: this.jobQueueArn,
      jobDefinitionArn: this.jobDefinitionArn,
      logGroupName: this.logGroupName,
      submitterPolicyArn: this.submitterPolicyArn,
      region: this.region,
      runtimeConfig: this.runtimeConfig,
    });
  }

  private context(given: string | undefined): string {
    const context = given ? path.resolve(given) : findRepositoryRoot(process.cwd());
    if (!context || !existsSync(path.join(context, IMAGE.dockerfile))) {
      throw invalidArgument(
        this,
        'context',
        `${context ?? process.cwd()} is not a parallel-orchestrator checkout (no ${IMAGE.dockerfile})`,
      );
    }
    return context;
  }

  private platforms(given: readonly string[] | undefined): Platform[] {
    const platforms = given ?? COMPONENT_DEFAULTS.platforms;
    const unknown = platforms.find((p) => !(PLATFORMS as readonly string[]).includes(p));
    if (unknown !== undefined || platforms.length === 0) {
      throw invalidArgument(
        this,
        'platforms',
        `${unknown ?? 'an empty list'} is not a supported platform; choose from ${PLATFORMS.join(', ')}`,
      );
    }
    return [...new Set(platforms)] as Platform[];
  }
}

/** The nearest directory at or above `from` that holds docker/Dockerfile. */
export function findRepositoryRoot(from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, IMAGE.dockerfile))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Settings left unset (`undefined`) keep their defaults when merged. */
function definedOnly<T extends object>(settings: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}
