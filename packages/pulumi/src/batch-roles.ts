import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import {
  assumedBy,
  executionPolicy,
  instancePolicy,
  jobPolicy,
  type Scope,
  type Statement,
} from './policies.js';

export interface BatchRolesArgs {
  scope: pulumi.Input<Scope>;
  repositoryArn: pulumi.Input<string>;
  bucketArn: pulumi.Input<string>;
  logGroupArn: pulumi.Input<string>;
  /** The model key's secret, read by ECS when it starts a job (Anthropic provider). */
  apiKeySecretArn?: pulumi.Input<string>;
  /** What the job may invoke on Bedrock (Bedrock provider). */
  bedrockStatements?: pulumi.Input<Statement[]>;
  /** EC2 compute environments: an instance role limited to this compute environment's clusters. */
  instanceFor?: { computeEnvironmentName: pulumi.Input<string> };
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The roles of the Batch backend, each with one inline policy scoped to this stack's resources. */
export class BatchRoles extends pulumi.ComponentResource {
  readonly executionRole: aws.iam.Role;
  readonly jobRole: aws.iam.Role;
  readonly instanceProfile?: aws.iam.InstanceProfile;
  /** What a compute environment must be created after (and so deleted before). */
  readonly policies: pulumi.Resource[] = [];

  constructor(name: string, args: BatchRolesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:BatchRoles', name, {}, opts);

    const role = (suffix: string, service: string, policy: pulumi.Input<object>): aws.iam.Role => {
      const created = new aws.iam.Role(
        `${name}-${suffix}`,
        { assumeRolePolicy: JSON.stringify(assumedBy(service)), tags: args.tags },
        { parent: this },
      );
      this.policies.push(
        new aws.iam.RolePolicy(
          `${name}-${suffix}`,
          { role: created.name, policy: pulumi.output(policy).apply((doc) => JSON.stringify(doc)) },
          { parent: this },
        ),
      );
      return created;
    };

    this.executionRole = role(
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
    this.jobRole = role(
      'job',
      'ecs-tasks.amazonaws.com',
      pulumi
        .all([args.bucketArn, args.bedrockStatements])
        .apply(([bucketArn, bedrock]) => jobPolicy({ bucketArn, ...(bedrock && { bedrock }) })),
    );

    if (args.instanceFor) {
      const { computeEnvironmentName } = args.instanceFor;
      const instanceRole = role(
        'instance',
        'ec2.amazonaws.com',
        pulumi
          .all([args.scope, computeEnvironmentName])
          .apply(([scope, environment]) => instancePolicy(scope, environment)),
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
