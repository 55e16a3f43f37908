import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  BATCH_BLOCKED_REASONS,
  BATCH_JOB_ENV,
  BackendConfigSchema,
  ENV_NAMES,
  IMAGE,
  MODEL_DEFAULTS,
} from '../../packages/runtime/src/contracts/index.js';
import {
  ACCOUNT,
  AUTH_PASSWORD,
  dependsOnUrns,
  type Props,
  type RecordingMocks,
  type Registered,
  resolved,
  secretValue,
  underMocks,
} from './mocks.js';
import { allows, assertLeastPrivilege, type PolicyDocument, policyOf } from './policies.js';

type Component = typeof import('../../packages/pulumi/src/index.js');
let component: Component;
beforeAll(async () => {
  // Pulumi's SDK reads its settings when a resource is made, so the module may load first.
  component = await import('../../packages/pulumi/src/index.js');
});

const ROOT = path.resolve(import.meta.dirname, '../..');

async function deploy(args: import('../../packages/pulumi/src/index.js').ParallelOrchestratorArgs) {
  const { mocks, options, result } = await underMocks(
    'dev',
    (opts) => new component.ParallelOrchestrator('po', { context: ROOT, ...args }, opts),
  );
  return { mocks, options, orchestrator: result };
}

function containerProperties(mocks: RecordingMocks): Props {
  return JSON.parse(mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.containerProperties);
}

const envNames = (props: Props) =>
  (props.environment as { name: string }[]).map((e) => e.name).sort();
const envValue = (props: Props, name: string) =>
  (props.environment as { name: string; value: string }[]).find((e) => e.name === name)?.value;

function rolePolicy(mocks: RecordingMocks, role: string): PolicyDocument {
  const found = mocks
    .ofType('aws:iam/rolePolicy:RolePolicy')
    .find((r: Registered) => r.name === `po-${role}`);
  if (!found) throw new Error(`no ${role} role policy`);
  return policyOf(found);
}

/** Every policy document the component wrote, checked for `*` actions and unscoped resources. */
function assertEveryPolicyScoped(mocks: RecordingMocks): number {
  const documents = [
    ...mocks.ofType('aws:iam/rolePolicy:RolePolicy'),
    ...mocks.ofType('aws:iam/policy:Policy'),
  ];
  for (const registered of documents) {
    assertLeastPrivilege(policyOf(registered), `${registered.type} ${registered.name}`);
  }
  return documents.length;
}

