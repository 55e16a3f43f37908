import { randomUUID } from 'node:crypto';
import {
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  ListJobsCommand,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { type IAMClient, SimulatePrincipalPolicyCommand } from '@aws-sdk/client-iam';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import {
  BATCH_SUBMITTER_ACTIONS,
  type BatchSubmitterAction,
} from '../../contracts/submitter-actions.js';
import {
  AwsCredentialsError,
  type FoundCredentials,
  findAwsCredentials,
} from '../../util/aws-credentials.js';
import type { DoctorCheck } from '../backend.js';
import { awsClients, identityClients } from './aws.js';
import { awsErrorMessage, isAccessDenied } from './aws-basics.js';
import { queueProblem } from './preflight.js';
import type { BatchSettings } from './settings.js';

/** How doctor learnt whether the caller may do an action. */
type Permission =
  | { kind: 'allowed'; by: 'dry call' | 'simulation' }
  | { kind: 'denied'; detail: string }
  | { kind: 'unchecked'; detail: string; fix: string };

/**
 * What a call's answer says of the permission: an answer, or the error the dry call expects (a
 * job, key or upload that does not exist: AWS looked, so it authorized), is a yes; AccessDenied a
 * no; any other error leaves it unknown.
 */
function permissionOf(error: unknown, expected: readonly string[] = []): Permission {
  const name = (error as { name?: string } | undefined)?.name;
  if (error === undefined || (name && expected.includes(name)))
    return { kind: 'allowed', by: 'dry call' };
  if (isAccessDenied(error)) return { kind: 'denied', detail: awsErrorMessage(error) };
  return {
    kind: 'unchecked',
    detail: `not checked: ${awsErrorMessage(error)}`,
    fix: 'see the lines above; doctor again once they are ok',
  };
}

/** A describe call the check reads, its permission recorded as a dry call's: the answer or the error. */
async function described<T>(
  permissions: Map<BatchSubmitterAction, Permission>,
  action: BatchSubmitterAction,
  call: Promise<T>,
): Promise<T | Error> {
  const answer = await call.catch((error: unknown) => error as Error);
  permissions.set(action, permissionOf(answer instanceof Error ? answer : undefined));
  return answer;
}

/** The line of a resource whose describe call failed. */
function unanswered(name: string, resource: string, error: Error): DoctorCheck {
  return {
    name,
    status: 'missing',
    detail: `${resource}: ${awsErrorMessage(error)}`,
    fix: isAccessDenied(error) ? FIX.policy : 'check the region and the network',
  };
}

/** The call's error, or undefined when it succeeded. */
const outcome = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (error: unknown) => error ?? new Error('failed'),
  );

/** `arn:aws:sts::1:assumed-role/R/session` → `arn:aws:iam::1:role/R`: what IAM simulates. */
const principalArn = (callerArn: string) =>
  callerArn.replace(/^arn:([^:]+):sts::(\d+):assumed-role\/([^/]+)\/.*$/, 'arn:$1:iam::$2:role/$3');

const FIX = {
  policy:
    "attach the stack's submitter policy (pulumi stack output submitterPolicyArn) to your user or role",
  simulate:
    'allow iam:SimulatePrincipalPolicy on your own principal to have these checked (docs/operations.md, Troubleshooting)',
  pulumiUp: 'pulumi up the stack, then export runtimeConfig again',
} as const;

/**
 * Everything a run on this Batch stack needs, each checked without a run: the credentials and
 * whose they are, the queue, the job definition revision, the bucket under the runs prefix, the
 * log group, and each action of BATCH_SUBMITTER_ACTIONS. Where AWS has a harmless form of an
 * action, doctor makes it (a DescribeJobs of no job, a TerminateJob of a job that does not exist,
 * a 0-byte object under the runs prefix); SubmitJob and TagResource have none, so IAM's policy
 * simulator is asked, when the caller may ask it.
 */
