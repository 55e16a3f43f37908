import {
  BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobsCommand,
  type JobDetail,
  SubmitJobCommand,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BatchSandbox, startBatchSandbox } from '../../packages/batch-sandbox/src/index.js';
import { describeDocker, IMAGE } from '../support/docker.js';
import { type StackUnderMocks, stackUnderMocks } from '../support/stack-under-mocks.js';

/**
 * The sandbox running the stack the Pulumi component makes (under Pulumi's mocks), on a
 * Fargate-like and an EC2-like compute environment, refusing what AWS refuses.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const otherQueue = (made: StackUnderMocks) =>
  made.runtimeConfig.jobQueueArn.replace(/\/[^/]+$/, '/someone-elses');
const OTHER_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:not-the-stacks-Qw12Er';

interface Running {
  made: StackUnderMocks;
  sandbox: BatchSandbox;
  batch: BatchClient;
  logs: CloudWatchLogsClient;
  s3: S3Client;
}

async function start(computeType: 'FARGATE' | 'EC2'): Promise<Running> {
  const made = await stackUnderMocks({ computeType, maxVcpus: 8, vcpus: 1, memoryMib: 2048 });
  const sandbox = await startBatchSandbox({
    image: IMAGE,
    transitionMs: 50,
    stopTimeoutSeconds: 1,
    stack: made.stack,
    // Beside the stack's queue, one its submitter policy does not name.
    jobQueues: [made.stack.jobQueue, { ...made.stack.jobQueue, arn: otherQueue(made) }],
    secrets: { [made.apiKeySecretArn as string]: 'sk-stack', [OTHER_SECRET]: 'sk-other' },
  });
  const { sandbox: endpoints, region } = sandbox.config;
  const common = { region, credentials: endpoints?.credentials, maxAttempts: 1 };
  return {
    made,
    sandbox,
    batch: new BatchClient({ ...common, endpoint: endpoints?.batch }),
    logs: new CloudWatchLogsClient({ ...common, endpoint: endpoints?.logs }),
    s3: new S3Client({ ...common, endpoint: endpoints?.s3 }),
  };
}

/** Submits a command in a job of the stack's definition and waits for its end and its log. */
async function run(
  { sandbox, batch, logs }: Running,
  name: string,
  command: string[],
  jobDefinition = sandbox.config.jobDefinitionArn,
): Promise<{ job: JobDetail; lines: string[] }> {
  const { jobId } = await batch.send(
    new SubmitJobCommand({
      jobName: name,
      jobQueue: sandbox.config.jobQueueArn,
      jobDefinition,
      containerOverrides: { command },
    }),
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { jobs } = await batch.send(new DescribeJobsCommand({ jobs: [jobId as string] }));
    const job = jobs?.[0];
    if (job?.status === 'SUCCEEDED' || job?.status === 'FAILED') {
      const stream = job.container?.logStreamName;
      const events = stream
        ? (
            await logs.send(
              new GetLogEventsCommand({
                logGroupName: sandbox.config.logGroupName,
                logStreamName: stream,
                startFromHead: true,
              }),
            )
          ).events
        : [];
      return { job, lines: (events ?? []).map((e) => e.message as string) };
    }
    if (Date.now() > deadline) throw new Error(`job ${name} still ${job?.status}`);
    await sleep(100);
  }
}

const VOLUMES_PROBE = [
  'sh',
  '-c',
  'stat -c "%n %U %a" /home/executor /tmp /output; ls -A /home/executor | wc -l; ' +
    // As the image's user: the job itself starts as root, and gives its agent /tmp first.
    '(setpriv --reuid 10001 --regid 10001 --clear-groups touch /tmp/probe && echo tmp writable) 2>/dev/null || echo tmp refused',
];

