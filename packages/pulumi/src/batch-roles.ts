import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import {
  assumedBy,
  ecsInstancePolicyArn,
  executionPolicy,
  jobPolicy,
  type Scope,
  type Statement,
} from './policies.js';

export interface BatchRolesArgs {
  scope: pulumi.Input<Scope>;
  repositoryArn: pulumi.Input<string>;
  logGroupArn: pulumi.Input<string>;
  /** The model key's secret, read by ECS when it starts a job (Anthropic provider). */
  apiKeySecretArn?: pulumi.Input<string>;
  /** What the job may invoke on Bedrock (Bedrock provider). */
  bedrockStatements?: pulumi.Input<Statement[]>;
  /** EC2 compute environments: an instance role for the ECS agent. */
  withInstanceRole?: boolean;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/**
 * The roles of the Batch backend: execution and job roles each with one inline policy scoped to
 * this stack's resources; the EC2 instance role with AWS's managed ECS agent policy.
 */
export class BatchRoles extends pulumi.ComponentResource {
  readonly executionRole: aws.iam.Role;
  readonly jobRole: aws.iam.Role;
  readonly instanceProfile?: aws.iam.InstanceProfile;
  /** What a compute environment must be created after (and so deleted before). */
  readonly policies: pulumi.Resource[] = [];

  constructor(name: string, args: BatchRolesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:BatchRoles', name, {}, opts);

    const role = (suffix: string, service: string): aws.iam.Role =>
      new aws.iam.Role(
        `${name}-${suffix}`,
        { assumeRolePolicy: JSON.stringify(assumedBy(service)), tags: args.tags },
        { parent: this },
      );
    const withPolicy = (suffix: string, service: string, policy: pulumi.Input<object>) => {
      const created = role(suffix, service);
      this.policies.push(
        new aws.iam.RolePolicy(
          `${name}-${suffix}`,
          { role: created.name, policy: pulumi.output(policy).apply((doc) => JSON.stringify(doc)) },
          { parent: this },
        ),
      );
      return created;
    };

    this.executionRole = withPolicy(
      'execution',
      'ecs-tasks.amazonaws.com',
      pulumi
        .all([args.repositoryArn, args.logGroupArn, args.apiKeySecretArn])
        .apply(([repositoryArn, logGroupArn, apiKeySecretArn]) =>
          executionPolicy({
            repositoryArn,
            logGroupArn,
            ...(apiKeySecretArn !== undefined && { apiKeySecretArn }),
          }),
        ),
    );
    // The job's own credentials: the Bedrock models, if any, and nothing of the bucket.
    this.jobRole = args.bedrockStatements
      ? withPolicy(
          'job',
          'ecs-tasks.amazonaws.com',
          pulumi.output(args.bedrockStatements).apply(jobPolicy),
        )
      : role('job', 'ecs-tasks.amazonaws.com');

    if (args.withInstanceRole) {
      // AWS keeps the agent's policy in step with the agent: a hand-scoped copy missed actions
      // it needs to join (ec2:DescribeTags, ecs:TagResource, ecs:ListTagsForResource, ...).
      const instanceRole = role('instance', 'ec2.amazonaws.com');
      this.policies.push(
        new aws.iam.RolePolicyAttachment(
          `${name}-instance`,
          {
            role: instanceRole.name,
            policyArn: pulumi
              .output(args.scope)
              .apply((scope) => ecsInstancePolicyArn(scope.partition)),
          },
          { parent: this },
        ),
      );
      this.instanceProfile = new aws.iam.InstanceProfile(
        name,
        { role: instanceRole.name, tags: args.tags },
        { parent: this },
      );
      this.policies.push(this.instanceProfile);
    }

    this.registerOutputs({
      executionRoleArn: this.executionRole.arn,
      jobRoleArn: this.jobRole.arn,
    });
  }
}