export async function batchDoctor(
  settings: BatchSettings,
  env: NodeJS.ProcessEnv,
): Promise<DoctorCheck[]> {
  let found: FoundCredentials | undefined;
  if (!settings.sandbox) {
    try {
      found = await findAwsCredentials(env);
    } catch (error) {
      return [
        error instanceof AwsCredentialsError
          ? { name: 'AWS credentials', status: 'missing', detail: error.problem, fix: error.fix }
          : { name: 'AWS credentials', status: 'missing', detail: (error as Error).message },
      ];
    }
  }
  const source = found?.source ?? "the sandbox's keys (the backend config)";
  // Never toward AWS with a sandbox's keys: a sandbox too old to serve STS is said so.
  if (settings.sandbox && !settings.sandbox.sts)
    return [
      {
        name: 'AWS credentials',
        status: 'missing',
        detail: 'the backend config names a sandbox without STS and IAM endpoints',
        fix: 'restart the sandbox (pnpm sandbox:batch) and use the config it writes',
      },
    ];
  const checks: DoctorCheck[] = [];
  const permissions = new Map<BatchSubmitterAction, Permission>();
  const { sts, iam } = await identityClients(settings, found?.credentials);
  const clients = awsClients(settings, 1, found?.credentials);
  try {
    // 1. Whose credentials: STS answers GetCallerIdentity for any valid key.
    // https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    let callerArn: string;
    try {
      const identity = await sts.send(new GetCallerIdentityCommand({}));
      callerArn = identity.Arn ?? '';
      const stackAccount = /^arn:[^:]+:batch:[^:]*:(\d+):/.exec(settings.jobQueue)?.[1];
      if (stackAccount && identity.Account !== stackAccount) {
        checks.push({
          name: 'AWS credentials',
          status: 'missing',
          detail: `${callerArn} from ${source}: the credentials are for account ${identity.Account}, the stack is in ${stackAccount}`,
          fix: `sign in to account ${stackAccount} (another AWS_PROFILE)`,
        });
        return checks;
      }
      checks.push({
        name: 'AWS credentials',
        status: 'ok',
        detail: `${callerArn}, from ${source}`,
      });
    } catch (error) {
      checks.push({
        name: 'AWS credentials',
        status: 'missing',
        detail: `AWS refused the credentials from ${source}: ${awsErrorMessage(error)}`,
        fix: settings.sandbox
          ? 'export the running sandbox config again (pnpm sandbox:batch)'
          : 'sign in again (aws sso login), or give valid keys',
      });
      return checks;
    }

    // 2. The queue takes jobs.
    const queues = await described(
      permissions,
      'batch:DescribeJobQueues',
      clients.batch.send(new DescribeJobQueuesCommand({ jobQueues: [settings.jobQueue] })),
    );
    if (queues instanceof Error) checks.push(unanswered('Job queue', settings.jobQueue, queues));
    else {
      const problem = queueProblem(settings, queues.jobQueues?.[0]);
      checks.push(
        problem
          ? { name: 'Job queue', status: 'missing', detail: problem, fix: FIX.pulumiUp }
          : {
              name: 'Job queue',
              status: 'ok',
              detail: `${queues.jobQueues?.[0]?.jobQueueName} is ENABLED and VALID`,
            },
      );
    }

    // 3. The definition revision the config names is ACTIVE.
    const byRevision = /:\d+$/.test(settings.jobDefinition);
    const definitions = await described(
      permissions,
      'batch:DescribeJobDefinitions',
      clients.batch.send(
        new DescribeJobDefinitionsCommand(
          byRevision
            ? { jobDefinitions: [settings.jobDefinition] }
            : {
                // A name or an ARN without revision: jobs go to its latest ACTIVE one.
                jobDefinitionName: settings.jobDefinition.replace(/^arn:.*:job-definition\//, ''),
                status: 'ACTIVE',
              },
        ),
      ),
    );
    if (definitions instanceof Error)
      checks.push(unanswered('Job definition', settings.jobDefinition, definitions));
    else {
      const definition = definitions.jobDefinitions?.[0];
      checks.push(
        definition?.status === 'ACTIVE'
          ? {
              name: 'Job definition',
              status: 'ok',
              detail: `${definition.jobDefinitionName}:${definition.revision} is ACTIVE`,
            }
          : {
              name: 'Job definition',
              status: 'missing',
              detail: definition
                ? `${definition.jobDefinitionName}:${definition.revision} is ${definition.status}: a later pulumi up replaced it`
                : `${settings.jobDefinition} not found in ${settings.region}`,
              fix: 'export runtimeConfig again after pulumi up (pulumi stack output runtimeConfig --json)',
            },
      );
    }

    // 4. The bucket, and listing under the runs prefix: both s3:ListBucket.
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
    const head = await outcome(clients.s3.send(new HeadBucketCommand({ Bucket: settings.bucket })));
    const list =
      head ??
      (await outcome(
        clients.s3.send(
          new ListObjectsV2Command({
            Bucket: settings.bucket,
            Prefix: settings.runsPrefix,
            MaxKeys: 1,
          }),
        ),
      ));
    permissions.set('s3:ListBucket', permissionOf(list));
    checks.push(
      list === undefined
        ? {
            name: 'State bucket',
            status: 'ok',
            detail: `s3://${settings.bucket}/${settings.runsPrefix} can be listed`,
          }
        : {
            name: 'State bucket',
            status: 'missing',
            detail: `s3://${settings.bucket}/${settings.runsPrefix}: ${awsErrorMessage(list)}`,
            fix: isAccessDenied(list) ? FIX.policy : FIX.pulumiUp,
          },
    );

    // 5. The log group: reading a stream that does not exist says whether the group does.
    const logs = await outcome(
      clients.logs.send(
        new GetLogEventsCommand({
          logGroupName: settings.logGroup,
          logStreamName: 'doctor/none',
          limit: 1,
        }),
      ),
    );
    permissions.set('logs:GetLogEvents', permissionOf(logs, ['ResourceNotFoundException']));
    const groupMissing = logs !== undefined && /log group does not exist/i.test(String(logs));
    const streamMissing = logs !== undefined && /log stream does not exist/i.test(String(logs));
    checks.push(
      logs === undefined || streamMissing
        ? { name: 'Log group', status: 'ok', detail: `${settings.logGroup} exists` }
        : {
            name: 'Log group',
            status: 'missing',
            detail: `${settings.logGroup}: ${awsErrorMessage(logs)}`,
            fix: groupMissing ? FIX.pulumiUp : isAccessDenied(logs) ? FIX.policy : FIX.pulumiUp,
          },
    );

    // 6. The rest of what a run does, as dry calls where AWS has a harmless form.
    const noJob = '00000000-0000-0000-0000-000000000000';
    permissions.set(
      'batch:DescribeJobs',
      permissionOf(await outcome(clients.batch.send(new DescribeJobsCommand({ jobs: [noJob] })))),
    );
    permissions.set(
      'batch:ListJobs',
      permissionOf(
        await outcome(
          clients.batch.send(new ListJobsCommand({ jobQueue: settings.jobQueue, maxResults: 1 })),
        ),
      ),
    );
    // A job that does not exist: answered after authorization (docs/operations.md says what
    // only a real account confirms).
    permissions.set(
      'batch:TerminateJob',
      permissionOf(
        await outcome(
          clients.batch.send(
            new TerminateJobCommand({
              jobId: randomUUID(),
              reason: 'parallel-orchestrator doctor: a job that does not exist',
            }),
          ),
        ),
        ['ClientException'],
      ),
    );
    const probeKey = `${settings.runsPrefix}.doctor/${randomUUID()}`;
    const put = await outcome(
      clients.s3.send(
        new PutObjectCommand({ Bucket: settings.bucket, Key: probeKey, Body: new Uint8Array() }),
      ),
    );
    permissions.set('s3:PutObject', permissionOf(put));
    // Without the object, GetObject answers NoSuchKey to a caller allowed to read it.
    const get = await outcome(
      clients.s3
        .send(new GetObjectCommand({ Bucket: settings.bucket, Key: probeKey }))
        .then((answer) => answer.Body?.transformToByteArray()),
    );
    permissions.set('s3:GetObject', permissionOf(get, ['NoSuchKey']));
    const upload = await clients.s3
      .send(new CreateMultipartUploadCommand({ Bucket: settings.bucket, Key: `${probeKey}.part` }))
      .catch(() => undefined);
    // Without an upload (PutObject denied), one that does not exist: NoSuchUpload if allowed.
    const abort = await outcome(
      clients.s3.send(
        new AbortMultipartUploadCommand({
          Bucket: settings.bucket,
          Key: `${probeKey}.part`,
          UploadId: upload?.UploadId ?? randomUUID(),
        }),
      ),
    );
    permissions.set('s3:AbortMultipartUpload', permissionOf(abort, ['NoSuchUpload']));

    // SubmitJob and TagResource have no harmless form: IAM's policy simulator, for the caller.
    // https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
    const [, partition, region, account] =
      /^arn:([^:]+):batch:([^:]+):(\d+):/.exec(settings.jobQueue) ?? [];
    const job = `arn:${partition ?? 'aws'}:batch:${region ?? settings.region}:${account ?? ''}:job/${randomUUID()}`;
    const simulated: [BatchSubmitterAction, string[]][] = [
      ['batch:SubmitJob', [settings.jobQueue, settings.jobDefinition, job]],
      ['batch:TagResource', [job]],
    ];
    for (const [action, resources] of simulated)
      permissions.set(action, await simulate(iam, principalArn(callerArn), action, resources));
  } finally {
    for (const client of Object.values(clients)) client.destroy();
    sts.destroy();
    iam.destroy();
  }
  return [...checks, ...permissionLines(permissions, settings)];
}

/** One action on its resources, as IAM simulates the caller's policies. */
async function simulate(
  iam: IAMClient,
  principal: string,
  action: string,
  resources: string[],
): Promise<Permission> {
  try {
    const answer = await iam.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: principal,
        ActionNames: [action],
        ResourceArns: resources,
      }),
    );
    const result = answer.EvaluationResults?.[0];
    if (result?.EvalDecision === 'allowed') return { kind: 'allowed', by: 'simulation' };
    const refused = (result?.ResourceSpecificResults ?? [])
      .filter((r) => r.EvalResourceDecision !== 'allowed')
      .map((r) => r.EvalResourceName);
    return {
      kind: 'denied',
      detail: `IAM's simulation: ${result?.EvalDecision ?? 'no result'} on ${(refused.length > 0 ? refused : resources).join(', ')}`,
    };
  } catch (error) {
    return {
      kind: 'unchecked',
      detail: `not checked: IAM's simulation of ${principal} failed (${awsErrorMessage(error)})`,
      fix: isAccessDenied(error)
        ? FIX.simulate
        : `${FIX.simulate}; a role with a path needs its full ARN, which STS does not give`,
    };
  }
}

