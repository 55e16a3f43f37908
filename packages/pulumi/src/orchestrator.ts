import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  type BackendConfig,
  type BatchBackendConfig,
  type DockerBackendConfig,
  IMAGE,
  MODEL_DEFAULTS,
  S3_LAYOUT,
} from '@parallel-orchestrator/contracts';
import type * as aws from '@pulumi/aws';
import type * as awsx from '@pulumi/awsx';
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
import { checked, checkedInteger, invalidArgument } from './validation.js';

/** The Batch side of a `BatchOrchestrator`; sizes and limits may come from other resources or stacks. */
export interface BatchSettingsArgs {
  /** Shapes the resources made (Fargate or EC2): a plain value. */
  computeType?: ComputeType;
  /** The image platform jobs run on; one of `platforms` (a plain value: it picks the images built). */
  platform?: Platform;
  /** Ceiling of the compute environment: at most maxVcpus / vcpus jobs run at once. */
  maxVcpus?: pulumi.Input<number>;
  /** vCPUs of one job (Fargate: one of its sizes). */
  vcpus?: pulumi.Input<number>;
  /** Memory of one job, MiB (Fargate: one of its vCPU size's memory steps). */
  memoryMib?: pulumi.Input<number>;
  /** EC2 and Spot: instance types or families; current families of the architecture by default. */
  instanceTypes?: pulumi.Input<pulumi.Input<string>[]>;
  /** Existing subnets and security groups; a VPC is created without them. */
  network?: BatchNetworkArgs;
  /** A created VPC: jobs behind a NAT gateway in private subnets instead of public IPs (costs while idle). */
  natGateway?: boolean;
  /** A task attempt is stopped after this long. */
  attemptDurationSeconds?: pulumi.Input<number>;
  /** Attempts per job; only the loss of the host or Spot capacity is retried. */
  retryAttempts?: pulumi.Input<number>;
  /** A job waiting this long for capacity is cancelled instead of waiting forever. */
  runnableTimeoutSeconds?: pulumi.Input<number>;
}

/** What both kinds of orchestrator take: where the image comes from. */
export interface ImageSourceArgs {
  /**
   * The repository root (build context of docker/Dockerfile). By default: the checkout this
   * package is part of, else the context the published package carries, else a checkout above
   * the working directory.
   */
  context?: string;
  /** Claude Code in the image; the runtime's pinned version by default. */
  claudeCodeVersion?: pulumi.Input<string>;
}

/** An image built and pushed elsewhere, which the stack runs instead of building its own. */
export interface PrebuiltImageArgs {
  /** The image, pinned by digest (`...@sha256:...`): jobs run exactly it. */
  ref: pulumi.Input<string>;
  /** Its ECR repository: the execution role may pull from it and from nothing else. */
  repositoryArn: pulumi.Input<string>;
}