describe('ParallelOrchestrator with its defaults (Batch on Fargate Spot, Bedrock, a new VPC)', () => {
  let deployed: Awaited<ReturnType<typeof deploy>>;
  beforeAll(async () => {
    deployed = await deploy({});
  });

  test('builds the image for amd64 and arm64, each with its registry cache, pushed with ECR credentials', () => {
    const { mocks } = deployed;
    const repository = mocks.one('aws:ecr/repository:Repository');
    expect(repository.inputs.imageScanningConfiguration).toEqual({ scanOnPush: true });
    expect(repository.inputs.forceDelete).toBe(false);

    const builds = mocks.ofType('docker-build:index:Image');
    expect(builds.map((b) => b.inputs.platforms)).toEqual([['linux/amd64'], ['linux/arm64']]);
    for (const build of builds) {
      const arch = build.inputs.platforms[0].split('/')[1];
      expect(build.inputs.push).toBe(true);
      expect(build.inputs.context.location).toBe(ROOT);
      expect(build.inputs.dockerfile.location).toBe(path.join(ROOT, IMAGE.dockerfile));
      // The registry password is a secret: Pulumi keeps it out of plain state.
      expect(secretValue(build.inputs.registries)).toEqual([
        {
          address: `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`,
          username: 'AWS',
          password: AUTH_PASSWORD,
        },
      ]);
      const cache = `${repository.state.repositoryUrl}:cache-${arch}`;
      expect(build.inputs.cacheFrom).toEqual([{ registry: { ref: cache } }]);
      expect(build.inputs.cacheTo[0].registry).toMatchObject({
        ref: cache,
        mode: 'max',
        imageManifest: true,
      });
    }
    expect(mocks.calls.map((c) => c.token)).toContain(
      'aws:ecr/getAuthorizationToken:getAuthorizationToken',
    );

    const index = mocks.one('docker-build:index:Index');
    expect(index.inputs.sources).toEqual(builds.map((b) => b.state.ref));
    expect(index.inputs.push).toBe(true);
    expect(secretValue(index.inputs.registry)).toMatchObject({ password: AUTH_PASSWORD });
  });

  test('pins the image by digest, and the job definition runs exactly that reference', async () => {
    const { mocks, orchestrator } = deployed;
    const repositoryUrl = mocks.one('aws:ecr/repository:Repository').state.repositoryUrl;
    const imageRef = await resolved(orchestrator.imageRef);
    const indexDigest = mocks.one('docker-build:index:Index').state.ref.split('@')[1];
    expect(imageRef).toBe(`${repositoryUrl}@${indexDigest}`);
    expect(imageRef).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(containerProperties(mocks).image).toBe(imageRef);
  });

  test('keeps the newest builds in ECR and never expires the current caches', () => {
    const policy = JSON.parse(
      deployed.mocks.one('aws:ecr/lifecyclePolicy:LifecyclePolicy').inputs.policy,
    );
    expect(policy.rules[0].selection).toMatchObject({ tagPrefixList: ['cache-'], countNumber: 2 });
    expect(policy.rules[1].selection).toMatchObject({ tagStatus: 'any', countNumber: 10 });
  });

  test('the job definition sets the contract names the stack owns; the rest come per task or from the role', () => {
    const props = containerProperties(deployed.mocks);
    expect(envNames(props)).toEqual(
      [...BATCH_JOB_ENV.definition, ...BATCH_JOB_ENV.definitionWithBedrock].sort(),
    );
    expect(props.secrets).toEqual([]);
    const covered = new Set([
      ...BATCH_JOB_ENV.definition,
      ...BATCH_JOB_ENV.definitionWithBedrock,
      ...BATCH_JOB_ENV.secretWithAnthropic,
      ...BATCH_JOB_ENV.submission,
      ...BATCH_JOB_ENV.fromJobRole,
    ]);
    expect([...covered].sort()).toEqual([...ENV_NAMES].sort());
    expect(envValue(props, 'USE_BEDROCK')).toBe('1');
    expect(envValue(props, 'BEDROCK_MODEL')).toBe(MODEL_DEFAULTS.bedrockModel);
    expect(envValue(props, 'BEDROCK_REGION')).toBe(MODEL_DEFAULTS.bedrockRegion);
    expect(envValue(props, 'OUTPUT_DIR')).toBe(IMAGE.output);
    expect(envValue(props, 'S3_BUCKET')).toBe(
      deployed.mocks.one('aws:s3/bucket:Bucket').state.bucket,
    );
  });

  test('the job runs the Batch executor, hardened, on Fargate x86_64, logging to the retained group', () => {
    const { mocks } = deployed;
    const definition = mocks.one('aws:batch/jobDefinition:JobDefinition').inputs;
    const props = containerProperties(mocks);
    expect(props.command).toEqual([IMAGE.commands.batchExecutor]);
    expect(definition.platformCapabilities).toEqual(['FARGATE']);
    expect(props.runtimePlatform).toEqual({
      operatingSystemFamily: 'LINUX',
      cpuArchitecture: 'X86_64',
    });
    expect(props.resourceRequirements).toEqual([
      { type: 'VCPU', value: '2' },
      { type: 'MEMORY', value: '4096' },
    ]);
    expect(props.readonlyRootFilesystem).toBe(true);
    expect(props.mountPoints.map((m: { containerPath: string }) => m.containerPath)).toEqual([
      '/output',
      '/home/executor',
      '/tmp',
    ]);
    expect(definition.timeout).toEqual({ attemptDurationSeconds: 3600 });
    expect(definition.propagateTags).toBe(true);

    const logGroup = mocks.one('aws:cloudwatch/logGroup:LogGroup').inputs;
    expect(logGroup.retentionInDays).toBe(30);
    expect(props.logConfiguration).toEqual({
      logDriver: 'awslogs',
      options: {
        'awslogs-group': logGroup.name,
        'awslogs-region': 'us-east-1',
        'awslogs-stream-prefix': 'task',
      },
    });
  });

  test('retries a job only when its host or Spot capacity is lost', () => {
    const strategy = deployed.mocks.one('aws:batch/jobDefinition:JobDefinition').inputs
      .retryStrategy;
    expect(strategy.attempts).toBe(3);
    const rules = strategy.evaluateOnExits as {
      action: string;
      onStatusReason?: string;
      onReason?: string;
    }[];
    expect(rules.filter((r) => r.action === 'RETRY').map((r) => r.onStatusReason)).toEqual([
      'Host EC2*',
      'Your Spot Task was interrupted*',
    ]);
    expect(rules.at(-1)).toEqual({ onReason: '*', action: 'EXIT' });
  });

  test('Fargate Spot in the public subnets of a new VPC with no NAT (nothing billed while idle), HTTPS out only; queue cancels jobs stuck in RUNNABLE', async () => {
    const { mocks, options } = deployed;
    const environment = mocks.one('aws:batch/computeEnvironment:ComputeEnvironment');
    expect(environment.inputs.computeResources).toMatchObject({
      type: 'FARGATE_SPOT',
      maxVcpus: 64,
      subnets: ['subnet-public-a', 'subnet-public-b'],
      securityGroupIds: ['po-id'],
    });
    expect(mocks.one('awsx:ec2:Vpc').inputs).toMatchObject({
      natGateways: { strategy: 'None' },
      subnetSpecs: [{ type: 'Public' }],
    });
    expect(environment.inputs.serviceRole).toBeUndefined();
    expect(mocks.one('aws:ec2/securityGroup:SecurityGroup').inputs.egress).toEqual([
      { protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['0.0.0.0/0'] },
    ]);
    expect(mocks.one('aws:ec2/securityGroup:SecurityGroup').inputs.ingress).toBeUndefined();
    // Out through a public IP: the group above lets nothing in.
    expect(containerProperties(mocks).networkConfiguration).toEqual({ assignPublicIp: 'ENABLED' });

    const queue = mocks.one('aws:batch/jobQueue:JobQueue').inputs;
    expect(queue.computeEnvironmentOrders).toEqual([
      { order: 1, computeEnvironment: environment.state.arn },
    ]);
    // One action per reason Batch acts on; free text would never match a job's statusReason.
    expect(queue.jobStateTimeLimitActions).toEqual(
      BATCH_BLOCKED_REASONS.map((reason) => ({
        state: 'RUNNABLE',
        action: 'CANCEL',
        maxTimeSeconds: 1800,
        reason,
      })),
    );

    // Created after the role policies, so destroy removes it before them.
    const ceOptions = options.get('aws:batch/computeEnvironment:ComputeEnvironment po');
    const urns = await dependsOnUrns(ceOptions);
    expect(urns.filter((u) => u.includes('aws:iam/rolePolicy:RolePolicy')).length).toBe(2);
  });

  test('the compute environment can be replaced (another compute type or platform): named by Pulumi, replaced create-first', () => {
    const { mocks, options } = deployed;
    const environment = mocks.one('aws:batch/computeEnvironment:ComputeEnvironment');
    // A fixed name would make the replacement's name collide with the old one's, and deleting
    // the old one first fails while the queue still references it ("Cannot delete, found
    // existing JobQueue relationship"): with its own name the new one is created, the queue
    // moved to it (an in-place update), and only then the old one deleted.
    expect(environment.inputs.name).toBeUndefined();
    expect(environment.inputs.namePrefix).toBeUndefined();
    const ceOptions = options.get('aws:batch/computeEnvironment:ComputeEnvironment po');
    expect(ceOptions?.deleteBeforeReplace).toBeFalsy();
    expect(mocks.one('aws:batch/jobQueue:JobQueue').inputs.computeEnvironmentOrders).toEqual([
      { order: 1, computeEnvironment: environment.state.arn },
    ]);
  });

  test('a pulumi up keeps the revision a running CLI, a resume or an older exported config submits to', () => {
    const definition = deployed.mocks.one('aws:batch/jobDefinition:JobDefinition').inputs;
    // The provider's default (true) deregisters the previous revision on every new one, and
    // SubmitJob to an INACTIVE revision fails with ClientException.
    expect(definition.deregisterOnNewRevision).toBe(false);
  });

  test('the state bucket is encrypted, private, TLS only, and expires old runs', () => {
    const { mocks, options } = deployed;
    const bucket = mocks.one('aws:s3/bucket:Bucket');
    expect(bucket.inputs.forceDestroy).toBe(false);
    expect(options.get('aws:s3/bucket:Bucket po')?.protect).toBeUndefined();
    expect(
      mocks.one(
        'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
      ).inputs.rules,
    ).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true },
    ]);
    expect(
      mocks.one('aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock').inputs,
    ).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const policy = JSON.parse(mocks.one('aws:s3/bucketPolicy:BucketPolicy').inputs.policy);
    expect(policy.Statement).toEqual([
      expect.objectContaining({
        Effect: 'Deny',
        Principal: '*',
        Resource: [bucket.state.arn, `${bucket.state.arn}/*`],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    ]);
    const [rule] = mocks.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration')
      .inputs.rules;
    expect(rule).toMatchObject({
      status: 'Enabled',
      filter: { prefix: 'runs/' },
      expiration: { days: 30 },
    });
  });

  test('IAM: no * action, every resource scoped; the job role holds the one model and nothing of the bucket', () => {
    const { mocks } = deployed;
    expect(assertEveryPolicyScoped(mocks)).toBe(3);
    const job = rolePolicy(mocks, 'job');
    // Jobs move their objects by URLs the orchestrator presigns per attempt.
    expect(job.Statement.flatMap((s) => s.Action).filter((a) => !a.startsWith('bedrock:'))).toEqual(
      [],
    );
    const profileArn = `arn:aws:bedrock:us-east-1:${ACCOUNT}:inference-profile/${MODEL_DEFAULTS.bedrockModel}`;
    expect(job.Statement.find((s) => s.Sid === 'InvokeInferenceProfile')?.Resource).toEqual([
      profileArn,
    ]);
    expect(job.Statement.find((s) => s.Sid === 'InvokeModelThroughProfile')).toMatchObject({
      Resource: ['arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-5-5'],
      Condition: { StringEquals: { 'bedrock:InferenceProfileArn': [profileArn] } },
    });
    const execution = rolePolicy(mocks, 'execution');
    expect(execution.Statement.map((s) => s.Sid)).toEqual(['EcrLogin', 'PullImage', 'WriteLogs']);
  });

  test('the submitter policy grants exactly the calls the CLI makes, each on this stack', () => {
    const { mocks } = deployed;
    const submitter = policyOf(mocks.one('aws:iam/policy:Policy'));
    const queueArn = mocks.one('aws:batch/jobQueue:JobQueue').state.arn;
    const definition = mocks.one('aws:batch/jobDefinition:JobDefinition').state;
    const bucketArn = mocks.one('aws:s3/bucket:Bucket').state.arn;
    const logGroupArn = `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/batch/parallel-orchestrator-dev`;
    const job = `arn:aws:batch:us-east-1:${ACCOUNT}:job/0a1b2c3d-4e5f-6789-abcd-ef0123456789`;
    const attempt = `${bucketArn}/runs/run-1/tasks/t1/attempt-1`;
    // Every AWS call of packages/runtime/src/backends/batch, as IAM authorises it (Service
    // Authorization Reference: an action and each resource it is authorised on).
    const calls: [string, string, string[]][] = [
      ['preflight DescribeJobQueues', 'batch:DescribeJobQueues', ['*']],
      ["doctor's revision check DescribeJobDefinitions", 'batch:DescribeJobDefinitions', ['*']],
      // HeadBucket is authorised as s3:ListBucket with no s3:prefix in the request context.
      ['preflight HeadBucket', 's3:ListBucket', [bucketArn]],
      ['SubmitJob', 'batch:SubmitJob', [queueArn, `${definition.arnPrefix}:1`, job]],
      ['SubmitJob to the definition by name', 'batch:SubmitJob', [definition.arnPrefix]],
      ['SubmitJob with tags', 'batch:TagResource', [job]],
      ['poll DescribeJobs', 'batch:DescribeJobs', ['*']],
      ['a lost submission: ListJobs', 'batch:ListJobs', ['*']],
      ['stop TerminateJob', 'batch:TerminateJob', [job]],
      ['stage PutObject (and multipart parts)', 's3:PutObject', [`${attempt}/input.json`]],
      ['stage AbortMultipartUpload', 's3:AbortMultipartUpload', [`${attempt}/input.json`]],
      ['collect GetObject', 's3:GetObject', [`${attempt}/result.json`]],
      // A missing object is 404 only to a caller allowed ListBucket on the bucket, unconditioned.
      ['collect: a missing result.json', 's3:ListBucket', [bucketArn]],
      ['logs GetLogEvents', 'logs:GetLogEvents', [`${logGroupArn}:log-stream:task/default/abc`]],
    ];
    for (const [call, action, resources] of calls) {
      for (const resource of resources) {
        expect(allows(submitter, action, resource), `${call}: ${action} on ${resource}`).toBe(true);
      }
    }
    // Nothing beyond them.
    const granted = new Set(submitter.Statement.flatMap((s) => s.Action));
    expect([...granted].sort()).toEqual([...new Set(calls.map(([, action]) => action))].sort());
    expect(allows(submitter, 's3:GetObject', `${bucketArn}/other/key`)).toBe(false);
    expect(allows(submitter, 'batch:SubmitJob', queueArn.replace(/[^/]+$/, 'other'))).toBe(false);
  });

  test('runtimeConfig is what the CLI validates for --backend-config', async () => {
    const { mocks, orchestrator } = deployed;
    const config = BackendConfigSchema.parse(await resolved(orchestrator.runtimeConfig));
    expect(config).toMatchObject({
      backend: 'batch',
      region: 'us-east-1',
      jobQueueArn: mocks.one('aws:batch/jobQueue:JobQueue').state.arn,
      jobDefinitionArn: mocks.one('aws:batch/jobDefinition:JobDefinition').state.arn,
      bucketName: mocks.one('aws:s3/bucket:Bucket').state.bucket,
      runsPrefix: 'runs/',
      logGroupName: '/aws/batch/parallel-orchestrator-dev',
      imageRef: await resolved(orchestrator.imageRef),
      model: {
        provider: 'bedrock',
        region: MODEL_DEFAULTS.bedrockRegion,
        model: MODEL_DEFAULTS.bedrockModel,
      },
    });
    expect(await resolved(orchestrator.submitterPolicyArn)).toBe(
      mocks.one('aws:iam/policy:Policy').state.arn,
    );
  });
});