describeDocker('the Batch sandbox enforces what AWS enforces', () => {
  let fargate: Running;
  let ec2: Running;

  beforeAll(async () => {
    [fargate, ec2] = await Promise.all([start('FARGATE'), start('EC2')]);
  });
  afterAll(async () => {
    await Promise.all([fargate?.sandbox.close(), ec2?.sandbox.close()]);
  });

  describe.concurrent('rules', () => {
    it("gives host-less volumes Fargate's semantics on Fargate and Docker's on EC2", async () => {
      // Fargate: an empty directory owned by root, mode 0755, unless the image declares a
      // VOLUME at exactly that path (then the image's directory is copied in); EC2: Docker
      // volumes, copies of the image's directories.
      // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html
      const onFargate = await run(fargate, 'volumes-fargate', VOLUMES_PROBE);
      expect(onFargate.lines).toEqual([
        '/home/executor root 755',
        '/tmp root 755',
        '/output executor 755',
        '0',
        'tmp refused',
      ]);
      const onEc2 = await run(ec2, 'volumes-ec2', VOLUMES_PROBE);
      expect(onEc2.lines.slice(0, 3)).toEqual([
        expect.stringMatching(/^\/home\/executor executor \d+$/),
        '/tmp root 1777',
        '/output executor 755',
      ]);
      expect(onEc2.lines.at(-1)).toBe('tmp writable');
    });

    it("runs a job as its job role, which reaches no run's objects: a subverted job is denied another run's prefix", async () => {
      // Jobs move their objects by presigned URLs; the role's own keys open nothing of the bucket.
      const script = `
        const { S3Client, PutObjectCommand, GetObjectCommand } = require('/app/node_modules/@aws-sdk/client-s3');
        const s3 = new S3Client({});
        const Bucket = process.env.S3_BUCKET;
        const Key = 'runs/another-run/tasks/x/attempt-1/result.json';
        const outcome = (p) => p.then(() => 'allowed', (e) => e.name + ' ' + e.$metadata.httpStatusCode);
        (async () => {
          console.log(await outcome(s3.send(new PutObjectCommand({ Bucket, Key, Body: 'forged' }))));
          console.log(await outcome(s3.send(new GetObjectCommand({ Bucket, Key }))));
        })();`;
      const { job, lines } = await run(ec2, 'job-role', ['node', '-e', script]);
      expect(job.status).toBe('SUCCEEDED');
      expect(lines).toEqual(['AccessDenied 403', 'AccessDenied 403']);
      const properties = JSON.parse(ec2.made.stack.jobDefinition.containerProperties as string);
      const resource = `arn:aws:s3:::${ec2.sandbox.config.bucketName}/runs/another-run/tasks/x/attempt-1/result.json`;
      for (const action of ['s3:PutObject', 's3:GetObject'])
        expect(ec2.sandbox.record.decisions).toContainEqual(
          expect.objectContaining({
            principal: properties.jobRoleArn,
            action,
            resource,
            allowed: false,
          }),
        );
      const environment = job.container?.environment ?? [];
      expect(environment.find((e) => e.name === 'AWS_ACCESS_KEY_ID')).toBeUndefined();
    });

    it('lets a job use a URL the submitter presigned, and not another key with it', async () => {
      // https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html
      const url = await getSignedUrl(
        ec2.s3,
        new PutObjectCommand({ Bucket: ec2.sandbox.config.bucketName, Key: 'runs/p/out.txt' }),
        { expiresIn: 300 },
      );
      const script = `
        const put = (u) => fetch(u, { method: 'PUT', body: 'from the job' }).then((r) => r.status);
        (async () => { console.log(await put(process.argv[1])); console.log(await put(process.argv[1].replace('runs/p/', 'runs/q/'))); })();`;
      const { lines } = await run(ec2, 'presigned', ['node', '-e', script, url]);
      expect(lines).toEqual(['200', '403']);
      expect(ec2.sandbox.record.decisions).toContainEqual(
        expect.objectContaining({
          principal: expect.stringMatching(/:user\/.*-submitter$/),
          action: 's3:PutObject',
          resource: `arn:aws:s3:::${ec2.sandbox.config.bucketName}/runs/p/out.txt`,
          allowed: true,
        }),
      );
    });

    it('reads secrets as the execution role: a denied read fails the attempt as ECS does', async () => {
      // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
      const properties = JSON.parse(fargate.made.stack.jobDefinition.containerProperties as string);
      const otherDefinition = fargate.sandbox.registerJobDefinition(
        {
          // A revision of the stack's definition (the submitter may use any), another secret.
          ...fargate.made.stack.jobDefinition,
          containerProperties: JSON.stringify({
            ...properties,
            secrets: [{ name: 'ANTHROPIC_API_KEY', valueFrom: OTHER_SECRET }],
          }),
        },
        { deregisterPrevious: false },
      );
      const { job } = await run(fargate, 'other-secret', ['true'], otherDefinition);
      expect(job.status).toBe('FAILED');
      expect(job.statusReason).toMatch(
        new RegExp(
          `^ResourceInitializationError: unable to pull secrets .*AccessDeniedException: User: ${properties.executionRoleArn} is not authorized to perform: secretsmanager:GetSecretValue on resource: ${OTHER_SECRET}`,
        ),
      );
      expect(job.attempts?.[0]?.container?.exitCode).toBeUndefined();
      // The stack's own secret is readable: a job of its definition starts.
      expect((await run(fargate, 'own-secret', ['true'])).job.status).toBe('SUCCEEDED');
    });

    it("answers the submitter's calls outside its policy with AccessDeniedException, and a bad signature as AWS does", async () => {
      // https://docs.aws.amazon.com/batch/latest/userguide/iam-example-restrict-job-submission.html
      const elsewhere = otherQueue(fargate.made);
      await expect(
        fargate.batch.send(
          new SubmitJobCommand({
            jobName: 'elsewhere',
            jobQueue: elsewhere,
            jobDefinition: fargate.sandbox.config.jobDefinitionArn,
          }),
        ),
      ).rejects.toMatchObject({
        name: 'AccessDeniedException',
        message: expect.stringMatching(
          new RegExp(`is not authorized to perform: batch:SubmitJob on resource: ${elsewhere} `),
        ),
        $metadata: { httpStatusCode: 403 },
      });
      expect(fargate.sandbox.record.denied()).toContainEqual(
        expect.objectContaining({ action: 'batch:SubmitJob', resource: elsewhere }),
      );
      const logDenied = await fargate.logs
        .send(
          new GetLogEventsCommand({ logGroupName: '/aws/batch/another-stack', logStreamName: 's' }),
        )
        .catch((e: unknown) => e);
      expect(logDenied).toMatchObject({
        name: 'AccessDeniedException',
        message: expect.stringMatching(
          /is not authorized to perform: logs:GetLogEvents on resource: arn:aws:logs:.*:log-group:\/aws\/batch\/another-stack:log-stream:s /,
        ),
      });
      // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html
      const { sandbox: endpoints, region } = fargate.sandbox.config;
      const forged = new BatchClient({
        region,
        endpoint: endpoints?.batch,
        maxAttempts: 1,
        credentials: {
          accessKeyId: endpoints?.credentials.accessKeyId ?? '',
          secretAccessKey: 'guess',
        },
      });
      await expect(forged.send(new DescribeJobsCommand({ jobs: [] }))).rejects.toMatchObject({
        name: 'InvalidSignatureException',
        $metadata: { httpStatusCode: 403 },
      });
      const stranger = new BatchClient({
        region,
        endpoint: endpoints?.batch,
        maxAttempts: 1,
        credentials: { accessKeyId: 'AKIASTRANGER', secretAccessKey: 'x' },
      });
      await expect(stranger.send(new DescribeJobsCommand({ jobs: [] }))).rejects.toMatchObject({
        name: 'UnrecognizedClientException',
        $metadata: { httpStatusCode: 403 },
      });
    });
  });

  it('refuses on Fargate a job whose vCPU and memory are not one of its task sizes', async () => {
    // https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
    const submit = (memory: string) =>
      fargate.batch.send(
        new SubmitJobCommand({
          jobName: `size-${memory}`,
          jobQueue: fargate.sandbox.config.jobQueueArn,
          jobDefinition: fargate.sandbox.config.jobDefinitionArn,
          containerOverrides: {
            command: ['true'],
            resourceRequirements: [
              { type: 'VCPU', value: '2' },
              { type: 'MEMORY', value: memory },
            ],
          },
        }),
      );
    await expect(submit('4500')).rejects.toMatchObject({
      name: 'ClientException',
      message:
        'Fargate cannot run this job: 4500 MiB is not a Fargate memory size for 2 vCPUs; choose from 4096 to 16384 in steps of 1024',
    });
    expect((await submit('5120')).jobId).toBeTruthy();
  });

  it('retires the earlier revision when a new one is registered with deregistration, as a pulumi up does', async () => {
    const { sandbox, batch } = ec2;
    const first = sandbox.config.jobDefinitionArn;
    const second = sandbox.registerJobDefinition(ec2.made.stack.jobDefinition);
    expect(second).toBe(first.replace(/:1$/, ':2'));
    // The submitter may describe them (doctor's revision check, an action on `*`).
    const described = await batch.send(
      new DescribeJobDefinitionsCommand({ jobDefinitions: [first, second] }),
    );
    expect(described.jobDefinitions?.map((d) => [d.jobDefinitionArn, d.status])).toEqual([
      [first, 'INACTIVE'],
      [second, 'ACTIVE'],
    ]);
    // SubmitJob to a retired revision: ClientException, as a real account answers it.
    // https://docs.aws.amazon.com/batch/latest/APIReference/API_DeregisterJobDefinition.html
    await expect(
      batch.send(
        new SubmitJobCommand({
          jobName: 'old',
          jobQueue: sandbox.config.jobQueueArn,
          jobDefinition: first,
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ClientException',
      message: `JobDefinition ${first} is not in ACTIVE status`,
      $metadata: { httpStatusCode: 400 },
    });
    // By name: the latest ACTIVE revision.
    const name = first.split('/').pop()?.split(':')[0] as string;
    const { jobId } = await batch.send(
      new SubmitJobCommand({
        jobName: 'by-name',
        jobQueue: sandbox.config.jobQueueArn,
        jobDefinition: name,
      }),
    );
    const { jobs } = await batch.send(new DescribeJobsCommand({ jobs: [jobId as string] }));
    expect(jobs?.[0]?.jobDefinition).toBe(second);
    // Without deregistration both stay usable.
    const third = sandbox.registerJobDefinition(ec2.made.stack.jobDefinition, {
      deregisterPrevious: false,
    });
    await batch.send(
      new SubmitJobCommand({
        jobName: 'kept',
        jobQueue: sandbox.config.jobQueueArn,
        jobDefinition: second,
      }),
    );
    expect(third).toBe(first.replace(/:1$/, ':3'));
  });
});
