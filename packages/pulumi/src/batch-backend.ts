import {
  BATCH_BLOCKED_REASONS,
  BATCH_JOB_DEFINITION,
  type BATCH_JOB_ENV,
  checkFargateSize,
  ENV,
  IMAGE,
  MODEL_DEFAULTS,
} from '@parallel-orchestrator/contracts';
import * as aws from '@pulumi/aws';
import * as awsx from '@pulumi/awsx';
import * as pulumi from '@pulumi/pulumi';
import { BatchRoles } from './batch-roles.js';
import { CPU_ARCHITECTURE, INSTANCE_FAMILIES, type Platform } from './platforms.js';
import {
  BEDROCK_MODEL_ID,
  bedrockModelStatements,
  type Scope,
  SECRET_ARN,
  submitterPolicy,
} from './policies.js';
import { checked, checkInteger, invalidArgument, nonEmptyList } from './validation.js';

export const COMPUTE_TYPES = ['FARGATE_SPOT', 'FARGATE', 'EC2', 'SPOT'] as const;
export type ComputeType = (typeof COMPUTE_TYPES)[number];

/** CloudWatch Logs accepts only these retention periods. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

/** How executors reach the model. */
export type ModelAccessArgs =
  | {
      provider: 'anthropic';
      /** The API key, stored by the component in Secrets Manager. */
      apiKey?: pulumi.Input<string>;
      /** Or an existing Secrets Manager secret whose value is the key (its ARN, with or without the random suffix). */
      apiKeySecretArn?: pulumi.Input<string>;
    }
  | {
      provider: 'bedrock';
      /** Bedrock's region; the runtime's default unless set. */
      region?: pulumi.Input<string>;
      /** A foundation model id or an inference profile id (`us.anthropic...`). */
      modelId?: pulumi.Input<string>;
      /** Other model or profile ids jobs may invoke (an `--executor-model` other than `modelId`). */
      extraModelIds?: pulumi.Input<pulumi.Input<string>[]>;
    };

/** Existing subnets and security groups; without them the component creates a VPC. */
export interface BatchNetworkArgs {
  subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  securityGroupIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Fargate jobs in public subnets without a NAT need a public IP to reach ECR and the model. */
  assignPublicIp?: boolean;
}