/** The AWS side: the multi-arch image in ECR, the state bucket and AWS Batch. */
export interface BatchOrchestratorArgs extends ImageSourceArgs {
  /** Run an image built elsewhere: nothing is built or pushed, and no repository is made. */
  image?: PrebuiltImageArgs;
  /** Platforms the image is built for. */
  platforms?: Platform[];
  /** Tag of the pushed image index. */
  imageTag?: pulumi.Input<string>;
  /** Image manifests kept in ECR. */
  keepImages?: pulumi.Input<number>;
  /** Names that must be known in advance start with this; `<project>-<stack>` by default. */
  namePrefix?: pulumi.Input<string>;
  /** Preview stacks: destroy the bucket and the repository with their contents. */
  forceDestroy?: boolean;
  /** Prod: refuse to delete the state bucket. */
  protectState?: boolean;
  /** Objects of runs under `runs/` are deleted this many days after they were written. */
  expireRunsAfterDays?: pulumi.Input<number>;
  /** One of CloudWatch Logs' retention periods. */
  logRetentionDays?: pulumi.Input<number>;
  /** The compute environment, the jobs' size and limits, and the network (`batch.*`). */
  batch?: BatchSettingsArgs;
  /** How Batch executors reach the model: Bedrock with the runtime's default model unless set. */
  model?: ModelAccessArgs;
  /** On every resource; the job definition propagates them to jobs. */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** A Docker host with no AWS: the image built there and the executors' network. */
export interface LocalDockerOrchestratorArgs extends ImageSourceArgs {
  /** The local image name; `parallel-orchestrator:<stack>` by default. */
  imageName?: pulumi.Input<string>;
  /** The executors' network; `<project>-<stack>-executors` by default. */
  networkName?: pulumi.Input<string>;
}

/** @deprecated The arguments of `ParallelOrchestrator`: see `BatchOrchestrator` and `LocalDockerOrchestrator`. */
export interface ParallelOrchestratorArgs extends BatchOrchestratorArgs {
  /** `batch`: the image in ECR, the state bucket and AWS Batch. `docker`: a local image and network, no AWS. */
  backend?: 'batch' | 'docker';
  /** Docker stacks: the local image name and the executor network's name. */
  docker?: {
    /** The local image name; `parallel-orchestrator:<stack>` by default. */
    imageName?: pulumi.Input<string>;
    /** The executors' network; `<namePrefix>-executors` by default. */
    networkName?: pulumi.Input<string>;
  };
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

/** What a Batch orchestrator makes, as its outputs. */
interface BatchParts {
  imageRef: pulumi.Output<string>;
  repositoryUrl: pulumi.Output<string>;
  bucketName: pulumi.Output<string>;
  jobQueueArn: pulumi.Output<string>;
  jobDefinitionArn: pulumi.Output<string>;
  logGroupName: pulumi.Output<string>;
  submitterPolicyArn: pulumi.Output<string>;
  region: pulumi.Output<string>;
  runtimeConfig: pulumi.Output<BatchBackendConfig>;
}

/** The child resources of a Batch orchestrator that a stack extends (see `BatchOrchestrator`). */
interface BatchChildren {
  jobRole: aws.iam.Role;
  jobRoleName: pulumi.Output<string>;
  executionRole: aws.iam.Role;
  instanceProfile: aws.iam.InstanceProfile | undefined;
  logGroup: aws.cloudwatch.LogGroup;
  computeEnvironment: aws.batch.ComputeEnvironment;
  jobQueue: aws.batch.JobQueue;
  jobDefinition: aws.batch.JobDefinition;
  vpc: awsx.ec2.Vpc | undefined;
  vpcId: pulumi.Output<string> | undefined;
  securityGroup: aws.ec2.SecurityGroup | undefined;
  subnetIds: pulumi.Output<string[]>;
  securityGroupIds: pulumi.Output<string[]>;
  bucket: aws.s3.Bucket;
  repository: aws.ecr.Repository | undefined;
}

/** The image, the state bucket and the Batch backend, made as children of `parent`. */
function buildBatch(
  parent: pulumi.ComponentResource,
  name: string,
  args: BatchOrchestratorArgs,
): { parts: BatchParts; children: BatchChildren } {
  if (args.image) {
    const building = (
      ['context', 'platforms', 'imageTag', 'keepImages', 'claudeCodeVersion'] as const
    ).filter((key) => args[key] !== undefined);
    if (building.length > 0)
      throw invalidArgument(
        parent,
        'image',
        `a prebuilt image is not built: drop ${building.join(', ')}`,
      );
  }
  const platforms = args.image ? [...PLATFORMS] : imagePlatforms(parent, args.platforms);
  const namePrefix = args.namePrefix ?? `${pulumi.getProject()}-${pulumi.getStack()}`;
  const batch = { ...COMPONENT_DEFAULTS, ...definedOnly(args.batch ?? {}) };
  if (!platforms.includes(batch.platform)) {
    throw invalidArgument(
      parent,
      'batch.platform',
      `${batch.platform} is not among the image's platforms (${platforms.join(', ')})`,
    );
  }
  const expireRunsAfterDays = checkedInteger(
    parent,
    'expireRunsAfterDays',
    args.expireRunsAfterDays ?? COMPONENT_DEFAULTS.expireRunsAfterDays,
    1,
    3650,
  );
  const model = args.model ?? { provider: 'bedrock' };
  const image = args.image
    ? prebuilt(parent, args.image)
    : buildImage(parent, name, args, platforms);

  const state = new StateBucket(
    name,
    {
      expireRunsAfterDays,
      forceDestroy: args.forceDestroy ?? false,
      ...(args.protectState !== undefined && { protect: args.protectState }),
      tags: args.tags,
    },
    { parent },
  );
  const backend = new BatchBackend(
    name,
    {
      namePrefix,
      imageRef: image.imageRef,
      repositoryArn: image.repositoryArn,
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
    { parent },
  );
  const runtimeConfig = pulumi
    .all([
      backend.region,
      backend.jobQueueArn,
      backend.jobDefinitionArn,
      state.bucketName,
      backend.logGroupName,
      image.imageRef,
      pulumi.all([modelConfig(model, backend.apiKeySecretArn), backend.bedrockModels]),
      pulumi.all([batch.maxVcpus, batch.vcpus]),
    ])
    .apply(
      ([
        region,
        jobQueueArn,
        jobDefinitionArn,
        bucketName,
        logGroupName,
        imageRef,
        [modelAccess, bedrockModels],
        [maxVcpus, vcpusPerJob],
      ]): BatchBackendConfig => ({
        version: 1,
        backend: 'batch',
        region,
        jobQueueArn,
        jobDefinitionArn,
        bucketName,
        runsPrefix: S3_LAYOUT.runsRoot,
        logGroupName,
        imageRef,
        maxVcpus,
        vcpusPerJob,
        model: modelAccess,
        ...(bedrockModels && { bedrockModels }),
      }),
    );
  const parts = {
    imageRef: image.imageRef,
    repositoryUrl: image.repositoryUrl,
    bucketName: state.bucketName,
    jobQueueArn: backend.jobQueueArn,
    jobDefinitionArn: backend.jobDefinitionArn,
    logGroupName: backend.logGroupName,
    submitterPolicyArn: backend.submitterPolicyArn,
    region: backend.region,
    runtimeConfig,
  };
  const children = {
    jobRole: backend.jobRole,
    jobRoleName: backend.jobRoleName,
    executionRole: backend.executionRole,
    instanceProfile: backend.instanceProfile,
    logGroup: backend.logGroup,
    computeEnvironment: backend.computeEnvironment,
    jobQueue: backend.jobQueue,
    jobDefinition: backend.jobDefinition,
    vpc: backend.vpc,
    vpcId: backend.vpcId,
    securityGroup: backend.securityGroup,
    subnetIds: backend.subnetIds,
    securityGroupIds: backend.securityGroupIds,
    bucket: state.bucket,
    repository: image.repository,
  };
  return { parts, children };
}

interface LocalDockerParts {
  imageRef: pulumi.Output<string>;
  networkName: pulumi.Output<string>;
  runtimeConfig: pulumi.Output<DockerBackendConfig>;
}

/** The local image and network, made as children of `parent`. */
function buildLocalDocker(
  parent: pulumi.ComponentResource,
  name: string,
  args: LocalDockerOrchestratorArgs & { namePrefix?: pulumi.Input<string> },
): LocalDockerParts {
  const namePrefix = args.namePrefix ?? `${pulumi.getProject()}-${pulumi.getStack()}`;
  const local = new LocalDockerBackend(
    name,
    {
      context: imageContext(parent, args.context),
      imageName: args.imageName ?? `parallel-orchestrator:${pulumi.getStack()}`,
      networkName: args.networkName ?? pulumi.interpolate`${namePrefix}-executors`,
      ...(args.claudeCodeVersion !== undefined && { claudeCodeVersion: args.claudeCodeVersion }),
    },
    { parent },
  );
  return {
    imageRef: local.imageName,
    networkName: local.networkName,
    runtimeConfig: pulumi.all([local.imageName, local.networkName]).apply(
      ([image, network]): DockerBackendConfig => ({
        version: 1,
        backend: 'docker',
        image,
        network,
      }),
    ),
  };
}

/**
 * parallel-orchestrator on AWS: the multi-arch image in ECR (`OrchestratorImage`), the state
 * bucket (`StateBucket`) and AWS Batch with its IAM and logs (`BatchBackend`). `runtimeConfig` is
 * what the CLI's `--backend-config` reads. The children a stack extends are outputs too: attach
 * a policy to `jobRoleName`, peer with `vpc`, add rules to `securityGroup`.
 */
export class BatchOrchestrator extends pulumi.ComponentResource {
  // Assigned from the parts and children in the constructor.
  readonly imageRef!: pulumi.Output<string>;
  readonly repositoryUrl!: pulumi.Output<string>;
  readonly bucketName!: pulumi.Output<string>;
  readonly jobQueueArn!: pulumi.Output<string>;
  readonly jobDefinitionArn!: pulumi.Output<string>;
  readonly logGroupName!: pulumi.Output<string>;
  readonly submitterPolicyArn!: pulumi.Output<string>;
  readonly region!: pulumi.Output<string>;
  readonly runtimeConfig!: pulumi.Output<BatchBackendConfig>;
  /** The role jobs run as: attach a policy to it to give the agents access to more. */
  readonly jobRole!: aws.iam.Role;
  /** The job role's name, what `aws.iam.RolePolicyAttachment` takes. */
  readonly jobRoleName!: pulumi.Output<string>;
  /** The role ECS pulls the image and writes the logs with. */
  readonly executionRole!: aws.iam.Role;
  /** EC2 and Spot compute types: the instances' profile. */
  readonly instanceProfile?: aws.iam.InstanceProfile;
  /** The log group of every job's output. */
  readonly logGroup!: aws.cloudwatch.LogGroup;
  readonly computeEnvironment!: aws.batch.ComputeEnvironment;
  readonly jobQueue!: aws.batch.JobQueue;
  readonly jobDefinition!: aws.batch.JobDefinition;
  /** The VPC it made when `batch.network` is not given: its route tables and subnets are what a peering needs. */
  readonly vpc?: awsx.ec2.Vpc;
  /** The made VPC's id, when `batch.network` is not given. */
  readonly vpcId?: pulumi.Output<string>;
  /** The security group it made when `batch.network` is not given: HTTPS out, nothing in. */
  readonly securityGroup?: aws.ec2.SecurityGroup;
  /** The subnets jobs run in, given or made. */
  readonly subnetIds!: pulumi.Output<string[]>;
  /** The jobs' security groups, given or made. */
  readonly securityGroupIds!: pulumi.Output<string[]>;
  /** The state bucket (runs live under `runs/`). */
  readonly bucket!: aws.s3.Bucket;
  /** The ECR repository it pushes the image to; none with a prebuilt `image`. */
  readonly repository?: aws.ecr.Repository;

  constructor(
    name: string,
    args: BatchOrchestratorArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('parallel-orchestrator:index:BatchOrchestrator', name, {}, opts);
    const { parts, children } = buildBatch(this, name, args);
    Object.assign(this, parts, definedOnly(children));
    this.registerOutputs({
      ...parts,
      jobRoleName: children.jobRoleName,
      executionRoleArn: children.executionRole.arn,
      logGroupArn: children.logGroup.arn,
      computeEnvironmentArn: children.computeEnvironment.arn,
      vpcId: children.vpcId,
      subnetIds: children.subnetIds,
      securityGroupIds: children.securityGroupIds,
    });
  }
}

/**
 * parallel-orchestrator on a Docker host, with no AWS: the image built there (never pushed) and
 * the executors' network (`LocalDockerBackend`). `runtimeConfig` is what `--backend-config` reads.
 */
export class LocalDockerOrchestrator extends pulumi.ComponentResource {
  // Assigned from the parts in the constructor.
  readonly imageRef!: pulumi.Output<string>;
  readonly networkName!: pulumi.Output<string>;
  readonly runtimeConfig!: pulumi.Output<DockerBackendConfig>;

  constructor(
    name: string,
    args: LocalDockerOrchestratorArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('parallel-orchestrator:index:LocalDockerOrchestrator', name, {}, opts);
    const parts: LocalDockerParts = buildLocalDocker(this, name, args);
    Object.assign(this, parts);
    this.registerOutputs({ ...parts });
  }
}

/**
 * @deprecated One component for two unrelated graphs, whose outputs of the other kind are
 * undefined. Use `BatchOrchestrator` or `LocalDockerOrchestrator`; the package README says how to
 * move a stack without replacing its resources. Kept, unchanged, so existing programs work.
 */
export class ParallelOrchestrator extends pulumi.ComponentResource {
  // Assigned from the parts of its kind in the constructor (the other kind's are undefined).
  readonly imageRef!: pulumi.Output<string>;
  readonly repositoryUrl!: pulumi.Output<string | undefined>;
  readonly bucketName!: pulumi.Output<string | undefined>;
  readonly jobQueueArn!: pulumi.Output<string | undefined>;
  readonly jobDefinitionArn!: pulumi.Output<string | undefined>;
  readonly logGroupName!: pulumi.Output<string | undefined>;
  readonly submitterPolicyArn!: pulumi.Output<string | undefined>;
  readonly region!: pulumi.Output<string | undefined>;
  readonly runtimeConfig!: pulumi.Output<BackendConfig>;

  constructor(
    name: string,
    args: ParallelOrchestratorArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super('parallel-orchestrator:index:ParallelOrchestrator', name, {}, opts);
    const none = pulumi.output(undefined);
    let outputs: Record<keyof BatchParts, pulumi.Output<unknown>>;
    if ((args.backend ?? COMPONENT_DEFAULTS.backend) === 'docker') {
      const local = buildLocalDocker(this, name, {
        ...(args.context !== undefined && { context: args.context }),
        ...(args.claudeCodeVersion !== undefined && { claudeCodeVersion: args.claudeCodeVersion }),
        ...(args.namePrefix !== undefined && { namePrefix: args.namePrefix }),
        ...args.docker,
      });
      outputs = {
        imageRef: local.imageRef,
        runtimeConfig: local.runtimeConfig,
        repositoryUrl: none,
        bucketName: none,
        jobQueueArn: none,
        jobDefinitionArn: none,
        logGroupName: none,
        submitterPolicyArn: none,
        region: none,
      };
    } else {
      outputs = buildBatch(this, name, args).parts;
    }
    Object.assign(this, outputs);
    this.registerOutputs({ ...outputs });
  }
}

/** How jobs reach the model, as the runtime's backend config says it. */
function modelConfig(
  model: ModelAccessArgs,
  apiKeySecretArn: pulumi.Output<string> | undefined,
): pulumi.Output<BatchBackendConfig['model']> {
  if (model.provider === 'anthropic')
    return pulumi
      .output(apiKeySecretArn as pulumi.Output<string>)
      .apply((arn) => ({ provider: 'anthropic' as const, apiKeySecretArn: arn }));
  return pulumi
    .all([
      model.region ?? MODEL_DEFAULTS.bedrockRegion,
      model.modelId ?? MODEL_DEFAULTS.bedrockModel,
    ])
    .apply(([region, id]) => ({ provider: 'bedrock' as const, region, model: id }));
}

/** The multi-arch image, built from the context and pushed to a repository of the stack's. */
function buildImage(
  parent: pulumi.ComponentResource,
  name: string,
  args: BatchOrchestratorArgs,
  platforms: Platform[],
): ImageParts {
  const keepImages = checkedInteger(
    parent,
    'keepImages',
    args.keepImages ?? COMPONENT_DEFAULTS.keepImages,
    platforms.length + 1,
    1000,
  );
  const image = new OrchestratorImage(
    name,
    {
      context: imageContext(parent, args.context),
      platforms,
      tag: args.imageTag ?? COMPONENT_DEFAULTS.imageTag,
      keepImages,
      forceDelete: args.forceDestroy ?? false,
      ...(args.claudeCodeVersion !== undefined && { claudeCodeVersion: args.claudeCodeVersion }),
      tags: args.tags,
    },
    { parent },
  );
  return {
    imageRef: image.imageRef,
    repositoryUrl: image.repositoryUrl,
    repositoryArn: image.repository.arn,
    repository: image.repository,
  };
}

interface ImageParts {
  imageRef: pulumi.Output<string>;
  repositoryUrl: pulumi.Output<string>;
  repositoryArn: pulumi.Output<string>;
  /** The repository the image is pushed to; none for a prebuilt image. */
  repository?: aws.ecr.Repository;
}

/** A prebuilt image: checked to be pinned by digest, now when known and when it resolves. */
function prebuilt(parent: pulumi.ComponentResource, image: PrebuiltImageArgs): ImageParts {
  const imageRef = checked(image.ref, (ref) => {
    if (!/@sha256:[0-9a-f]{64}$/.test(ref))
      throw invalidArgument(
        parent,
        'image.ref',
        `${ref} is not pinned by digest (...@sha256:<64 hex>)`,
      );
  });
  return {
    imageRef,
    repositoryUrl: imageRef.apply((ref) => ref.slice(0, ref.indexOf('@'))),
    repositoryArn: pulumi.output(image.repositoryArn),
  };
}

/** This package's directory (the workspace's `packages/pulumi`, or an installed copy). */
const PACKAGE_DIR = path.resolve(__dirname, '..');

/**
 * The image's build context: the given one; else the checkout this package is part of (working
 * in this repository); else the context the published package carries (assembled when packed);
 * else a checkout above the working directory.
 */
function imageContext(component: pulumi.Resource, given: string | undefined): string {
  const packaged = path.join(PACKAGE_DIR, 'context');
  const context = given
    ? path.resolve(given)
    : (findRepositoryRoot(PACKAGE_DIR) ??
      (isCheckout(packaged) ? packaged : findRepositoryRoot(process.cwd())));
  if (!context || !existsSync(path.join(context, IMAGE.dockerfile))) {
    throw invalidArgument(
      component,
      'context',
      `${context ?? process.cwd()} holds no ${IMAGE.dockerfile}: give the checkout of parallel-orchestrator, or a prebuilt image`,
    );
  }
  return context;
}

function imagePlatforms(
  component: pulumi.Resource,
  given: readonly string[] | undefined,
): Platform[] {
  const platforms = given ?? COMPONENT_DEFAULTS.platforms;
  const unknown = platforms.find((p) => !(PLATFORMS as readonly string[]).includes(p));
  if (unknown !== undefined || platforms.length === 0) {
    throw invalidArgument(
      component,
      'platforms',
      `${unknown ?? 'an empty list'} is not a supported platform; choose from ${PLATFORMS.join(', ')}`,
    );
  }
  return [...new Set(platforms)] as Platform[];
}

/** A build context of the image: this repository's layout, the Dockerfile and the runtime's sources. */
function isCheckout(dir: string): boolean {
  return (
    existsSync(path.join(dir, IMAGE.dockerfile)) &&
    existsSync(path.join(dir, 'packages/runtime/package.json'))
  );
}

/** The nearest checkout of this repository at or above `from`. */
export function findRepositoryRoot(from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (isCheckout(dir)) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Settings left unset (`undefined`) keep their defaults when merged. */
function definedOnly<T extends object>(settings: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(settings).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}