/** One ok line for what is allowed, and one line for each action denied or not checked. */
function permissionLines(
  permissions: Map<BatchSubmitterAction, Permission>,
  settings: BatchSettings,
): DoctorCheck[] {
  const all = Object.values(BATCH_SUBMITTER_ACTIONS).flat() as BatchSubmitterAction[];
  const allowed = all.filter((a) => permissions.get(a)?.kind === 'allowed');
  const byCall = allowed.filter((a) => {
    const p = permissions.get(a);
    return p?.kind === 'allowed' && p.by === 'dry call';
  });
  const lines: DoctorCheck[] = [];
  if (allowed.length > 0)
    lines.push({
      name: 'Permissions',
      status: 'ok',
      detail: `${allowed.length} of the ${all.length} actions a run does: ${byCall.length} by dry calls, ${allowed.length - byCall.length} by IAM's simulation (left a 0-byte s3://${settings.bucket}/${settings.runsPrefix}.doctor/ object, which expires with the runs)`,
    });
  for (const action of all) {
    const permission = permissions.get(action);
    if (!permission || permission.kind === 'allowed') continue;
    lines.push(
      permission.kind === 'denied'
        ? {
            name: action,
            status: 'missing',
            detail: `denied: ${permission.detail}`,
            fix: `${FIX.policy}, or grant ${action}`,
          }
        : { name: action, status: 'warn', detail: permission.detail, fix: permission.fix },
    );
  }
  return lines;
}