export interface BatchBackendArgs {
  /** Prefix of the names that must be known in advance (compute environment, log group). */
  namePrefix: pulumi.Input<string>;
  imageRef: pulumi.Input<string>;
  repositoryArn: pulumi.Input<string>;
  bucketName: pulumi.Input<string>;
  bucketArn: pulumi.Input<string>;
  /** The image platform jobs run on. */
  platform: Platform;
  computeType: ComputeType;
  /** Ceiling of the compute environment: at most maxVcpus / vcpus jobs run at once. */
  maxVcpus: pulumi.Input<number>;
  /** vCPUs of one job (Fargate: one of its sizes). */
  vcpus: pulumi.Input<number>;
  /** Memory of one job (Fargate: one of its vCPU size's memory steps). */
  memoryMib: pulumi.Input<number>;
  /** EC2 and Spot: instance types or families; current families of the architecture by default. */
  instanceTypes?: pulumi.Input<pulumi.Input<string>[]>;
  network?: BatchNetworkArgs;
  /**
   * Without `network`, the VPC the component creates: public subnets with no NAT gateway by
   * default (jobs get public IPs; the security group lets nothing in), so an idle stack costs
   * nothing for its network; `true` puts jobs in private subnets behind one NAT gateway, which
   * bills every hour (about $33 a month before data) whether anything runs or not.
   */
  natGateway?: boolean;
  /** A task attempt is stopped after this long. */
  attemptDurationSeconds: pulumi.Input<number>;
  /** Attempts per job; only the loss of the host or Spot capacity is retried. */
  retryAttempts: pulumi.Input<number>;
  /** A job waiting this long for capacity is cancelled instead of waiting forever. */
  runnableTimeoutSeconds: pulumi.Input<number>;
  /** One of CloudWatch Logs' retention periods. */
  logRetentionDays: pulumi.Input<number>;
  model: ModelAccessArgs;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * Everything that runs executors on AWS Batch: compute environment, queue, job definition, logs,
 * IAM, and a VPC when none is given.
 */
export class BatchBackend extends pulumi.ComponentResource {
  readonly jobQueueArn: pulumi.Output<string>;
  readonly jobDefinitionArn: pulumi.Output<string>;
  readonly logGroupName: pulumi.Output<string>;
  readonly submitterPolicyArn: pulumi.Output<string>;
  readonly region: pulumi.Output<string>;
  /** Set with the Anthropic provider. */
  readonly apiKeySecretArn?: pulumi.Output<string>;
  /** Set with the Bedrock provider: every model id the job role may invoke, the stack's first. */
  readonly bedrockModels?: pulumi.Output<string[]>;
  /** The role jobs run as: attach a policy to it to give the agents access to more. */
  readonly jobRole: aws.iam.Role;
  /** The job role's name, what `aws.iam.RolePolicyAttachment` takes. */
  readonly jobRoleName: pulumi.Output<string>;
  /** The role ECS pulls the image and writes the logs with. */
  readonly executionRole: aws.iam.Role;
  /** EC2 and Spot: the instances' profile (its role carries AWS's ECS agent policy). */
  readonly instanceProfile?: aws.iam.InstanceProfile;
  /** The log group of every job's output. */
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly computeEnvironment: aws.batch.ComputeEnvironment;
  readonly jobQueue: aws.batch.JobQueue;
  readonly jobDefinition: aws.batch.JobDefinition;
  /** The VPC it made, without `network`: its route tables and subnets are what a peering needs. */
  readonly vpc?: awsx.ec2.Vpc;
  /** The made VPC's id, without `network`. */
  readonly vpcId?: pulumi.Output<string>;
  /** The security group it made, without `network`: HTTPS out, nothing in. */
  readonly securityGroup?: aws.ec2.SecurityGroup;
  /** The subnets jobs run in, given or made. */
  readonly subnetIds: pulumi.Output<string[]>;
  /** The security groups of the jobs, given or made. */
  readonly securityGroupIds: pulumi.Output<string[]>;

