import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type BatchSandbox,
  type PolicyDocument,
  startBatchSandbox,
} from '../../packages/batch-sandbox/src/index.js';
import type { DoctorCheck } from '../../packages/runtime/src/backends/backend.js';
import { BATCH_SUBMITTER_ACTIONS } from '../../packages/runtime/src/contracts/index.js';
import { runCli } from '../support/cli.js';
import { describeDocker, IMAGE } from '../support/docker.js';
import { stackUnderMocks } from '../support/stack-under-mocks.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-batch-doctor-');
const ALL_ACTIONS = Object.values(BATCH_SUBMITTER_ACTIONS).flat();
/** The lines doctor adds for a Batch stack, before one line per action not allowed. */
const STACK_LINES = ['AWS credentials', 'Job queue', 'Job definition', 'State bucket', 'Log group'];

/** The submitter policy without one action (a statement left with none is dropped). */
function without(policy: PolicyDocument, action: string): PolicyDocument {
  const statements = (policy.Statement as { Action: string[] }[])
    .map((s) => ({ ...s, Action: s.Action.filter((a) => a !== action) }))
    .filter((s) => s.Action.length > 0);
  return { ...policy, Statement: statements };
}

/** Lets the submitter simulate its own policies (IAM's SimulatePrincipalPolicy), nothing more. */
const selfSimulate = (account: string): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['iam:SimulatePrincipalPolicy'],
      Resource: [`arn:aws:iam::${account}:user/*-submitter`],
    },
  ],
});

