import type { PolicyDocument } from './iam.js';
import { COMPUTE_TYPES, type JobDefinitionInput, type JobQueueInput } from './registry.js';

/** A resource as Pulumi's engine registered it: its type token, inputs and resulting state. */
export interface Registration {
  type: string;
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each provider's shape, read field by field
  inputs: Record<string, any>;
  // biome-ignore lint/suspicious/noExplicitAny: each provider's shape, read field by field
  state: Record<string, any>;
}

/** What a stack's outputs name: where to start reading its resources. */
export interface StackOutputs {
  region: string;
  bucketName: string;
  jobQueueArn: string;
  jobDefinitionArn: string;
  submitterPolicyArn: string;
}

/**
 * What the sandbox runs of a stack the Pulumi component made: its queue, compute environment
 * and job definition, and the identity policies of the submitter and of every role they name.
 */
export interface SandboxStack {
  region: string;
  bucketName: string;
  submitterPolicy: PolicyDocument;
  /** Role ARN → its policies (the job role's and the execution role's among them). */
  rolePolicies: Record<string, PolicyDocument[]>;
  jobDefinition: JobDefinitionInput;
  /** The queue, with its compute environment's type and maxVcpus. */
  jobQueue: JobQueueInput & Required<Pick<JobQueueInput, 'maxVcpus' | 'computeType'>>;
}

const TYPES = {
  policy: 'aws:iam/policy:Policy',
  role: 'aws:iam/role:Role',
  rolePolicy: 'aws:iam/rolePolicy:RolePolicy',
  attachment: 'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
  jobDefinition: 'aws:batch/jobDefinition:JobDefinition',
  jobQueue: 'aws:batch/jobQueue:JobQueue',
  computeEnvironment: 'aws:batch/computeEnvironment:ComputeEnvironment',
} as const;

const document = (policy: unknown): PolicyDocument =>
  (typeof policy === 'string' ? JSON.parse(policy) : policy) as PolicyDocument;

/**
 * Reads a stack from its registered resources, by Pulumi type and by the ARNs its outputs name,
 * so that whatever the component registers (policies, names, definition) is what the sandbox
 * enforces and runs.
 */
export function sandboxStackFrom(
  resources: readonly Registration[],
  outputs: StackOutputs,
): SandboxStack {
  const byArn = (type: string, arn: string, what: string) => {
    const found = resources.find((r) => r.type === type && r.state.arn === arn);
    if (!found) throw new Error(`the stack registered no ${what} ${arn}`);
    return found;
  };
  const submitter = byArn(TYPES.policy, outputs.submitterPolicyArn, 'submitter policy');
  const definition = byArn(TYPES.jobDefinition, outputs.jobDefinitionArn, 'job definition');
  const queue = byArn(TYPES.jobQueue, outputs.jobQueueArn, 'job queue');
  const order = [...(queue.inputs.computeEnvironmentOrders ?? [])].sort(
    (a: { order: number }, b: { order: number }) => a.order - b.order,
  )[0];
  const environment = byArn(
    TYPES.computeEnvironment,
    order?.computeEnvironment,
    'compute environment',
  );
  const computeType = environment.inputs.computeResources?.type;
  if (!(COMPUTE_TYPES as readonly string[]).includes(computeType))
    throw new Error(`compute environment type ${computeType} is not one the sandbox runs`);

  const { containerProperties, retryStrategy, timeout, platformCapabilities, propagateTags } =
    definition.inputs;
  const properties = document(containerProperties) as unknown as Record<string, unknown>;
  const rolesJobsUse = [properties.jobRoleArn, properties.executionRoleArn];
  const rolePolicies: Record<string, PolicyDocument[]> = {};
  for (const role of resources.filter((r) => r.type === TYPES.role)) {
    const attached = resources.filter(
      (r) => r.type === TYPES.attachment && r.inputs.role === role.state.name,
    );
    // Managed policies are AWS's documents, not the stack's: a role jobs use must not need one.
    if (attached.length > 0 && rolesJobsUse.includes(role.state.arn))
      throw new Error(
        `role ${role.state.arn} has managed policies attached (${attached.map((a) => a.inputs.policyArn).join(', ')}), which the sandbox cannot read`,
      );
    rolePolicies[role.state.arn] = [
      ...(role.inputs.inlinePolicies ?? []).map((p: { policy: unknown }) => document(p.policy)),
      ...resources
        .filter((r) => r.type === TYPES.rolePolicy && r.inputs.role === role.state.name)
        .map((r) => document(r.inputs.policy)),
    ];
  }

  return {
    region: outputs.region,
    bucketName: outputs.bucketName,
    submitterPolicy: document(submitter.inputs.policy),
    rolePolicies,
    jobDefinition: {
      arn: outputs.jobDefinitionArn,
      containerProperties,
      ...(retryStrategy && { retryStrategy }),
      ...(timeout && { timeout }),
      ...(platformCapabilities && { platformCapabilities }),
      ...(propagateTags !== undefined && { propagateTags }),
    },
    jobQueue: {
      arn: outputs.jobQueueArn,
      maxVcpus: environment.inputs.computeResources.maxVcpus,
      computeType,
      ...(queue.inputs.jobStateTimeLimitActions && {
        jobStateTimeLimitActions: queue.inputs.jobStateTimeLimitActions,
      }),
    },
  };
}
