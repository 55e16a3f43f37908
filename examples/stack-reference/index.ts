/**
 * A second stack that uses the orchestrator another stack runs: it reads that stack's
 * `runtimeConfig` through a StackReference and passes it on, here as an SSM parameter that CI
 * runners read (`aws ssm get-parameter --name ... --query Parameter.Value --output text >
 * backend.json`, then `parallel-orchestrator run --backend-config backend.json`), and gives its
 * CI role the platform stack's submitter policy.
 */
import type { BackendConfig } from '@parallel-orchestrator/pulumi';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

const config = new pulumi.Config();
const platform = new pulumi.StackReference(config.require('platformStack'));
// The runtime's --backend-config format is the contract between the two stacks.
const runtimeConfig = platform.requireOutput('runtimeConfig') as pulumi.Output<BackendConfig>;

const parameter = new aws.ssm.Parameter('agents-backend-config', {
  name: '/ci/parallel-orchestrator/backend-config',
  type: 'String',
  value: runtimeConfig.apply((backend) => JSON.stringify(backend)),
  description: 'parallel-orchestrator --backend-config, from the platform stack',
});

new aws.iam.RolePolicyAttachment('ci-submits-agents', {
  role: config.require('ciRoleName'),
  policyArn: platform.requireOutput('submitterPolicyArn') as pulumi.Output<string>,
});

export const parameterName = parameter.name;
export const backend = runtimeConfig.apply((c) => c.backend);