  constructor(name: string, args: BatchBackendArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:BatchBackend', name, {}, opts);
    validate(this, args);
    // Plain sizes are checked now; sizes given as outputs when they resolve (the same messages).
    const sizes = checkedSizes(this, args);
    const parent = { parent: this };
    const fargate = args.computeType.startsWith('FARGATE');

    const scope: pulumi.Output<Scope> = pulumi
      .all([
        aws.getPartitionOutput({}, parent),
        aws.getRegionOutput({}, parent),
        aws.getCallerIdentityOutput({}, parent),
      ])
      .apply(([partition, region, identity]) => ({
        partition: partition.partition,
        region: region.region,
        accountId: identity.accountId,
      }));
    this.region = scope.region;

    const network = args.network
      ? {
          subnetIds: nonEmptyList(this, 'network.subnetIds', args.network.subnetIds),
          securityGroupIds: nonEmptyList(
            this,
            'network.securityGroupIds',
            args.network.securityGroupIds,
          ),
          assignPublicIp: args.network.assignPublicIp ?? false,
        }
      : this.createNetwork(name, args.natGateway ?? false, args.tags);
    if ('vpc' in network) {
      this.vpc = network.vpc;
      this.vpcId = network.vpc.vpcId;
      this.securityGroup = network.securityGroup;
    }
    this.subnetIds = pulumi.output(network.subnetIds);
    this.securityGroupIds = pulumi.output(
      network.securityGroupIds as pulumi.Input<pulumi.Input<string>[]>,
    );

    const logGroup = new aws.cloudwatch.LogGroup(
      name,
      {
        name: pulumi.interpolate`/aws/batch/${args.namePrefix}`,
        retentionInDays: sizes.logRetentionDays,
        tags: args.tags,
      },
      parent,
    );
    this.logGroup = logGroup;
    this.logGroupName = logGroup.name;

    const model = args.model;
    if (model.provider === 'anthropic') {
      this.apiKeySecretArn = model.apiKeySecretArn
        ? checked(model.apiKeySecretArn, (arn) => {
            if (!SECRET_ARN.test(arn))
              throw invalidArgument(
                this,
                'model.apiKeySecretArn',
                `${arn} is not a Secrets Manager secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)`,
              );
          })
        : this.storeApiKey(name, model.apiKey as pulumi.Input<string>, args.tags);
    }
    const bedrock =
      model.provider === 'bedrock'
        ? {
            region: model.region ?? MODEL_DEFAULTS.bedrockRegion,
            modelIds: bedrockModelIds(this, model),
          }
        : undefined;
    this.bedrockModels = bedrock?.modelIds;

    const roles = new BatchRoles(
      name,
      {
        scope,
        repositoryArn: args.repositoryArn,
        logGroupArn: logGroup.arn,
        ...(this.apiKeySecretArn && { apiKeySecretArn: this.apiKeySecretArn }),
        ...(bedrock && {
          bedrockStatements: pulumi
            .all([scope, bedrock.region, bedrock.modelIds])
            .apply(([s, region, modelIds]) => bedrockModelStatements(s, region, modelIds)),
        }),
        withInstanceRole: !fargate,
        tags: args.tags,
      },
      parent,
    );
    this.jobRole = roles.jobRole;
    this.jobRoleName = roles.jobRole.name;
    this.executionRole = roles.executionRole;
    if (roles.instanceProfile) this.instanceProfile = roles.instanceProfile;
    const launchTemplate = fargate ? undefined : this.hardenedInstances(name, args.tags);

    const computeEnvironment = new aws.batch.ComputeEnvironment(
      name,
      {
        // Named by Pulumi (`<name>-<random>`), so that a replacement (another compute type or
        // platform) is created under a new name, the queue moved to it, and the old one deleted.
        type: 'MANAGED',
        state: 'ENABLED',
        // No service role: Batch uses its service-linked role.
        computeResources: {
          type: args.computeType,
          maxVcpus: sizes.maxVcpus,
          subnets: network.subnetIds,
          securityGroupIds: network.securityGroupIds,
          ...(!fargate && {
            minVcpus: 0,
            instanceRole: roles.instanceProfile?.arn,
            instanceTypes: args.instanceTypes
              ? nonEmptyList(this, 'instanceTypes', args.instanceTypes)
              : INSTANCE_FAMILIES[args.platform],
            allocationStrategy:
              args.computeType === 'SPOT'
                ? 'SPOT_PRICE_CAPACITY_OPTIMIZED'
                : 'BEST_FIT_PROGRESSIVE',
            launchTemplate: launchTemplate && {
              launchTemplateId: launchTemplate.id,
              version: launchTemplate.latestVersion.apply(String),
            },
            tags: args.tags,
          }),
        },
        tags: args.tags,
      },
      // Created after the role policies and deleted before them: without its permissions a
      // compute environment cannot scale down and sticks in DELETING. Replaced create-first (the
      // default): a queue cannot lose its only compute environment, so the old one is deleted
      // once the queue has moved to the new one.
      { parent: this, dependsOn: roles.policies },
    );
    this.computeEnvironment = computeEnvironment;

    const queue = new aws.batch.JobQueue(
      name,
      {
        state: 'ENABLED',
        priority: 1,
        computeEnvironmentOrders: [{ order: 1, computeEnvironment: computeEnvironment.arn }],
        // Batch acts only on its own reasons: a job no compute environment can place is
        // cancelled instead of holding the head of the queue.
        jobStateTimeLimitActions: BATCH_BLOCKED_REASONS.map((reason) => ({
          state: 'RUNNABLE',
          action: 'CANCEL',
          maxTimeSeconds: sizes.runnableTimeoutSeconds,
          reason,
        })),
        tags: args.tags,
      },
      parent,
    );
    this.jobQueue = queue;
    this.jobQueueArn = queue.arn;

    const environment: Record<DefinitionEnv, pulumi.Input<string>> &
      Partial<Record<BedrockEnv, pulumi.Input<string>>> = {
      [ENV.OUTPUT_DIR]: IMAGE.output,
      [ENV.S3_BUCKET]: args.bucketName,
      [ENV.AWS_REGION]: scope.region,
      [ENV.USE_BEDROCK]: bedrock ? '1' : '0',
      ...(bedrock && {
        [ENV.BEDROCK_REGION]: bedrock.region,
        [ENV.BEDROCK_MODEL]: bedrock.modelIds.apply((ids) => ids[0] as string),
      }),
    };
    const secrets: Record<string, pulumi.Input<string>> = this.apiKeySecretArn
      ? { [ENV.ANTHROPIC_API_KEY]: this.apiKeySecretArn }
      : {};
    const containerProperties = pulumi
      .all([
        args.imageRef,
        roles.executionRole.arn,
        roles.jobRole.arn,
        logGroup.name,
        scope.region,
        pulumi.output(environment),
        pulumi.output(secrets),
        pulumi.all([sizes.vcpus, sizes.memoryMib]),
      ])
      .apply(([image, executionRoleArn, jobRoleArn, logGroupName, region, env, secretArns, size]) =>
        JSON.stringify({
          image,
          command: BATCH_JOB_DEFINITION.command,
          user: BATCH_JOB_DEFINITION.user,
          executionRoleArn,
          jobRoleArn,
          resourceRequirements: [
            { type: 'VCPU', value: String(size[0]) },
            { type: 'MEMORY', value: String(size[1]) },
          ],
          environment: Object.entries(env).map(([envName, value]) => ({ name: envName, value })),
          secrets: Object.entries(secretArns).map(([envName, valueFrom]) => ({
            name: envName,
            valueFrom,
          })),
          logConfiguration: {
            logDriver: 'awslogs',
            options: {
              'awslogs-group': logGroupName,
              'awslogs-region': region,
              'awslogs-stream-prefix': BATCH_JOB_DEFINITION.logStreamPrefix,
            },
          },
          // As hardened as the Docker backend's containers: only the volumes are writable.
          readonlyRootFilesystem: true,
          volumes: WRITABLE_PATHS.map((path) => ({ name: volumeName(path) })),
          mountPoints: WRITABLE_PATHS.map((path) => ({
            sourceVolume: volumeName(path),
            containerPath: path,
            readOnly: false,
          })),
          linuxParameters: { initProcessEnabled: true },
          ...(fargate && {
            runtimePlatform: {
              operatingSystemFamily: 'LINUX',
              cpuArchitecture: CPU_ARCHITECTURE[args.platform],
            },
            networkConfiguration: {
              assignPublicIp: network.assignPublicIp ? 'ENABLED' : 'DISABLED',
            },
            fargatePlatformConfiguration: { platformVersion: 'LATEST' },
          }),
        }),
      );

    const jobDefinition = new aws.batch.JobDefinition(
      name,
      {
        type: 'container',
        platformCapabilities: [fargate ? 'FARGATE' : 'EC2'],
        containerProperties,
        timeout: { attemptDurationSeconds: sizes.attemptDurationSeconds },
        retryStrategy: {
          attempts: sizes.retryAttempts,
          evaluateOnExits: RETRY_ONLY_ON_CAPACITY_LOSS,
        },
        propagateTags: true,
        // A new revision (a new image, a new size) leaves the previous ones ACTIVE: a running
        // CLI, a resume and an exported config submit to the revision they were given, and
        // SubmitJob to a deregistered (INACTIVE) revision fails.
        deregisterOnNewRevision: false,
        tags: args.tags,
      },
      parent,
    );
    this.jobDefinition = jobDefinition;
    this.jobDefinitionArn = jobDefinition.arn;

    const submitter = new aws.iam.Policy(
      `${name}-submitter`,
      {
        description: pulumi.interpolate`Run parallel-orchestrator with --backend batch on ${args.namePrefix}`,
        policy: pulumi
          .all([scope, queue.arn, jobDefinition.arnPrefix, args.bucketArn, logGroup.arn])
          .apply(([s, jobQueueArn, jobDefinitionArnPrefix, bucketArn, logGroupArn]) =>
            JSON.stringify(
              submitterPolicy(s, { jobQueueArn, jobDefinitionArnPrefix, bucketArn, logGroupArn }),
            ),
          ),
        tags: args.tags,
      },
      parent,
    );
    this.submitterPolicyArn = submitter.arn;

    this.registerOutputs({
      jobQueueArn: this.jobQueueArn,
      jobDefinitionArn: this.jobDefinitionArn,
      logGroupName: this.logGroupName,
      submitterPolicyArn: this.submitterPolicyArn,
      region: this.region,
      bedrockModels: this.bedrockModels,
      jobRoleName: this.jobRoleName,
      executionRoleArn: this.executionRole.arn,
      logGroupArn: this.logGroup.arn,
      computeEnvironmentArn: this.computeEnvironment.arn,
      vpcId: this.vpcId,
      subnetIds: this.subnetIds,
      securityGroupIds: this.securityGroupIds,
    });
  }

