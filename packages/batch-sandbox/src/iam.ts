import { randomBytes } from 'node:crypto';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { SandboxRecord } from './record.js';

/** An IAM policy document, as the Pulumi component writes them. */
export interface PolicyDocument {
  Version: string;
  Statement: unknown[];
}

/** Who makes a request: an IAM identity with its policies and its own placeholder key pair. */
export interface Principal {
  /** The identity's ARN (a role's ARN for the job and execution roles). */
  arn: string;
  accessKeyId: string;
  secretAccessKey: string;
  policies: PolicyDocument[];
}

/** One authorization decision, as the sandbox's record lists it. */
export interface Decision {
  at: number;
  principal: string;
  action: string;
  resource: string;
  allowed: boolean;
}

/** What a principal holds when the sandbox is given no stack: everything the sandbox serves. */
export const ALLOW_ALL: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'SandboxWithoutAStack',
      Effect: 'Allow',
      Action: ['batch:*', 's3:*', 'logs:*', 'secretsmanager:*', 'iam:SimulatePrincipalPolicy'],
      Resource: '*',
    },
  ],
};

/** A principal with a fresh key pair: the secret is known to the sandbox and whoever it hands it to. */
export function newPrincipal(
  arn: string,
  policies: PolicyDocument[],
  keyPrefix: string,
): Principal {
  return {
    arn,
    accessKeyId: `${keyPrefix}${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
    policies,
  };
}

/** The message IAM-enforcing services put in an AccessDenied answer. */
export const notAuthorized = (principal: string, action: string, resource: string) =>
  `User: ${principal} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`;

/**
 * Evaluates requests against the identity policies of the principal making them, with the
 * maintained evaluator @cloud-copilot/iam-simulate, and records every decision.
 */
export class Iam {
  private readonly byKey = new Map<string, Principal>();

  constructor(
    private readonly accountId: string,
    private readonly record: SandboxRecord,
  ) {}

  add(principal: Principal): Principal {
    this.byKey.set(principal.accessKeyId, principal);
    return principal;
  }

  principalOf(accessKeyId: string): Principal | undefined {
    return this.byKey.get(accessKeyId);
  }

  /** The identity with this ARN (IAM's PolicySourceArn). */
  principalByArn(arn: string): Principal | undefined {
    return [...this.byKey.values()].find((principal) => principal.arn === arn);
  }

  /** Whether `principal` may do `action` on `resource` (an ARN, or `*` for actions scoped to nothing). */
  async allows(
    principal: Principal,
    action: string,
    resource: string,
    contextVariables: Record<string, string> = {},
  ): Promise<boolean> {
    const result = await runSimulation(
      {
        identityPolicies: principal.policies.map((policy, i) => ({ name: `policy-${i}`, policy })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        request: {
          action,
          principal: principal.arn,
          resource: { resource, accountId: this.accountId },
          contextVariables,
        },
      },
      {},
    );
    if (result.resultType === 'error')
      throw new Error(
        `IAM simulation of ${action} on ${resource} failed: ${result.errors.message}`,
      );
    const allowed = result.overallResult === 'Allowed';
    this.record.decisions.push({
      at: Date.now(),
      principal: principal.arn,
      action,
      resource,
      allowed,
    });
    return allowed;
  }
}
