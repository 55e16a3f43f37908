import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  BatchBackendConfigSchema,
  DockerBackendConfigSchema,
} from '../../packages/runtime/src/contracts/index.js';
import { type RecordingMocks, resolved, underMocks } from './mocks.js';

type Component = typeof import('../../packages/pulumi/src/index.js');
let component: Component;
beforeAll(async () => {
  component = await import('../../packages/pulumi/src/index.js');
});

const ROOT = path.resolve(import.meta.dirname, '../..');
const BAD_OUTPUT = path.join(import.meta.dirname, 'fixtures/bad-output.ts');
const TOP_LEVEL = /^parallel-orchestrator:index:(Batch|LocalDocker|Parallel)Orchestrator$/;

/** What a program made, the top-level component left out: `type name`, sorted. */
const made = (mocks: RecordingMocks) =>
  mocks.resources
    .filter((r) => !TOP_LEVEL.test(r.type))
    .map((r) => `${r.type} ${r.name}`)
    .sort();

/**
 * What `ParallelOrchestrator` made for batch before the split, by type and name: a stack moving
 * to `BatchOrchestrator` (under an alias) or staying on the deprecated class must see the same.
 */
const BATCH_RESOURCES = [
  'aws:batch/computeEnvironment:ComputeEnvironment po',
  'aws:batch/jobDefinition:JobDefinition po',
  'aws:batch/jobQueue:JobQueue po',
  'aws:cloudwatch/logGroup:LogGroup po',
  'aws:ec2/securityGroup:SecurityGroup po',
  'aws:ecr/lifecyclePolicy:LifecyclePolicy po',
  'aws:ecr/repository:Repository po',
  'aws:iam/policy:Policy po-submitter',
  'aws:iam/role:Role po-execution',
  'aws:iam/role:Role po-job',
  'aws:iam/rolePolicy:RolePolicy po-execution',
  'aws:iam/rolePolicy:RolePolicy po-job',
  'aws:s3/bucket:Bucket po',
  'aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration po',
  'aws:s3/bucketOwnershipControls:BucketOwnershipControls po',
  'aws:s3/bucketPolicy:BucketPolicy po',
  'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock po',
  'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration po',
  'awsx:ec2:Vpc po',
  'docker-build:index:Image po-amd64',
  'docker-build:index:Image po-arm64',
  'docker-build:index:Index po',
  'parallel-orchestrator:index:BatchBackend po',
  'parallel-orchestrator:index:BatchRoles po',
  'parallel-orchestrator:index:OrchestratorImage po',
  'parallel-orchestrator:index:StateBucket po',
];

describe('BatchOrchestrator', () => {
  test('makes what ParallelOrchestrator made for batch, with outputs that are never undefined', async () => {
    const batch = await underMocks(
      'dev',
      (opts) => new component.BatchOrchestrator('po', { context: ROOT }, opts),
    );
    const legacy = await underMocks(
      'dev',
      (opts) => new component.ParallelOrchestrator('po', { context: ROOT }, opts),
    );
    expect(made(batch.mocks)).toEqual(BATCH_RESOURCES);
    expect(made(legacy.mocks)).toEqual(BATCH_RESOURCES);
    const orchestrator = batch.result;
    // Typed for what it is: a consumer handles no undefined (checked by the compiler here).
    const outputs: Record<string, pulumi.Output<string>> = {
      imageRef: orchestrator.imageRef,
      repositoryUrl: orchestrator.repositoryUrl,
      bucketName: orchestrator.bucketName,
      jobQueueArn: orchestrator.jobQueueArn,
      jobDefinitionArn: orchestrator.jobDefinitionArn,
      logGroupName: orchestrator.logGroupName,
      submitterPolicyArn: orchestrator.submitterPolicyArn,
      region: orchestrator.region,
    };
    for (const [name, output] of Object.entries(outputs))
      expect(await resolved(output), name).toEqual(expect.any(String));
    BatchBackendConfigSchema.parse(await resolved(orchestrator.runtimeConfig));
    // Its parts are its children.
    expect(batch.options.get('parallel-orchestrator:index:StateBucket po')?.parent).toBe(
      orchestrator,
    );
  });
});

