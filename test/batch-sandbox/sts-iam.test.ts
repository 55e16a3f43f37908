import {
  IAMClient,
  NoSuchEntityException,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListeningServer, listenOn } from '../../packages/batch-sandbox/src/http.js';
import { Iam, newPrincipal, type Principal } from '../../packages/batch-sandbox/src/iam.js';
import { queryApiHandler } from '../../packages/batch-sandbox/src/iam-api.js';
import { SandboxRecord } from '../../packages/batch-sandbox/src/record.js';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const QUEUE = `arn:aws:batch:${REGION}:${ACCOUNT}:job-queue/q`;
const JOB = `arn:aws:batch:${REGION}:${ACCOUNT}:job/0a1b2c3d-4e5f-6789-abcd-ef0123456789`;
const USER = `arn:aws:iam::${ACCOUNT}:user/submitter`;

/**
 * The sandbox's STS GetCallerIdentity and IAM SimulatePrincipalPolicy, called through the real
 * @aws-sdk/client-sts and @aws-sdk/client-iam (the query protocol: a form POST, an XML answer),
 * and evaluated by the sandbox's IAM evaluator.
 * https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
 * https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
 * https://docs.aws.amazon.com/IAM/latest/APIReference/API_EvaluationResult.html (one result per
 * action, its decision the most restrictive over the resources, each in ResourceSpecificResults)
 */
describe("the sandbox's STS and IAM, through the AWS SDK", () => {
  const record = new SandboxRecord();
  const iam = new Iam(ACCOUNT, record);
  const submitter = iam.add(
    newPrincipal(
      USER,
      [
        {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'batch:SubmitJob', Resource: [QUEUE, JOB] },
            { Effect: 'Allow', Action: 'iam:SimulatePrincipalPolicy', Resource: USER },
          ],
        },
      ],
      'AKIA',
    ),
  );
  const role = iam.add(newPrincipal(`arn:aws:iam::${ACCOUNT}:role/job-role`, [], 'ASIA'));
  let server: ListeningServer;
  let url: string;
  beforeAll(async () => {
    server = await listenOn(
      ['127.0.0.1'],
      queryApiHandler(record, { region: REGION, accountId: ACCOUNT, iam }),
    );
    url = `http://127.0.0.1:${server.ports[0]}`;
  });
  afterAll(() => server.close());

  const clients = (who: Pick<Principal, 'accessKeyId' | 'secretAccessKey'>) => {
    const common = {
      region: REGION,
      endpoint: url,
      credentials: { accessKeyId: who.accessKeyId, secretAccessKey: who.secretAccessKey },
      maxAttempts: 1,
    };
    return { sts: new STSClient(common), iam: new IAMClient(common) };
  };

  it('GetCallerIdentity names the user, or the role as a session of it, and the account', async () => {
    const asUser = await clients(submitter).sts.send(new GetCallerIdentityCommand({}));
    expect(asUser).toMatchObject({
      Arn: USER,
      Account: ACCOUNT,
      UserId: expect.stringMatching(/^AIDA/),
    });
    const asRole = await clients(role).sts.send(new GetCallerIdentityCommand({}));
    expect(asRole.Arn).toBe(`arn:aws:sts::${ACCOUNT}:assumed-role/job-role/${role.accessKeyId}`);
    expect(asRole.UserId).toMatch(new RegExp(`^AROA[0-9A-F]+:${role.accessKeyId}$`));
  });

  it('refuses a key it does not know, and a signature made with the wrong secret', async () => {
    await expect(
      clients({ accessKeyId: 'AKIANOSUCHKEY', secretAccessKey: 'x' }).sts.send(
        new GetCallerIdentityCommand({}),
      ),
    ).rejects.toMatchObject({ name: 'InvalidClientTokenId', $metadata: { httpStatusCode: 403 } });
    await expect(
      clients({ accessKeyId: submitter.accessKeyId, secretAccessKey: 'wrong' }).sts.send(
        new GetCallerIdentityCommand({}),
      ),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
  });

  it('SimulatePrincipalPolicy: one result per action, the denied resource named', async () => {
    const answer = await clients(submitter).iam.send(
      new SimulatePrincipalPolicyCommand({
        PolicySourceArn: USER,
        ActionNames: ['batch:SubmitJob', 'batch:TagResource'],
        ResourceArns: [QUEUE, JOB],
      }),
    );
    expect(answer.EvaluationResults).toHaveLength(2);
    const [submit, tag] = answer.EvaluationResults ?? [];
    expect(submit).toMatchObject({ EvalActionName: 'batch:SubmitJob', EvalDecision: 'allowed' });
    expect(tag).toMatchObject({
      EvalActionName: 'batch:TagResource',
      EvalDecision: 'implicitDeny',
    });
    expect(
      tag?.ResourceSpecificResults?.map((r) => [r.EvalResourceName, r.EvalResourceDecision]),
    ).toEqual([
      [QUEUE, 'implicitDeny'],
      [JOB, 'implicitDeny'],
    ]);
  });

  it('authorizes the simulation itself as iam:SimulatePrincipalPolicy on the principal simulated', async () => {
    await expect(
      clients(role).iam.send(
        new SimulatePrincipalPolicyCommand({
          PolicySourceArn: USER,
          ActionNames: ['batch:SubmitJob'],
        }),
      ),
    ).rejects.toMatchObject({
      name: 'AccessDenied',
      message: expect.stringContaining('is not authorized to perform: iam:SimulatePrincipalPolicy'),
    });
    const unknown = `arn:aws:iam::${ACCOUNT}:user/nobody`;
    const allowAll = iam.add(
      newPrincipal(
        `arn:aws:iam::${ACCOUNT}:user/admin`,
        [
          {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'iam:*', Resource: '*' }],
          },
        ],
        'AKIA',
      ),
    );
    await expect(
      clients(allowAll).iam.send(
        new SimulatePrincipalPolicyCommand({
          PolicySourceArn: unknown,
          ActionNames: ['s3:GetObject'],
        }),
      ),
    ).rejects.toBeInstanceOf(NoSuchEntityException);
  });
});
