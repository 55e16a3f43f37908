import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as pulumi from '@pulumi/pulumi';
import { expect, test } from 'vitest';
import { BackendConfigSchema } from '../../packages/runtime/src/contracts/index.js';
import { resolved, stackConfig, underMocks } from './mocks.js';

const EXAMPLE = path.resolve(import.meta.dirname, '../../examples/stack-import');

test("a team's own stack imports the component and runs it on its VPC's private subnets", async () => {
  const config = stackConfig(readFileSync(path.join(EXAMPLE, 'Pulumi.staging.yaml'), 'utf8'));
  const { mocks, result } = await underMocks(
    'staging',
    () => import(/* @vite-ignore */ pathToFileURL(path.join(EXAMPLE, 'index.ts')).href),
    'team-agents',
    config,
  );
  const outputs = result as Record<string, pulumi.Output<unknown>>;

  const lookup = mocks.calls.find((c) => c.token === 'aws:ec2/getSubnets:getSubnets');
  expect(lookup?.inputs.filters).toContainEqual({
    name: 'vpc-id',
    values: ['vpc-0123456789abcdef0'],
  });
  expect(mocks.ofType('awsx:ec2:Vpc')).toHaveLength(0);
  const group = mocks.one('aws:ec2/securityGroup:SecurityGroup');
  expect(group.inputs.vpcId).toBe('vpc-0123456789abcdef0');
  expect(
    mocks.one('aws:batch/computeEnvironment:ComputeEnvironment').inputs.computeResources,
  ).toMatchObject({
    type: 'FARGATE',
    maxVcpus: 32,
    subnets: ['subnet-existing-a', 'subnet-existing-b', 'subnet-existing-c'],
    securityGroupIds: [`${group.name}-id`],
  });
  expect(mocks.ofType('docker-build:index:Image').map((b) => b.inputs.platforms)).toEqual([
    ['linux/arm64'],
  ]);
  expect(mocks.one('aws:batch/jobDefinition:JobDefinition').inputs.tags).toEqual({
    team: 'platform',
    'cost-center': 'agents',
  });

  const runtimeConfig = BackendConfigSchema.parse(
    await resolved(outputs.runtimeConfig as pulumi.Output<unknown>),
  );
  expect(runtimeConfig).toMatchObject({
    backend: 'batch',
    logGroupName: '/aws/batch/team-agents-staging',
    model: { provider: 'bedrock', region: 'eu-west-1', model: 'eu.anthropic.claude-sonnet-5-5' },
  });
  expect(await resolved(outputs.submitterPolicyArn as pulumi.Output<string>)).toMatch(
    /^arn:aws:iam::\d+:policy\//,
  );
});