describe('LocalDockerOrchestrator', () => {
  test('makes the local image and network only, and says so in its runtimeConfig', async () => {
    const { mocks, result } = await underMocks(
      'dev',
      (opts) => new component.LocalDockerOrchestrator('po', { context: ROOT }, opts),
    );
    expect(mocks.resources.filter((r) => r.type.startsWith('aws'))).toEqual([]);
    expect(made(mocks)).toEqual([
      'docker:index/image:Image po',
      'docker:index/network:Network po',
      'parallel-orchestrator:index:LocalDockerBackend po',
    ]);
    const network: pulumi.Output<string> = result.networkName;
    expect(await resolved(network)).toBe('parallel-orchestrator-dev-executors');
    expect(DockerBackendConfigSchema.parse(await resolved(result.runtimeConfig))).toEqual({
      version: 1,
      backend: 'docker',
      image: 'parallel-orchestrator:dev',
      network: 'parallel-orchestrator-dev-executors',
    });
  });
});

describe('the parts, used alone by a platform team', () => {
  test('a state bucket and a Batch backend running an image built elsewhere: no repository, no build', async () => {
    const image = `123456789012.dkr.ecr.us-east-1.amazonaws.com/team/po@sha256:${'a'.repeat(64)}`;
    const { mocks, result } = await underMocks('dev', (opts) => {
      const state = new component.StateBucket(
        'team',
        { expireRunsAfterDays: 7, forceDestroy: true },
        opts,
      );
      return new component.BatchBackend(
        'team',
        {
          namePrefix: 'team-agents',
          imageRef: image,
          repositoryArn: 'arn:aws:ecr:us-east-1:123456789012:repository/team/po',
          bucketName: state.bucketName,
          bucketArn: state.bucketArn,
          platform: 'linux/amd64',
          computeType: 'FARGATE',
          maxVcpus: 16,
          vcpus: 2,
          memoryMib: 4096,
          attemptDurationSeconds: 3600,
          retryAttempts: 3,
          runnableTimeoutSeconds: 1800,
          logRetentionDays: 7,
          model: { provider: 'bedrock' },
        },
        opts,
      );
    });
    expect(mocks.ofType('aws:ecr/repository:Repository')).toEqual([]);
    expect(mocks.resources.filter((r) => r.type.startsWith('docker'))).toEqual([]);
    const props = JSON.parse(
      mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.containerProperties,
    );
    expect(props.image).toBe(image);
    const bucket = mocks.one('aws:s3/bucket:Bucket').state.bucket;
    expect(props.environment).toContainEqual({ name: 'S3_BUCKET', value: bucket });
    expect(await resolved(result.jobQueueArn)).toEqual(expect.any(String));
  });
});