describe('a created VPC with a NAT gateway, when asked for', () => {
  test('puts jobs in private subnets behind one NAT, without public IPs', async () => {
    const { mocks } = await deploy({ batch: { natGateway: true } });
    expect(mocks.one('awsx:ec2:Vpc').inputs.natGateways).toEqual({ strategy: 'Single' });
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources.subnets,
    ).toEqual(['subnet-private-a', 'subnet-private-b']);
    expect(containerProperties(mocks).networkConfiguration).toEqual({ assignPublicIp: 'DISABLED' });
  });
});

describe('ParallelOrchestrator in an existing VPC', () => {
  test('uses the given subnets and groups and creates no network', async () => {
    const { mocks } = await deploy({
      batch: {
        network: {
          subnetIds: ['subnet-a', 'subnet-b'],
          securityGroupIds: ['sg-1'],
          assignPublicIp: true,
        },
      },
    });
    expect(mocks.ofType('awsx:ec2:Vpc')).toHaveLength(0);
    expect(mocks.ofType('aws:ec2/securityGroup:SecurityGroup')).toHaveLength(0);
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
    ).toMatchObject({
      subnets: ['subnet-a', 'subnet-b'],
      securityGroupIds: ['sg-1'],
    });
    expect(containerProperties(mocks).networkConfiguration).toEqual({ assignPublicIp: 'ENABLED' });
  });
});