/** `doctor --backend-config FILE --json` as a user runs it, with no model credentials. */
async function doctor(config: object): Promise<{ code: number | null; checks: DoctorCheck[] }> {
  const file = path.join(work, `backend-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  const result = await runCli(['doctor', '--backend-config', file, '--json'], work);
  expect(result.stderr).toBe('');
  return {
    code: result.code,
    checks: (JSON.parse(result.stdout) as { checks: DoctorCheck[] }).checks,
  };
}

const line = (checks: DoctorCheck[], name: string) => checks.find((c) => c.name === name);

/**
 * `doctor --backend-config` against the local Batch sandbox running the stack the Pulumi
 * component makes, IAM enforced with its policies (read from the component under Pulumi's mocks):
 * every call doctor makes is authorized as AWS would (Service Authorization Reference, under
 * https://docs.aws.amazon.com/service-authorization/latest/reference/: list_awsbatch.html,
 * list_amazons3.html, list_amazoncloudwatchlogs.html), and SubmitJob and TagResource, which have
 * no harmless form, through IAM's policy simulator
 * (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html).
 */
describeDocker('doctor for a Batch stack, on the local Batch sandbox', () => {
  let made: Awaited<ReturnType<typeof stackUnderMocks>>;
  let account: string;
  const sandboxes: BatchSandbox[] = [];

  /** A sandbox of the stack whose submitter holds `policies` only. */
  async function sandboxWith(policies: PolicyDocument[]): Promise<BatchSandbox> {
    const sandbox = await startBatchSandbox({
      image: IMAGE,
      stack: made.stack,
      iam: { submitter: policies, roles: made.stack.rolePolicies },
    });
    sandboxes.push(sandbox);
    return sandbox;
  }

  beforeAll(async () => {
    made = await stackUnderMocks({ computeType: 'EC2', maxVcpus: 4, vcpus: 1, memoryMib: 2048 });
    account = made.runtimeConfig.jobQueueArn.split(':')[4] as string;
  });
  afterAll(async () => {
    for (const sandbox of sandboxes) await sandbox.close();
  });

  it("with the stack's submitter policy (and leave to simulate itself): exit 0, every line ok", async () => {
    const sandbox = await sandboxWith([made.stack.submitterPolicy, selfSimulate(account)]);
    const { code, checks } = await doctor(sandbox.config);
    const batchLines = checks.slice(checks.findIndex((c) => c.name === 'AWS credentials'));
    expect(batchLines.map((c) => [c.name, c.status])).toEqual([
      ...STACK_LINES.map((name) => [name, 'ok']),
      ['Permissions', 'ok'],
    ]);
    expect(line(checks, 'AWS credentials')?.detail).toMatch(
      new RegExp(`^arn:aws:iam::${account}:user/.*-submitter, from the sandbox's keys`),
    );
    expect(line(checks, 'Permissions')?.detail).toMatch(
      `${ALL_ACTIONS.length} of the ${ALL_ACTIONS.length} actions a run does: ${ALL_ACTIONS.length - 2} by dry calls, 2 by IAM's simulation`,
    );
    // Simulation-only: no model credentials is a note, not a failure.
    expect(line(checks, 'Models')?.status).toBe('note');
    expect(code).toBe(0);
    // Every action was asked of IAM as the submitter, and none denied.
    expect(sandbox.record.denied()).toEqual([]);
    const asked = new Set(sandbox.record.decisions.map((d) => d.action));
    for (const action of ALL_ACTIONS) expect(asked, action).toContain(action);
  });

  it('with a policy missing s3:PutObject only: exit 1, and the line names s3:PutObject', async () => {
    const sandbox = await sandboxWith([without(made.stack.submitterPolicy, 's3:PutObject')]);
    const { code, checks } = await doctor(sandbox.config);
    expect(code).toBe(1);
    const missing = checks.filter((c) => c.status === 'missing');
    expect(missing.map((c) => c.name)).toEqual(['s3:PutObject']);
    expect(missing[0]?.detail).toMatch(/denied: .*not authorized to perform: s3:PutObject/);
    expect(missing[0]?.fix).toMatch(/submitterPolicyArn.*grant s3:PutObject/);
    // Not allowed to simulate itself: SubmitJob and TagResource are said to be unchecked.
    for (const action of ['batch:SubmitJob', 'batch:TagResource'])
      expect(line(checks, action)).toMatchObject({
        status: 'warn',
        detail: expect.stringMatching(/^not checked: .*AccessDenied/),
        fix: expect.stringMatching(/allow iam:SimulatePrincipalPolicy on your own principal/),
      });
  });

  it('with a policy missing batch:SubmitJob (and leave to simulate): the line names batch:SubmitJob', async () => {
    const sandbox = await sandboxWith([
      without(made.stack.submitterPolicy, 'batch:SubmitJob'),
      selfSimulate(account),
    ]);
    const { code, checks } = await doctor(sandbox.config);
    expect(code).toBe(1);
    const missing = checks.filter((c) => c.status === 'missing');
    expect(missing.map((c) => c.name)).toEqual(['batch:SubmitJob']);
    expect(missing[0]?.detail).toMatch(
      `denied: IAM's simulation: implicitDeny on ${made.runtimeConfig.jobQueueArn}, ${made.runtimeConfig.jobDefinitionArn}, arn:aws:batch:`,
    );
    expect(checks.filter((c) => c.status === 'warn').map((c) => c.name)).not.toContain(
      'batch:TagResource',
    );
  });

  it('a config older than the stack: the revision it names is INACTIVE, its log group gone', async () => {
    // The submitter policy scopes GetLogEvents to the stack's log group (any other is denied,
    // as on AWS, before AWS looks for it): here the caller may read any group.
    const anyLogs: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['logs:GetLogEvents'], Resource: ['*'] }],
    };
    const sandbox = await sandboxWith([made.stack.submitterPolicy, selfSimulate(account), anyLogs]);
    // A pulumi up that changed the definition (the provider retires the earlier revision), and
    // a config naming a log group the stack no longer has.
    sandbox.registerJobDefinition(made.stack.jobDefinition);
    const { code, checks } = await doctor({ ...sandbox.config, logGroupName: '/aws/batch/gone' });
    expect(code).toBe(1);
    expect(checks.filter((c) => c.status !== 'ok' && c.status !== 'note')).toEqual([
      {
        name: 'Job definition',
        status: 'missing',
        detail: expect.stringMatching(/:1 is INACTIVE: a later pulumi up replaced it$/),
        fix: 'export runtimeConfig again after pulumi up (pulumi stack output runtimeConfig --json)',
      },
      {
        name: 'Log group',
        status: 'missing',
        detail:
          '/aws/batch/gone: ResourceNotFoundException: The specified log group does not exist.',
        fix: 'pulumi up the stack, then export runtimeConfig again',
      },
    ]);
  });

  it('with keys the sandbox does not know: the credentials line is missing, and nothing else is tried', async () => {
    const sandbox = sandboxes[0] as BatchSandbox;
    const calls = sandbox.record.calls.length;
    const config = sandbox.config;
    const sandboxSection = config.sandbox as NonNullable<typeof config.sandbox>;
    const { code, checks } = await doctor({
      ...config,
      sandbox: {
        ...sandboxSection,
        credentials: { accessKeyId: 'AKIANOTASANDBOXKEY', secretAccessKey: 'bogus' },
      },
    });
    expect(code).toBe(1);
    expect(checks.at(-1)).toMatchObject({
      name: 'AWS credentials',
      status: 'missing',
      detail: expect.stringMatching(/refused the credentials .*InvalidClientTokenId/),
    });
    expect(sandbox.record.calls.slice(calls).map((c) => c.operation)).toEqual([
      'GetCallerIdentity',
    ]);
  });
});
