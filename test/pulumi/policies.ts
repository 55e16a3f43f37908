import { expect } from 'vitest';
import {
  ACTIONS_WITHOUT_RESOURCE_SCOPE,
  type PolicyDocument,
} from '../../packages/pulumi/src/policies.js';
import type { Registered } from './mocks.js';

export type { PolicyDocument };

/** Batch job ARNs do not carry the queue: terminating this stack's jobs needs all jobs' ARNs. */
const TYPE_WIDE_RESOURCES = ['batch:job/*'];

export function policyOf(registered: Registered): PolicyDocument {
  return JSON.parse(registered.inputs.policy) as PolicyDocument;
}

/**
 * No action with a wildcard; a `*` resource only for actions AWS authorises on nothing narrower;
 * every other resource an ARN naming a resource, not a whole service.
 */
export function assertLeastPrivilege(document: PolicyDocument, where: string): void {
  expect(document.Statement.length, where).toBeGreaterThan(0);
  for (const statement of document.Statement) {
    const at = `${where} ${statement.Sid}`;
    expect(statement.Effect, at).toBe('Allow');
    for (const action of statement.Action) {
      expect(action, at).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
    }
    for (const resource of statement.Resource) {
      if (resource === '*') {
        for (const action of statement.Action) {
          expect(
            ACTIONS_WITHOUT_RESOURCE_SCOPE as readonly string[],
            `${at}: ${action} on *`,
          ).toContain(action);
        }
        continue;
      }
      const [arn, partition, service, , , ...rest] = resource.split(':');
      expect([arn, partition, service], at).toEqual([
        'arn',
        'aws',
        expect.stringMatching(/^[a-z0-9-]+$/),
      ]);
      // Not the whole service (`*`, empty), nor every resource of a type (`job/*`) unless listed.
      const name = rest.join(':');
      expect(name, `${at}: ${resource} names no resource`).not.toMatch(/^\*?$/);
      if (/^[a-z-]+[/:]\*$/.test(name)) {
        expect(
          TYPE_WIDE_RESOURCES,
          `${at}: ${resource} is every ${service} resource of its type`,
        ).toContain(`${service}:${name}`);
      }
    }
  }
}

/** An IAM pattern (`*` any run of characters, `?` one) as a regular expression. */
function pattern(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replaceAll('*', '.*').replaceAll('?', '.')}$`);
}

/**
 * Whether an Allow statement without a condition grants `action` on `resource`: what the host's
 * calls need, whose requests carry no condition context (HeadBucket carries no s3:prefix). The
 * sandbox evaluates full requests with an IAM policy evaluator; this reads one document.
 */
export function allows(document: PolicyDocument, action: string, resource: string): boolean {
  return document.Statement.some(
    (statement) =>
      statement.Effect === 'Allow' &&
      statement.Condition === undefined &&
      statement.Action.some((granted) =>
        pattern(granted.toLowerCase()).test(action.toLowerCase()),
      ) &&
      statement.Resource.some((granted) => pattern(granted).test(resource)),
  );
}