  /**
   * The launch template of EC2 instances: containers cannot reach the instance metadata service
   * (and so the instance role). IMDSv2 is required and its token answers travel one hop, which a
   * container's bridge network adds (EC2 User Guide, "Instance metadata access considerations":
   * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html; AL2023
   * defaults to 2 for containers: https://docs.aws.amazon.com/linux/al2023/ug/imdsv2.html); the
   * user data also drops bridge traffic to it before Docker starts, and the ECS agent refuses
   * privileged containers. Batch takes user data only as a MIME multi-part archive
   * (https://docs.aws.amazon.com/batch/latest/userguide/launch-templates.html).
   */
  private hardenedInstances(name: string, tags: BatchBackendArgs['tags']): aws.ec2.LaunchTemplate {
    return new aws.ec2.LaunchTemplate(
      name,
      {
        metadataOptions: {
          httpEndpoint: 'enabled',
          httpTokens: 'required',
          httpPutResponseHopLimit: 1,
        },
        userData: Buffer.from(EC2_USER_DATA).toString('base64'),
        tags,
      },
      { parent: this },
    );
  }

  /**
   * A VPC of two zones and a group that lets executors out on HTTPS only, nothing in: jobs in
   * public subnets with public IPs, or (`natGateway`) in private subnets behind one NAT.
   */
  private createNetwork(
    name: string,
    natGateway: boolean,
    tags: BatchBackendArgs['tags'],
  ): {
    vpc: awsx.ec2.Vpc;
    securityGroup: aws.ec2.SecurityGroup;
    subnetIds: pulumi.Output<string[]>;
    securityGroupIds: pulumi.Output<string>[];
    assignPublicIp: boolean;
  } {
    const vpc = new awsx.ec2.Vpc(
      name,
      {
        numberOfAvailabilityZones: 2,
        tags,
        ...(natGateway
          ? { natGateways: { strategy: 'Single' } }
          : {
              natGateways: { strategy: 'None' },
              subnetStrategy: 'Auto',
              subnetSpecs: [{ type: 'Public' }],
            }),
      },
      { parent: this },
    );
    const group = new aws.ec2.SecurityGroup(
      name,
      {
        vpcId: vpc.vpcId,
        description:
          'parallel-orchestrator executors: HTTPS out (model, ECR, S3, logs), nothing in',
        egress: [{ protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['0.0.0.0/0'] }],
        tags,
      },
      { parent: this },
    );
    return {
      vpc,
      securityGroup: group,
      subnetIds: natGateway ? vpc.privateSubnetIds : vpc.publicSubnetIds,
      securityGroupIds: [group.id],
      assignPublicIp: !natGateway,
    };
  }