describe('model access', () => {
  const KEY = 'sk-ant-api03-PULUMI-TEST-KEY-must-never-appear';

  test('Anthropic: the key goes to Secrets Manager and reaches jobs only through the definition secrets', async () => {
    const { mocks, orchestrator } = await deploy({ model: { provider: 'anthropic', apiKey: KEY } });
    const secret = mocks.one('aws:secretsmanager/secret:Secret');
    expect(
      secretValue(mocks.one('aws:secretsmanager/secretVersion:SecretVersion').inputs.secretString),
    ).toBe(KEY);
    const props = containerProperties(mocks);
    expect(props.secrets).toEqual([{ name: 'ANTHROPIC_API_KEY', valueFrom: secret.state.arn }]);
    expect(envNames(props)).toEqual([...BATCH_JOB_ENV.definition].sort());
    expect(envValue(props, 'USE_BEDROCK')).toBe('0');

    const elsewhere = mocks.resources.filter(
      (r) => r.type !== 'aws:secretsmanager/secretVersion:SecretVersion',
    );
    expect(JSON.stringify(elsewhere.map((r) => r.inputs))).not.toContain(KEY);
    expect(JSON.stringify(await resolved(orchestrator.runtimeConfig))).not.toContain(KEY);

    const execution = rolePolicy(mocks, 'execution');
    expect(execution.Statement.find((s) => s.Sid === 'ReadModelKey')?.Resource).toEqual([
      secret.state.arn,
    ]);
    // With the Anthropic API the job role holds no policy at all: the key comes as a secret and
    // the objects by presigned URLs.
    expect(() => rolePolicy(mocks, 'job')).toThrow('no job role policy');
    expect(mocks.ofType('aws:iam/role:Role').map((r: Registered) => r.name)).toContain('po-job');
    expect(BackendConfigSchema.parse(await resolved(orchestrator.runtimeConfig))).toMatchObject({
      model: { provider: 'anthropic', apiKeySecretArn: secret.state.arn },
    });
    assertEveryPolicyScoped(mocks);
  });

  test('Anthropic with an existing secret named without its random suffix: the execution role matches it through -??????', async () => {
    // Secrets Manager's ARNs end in -XXXXXX; IAM compares the request with that full ARN, so a
    // partial ARN in Resource matches nothing and the task fails with ResourceInitializationError.
    const partial = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team/anthropic-key`;
    const { mocks } = await deploy({ model: { provider: 'anthropic', apiKeySecretArn: partial } });
    expect(
      rolePolicy(mocks, 'execution').Statement.find((s) => s.Sid === 'ReadModelKey')?.Resource,
    ).toEqual([`${partial}-??????`]);
    // ECS passes valueFrom to GetSecretValue, which takes a partial ARN.
    expect(containerProperties(mocks).secrets).toEqual([
      { name: 'ANTHROPIC_API_KEY', valueFrom: partial },
    ]);
  });

  test('Anthropic with an existing secret creates none', async () => {
    const arn = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:team/anthropic-AbCdEf`;
    const { mocks } = await deploy({ model: { provider: 'anthropic', apiKeySecretArn: arn } });
    expect(mocks.ofType('aws:secretsmanager/secret:Secret')).toHaveLength(0);
    expect(containerProperties(mocks).secrets).toEqual([
      { name: 'ANTHROPIC_API_KEY', valueFrom: arn },
    ]);
    expect(
      rolePolicy(mocks, 'execution').Statement.find((s) => s.Sid === 'ReadModelKey')?.Resource,
    ).toEqual([arn]);
  });

  test('Bedrock with extra models: the job role may invoke each, and runtimeConfig lists them for the CLI', async () => {
    const { mocks, orchestrator } = await deploy({
      model: {
        provider: 'bedrock',
        region: 'us-west-2',
        modelId: 'us.anthropic.claude-sonnet-5-5',
        extraModelIds: ['us.anthropic.claude-haiku-5-0', 'anthropic.claude-opus-5-1'],
      },
    });
    const job = rolePolicy(mocks, 'job');
    const profile = (id: string) => `arn:aws:bedrock:us-west-2:${ACCOUNT}:inference-profile/${id}`;
    const profiles = [
      profile('us.anthropic.claude-sonnet-5-5'),
      profile('us.anthropic.claude-haiku-5-0'),
    ];
    expect(job.Statement.find((s) => s.Sid === 'InvokeInferenceProfile')?.Resource).toEqual(
      profiles,
    );
    // Each profile's model in every region the profile routes to, only through these profiles.
    expect(job.Statement.find((s) => s.Sid === 'InvokeModelThroughProfile')).toMatchObject({
      Resource: [
        'arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-5-5',
        'arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-5-0',
      ],
      Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profiles } },
    });
    expect(job.Statement.find((s) => s.Sid === 'InvokeModel')?.Resource).toEqual([
      'arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-opus-5-1',
    ]);
    expect(envValue(containerProperties(mocks), 'BEDROCK_MODEL')).toBe(
      'us.anthropic.claude-sonnet-5-5',
    );
    const config = BackendConfigSchema.parse(await resolved(orchestrator.runtimeConfig));
    expect(config).toMatchObject({
      model: { provider: 'bedrock', region: 'us-west-2', model: 'us.anthropic.claude-sonnet-5-5' },
      bedrockModels: [
        'us.anthropic.claude-sonnet-5-5',
        'us.anthropic.claude-haiku-5-0',
        'anthropic.claude-opus-5-1',
      ],
    });
    assertEveryPolicyScoped(mocks);
  });

  test('Bedrock with a foundation model id: the job role may invoke that model in that region only', async () => {
    const { mocks } = await deploy({
      model: { provider: 'bedrock', region: 'eu-west-1', modelId: 'anthropic.claude-sonnet-5-5' },
    });
    const job = rolePolicy(mocks, 'job');
    const invoke = job.Statement.filter((s) => s.Action.some((a) => a.startsWith('bedrock:')));
    expect(invoke).toEqual([
      expect.objectContaining({
        Action: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
        Resource: ['arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-sonnet-5-5'],
      }),
    ]);
    expect(mocks.ofType('aws:secretsmanager/secret:Secret')).toHaveLength(0);
    expect(JSON.stringify(rolePolicy(mocks, 'execution'))).not.toContain('secretsmanager');
  });
});

