import { describe, expect, it } from 'vitest';
import { Iam, newPrincipal } from '../../packages/batch-sandbox/src/iam.js';
import { SandboxRecord } from '../../packages/batch-sandbox/src/record.js';
import { SecretsManager } from '../../packages/batch-sandbox/src/secrets-manager.js';
import type { SandboxStack } from '../../packages/batch-sandbox/src/stack.js';
import { stackUnderMocks } from '../support/stack-under-mocks.js';

/** The stack's execution role as the sandbox's IAM holds it, with the definition it serves. */
function asExecutionRole(stack: SandboxStack) {
  const properties = JSON.parse(stack.jobDefinition.containerProperties as string);
  const record = new SandboxRecord();
  const iam = new Iam('123456789012', record);
  const role = newPrincipal(
    properties.executionRoleArn,
    stack.rolePolicies[properties.executionRoleArn] ?? [],
    'ASIA',
  );
  return { properties, iam, role, record };
}

/**
 * The calls the Batch backend makes, each evaluated as IAM would against the policies the
 * component registers (read from the component under Pulumi's mocks, not copied): what the
 * sandbox enforces on every request. A call listed here that is denied stops runs on AWS.
 */
describe.each(['FARGATE_SPOT', 'EC2'] as const)(
  "the component's policies allow the Batch backend's calls (%s)",
  (computeType) => {
    it('as the submitter: preflight, submission, watching, logs and the run objects', async () => {
      const { stack, runtimeConfig } = await stackUnderMocks({ computeType });
      const account = runtimeConfig.jobQueueArn.split(':')[4] as string;
      const record = new SandboxRecord();
      const iam = new Iam(account, record);
      const submitter = newPrincipal(
        `arn:aws:iam::${account}:user/submitter`,
        [stack.submitterPolicy],
        'AKIA',
      );
      const bucket = `arn:aws:s3:::${runtimeConfig.bucketName}`;
      const job = `arn:aws:batch:${runtimeConfig.region}:${account}:job/00000000-0000-0000-0000-000000000000`;
      const stream = `arn:aws:logs:${runtimeConfig.region}:${account}:log-group:${runtimeConfig.logGroupName}:log-stream:task/default/0123`;
      const calls: [string, string][] = [
        // Preflight: DescribeJobQueues has no resource type; HeadBucket is s3:ListBucket with no
        // prefix. https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
        ['batch:DescribeJobQueues', '*'],
        ['s3:ListBucket', bucket],
        // https://docs.aws.amazon.com/batch/latest/userguide/iam-example-restrict-job-submission.html
        ['batch:SubmitJob', runtimeConfig.jobQueueArn],
        ['batch:SubmitJob', runtimeConfig.jobDefinitionArn],
        ['batch:TagResource', job],
        ['batch:DescribeJobs', '*'],
        ['batch:ListJobs', '*'],
        ['batch:TerminateJob', job],
        ['logs:GetLogEvents', stream],
        ['s3:PutObject', `${bucket}/runs/r/tasks/a/attempt-1/input.bundle`],
        ['s3:GetObject', `${bucket}/runs/r/tasks/a/attempt-1/result.json`],
        // --setup: the key's record read and written, its archive HEADed (HeadObject is
        // s3:GetObject) and presigned for the setup job's PUT and every job's GET.
        ['s3:GetObject', `${bucket}/runs/_environments/0123abcd.json`],
        ['s3:PutObject', `${bucket}/runs/_environments/0123abcd.json`],
        ['s3:GetObject', `${bucket}/runs/_environments/0123abcd.po-x-setup-0123abcd-1.tar.gz`],
        ['s3:PutObject', `${bucket}/runs/_environments/0123abcd.po-x-setup-0123abcd-1.tar.gz`],
      ];
      for (const [action, resource] of calls) await iam.allows(submitter, action, resource);
      expect(record.denied().map((d) => `${d.action} on ${d.resource}`)).toEqual([]);
    });

    it('as the execution role: the model key the job definition names', async () => {
      const { stack, apiKeySecretArn } = await stackUnderMocks({ computeType });
      const { properties, iam, role } = asExecutionRole(stack);
      expect(properties.secrets.map((s: { valueFrom: string }) => s.valueFrom)).toEqual([
        apiKeySecretArn,
      ]);
      expect(
        await iam.allows(role, 'secretsmanager:GetSecretValue', apiKeySecretArn as string),
      ).toBe(true);
    });

    it('as the execution role: a secret given by its ARN without the random suffix', async () => {
      // Secrets Manager finds a secret by its partial ARN, but IAM authorizes GetSecretValue on
      // the full one. https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html
      const full = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:team/anthropic-Xy12Ab';
      const partial = full.replace(/-Xy12Ab$/, '');
      const { stack } = await stackUnderMocks(
        { computeType },
        { provider: 'anthropic', apiKeySecretArn: partial },
      );
      const { properties, iam, role } = asExecutionRole(stack);
      const read = await new SecretsManager({ [full]: 'sk-value' }, iam).read(
        properties.secrets[0].valueFrom,
        role,
      );
      expect(read).toEqual({ value: 'sk-value' });
    });
  },
);
