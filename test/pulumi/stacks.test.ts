import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as pulumi from '@pulumi/pulumi';
import { describe, expect, test } from 'vitest';
import YAML from 'yaml';
import { PREVIEW_LIMITS, stackSettings } from '../../infra/settings.js';
import { BackendConfigSchema, MODEL_DEFAULTS } from '../../packages/runtime/src/contracts/index.js';
import { type RecordingMocks, resolved, stackConfig, underMocks } from './mocks.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROGRAM = pathToFileURL(path.join(ROOT, 'infra/index.ts')).href;
let imports = 0;
const configOf = (stack: string) =>
  stackConfig(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), 'utf8'));

/** Runs infra/index.ts (what `pulumi up` runs) as `stack` with that stack's config. */
async function runStack(stack: string, config: Record<string, string>) {
  const { mocks, result } = await underMocks(
    stack,
    // A fresh module instance per stack: the program runs when it is imported.
    () => import(/* @vite-ignore */ `${PROGRAM}?stack=${stack}&run=${++imports}`),
    'parallel-orchestrator',
    config,
  );
  return { mocks, outputs: result as Record<string, pulumi.Output<unknown>> };
}

/** The same settings, on a component whose children's options the test can read. */
async function optionsOf(stack: string, config: Record<string, string>) {
  const { BatchOrchestrator } = await import('../../packages/pulumi/src/index.js');
  const { options } = await underMocks(
    stack,
    (opts) => {
      const { name, args } = stackSettings(new pulumi.Config(), stack);
      return new BatchOrchestrator(name, { context: ROOT, ...args }, opts);
    },
    'parallel-orchestrator',
    config,
  );
  return options;
}

const logRetention = (mocks: RecordingMocks) =>
  mocks.one('aws:cloudwatch/logGroup:LogGroup').inputs.retentionInDays;

describe('Pulumi.yaml', () => {
  test('runs infra/ on Node.js', () => {
    const project = YAML.parse(readFileSync(path.join(ROOT, 'Pulumi.yaml'), 'utf8'));
    expect(project).toMatchObject({
      name: 'parallel-orchestrator',
      runtime: { name: 'nodejs' },
      main: 'infra/',
    });
  });
});