  private storeApiKey(
    name: string,
    apiKey: pulumi.Input<string>,
    tags: BatchBackendArgs['tags'],
  ): pulumi.Output<string> {
    const secret = new aws.secretsmanager.Secret(
      `${name}-model-key`,
      { description: 'Anthropic API key of parallel-orchestrator executors', tags },
      { parent: this },
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-model-key`,
      { secretId: secret.id, secretString: pulumi.secret(apiKey) },
      { parent: this },
    );
    return secret.arn;
  }
}

/** The names the job definition sets, from the runtime's contract (the rest come per task). */
type DefinitionEnv = (typeof BATCH_JOB_ENV.definition)[number];
type BedrockEnv = (typeof BATCH_JOB_ENV.definitionWithBedrock)[number];

/** Retry a job only when its host or its Spot capacity went away; any other end is final. */
export const RETRY_ONLY_ON_CAPACITY_LOSS = BATCH_JOB_DEFINITION.retryOnCapacityLoss.map((rule) => ({
  ...rule,
}));

/**
 * EC2 instances' user data, merged by Batch with its own. Batch EC2 jobs use Docker's bridge
 * network, where ECS_AWSVPC_BLOCK_IMDS (awsvpc only) does nothing; AWS's answer for bridge mode is
 * an iptables rule in DOCKER-USER written before Docker starts, hence a boothook
 * (https://repost.aws/knowledge-center/ecs-container-ec2-metadata). ECS_DISABLE_PRIVILEGED: a
 * privileged container could leave its namespaces
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html).
 */
export const EC2_USER_DATA = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="==PO=="',
  '',
  '--==PO==',
  'Content-Type: text/cloud-boothook; charset="us-ascii"',
  '',
  '#cloud-boothook',
  'iptables -N DOCKER-USER 2>/dev/null || true',
  'iptables -C DOCKER-USER -i docker+ -d 169.254.169.254/32 -j DROP 2>/dev/null ||',
  '  iptables -I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP',
  '',
  '--==PO==',
  'Content-Type: text/x-shellscript; charset="us-ascii"',
  '',
  '#!/bin/bash',
  'echo ECS_DISABLE_PRIVILEGED=true >> /etc/ecs/ecs.config',
  '',
  '--==PO==--',
  '',
].join('\n');

const WRITABLE_PATHS = BATCH_JOB_DEFINITION.writablePaths;
const volumeName = (path: string) => path.replace(/^\//, '').replaceAll('/', '-');

function validate(resource: pulumi.Resource, args: BatchBackendArgs): void {
  if (!(COMPUTE_TYPES as readonly string[]).includes(args.computeType)) {
    throw invalidArgument(
      resource,
      'computeType',
      `unknown compute type ${args.computeType}; choose from ${COMPUTE_TYPES.join(', ')}`,
    );
  }
  if (args.computeType === 'FARGATE_SPOT' && args.platform === 'linux/arm64') {
    throw invalidArgument(
      resource,
      'computeType',
      'Fargate Spot does not run linux/arm64; use FARGATE or SPOT',
    );
  }
  if (args.model.provider === 'anthropic' && !args.model.apiKey && !args.model.apiKeySecretArn) {
    throw invalidArgument(
      resource,
      'model.apiKey',
      'the anthropic provider needs model.apiKey or model.apiKeySecretArn',
    );
  }
  if (args.model.provider !== 'anthropic' && args.model.provider !== 'bedrock') {
    throw invalidArgument(resource, 'model.provider', 'choose anthropic or bedrock');
  }
}

/** The Bedrock model ids jobs may invoke, the stack's first, each checked to be one. */
function bedrockModelIds(
  resource: pulumi.Resource,
  model: Extract<ModelAccessArgs, { provider: 'bedrock' }>,
): pulumi.Output<string[]> {
  const checkId = (argument: string) => (id: string) => {
    if (!BEDROCK_MODEL_ID.test(id))
      throw invalidArgument(
        resource,
        argument,
        `${id} is not a Bedrock model id (provider.model, or <geography>.provider.model for an inference profile)`,
      );
  };
  const first = checked(model.modelId ?? MODEL_DEFAULTS.bedrockModel, checkId('model.modelId'));
  const extra = model.extraModelIds ?? [];
  if (Array.isArray(extra))
    for (const id of extra) if (typeof id === 'string') checkId('model.extraModelIds')(id);
  return pulumi.all([first, pulumi.output(extra)]).apply(([id, others]) => {
    for (const other of others) checkId('model.extraModelIds')(other);
    return [...new Set([id, ...others])];
  });
}

/** The sizes and limits of a Batch backend, once known. */
interface Sizes {
  maxVcpus: number;
  vcpus: number;
  memoryMib: number;
  attemptDurationSeconds: number;
  retryAttempts: number;
  runnableTimeoutSeconds: number;
  logRetentionDays: number;
}

function checkSizes(resource: pulumi.Resource, fargate: boolean, sizes: Sizes): void {
  checkInteger(resource, 'maxVcpus', sizes.maxVcpus, 1, 10_000);
  if (fargate) {
    const problem = checkFargateSize(sizes.vcpus, sizes.memoryMib);
    if (problem)
      throw invalidArgument(
        resource,
        problem.resource === 'VCPU' ? 'vcpus' : 'memoryMib',
        problem.message,
      );
  } else {
    checkInteger(resource, 'vcpus', sizes.vcpus, 1, 192);
    checkInteger(resource, 'memoryMib', sizes.memoryMib, 512, 1_572_864);
  }
  if (sizes.vcpus > sizes.maxVcpus) {
    throw invalidArgument(
      resource,
      'vcpus',
      `${sizes.vcpus} per job is above maxVcpus (${sizes.maxVcpus}): no job could ever start`,
    );
  }
  checkInteger(resource, 'attemptDurationSeconds', sizes.attemptDurationSeconds, 60, 1_209_600);
  checkInteger(resource, 'retryAttempts', sizes.retryAttempts, 1, 10);
  checkInteger(resource, 'runnableTimeoutSeconds', sizes.runnableTimeoutSeconds, 600, 86_400);
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(sizes.logRetentionDays)) {
    throw invalidArgument(
      resource,
      'logRetentionDays',
      `${sizes.logRetentionDays} is not a CloudWatch retention; choose from ${LOG_RETENTION_DAYS.join(', ')}`,
    );
  }
}

/**
 * The sizes as outputs the resources take, checked: at construction when every one is a plain
 * value, else when they resolve (a failure then fails the update with the same one line).
 */
function checkedSizes(
  resource: pulumi.Resource,
  args: BatchBackendArgs,
): { [K in keyof Sizes]: pulumi.Output<number> } {
  const fargate = args.computeType.startsWith('FARGATE');
  const given = {
    maxVcpus: args.maxVcpus,
    vcpus: args.vcpus,
    memoryMib: args.memoryMib,
    attemptDurationSeconds: args.attemptDurationSeconds,
    retryAttempts: args.retryAttempts,
    runnableTimeoutSeconds: args.runnableTimeoutSeconds,
    logRetentionDays: args.logRetentionDays,
  };
  if (Object.values(given).every((value) => typeof value === 'number'))
    checkSizes(resource, fargate, given as unknown as Sizes);
  const checked = pulumi.all(given).apply((resolved) => {
    const sizes = resolved as unknown as Sizes;
    checkSizes(resource, fargate, sizes);
    return sizes;
  });
  const one = (key: keyof Sizes) => checked.apply((sizes) => sizes[key]);
  return {
    maxVcpus: one('maxVcpus'),
    vcpus: one('vcpus'),
    memoryMib: one('memoryMib'),
    attemptDurationSeconds: one('attemptDurationSeconds'),
    retryAttempts: one('retryAttempts'),
    runnableTimeoutSeconds: one('runnableTimeoutSeconds'),
    logRetentionDays: one('logRetentionDays'),
  };
}