describe('EC2 Spot on Graviton (arm64)', () => {
  test("Spot with price-capacity-optimized allocation, Graviton families, an instance role with AWS's ECS agent policy", async () => {
    const { mocks, options } = await deploy({
      batch: { computeType: 'SPOT', platform: 'linux/arm64', vcpus: 4, memoryMib: 8192 },
    });
    const environment = mocks.one('aws:batch/computeEnvironment:ComputeEnvironment');
    const resources = environment.inputs.computeResources;
    expect(resources).toMatchObject({
      type: 'SPOT',
      allocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      minVcpus: 0,
      instanceRole: mocks.one('aws:iam/instanceProfile:InstanceProfile').state.arn,
    });
    expect(resources.instanceTypes.length).toBeGreaterThan(0);
    for (const family of resources.instanceTypes) expect(family).toMatch(/^[a-z]+\d+g$/);

    const definition = mocks.one('aws:batch/jobDefinition:JobDefinition').inputs;
    expect(definition.platformCapabilities).toEqual(['EC2']);
    expect(containerProperties(mocks).runtimePlatform).toBeUndefined();

    // The agent's own managed policy (a hand-scoped copy lacked ec2:DescribeTags,
    // ecs:TagResource, ecs:ListTagsForResource, ...: instances could not join).
    const profileRole = mocks.one('aws:iam/instanceProfile:InstanceProfile').inputs.role;
    const attachment = mocks.one('aws:iam/rolePolicyAttachment:RolePolicyAttachment').inputs;
    expect(attachment).toEqual({
      role: profileRole,
      policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
    });
    expect(mocks.ofType('aws:iam/rolePolicy:RolePolicy').map((r) => r.name)).not.toContain(
      'po-instance',
    );
    expect(assertEveryPolicyScoped(mocks)).toBe(3);
    const urns = await dependsOnUrns(
      options.get('aws:batch/computeEnvironment:ComputeEnvironment po'),
    );
    expect(urns.some((u) => u.includes('aws:iam/instanceProfile:InstanceProfile'))).toBe(true);
    expect(urns.some((u) => u.includes('aws:iam/rolePolicyAttachment:RolePolicyAttachment'))).toBe(
      true,
    );
  });

  test('instances require IMDSv2 with a hop limit of 1, and their user data keeps bridge containers off IMDS', async () => {
    const { mocks } = await deploy({ batch: { computeType: 'EC2' } });
    const template = mocks.one('aws:ec2/launchTemplate:LaunchTemplate');
    // Token answers travel one hop; a container's bridge is a second, so no container gets one.
    expect(template.inputs.metadataOptions).toEqual({
      httpEndpoint: 'enabled',
      httpTokens: 'required',
      httpPutResponseHopLimit: 1,
    });
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources
        .launchTemplate,
    ).toEqual({ launchTemplateId: `${template.name}-id`, version: '1' });

    // Batch merges only MIME multi-part user data with its own.
    const userData = Buffer.from(template.inputs.userData, 'base64').toString('utf8');
    const boundary = /boundary="([^"]+)"/.exec(userData)?.[1];
    expect(userData.startsWith('MIME-Version: 1.0\nContent-Type: multipart/mixed;')).toBe(true);
    const parts = userData
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((part) => part.trim());
    expect(parts.map((part) => part.split('\n')[0])).toEqual([
      'Content-Type: text/cloud-boothook; charset="us-ascii"',
      'Content-Type: text/x-shellscript; charset="us-ascii"',
    ]);
    expect(userData.trimEnd().endsWith(`--${boundary}--`)).toBe(true);
    // Before Docker starts (a boothook), traffic from its bridges to IMDS is dropped.
    expect(parts[0]).toContain(
      'iptables -I DOCKER-USER 1 -i docker+ -d 169.254.169.254/32 -j DROP',
    );
    expect(parts[1]).toContain('ECS_DISABLE_PRIVILEGED=true >> /etc/ecs/ecs.config');
  });

  test('on-demand EC2 packs instances best-fit progressive', async () => {
    const { mocks } = await deploy({ batch: { computeType: 'EC2' } });
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
    ).toMatchObject({
      type: 'EC2',
      allocationStrategy: 'BEST_FIT_PROGRESSIVE',
    });
    for (const family of mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs
      .computeResources.instanceTypes) {
      expect(family).toMatch(/^[a-z]+\d+i$/);
    }
  });
});