describe('the stacks', () => {
  test('dev: Fargate Spot, Bedrock, short retention; exports everything the CLI and operators need', async () => {
    const { mocks, outputs } = await runStack('dev', configOf('dev'));
    const exported = Object.entries(outputs).filter(([, value]) => value !== undefined);
    expect(exported.map(([key]) => key).sort()).toEqual(
      [
        'bucketName',
        'imageRef',
        'jobDefinitionArn',
        'jobQueueArn',
        'logGroupName',
        'region',
        'repositoryUrl',
        'runtimeConfig',
        'submitterPolicyArn',
      ].sort(),
    );
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
    ).toMatchObject({
      type: 'FARGATE_SPOT',
      maxVcpus: 16,
    });
    expect(logRetention(mocks)).toBe(14);
    const config = BackendConfigSchema.parse(
      await resolved(outputs.runtimeConfig as pulumi.Output<unknown>),
    );
    expect(config).toMatchObject({
      backend: 'batch',
      maxVcpus: 16,
      model: { provider: 'bedrock' },
      bedrockModels: [MODEL_DEFAULTS.bedrockModel],
    });
    expect(mocks.one('aws:s3/bucket:Bucket').inputs.tags).toEqual({
      'parallel-orchestrator:stack': 'dev',
    });
  });

  test('prod: Graviton Spot in the given VPC, the Anthropic key from its secret, a protected bucket, logs kept a year', async () => {
    const config = configOf('prod');
    const { mocks } = await runStack('prod', config);
    expect(mocks.ofType('awsx:ec2:Vpc')).toHaveLength(0);
    expect(
      mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
    ).toMatchObject({
      type: 'SPOT',
      subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
      securityGroupIds: ['sg-0bbbbbbbbbbbbbbb1'],
    });
    expect(logRetention(mocks)).toBe(365);
    expect(mocks.one('aws:s3/bucket:Bucket').inputs.forceDestroy).toBe(false);
    expect(mocks.ofType('aws:secretsmanager/secret:Secret')).toHaveLength(0);
    const props = JSON.parse(
      mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.containerProperties,
    );
    expect(props.secrets).toEqual([
      {
        name: 'ANTHROPIC_API_KEY',
        valueFrom: config['parallel-orchestrator:anthropicApiKeySecretArn'],
      },
    ]);
    // Pulumi.prod.yaml names the secret without its -XXXXXX suffix: the execution role must
    // still match the secret's full ARN, or every task fails before it starts.
    const execution = mocks
      .ofType('aws:iam/rolePolicy:RolePolicy')
      .find((r) => r.name === 'prod-execution');
    expect(
      JSON.parse(execution?.inputs.policy).Statement.find(
        (s: { Sid: string }) => s.Sid === 'ReadModelKey',
      ).Resource,
    ).toEqual([`${config['parallel-orchestrator:anthropicApiKeySecretArn']}-??????`]);

    const options = await optionsOf('prod', config);
    expect(options.get('aws:s3/bucket:Bucket prod')?.protect).toBe(true);
  });

  test('local: a Docker stack with no AWS resource', async () => {
    const { mocks, outputs } = await runStack('local', configOf('local'));
    const exported = Object.entries(outputs).filter(([, value]) => value !== undefined);
    expect(exported.map(([key]) => key).sort()).toEqual([
      'imageRef',
      'networkName',
      'runtimeConfig',
    ]);
    expect(mocks.resources.filter((r) => r.type.startsWith('aws'))).toEqual([]);
    expect(
      BackendConfigSchema.parse(await resolved(outputs.runtimeConfig as pulumi.Output<unknown>)),
    ).toEqual({
      version: 1,
      backend: 'docker',
      image: 'parallel-orchestrator:local',
      network: 'parallel-orchestrator-local-executors',
    });
  });

  test('preview-<name>: names carry the stack, everything is destroyable, retention and vCPUs are small', async () => {
    const { mocks } = await runStack('preview-alice', { 'aws:region': 'us-east-1' });
    expect(mocks.one('aws:s3/bucket:Bucket').inputs.forceDestroy).toBe(true);
    expect(mocks.one('aws:ecr/repository:Repository').inputs.forceDelete).toBe(true);
    expect(logRetention(mocks)).toBe(PREVIEW_LIMITS.logRetentionDays);
    const [rule] = mocks.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration')
      .inputs.rules;
    expect(rule.expiration.days).toBe(PREVIEW_LIMITS.expireRunsAfterDays);
    // Named by Pulumi after its logical name, which carries the stack: preview-alice-<random>.
    const environment = mocks.one('aws:batch/computeEnvironment:ComputeEnvironment');
    expect(environment.inputs.name).toBeUndefined();
    expect(environment.inputs.computeResources).toMatchObject({
      maxVcpus: PREVIEW_LIMITS.maxVcpus,
    });
    const named = mocks.resources.filter((r) => !r.type.startsWith('parallel-orchestrator:'));
    for (const resource of named) expect(resource.name, resource.type).toMatch(/^preview-alice/);
    expect(mocks.one('aws:cloudwatch/logGroup:LogGroup').inputs.name).toBe(
      '/aws/batch/parallel-orchestrator-preview-alice',
    );
  });

  test('a preview stack refuses a vCPU ceiling above its limit, naming the key', async () => {
    const { result } = await underMocks(
      'preview-bob',
      () => {
        try {
          return stackSettings(new pulumi.Config(), 'preview-bob');
        } catch (error) {
          return error as Error;
        }
      },
      'parallel-orchestrator',
      { 'parallel-orchestrator:maxVcpus': '64' },
    );
    expect((result as Error).message).toMatch(/parallel-orchestrator:maxVcpus.*8/);
  });
});
