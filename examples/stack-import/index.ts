/**
 * A team's own stack that imports the BatchOrchestrator component: executors run on Graviton
 * Fargate in the private subnets of a VPC the team already has, next to the team's other resources.
 */
import { fileURLToPath } from 'node:url';
import { BatchOrchestrator } from '@parallel-orchestrator/pulumi';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

const config = new pulumi.Config();
const vpcId = config.require('vpcId');

const privateSubnets = aws.ec2.getSubnetsOutput({
  filters: [
    { name: 'vpc-id', values: [vpcId] },
    { name: 'tag:tier', values: ['private'] },
  ],
});
const executors = new aws.ec2.SecurityGroup('agent-executors', {
  vpcId,
  description: 'agent executors: HTTPS out only',
  egress: [{ protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['0.0.0.0/0'] }],
});

const agents = new BatchOrchestrator('agents', {
  // The checkout this example lives in is the image's build context.
  context: fileURLToPath(new URL('../..', import.meta.url)),
  platforms: ['linux/arm64'],
  batch: {
    computeType: 'FARGATE',
    platform: 'linux/arm64',
    maxVcpus: 32,
    network: { subnetIds: privateSubnets.ids, securityGroupIds: [executors.id] },
  },
  model: { provider: 'bedrock', region: 'eu-west-1', modelId: 'eu.anthropic.claude-sonnet-5-5' },
  tags: { team: 'platform', 'cost-center': 'agents' },
});

export const runtimeConfig = agents.runtimeConfig;
export const submitterPolicyArn = agents.submitterPolicyArn;