describe('one platform', () => {
  test('builds once and pins that build by digest, with no index', async () => {
    const { mocks, orchestrator } = await deploy({
      platforms: ['linux/arm64'],
      batch: { platform: 'linux/arm64', computeType: 'FARGATE' },
    });
    expect(mocks.ofType('docker-build:index:Index')).toHaveLength(0);
    const build = mocks.one('docker-build:index:Image');
    const repositoryUrl = mocks.one('aws:ecr/repository:Repository').state.repositoryUrl;
    expect(await resolved(orchestrator.imageRef)).toBe(`${repositoryUrl}@${build.state.digest}`);
    expect(containerProperties(mocks).runtimePlatform.cpuArchitecture).toBe('ARM64');
    // Fargate runs no instance of ours: no instance role, no launch template.
    expect(mocks.ofType('aws:ec2/launchTemplate:LaunchTemplate')).toHaveLength(0);
    expect(mocks.ofType('aws:iam/instanceProfile:InstanceProfile')).toHaveLength(0);
  });
});

describe('the docker backend (no AWS)', () => {
  test('builds the image locally for the host, never pushes, and makes the executor network', async () => {
    const { mocks, orchestrator } = await deploy({
      backend: 'docker',
      claudeCodeVersion: '2.1.332',
    });
    expect(
      mocks.resources.filter((r) => r.type.startsWith('aws') || r.type.startsWith('docker-build')),
    ).toEqual([]);
    const image = mocks.one('docker:index/image:Image').inputs;
    expect(image).toMatchObject({
      imageName: 'parallel-orchestrator:dev',
      skipPush: true,
      build: {
        context: ROOT,
        dockerfile: path.join(ROOT, IMAGE.dockerfile),
        args: { CLAUDE_CODE_VERSION: '2.1.332' },
      },
    });
    expect(image.build.platform).toBeUndefined();
    expect(mocks.one('docker:index/network:Network').inputs).toMatchObject({
      name: 'parallel-orchestrator-dev-executors',
      driver: 'bridge',
    });
    expect(BackendConfigSchema.parse(await resolved(orchestrator.runtimeConfig))).toEqual({
      version: 1,
      backend: 'docker',
      image: 'parallel-orchestrator:dev',
      network: 'parallel-orchestrator-dev-executors',
    });
    expect(await resolved(orchestrator.jobQueueArn)).toBeUndefined();
  });
});