describe('arguments from other resources and stacks', () => {
  test('arguments given as outputs and promises reach every resource and runtimeConfig', async () => {
    const { mocks, result } = await underMocks(
      'dev',
      (opts) =>
        new component.BatchOrchestrator(
          'po',
          {
            context: ROOT,
            namePrefix: pulumi.output('team-agents'),
            imageTag: pulumi.output('v7'),
            keepImages: pulumi.output(20),
            expireRunsAfterDays: Promise.resolve(5),
            model: {
              provider: 'bedrock',
              region: pulumi.output('eu-west-1'),
              modelId: pulumi.output('eu.anthropic.claude-sonnet-5-5'),
            },
            logRetentionDays: Promise.resolve(14),
            batch: {
              computeType: 'EC2',
              maxVcpus: pulumi.output(32),
              vcpus: pulumi.output(4),
              memoryMib: Promise.resolve(8192),
              instanceTypes: pulumi.output(['c7i', 'm7i']),
              retryAttempts: pulumi.output(2),
            },
          },
          opts,
        ),
    );
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
    ).toMatchObject({ maxVcpus: 32, instanceTypes: ['c7i', 'm7i'] });
    const props = JSON.parse(
      mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.containerProperties,
    );
    expect(props.resourceRequirements).toEqual([
      { type: 'VCPU', value: '4' },
      { type: 'MEMORY', value: '8192' },
    ]);
    expect(mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.retryStrategy.attempts).toBe(
      2,
    );
    expect(mocks.one('aws:cloudwatch/logGroup:LogGroup').inputs.retentionInDays).toBe(14);
    expect(await resolved(result.runtimeConfig)).toMatchObject({
      maxVcpus: 32,
      vcpusPerJob: 4,
      model: { provider: 'bedrock', region: 'eu-west-1', model: 'eu.anthropic.claude-sonnet-5-5' },
    });
    expect(mocks.one('aws:cloudwatch/logGroup:LogGroup').inputs.name).toBe(
      '/aws/batch/team-agents',
    );
    expect(mocks.one('docker-build:index:Index').inputs.tag).toMatch(/:v7$/);
    const lifecycle = JSON.parse(
      mocks.one('aws:ecr/lifecyclePolicy:LifecyclePolicy').inputs.policy,
    );
    expect(lifecycle.rules[1].selection.countNumber).toBe(20);
    const [rule] = mocks.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration')
      .inputs.rules;
    expect(rule.expiration.days).toBe(5);
    expect(props.environment).toContainEqual({
      name: 'BEDROCK_MODEL',
      value: 'eu.anthropic.claude-sonnet-5-5',
    });
  });

  test('an output that resolves to a bad value fails the update with the same one line', () => {
    // In a process of its own: the failure is the program's, as `pulumi up` would report it.
    const result = spawnSync(process.execPath, ['--import', 'tsx', BAD_OUTPUT], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toContain(
      'invalid argument vcpus: 3 is not a Fargate vCPU size',
    );
  });
});

describe('a prebuilt image', () => {
  const ref = `123456789012.dkr.ecr.us-east-1.amazonaws.com/team/po@sha256:${'b'.repeat(64)}`;
  const repositoryArn = 'arn:aws:ecr:us-east-1:123456789012:repository/team/po';

  test('is run as given, pinned: nothing built, no repository, the pull scoped to its repository', async () => {
    // No context: the package alone, outside any checkout, can run it.
    const { mocks, result } = await underMocks(
      'dev',
      (opts) => new component.BatchOrchestrator('po', { image: { ref, repositoryArn } }, opts),
    );
    expect(mocks.ofType('aws:ecr/repository:Repository')).toEqual([]);
    expect(mocks.resources.filter((r) => r.type.startsWith('docker'))).toEqual([]);
    const props = JSON.parse(
      mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.containerProperties,
    );
    expect(props.image).toBe(ref);
    expect(await resolved(result.imageRef)).toBe(ref);
    expect(await resolved(result.repositoryUrl)).toBe(
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/team/po',
    );
    const execution = mocks
      .ofType('aws:iam/rolePolicy:RolePolicy')
      .find((r) => r.name === 'po-execution');
    expect(JSON.parse(execution?.inputs.policy).Statement).toContainEqual(
      expect.objectContaining({ Sid: 'PullImage', Resource: [repositoryArn] }),
    );
  });

  test.each([
    [
      { ref: 'team/po:latest', repositoryArn },
      {},
      /invalid argument image\.ref: team\/po:latest is not pinned by digest/,
    ],
    [
      { ref, repositoryArn },
      { context: ROOT, imageTag: 'v1' },
      /invalid argument image: a prebuilt image is not built: drop context, imageTag/,
    ],
  ])('refuses %j with %j in one line', async (image, extra, message) => {
    await expect(
      underMocks('dev', (opts) => new component.BatchOrchestrator('po', { image, ...extra }, opts)),
    ).rejects.toThrow(message);
  });
});