describe('invalid arguments fail with a message naming the argument', () => {
  const cases: [
    string,
    import('../../packages/pulumi/src/index.js').ParallelOrchestratorArgs,
    RegExp,
  ][] = [
    [
      'an unknown platform',
      { platforms: ['linux/ppc64le' as never] },
      /invalid argument platforms: linux\/ppc64le/,
    ],
    ['no platform', { platforms: [] }, /invalid argument platforms/],
    [
      'a job platform the image lacks',
      { platforms: ['linux/amd64'], batch: { platform: 'linux/arm64', computeType: 'FARGATE' } },
      /invalid argument batch\.platform/,
    ],
    [
      'vCPUs above the maximum',
      { batch: { computeType: 'EC2', vcpus: 16, memoryMib: 8192, maxVcpus: 8 } },
      /invalid argument vcpus: 16 per job is above maxVcpus \(8\)/,
    ],
    [
      'a Fargate size that does not exist',
      { batch: { vcpus: 3 } },
      /invalid argument vcpus: 3 is not a Fargate vCPU size; choose from 0.25, 0.5, 1, 2, 4, 8, 16$/,
    ],
    // Fargate takes fixed memory steps per vCPU size, not any value in a range.
    [
      'Fargate memory between two steps',
      { batch: { vcpus: 2, memoryMib: 4500 } },
      /invalid argument memoryMib: 4500 MiB is not a Fargate memory size for 2 vCPUs; choose from 4096 to 16384 in steps of 1024$/,
    ],
    [
      'Fargate memory in 1 GiB steps at 8 vCPUs (which take 4 GiB steps)',
      { batch: { vcpus: 8, memoryMib: 17408, maxVcpus: 64 } },
      /invalid argument memoryMib: 17408 MiB is not a Fargate memory size for 8 vCPUs/,
    ],
    [
      'a quarter vCPU with 1.5 GiB',
      { batch: { vcpus: 0.25, memoryMib: 1536 } },
      /invalid argument memoryMib: .*choose from 512, 1024, 2048$/,
    ],
    [
      'a secret ARN that is no Secrets Manager ARN',
      { model: { provider: 'anthropic', apiKeySecretArn: 'team/anthropic-key' } },
      /invalid argument model\.apiKeySecretArn: team\/anthropic-key is not a Secrets Manager secret ARN/,
    ],
    [
      'an Anthropic API model name as the Bedrock model',
      { model: { provider: 'bedrock', modelId: 'claude-sonnet-5-5' } },
      /invalid argument model\.modelId: claude-sonnet-5-5 is not a Bedrock model id/,
    ],
    [
      'a wildcard among the extra Bedrock models',
      { model: { provider: 'bedrock', extraModelIds: ['anthropic.*'] } },
      /invalid argument model\.extraModelIds: anthropic\.\* is not a Bedrock model id/,
    ],
    [
      'memory that does not fit the Fargate size',
      { batch: { vcpus: 1, memoryMib: 16384 } },
      /invalid argument memoryMib/,
    ],
    [
      'Fargate Spot on arm64',
      { batch: { platform: 'linux/arm64' } },
      /invalid argument computeType: Fargate Spot does not run linux\/arm64/,
    ],
    [
      'an unknown compute type',
      { batch: { computeType: 'LAMBDA' as never } },
      /invalid argument computeType: unknown compute type LAMBDA/,
    ],
    [
      'the Anthropic provider without a key',
      { model: { provider: 'anthropic' } },
      /invalid argument model\.apiKey/,
    ],
    [
      'an empty subnet list',
      { batch: { network: { subnetIds: [], securityGroupIds: ['sg-1'] } } },
      /invalid argument network\.subnetIds: the list is empty/,
    ],
    [
      'an empty security group list',
      { batch: { network: { subnetIds: ['subnet-a'], securityGroupIds: [] } } },
      /invalid argument network\.securityGroupIds/,
    ],
    [
      'a retention CloudWatch does not offer',
      { logRetentionDays: 10 },
      /invalid argument logRetentionDays: 10/,
    ],
    [
      'a context that is not a checkout',
      { context: '/tmp' },
      /invalid argument context: \/tmp holds no docker\/Dockerfile/,
    ],
  ];
  test.each(cases)('%s', async (_, args, message) => {
    const { result } = await underMocks('dev', (opts) => {
      try {
        new component.ParallelOrchestrator('po', { context: ROOT, ...args }, opts);
        return undefined;
      } catch (error) {
        return error as Error;
      }
    });
    expect(result?.message).toMatch(message);
    expect(result?.message.split('\n')).toHaveLength(1);
  });
});
