import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BatchClient,
  CancelJobCommand,
  type ContainerOverrides,
  DeregisterJobDefinitionCommand,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  type JobDetail,
  ListJobsCommand,
  SubmitJobCommand,
  type SubmitJobCommandInput,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type BatchSandbox,
  type JobDefinitionInput,
  STATUS_REASONS,
  startBatchSandbox,
} from '../../packages/batch-sandbox/src/index.js';
import {
  BATCH_JOB_DEFINITION,
  BATCH_LIMITS,
  BatchBackendConfigSchema,
} from '../../packages/runtime/src/contracts/index.js';
import { describeDocker, docker, IMAGE } from '../support/docker.js';
import { tempDir } from '../support/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const region = 'us-east-1';
const account = '000000000000';
const TOKEN_ARN = `arn:aws:secretsmanager:${region}:${account}:secret:test-token-AbCdEf`;
const MISSING_ARN = `arn:aws:secretsmanager:${region}:${account}:secret:never-stored-AbCdEf`;
const TOKEN = `sk-sandbox-${randomBytes(12).toString('hex')}`;
const LOG_GROUP = '/aws/batch/sandbox-test';
const definitionArn = (name: string) =>
  `arn:aws:batch:${region}:${account}:job-definition/${name}:1`;
const queueArn = (name: string) => `arn:aws:batch:${region}:${account}:job-queue/${name}`;

/** The AWS SDK the jobs of the `s3` definition load, from this checkout's store, mounted read-only. */
const clientS3Entry = createRequire(import.meta.url).resolve('@aws-sdk/client-s3');
const pnpmStore = clientS3Entry.slice(0, clientS3Entry.indexOf('/.pnpm/') + '/.pnpm'.length);

/** A short-lived job definition as the Pulumi component writes one (containerProperties as JSON). */
function testDefinition(name: string, extra: Record<string, unknown> = {}): JobDefinitionInput {
  return {
    arn: definitionArn(name),
    containerProperties: JSON.stringify({
      image: 'registry.example/parallel-orchestrator@sha256:0000',
      command: ['sh', '-c', 'echo default command'],
      resourceRequirements: [
        { type: 'VCPU', value: '0.25' },
        { type: 'MEMORY', value: '256' },
      ],
      environment: [{ name: 'FROM_DEFINITION', value: 'yes' }],
      logConfiguration: {
        logDriver: 'awslogs',
        options: { 'awslogs-group': LOG_GROUP, 'awslogs-stream-prefix': 'task' },
      },
      readonlyRootFilesystem: true,
      volumes: [{ name: 'tmp' }, { name: 'output' }],
      mountPoints: [
        { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
        { sourceVolume: 'output', containerPath: '/output', readOnly: false },
      ],
      linuxParameters: { initProcessEnabled: true },
      ...extra,
    }),
    // The Pulumi spelling of the rules.
    retryStrategy: {
      attempts: 2,
      evaluateOnExits: BATCH_JOB_DEFINITION.retryOnCapacityLoss.map((rule) => ({ ...rule })),
    },
    timeout: { attemptDurationSeconds: 60 },
  } as JobDefinitionInput;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeDocker('Batch sandbox', () => {
  let sandbox: BatchSandbox;
  let batch: BatchClient;
  let logs: CloudWatchLogsClient;
  let s3: S3Client;
  const run = randomBytes(3).toString('hex');

  beforeAll(async () => {
    sandbox = await startBatchSandbox({
      image: IMAGE,
      region,
      bucket: 'sandbox-test-bucket',
      transitionMs: 50,
      stopTimeoutSeconds: 1,
      secrets: { [TOKEN_ARN]: TOKEN },
      jobDefinitions: [
        testDefinition('test', { secrets: [{ name: 'API_TOKEN', valueFrom: TOKEN_ARN }] }),
        testDefinition('retired'),
        testDefinition('missing-secret', {
          secrets: [{ name: 'API_TOKEN', valueFrom: MISSING_ARN }],
        }),
        testDefinition('s3', {
          volumes: [{ name: 'tmp' }, { name: 'store', host: { sourcePath: pnpmStore } }],
          mountPoints: [
            { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
            { sourceVolume: 'store', containerPath: pnpmStore, readOnly: true },
          ],
          environment: [
            { name: 'S3_BUCKET', value: 'sandbox-test-bucket' },
            { name: 'CLIENT_S3', value: clientS3Entry },
          ],
          resourceRequirements: [
            { type: 'VCPU', value: '0.5' },
            { type: 'MEMORY', value: '512' },
          ],
        }),
      ],
      jobQueues: [
        { arn: queueArn('main'), maxVcpus: 4 },
        {
          arn: queueArn('narrow'),
          maxVcpus: 0.5,
          jobStateTimeLimitActions: [
            {
              state: 'RUNNABLE',
              action: 'CANCEL',
              maxTimeSeconds: 1,
              reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
            },
            {
              state: 'RUNNABLE',
              action: 'CANCEL',
              maxTimeSeconds: 1,
              reason: 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
            },
          ],
        },
      ],
    });
    const endpoints = sandbox.config.sandbox;
    if (!endpoints) throw new Error('the sandbox config names no endpoints');
    // The clients at their defaults: only endpoint, region and the keys the sandbox made.
    const { credentials } = endpoints;
    batch = new BatchClient({ endpoint: endpoints.batch, region, credentials });
    logs = new CloudWatchLogsClient({ endpoint: endpoints.logs, region, credentials });
    s3 = new S3Client({ endpoint: endpoints.s3, region, credentials });
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  async function submit(
    name: string,
    overrides: ContainerOverrides = {},
    input: Partial<SubmitJobCommandInput> = {},
  ): Promise<string> {
    const { jobId } = await batch.send(
      new SubmitJobCommand({
        jobName: `${name}-${run}`,
        jobQueue: queueArn('main'),
        jobDefinition: 'test',
        containerOverrides: overrides,
        ...input,
      }),
    );
    return jobId as string;
  }

  const shell = (script: string): ContainerOverrides => ({ command: ['sh', '-c', script] });

  /** The status reasons DescribeJobs gives a job while it is RUNNABLE, until it leaves RUNNABLE. */
  async function reasonsWhileRunnable(jobId: string): Promise<(string | undefined)[]> {
    const reasons: (string | undefined)[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const job = await describeJob(jobId);
      if (job?.status === 'RUNNABLE') reasons.push(job.statusReason);
      else if (
        reasons.length > 0 ||
        ['STARTING', 'RUNNING', 'SUCCEEDED', 'FAILED'].includes(job?.status ?? '')
      )
        break;
      await sleep(50);
    }
    return reasons;
  }

  async function describeJob(jobId: string): Promise<JobDetail | undefined> {
    const { jobs } = await batch.send(new DescribeJobsCommand({ jobs: [jobId] }));
    return jobs?.[0];
  }

  /** Polls DescribeJobs until the job is in one of the statuses. */
  async function waitFor(
    jobId: string,
    statuses: string[] = ['SUCCEEDED', 'FAILED'],
    timeoutMs = 30_000,
  ): Promise<JobDetail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await describeJob(jobId);
      if (job?.status && statuses.includes(job.status)) return job;
      if (Date.now() > deadline)
        throw new Error(`job ${jobId} still ${job?.status} after ${timeoutMs} ms, not ${statuses}`);
      await sleep(100);
    }
  }

  describe.concurrent('jobs', () => {
    it('runs a job through every state, with its attempt, container detail and logs', async () => {
      const jobId = await submit('lifecycle', {
        ...shell('echo one; sleep 1; echo two >&2'),
        environment: [{ name: 'FROM_OVERRIDE', value: 'set' }],
      });
      const running = await waitFor(jobId, ['RUNNING']);
      const stream = running.container?.logStreamName as string;
      expect(stream).toMatch(/^task\/default\/[0-9a-f]{32}$/);

      // Follow the log as a CLI would: forward tokens, from the head.
      let token: string | undefined;
      const seen: string[] = [];
      const deadline = Date.now() + 10_000;
      while (!seen.includes('one') && Date.now() < deadline) {
        const page = await logs.send(
          new GetLogEventsCommand({
            logGroupName: LOG_GROUP,
            logStreamName: stream,
            startFromHead: true,
            ...(token && { nextToken: token }),
          }),
        );
        seen.push(...(page.events ?? []).map((e) => e.message as string));
        token = page.nextForwardToken;
        await sleep(100);
      }
      expect(seen).toEqual(['one']);

      const job = await waitFor(jobId);
      expect(job.status).toBe('SUCCEEDED');
      expect(job.statusReason).toBe(STATUS_REASONS.exited);
      expect(sandbox.record.statusesOf(jobId)).toEqual([
        'SUBMITTED',
        'PENDING',
        'RUNNABLE',
        'STARTING',
        'RUNNING',
        'SUCCEEDED',
      ]);
      expect(job.jobQueue).toBe(queueArn('main'));
      expect(job.jobDefinition).toBe(definitionArn('test'));
      expect(job.createdAt).toBeTypeOf('number');
      expect(job.startedAt).toBeGreaterThanOrEqual(job.createdAt as number);
      expect(job.stoppedAt).toBeGreaterThanOrEqual(job.startedAt as number);
      expect(job.attempts).toHaveLength(1);
      const [attempt] = job.attempts ?? [];
      expect(attempt?.container?.exitCode).toBe(0);
      expect(attempt?.container?.logStreamName).toBe(stream);
      expect(attempt?.container?.taskArn).toMatch(/^arn:aws:ecs:us-east-1:000000000000:task\//);
      expect(attempt?.statusReason).toBe(STATUS_REASONS.exited);
      expect(job.container?.exitCode).toBe(0);
      expect(job.container?.command).toEqual(['sh', '-c', 'echo one; sleep 1; echo two >&2']);
      expect(job.container?.environment).toEqual([
        { name: 'FROM_DEFINITION', value: 'yes' },
        { name: 'FROM_OVERRIDE', value: 'set' },
      ]);
      expect(job.container?.secrets).toEqual([{ name: 'API_TOKEN', valueFrom: TOKEN_ARN }]);

      const rest = await logs.send(
        new GetLogEventsCommand({
          logGroupName: LOG_GROUP,
          logStreamName: stream,
          startFromHead: true,
          nextToken: token,
        }),
      );
      expect(rest.events?.map((e) => e.message)).toEqual(['two']);
      expect(rest.events?.[0]?.timestamp).toBeGreaterThanOrEqual(job.startedAt as number);
      // At the end of the stream: no events and the same token back.
      const end = await logs.send(
        new GetLogEventsCommand({
          logGroupName: LOG_GROUP,
          logStreamName: stream,
          startFromHead: true,
          nextToken: rest.nextForwardToken,
        }),
      );
      expect(end.events).toEqual([]);
      expect(end.nextForwardToken).toBe(rest.nextForwardToken);
      await expect(
        logs.send(new GetLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: 'task/nope' })),
      ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    });

    it('fails a job on a non-zero exit, without a retry when a rule says EXIT', async () => {
      const job = await waitFor(await submit('exit-code', shell('exit 3')));
      expect(job.status).toBe('FAILED');
      expect(job.statusReason).toBe(STATUS_REASONS.exited);
      expect(job.container?.exitCode).toBe(3);
      expect(job.attempts?.map((a) => a.container?.exitCode)).toEqual([3]);
    });

    it('retries while attempts remain when no evaluateOnExit rule matches', async () => {
      const job = await waitFor(
        await submit('no-rule-matches', shell('exit 3'), {
          retryStrategy: { attempts: 2, evaluateOnExit: [{ onExitCode: '7*', action: 'EXIT' }] },
        }),
      );
      expect(job.status).toBe('FAILED');
      expect(job.attempts?.map((a) => a.container?.exitCode)).toEqual([3, 3]);
    });

    it('retries a job whose EC2 host or Fargate Spot capacity is reclaimed', async () => {
      // The first attempt waits to be reclaimed; the retry succeeds at once.
      const script = shell(
        '[ "$AWS_BATCH_JOB_ATTEMPT" = 1 ] && sleep 30; echo attempt $AWS_BATCH_JOB_ATTEMPT',
      );
      const release = sandbox.reclaimWhenRunning(`reclaim-ec2-${run}`, 300, 'ec2');
      const ec2 = await submit('reclaim-ec2', script);
      const fargate = await submit('reclaim-fargate', script);
      await waitFor(fargate, ['RUNNING']);
      sandbox.reclaim(fargate, 'fargate');

      const [ec2Job, fargateJob] = await Promise.all([waitFor(ec2), waitFor(fargate)]);
      release();
      expect(ec2Job.status).toBe('SUCCEEDED');
      expect(ec2Job.attempts?.[0]?.statusReason).toMatch(
        /^Host EC2 \(instance i-0sandbox[0-9a-f]+\) terminated\.$/,
      );
      // Back to RUNNABLE for the retry, saying why.
      expect(
        sandbox.record.transitions.find(
          (t) => t.jobId === ec2 && t.status === 'RUNNABLE' && t.statusReason,
        ),
      ).toMatchObject({ statusReason: ec2Job.attempts?.[0]?.statusReason });
      expect(fargateJob.status).toBe('SUCCEEDED');
      expect(fargateJob.attempts?.[0]?.statusReason).toBe('Your Spot Task was interrupted.');
      for (const job of [ec2Job, fargateJob]) {
        expect(job.attempts).toHaveLength(2);
        expect(job.attempts?.[0]?.container?.exitCode).toBeUndefined();
        expect(job.attempts?.[1]?.container?.exitCode).toBe(0);
        expect(sandbox.record.statusesOf(job.jobId as string)).toEqual([
          'SUBMITTED',
          'PENDING',
          'RUNNABLE',
          'STARTING',
          'RUNNING',
          'RUNNABLE',
          'STARTING',
          'RUNNING',
          'SUCCEEDED',
        ]);
      }
    });

    it('stops an attempt past its timeout and does not retry it', async () => {
      const job = await waitFor(
        await submit('timeout', shell('sleep 30'), { timeout: { attemptDurationSeconds: 1 } }),
      );
      expect(job.status).toBe('FAILED');
      expect(job.statusReason).toBe(STATUS_REASONS.timeout);
      expect(job.attempts).toHaveLength(1);
      expect([137, 143]).toContain(job.attempts?.[0]?.container?.exitCode);
    });

    it('reports a container killed for memory as Batch does', async () => {
      const job = await waitFor(
        await submit('oom', {
          command: ['node', '-e', 'const kept = []; for (;;) kept.push(Buffer.alloc(1 << 20, 1));'],
          resourceRequirements: [{ type: 'MEMORY', value: '64' }],
        }),
      );
      expect(job.status).toBe('FAILED');
      expect(job.container?.reason).toBe(STATUS_REASONS.outOfMemory);
      expect(job.container?.exitCode).toBe(137);
      expect(job.attempts).toHaveLength(1);
    });

    it('cancels only jobs that have not started; terminates running ones', async () => {
      const release = sandbox.holdRunnable(`held-*`);
      const running = await submit('stop-running', shell('sleep 30'));
      const heldCancel = await submit('held-cancel');
      const heldTerminate = await submit('held-terminate');
      await waitFor(running, ['RUNNING']);
      await Promise.all([waitFor(heldCancel, ['RUNNABLE']), waitFor(heldTerminate, ['RUNNABLE'])]);

      await batch.send(new CancelJobCommand({ jobId: running, reason: 'cancel a running job' }));
      await sleep(300);
      expect((await describeJob(running))?.status).toBe('RUNNING');
      await batch.send(new TerminateJobCommand({ jobId: running, reason: 'stopped by the test' }));
      await batch.send(
        new CancelJobCommand({ jobId: heldCancel, reason: 'cancelled by the test' }),
      );
      await batch.send(
        new TerminateJobCommand({ jobId: heldTerminate, reason: 'terminated early' }),
      );
      // Unknown jobs: Batch answers 200 and does nothing.
      await batch.send(new TerminateJobCommand({ jobId: 'no-such-job', reason: 'nothing' }));

      const [stopped, cancelled, terminated] = await Promise.all([
        waitFor(running),
        waitFor(heldCancel),
        waitFor(heldTerminate),
      ]);
      release();
      expect(stopped).toMatchObject({
        status: 'FAILED',
        statusReason: 'stopped by the test',
        isTerminated: true,
      });
      expect(stopped.attempts).toHaveLength(1);
      expect(stopped.attempts?.[0]?.statusReason).toBe('stopped by the test');
      expect(cancelled).toMatchObject({
        status: 'FAILED',
        statusReason: 'cancelled by the test',
        isCancelled: true,
        attempts: [],
      });
      expect(terminated).toMatchObject({ status: 'FAILED', statusReason: 'terminated early' });
      expect(terminated.attempts).toEqual([]);
    });

    it('holds matching jobs RUNNABLE, blocked for capacity, until released', async () => {
      const release = sandbox.holdRunnable(`hold-${run}`);
      const jobId = await submit('hold');
      await waitFor(jobId, ['RUNNABLE']);
      await sleep(500);
      const held = await describeJob(jobId);
      expect(held?.status).toBe('RUNNABLE');
      expect(held?.statusReason).toMatch(/^CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - /);
      release();
      expect((await waitFor(jobId)).status).toBe('SUCCEEDED');
    });

    it('starts jobs only while the queue has vCPUs, and cancels blocked ones by its time limits', async () => {
      const narrow = { jobQueue: queueArn('narrow') };
      const ids = await Promise.all(
        [1, 2, 3, 4].map((n) => submit(`narrow-${n}`, shell('sleep 1'), narrow)),
      );
      const tooBig = await submit(
        'narrow-too-big',
        { resourceRequirements: [{ type: 'VCPU', value: '1' }] },
        narrow,
      );
      const release = sandbox.holdRunnable(`narrow-held-${run}`);
      const held = await submit('narrow-held', {}, narrow);
      // Queued behind the vCPUs in use: RUNNABLE with no reason all along, unlike a job nothing
      // can place.
      const [queued, blocked] = await Promise.all([
        reasonsWhileRunnable(ids[3] as string),
        reasonsWhileRunnable(tooBig),
      ]);
      expect(queued.length).toBeGreaterThan(0);
      expect(queued.every((reason) => reason === undefined)).toBe(true);
      expect(blocked.at(-1)).toMatch(/^MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - /);

      const jobs = await Promise.all(ids.map((id) => waitFor(id)));
      expect(jobs.map((j) => j.status)).toEqual([
        'SUCCEEDED',
        'SUCCEEDED',
        'SUCCEEDED',
        'SUCCEEDED',
      ]);
      // 0.25 vCPU each on a 0.5 vCPU queue.
      expect(sandbox.record.maxConcurrent(['STARTING', 'RUNNING'], ids)).toBe(2);
      expect(await waitFor(tooBig)).toMatchObject({
        status: 'FAILED',
        statusReason: STATUS_REASONS.timeLimitCancel('MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT'),
        isCancelled: true,
      });
      expect((await waitFor(held)).statusReason).toBe(
        STATUS_REASONS.timeLimitCancel('CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY'),
      );
      release();
    });

    it('gives a job its secrets as files, and shows their values nowhere else', async () => {
      const digest = createHash('sha256').update(TOKEN).digest('hex');
      const jobId = await submit(
        'secrets',
        shell(
          'sha256sum < "$API_TOKEN_FILE" | cut -c1-64; stat -c "%a %u" "$API_TOKEN_FILE"; ' +
            'env | grep -c "^API_TOKEN=" ; sleep 2',
        ),
      );
      await waitFor(jobId, ['RUNNING']);
      const { stdout: ids } = await docker([
        'ps',
        '-q',
        '--filter',
        `label=parallel-orchestrator.batch-sandbox.job-id=${jobId}`,
      ]);
      const inspect = await docker(['inspect', ...ids.trim().split('\n')]);
      expect(inspect.code).toBe(0);
      expect(inspect.stdout).toContain('API_TOKEN_FILE=/run/secrets/API_TOKEN');
      expect(inspect.stdout).not.toContain(TOKEN);

      const job = await waitFor(jobId);
      expect(job.status).toBe('SUCCEEDED');
      const { events } = await logs.send(
        new GetLogEventsCommand({
          logGroupName: LOG_GROUP,
          logStreamName: job.container?.logStreamName,
          startFromHead: true,
        }),
      );
      expect(events?.map((e) => e.message)).toEqual([digest, '400 10001', '0']);
      expect(JSON.stringify(job)).not.toContain(TOKEN);
      expect(JSON.stringify(sandbox.record)).not.toContain(TOKEN);
    });

    it('fails a job whose secret has no value, as Batch does', async () => {
      const job = await waitFor(
        await submit('missing-secret', {}, { jobDefinition: 'missing-secret' }),
      );
      expect(job.status).toBe('FAILED');
      expect(job.statusReason).toBe(STATUS_REASONS.secretMissing(MISSING_ARN));
      expect(job.statusReason).toMatch(/^ResourceInitializationError: unable to pull secrets/);
    });

    it('lets jobs reach servers on the host at the gateway address and host.docker.internal', async () => {
      const server = http.createServer((_req, res) => res.end('pong'));
      await new Promise<void>((resolve) => server.listen(0, sandbox.gatewayAddress, resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const fetchBoth = `Promise.all(['${sandbox.gatewayAddress}', 'host.docker.internal'].map((host) =>
          fetch('http://' + host + ':${port}/').then((r) => r.text()))).then((a) => console.log(a.join(' ')))`;
        const job = await waitFor(
          await submit('host-server', { command: ['node', '-e', fetchBoth] }),
        );
        expect(job.status).toBe('SUCCEEDED');
        const { events } = await logs.send(
          new GetLogEventsCommand({
            logGroupName: LOG_GROUP,
            logStreamName: job.container?.logStreamName,
            startFromHead: true,
          }),
        );
        expect(events?.map((e) => e.message)).toEqual(['pong pong']);
      } finally {
        server.close();
      }
    });

    it('answers DescribeJobs for at most 100 ids and leaves unknown ids out', async () => {
      const jobId = await submit('describe');
      const tooMany = Array.from({ length: BATCH_LIMITS.describeJobsIds + 1 }, (_, i) => `id-${i}`);
      await expect(batch.send(new DescribeJobsCommand({ jobs: tooMany }))).rejects.toMatchObject({
        name: 'ClientException',
        $metadata: { httpStatusCode: 400 },
      });
      const { jobs } = await batch.send(new DescribeJobsCommand({ jobs: [jobId, 'unknown-id'] }));
      expect(jobs?.map((j) => j.jobId)).toEqual([jobId]);
      await waitFor(jobId);
    });

    it('lists jobs by name prefix in every status, page by page', async () => {
      const release = sandbox.holdRunnable(`list-${run}-*`);
      const ids = await Promise.all(
        [1, 2, 3].map((n) => submit('list', {}, { jobName: `list-${run}-${n}` })),
      );
      await Promise.all(ids.map((id) => waitFor(id, ['RUNNABLE'])));
      const byName = { jobQueue: queueArn('main'), maxResults: 2 };
      // Case-insensitive, a prefix when it ends with *.
      const filters = [{ name: 'JOB_NAME', values: [`LIST-${run}-*`.toUpperCase()] }];
      const first = await batch.send(new ListJobsCommand({ ...byName, filters }));
      expect(first.jobSummaryList).toHaveLength(2);
      expect(first.nextToken).toBeTypeOf('string');
      const second = await batch.send(
        new ListJobsCommand({ ...byName, filters, nextToken: first.nextToken }),
      );
      expect(second.nextToken).toBeUndefined();
      const listed = [...(first.jobSummaryList ?? []), ...(second.jobSummaryList ?? [])];
      expect(listed.map((j) => j.jobId).sort()).toEqual([...ids].sort());
      expect(listed[0]).toMatchObject({ status: 'RUNNABLE', jobDefinition: definitionArn('test') });
      expect(listed[0]?.createdAt).toBeTypeOf('number');
      // Without a filter: by status.
      const runnable = await batch.send(
        new ListJobsCommand({ jobQueue: 'main', jobStatus: 'RUNNABLE' }),
      );
      expect(runnable.jobSummaryList?.map((j) => j.jobId)).toEqual(expect.arrayContaining(ids));
      await Promise.all(
        ids.map((jobId) => batch.send(new CancelJobCommand({ jobId, reason: 'listed' }))),
      );
      release();
    });

    it('refuses a SubmitJob body over 30 KiB', async () => {
      await expect(
        submit('too-big', { environment: [{ name: 'BIG', value: 'x'.repeat(31 * 1024) }] }),
      ).rejects.toMatchObject({
        name: 'ClientException',
        message: expect.stringMatching(/^Job size must be less than 30 KiB, got 3\d KiB$/),
      });
      expect(sandbox.record.submissions.some((s) => s.jobName === `too-big-${run}`)).toBe(false);
    });

    it('accepts container overrides over 8192 characters, then fails the job when it would start', async () => {
      const jobId = await submit('long-overrides', {
        environment: [{ name: 'LONG', value: 'y'.repeat(9000) }],
      });
      const job = await waitFor(jobId);
      expect(job).toMatchObject({
        status: 'FAILED',
        statusReason: 'Container Overrides length must be at most 8192',
        attempts: [],
      });
      const submission = sandbox.record.submissions.find((s) => s.jobId === jobId);
      expect(submission?.overridesChars).toBeGreaterThan(BATCH_LIMITS.containerOverridesChars);
      expect(submission?.environment.LONG).toHaveLength(9000);
    });

    it('serves S3 with the SDK default checksums, to the host and to jobs', async () => {
      const Bucket = 'sandbox-test-bucket';
      const big = randomBytes(11 << 20);
      await s3.send(new PutObjectCommand({ Bucket, Key: 'runs/t/in.txt', Body: 'from the host' }));
      await new Upload({ client: s3, params: { Bucket, Key: 'runs/t/big.bin', Body: big } }).done();
      const got = await s3.send(
        new GetObjectCommand({ Bucket, Key: 'runs/t/big.bin', ChecksumMode: 'ENABLED' }),
      );
      expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(big)).toBe(true);

      // The job's SDK finds the endpoint in AWS_ENDPOINT_URL_S3, the keys in the environment.
      const script = `
        const { S3Client, GetObjectCommand, PutObjectCommand } = require(process.env.CLIENT_S3);
        (async () => {
          const s3 = new S3Client({});
          const Bucket = process.env.S3_BUCKET;
          const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'runs/t/in.txt', ChecksumMode: 'ENABLED' }));
          const text = await got.Body.transformToString();
          await s3.send(new PutObjectCommand({ Bucket, Key: 'runs/t/out.txt', Body: text.toUpperCase() }));
          console.log('copied from', process.env.AWS_ENDPOINT_URL_S3);
        })().catch((error) => { console.error(error); process.exit(1); });`;
      const job = await waitFor(
        await submit('s3', { command: ['node', '-e', script] }, { jobDefinition: 's3' }),
      );
      expect(job.status).toBe('SUCCEEDED');
      const out = await s3.send(
        new GetObjectCommand({ Bucket, Key: 'runs/t/out.txt', ChecksumMode: 'ENABLED' }),
      );
      expect(await out.Body?.transformToString()).toBe('FROM THE HOST');
      expect(sandbox.jobEndpoints.s3).toBe(
        `http://${sandbox.gatewayAddress}:${new URL(sandbox.jobEndpoints.s3).port}`,
      );

      const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: 'runs/t/' }));
      expect(listed.Contents?.map((o) => o.Key).sort()).toEqual([
        'runs/t/big.bin',
        'runs/t/in.txt',
        'runs/t/out.txt',
      ]);
      const deleted = await s3.send(
        new DeleteObjectsCommand({
          Bucket,
          Delete: { Objects: (listed.Contents ?? []).map((o) => ({ Key: o.Key })) },
        }),
      );
      expect(deleted.Deleted).toHaveLength(3);
    });
  });

  // Faults that act on every call: kept out of the concurrent tests.
  describe('faults on every call', () => {
    it('answers throttled calls with 429 (Batch) or ThrottlingException (Logs); the SDK retries', async () => {
      sandbox.throttle('DescribeJobQueues', 2);
      const { jobQueues } = await batch.send(new DescribeJobQueuesCommand({}));
      expect(jobQueues?.map((q) => q.jobQueueName)).toEqual(['main', 'narrow']);
      const calls = sandbox.record.calls.filter((c) => c.operation === 'DescribeJobQueues');
      expect(calls.map((c) => [c.throttled, c.status])).toEqual([
        [true, 429],
        [true, 429],
        [false, 200],
      ]);

      const stream = await anyLogStream();
      sandbox.throttle('GetLogEvents', 1);
      const before = sandbox.record.count('GetLogEvents');
      await logs.send(new GetLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: stream }));
      expect(sandbox.record.count('GetLogEvents') - before).toBe(2);
    });

    it('hides new jobs from DescribeJobs and ListJobs for a while after submission', async () => {
      sandbox.hideAfterSubmit(1_000);
      const jobId = await submit('hidden');
      sandbox.hideAfterSubmit(0);
      expect(await describeJob(jobId)).toBeUndefined();
      const listed = await batch.send(
        new ListJobsCommand({
          jobQueue: queueArn('main'),
          filters: [{ name: 'JOB_NAME', values: [`hidden-${run}`] }],
        }),
      );
      expect(listed.jobSummaryList).toEqual([]);
      expect((await waitFor(jobId, ['SUCCEEDED'], 15_000)).jobId).toBe(jobId);
    });

    it('lets ListJobs lag behind DescribeJobs', async () => {
      sandbox.hideAfterSubmit(0, 3_000);
      const submitted = Date.now();
      const jobId = await submit('list-lag');
      sandbox.hideAfterSubmit(0);
      const listed = () =>
        batch
          .send(
            new ListJobsCommand({
              jobQueue: queueArn('main'),
              filters: [{ name: 'JOB_NAME', values: [`list-lag-${run}`] }],
            }),
          )
          .then((page) => page.jobSummaryList?.map((j) => j.jobId));
      expect((await waitFor(jobId, ['SUCCEEDED'])).jobId).toBe(jobId);
      if (Date.now() - submitted < 2_500) expect(await listed()).toEqual([]);
      // Listed from 3 s after the sandbox took the submission, which the client saw a little later.
      await sleep(3_000 - (Date.now() - submitted));
      await vi.waitFor(async () => expect(await listed()).toEqual([jobId]), {
        timeout: 2_000,
        interval: 100,
      });
    });

    it('carries out a call whose answer it then loses: the connection is reset', async () => {
      sandbox.loseAnswers('SubmitJob', 1);
      // A client that does not retry, as the orchestrator's submissions are sent.
      const once = new BatchClient({
        endpoint: sandbox.config.sandbox?.batch,
        region,
        credentials: sandbox.config.sandbox?.credentials,
        maxAttempts: 1,
      });
      const error = await once
        .send(
          new SubmitJobCommand({
            jobName: `lost-answer-${run}`,
            jobQueue: queueArn('main'),
            jobDefinition: 'test',
          }),
        )
        .catch((e: unknown) => e);
      once.destroy();
      // What the orchestrator takes for a lost answer: the job may exist.
      expect(error).toMatchObject({ code: 'ECONNRESET' });
      const listed = await batch.send(
        new ListJobsCommand({
          jobQueue: queueArn('main'),
          filters: [{ name: 'JOB_NAME', values: [`lost-answer-${run}`] }],
        }),
      );
      expect(listed.jobSummaryList).toHaveLength(1);
      const call = sandbox.record.calls.filter((c) => c.operation === 'SubmitJob').at(-1);
      expect(call).toMatchObject({ status: 200, answerLost: true });
    });

    it('reads a stream in windows of time when told: empty pages whose token moves, up to the tail', async () => {
      const job = await waitFor(await submit('log-gap', shell('echo first; sleep 1; echo last')));
      sandbox.pageLogsByTime(100);
      try {
        const pages: { events: string[]; token: string }[] = [];
        let token: string | undefined;
        for (let page = 0; page < 50; page++) {
          const answer = await logs.send(
            new GetLogEventsCommand({
              logGroupName: LOG_GROUP,
              logStreamName: job.container?.logStreamName,
              startFromHead: true,
              ...(token && { nextToken: token }),
            }),
          );
          const next = answer.nextForwardToken as string;
          pages.push({ events: (answer.events ?? []).map((e) => e.message ?? ''), token: next });
          if (next === token) break;
          token = next;
        }
        const events = pages.flatMap((p) => p.events);
        expect(events).toEqual(['first', 'last']);
        // Empty pages with a new token each lie between the two lines.
        const between = pages.slice(
          pages.findIndex((p) => p.events.includes('first')) + 1,
          pages.findIndex((p) => p.events.includes('last')),
        );
        expect(between.length).toBeGreaterThan(3);
        expect(between.every((p) => p.events.length === 0)).toBe(true);
        expect(new Set(between.map((p) => p.token)).size).toBe(between.length);
        // The end: the token comes back as it was sent.
        expect(pages.at(-1)?.token).toBe(pages.at(-2)?.token);
      } finally {
        sandbox.pageLogsByTime(0);
      }
    });

    it('retires a deregistered job definition revision: SubmitJob to it is refused', async () => {
      await batch.send(new DeregisterJobDefinitionCommand({ jobDefinition: 'retired:1' }));
      const { jobDefinitions } = await batch.send(
        new DescribeJobDefinitionsCommand({ jobDefinitions: [definitionArn('retired')] }),
      );
      expect(jobDefinitions?.map((d) => d.status)).toEqual(['INACTIVE']);
      await expect(
        submit('retired', {}, { jobDefinition: definitionArn('retired') }),
      ).rejects.toMatchObject({
        name: 'ClientException',
        message: `JobDefinition ${definitionArn('retired')} is not in ACTIVE status`,
      });
      // By name: its latest ACTIVE revision, of which there is none.
      await expect(submit('retired', {}, { jobDefinition: 'retired' })).rejects.toMatchObject({
        message: 'JobDefinition name retired does not exist or is not in ACTIVE status',
      });
    });
  });

  async function anyLogStream(): Promise<string> {
    const job = await waitFor(await submit('log-stream', shell('echo hi')));
    return job.container?.logStreamName as string;
  }
});

describeDocker('Batch sandbox lifecycle', () => {
  it('limits the SubmitJob rate with 429s and leaves nothing behind when closed', async () => {
    const sandbox = await startBatchSandbox({
      image: IMAGE,
      submitRateLimit: 2,
      transitionMs: 50,
      stopTimeoutSeconds: 1,
    });
    expect(BatchBackendConfigSchema.parse(sandbox.config)).toEqual(sandbox.config);
    const batch = new BatchClient({
      endpoint: sandbox.config.sandbox?.batch,
      region: sandbox.config.region,
      credentials: sandbox.config.sandbox?.credentials,
    });
    const submit = (n: number) =>
      batch.send(
        new SubmitJobCommand({
          jobName: `rate-${n}`,
          jobQueue: sandbox.config.jobQueueArn,
          jobDefinition: sandbox.config.jobDefinitionArn,
          containerOverrides: { command: ['sleep', '30'] },
        }),
      );
    const results = await Promise.allSettled([1, 2, 3, 4].map(submit));
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(2);
    const calls = sandbox.record.calls.filter((c) => c.operation === 'SubmitJob');
    expect(calls.filter((c) => c.status === 429).length).toBeGreaterThanOrEqual(2);
    // The SDK retried the throttled calls.
    expect(calls.length).toBeGreaterThan(4);

    // A running job's container, the network and the bucket go with close().
    const first = results.find((r) => r.status === 'fulfilled');
    const jobId = first?.status === 'fulfilled' ? (first.value.jobId as string) : '';
    const deadline = Date.now() + 15_000;
    while (!sandbox.record.statusesOf(jobId).includes('RUNNING') && Date.now() < deadline)
      await sleep(100);
    expect(sandbox.record.statusesOf(jobId)).toContain('RUNNING');
    await sandbox.close();
    await sandbox.close();
    const label = `label=parallel-orchestrator.batch-sandbox=${sandbox.id}`;
    expect((await docker(['ps', '-aq', '--filter', label])).stdout.trim()).toBe('');
    expect((await docker(['network', 'ls', '-q', '--filter', label])).stdout.trim()).toBe('');
  });

  it('runs from the command line: writes a valid config once ready, cleans up on SIGTERM', async () => {
    const dir = tempDir('po-batch-sandbox-');
    const configFile = path.join(dir, 'batch.json');
    const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawn(
        process.execPath,
        ['--import', 'tsx', path.join(root, 'packages/batch-sandbox/src/cli.ts'), ...args],
        { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );

    const bad = await finished(cli(['--config-out', configFile, '--max-vcpus', 'lots']));
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/max-vcpus/);
    const badRegion = await finished(cli(['--config-out', configFile, '--region', 'nowhere']));
    expect(badRegion.code).toBe(2);
    expect(badRegion.stderr).toBe('invalid option region: a region such as us-east-1\n');

    const child = cli(['--config-out', configFile, '--image', IMAGE, '--max-vcpus', '3'], {
      ANTHROPIC_API_KEY: 'sk-cli-test',
    });
    const output = collect(child);
    const deadline = Date.now() + 30_000;
    while (!output.stdout.includes('\n') && child.exitCode === null && Date.now() < deadline)
      await sleep(100);
    expect(output.stdout).toContain(configFile);
    const config = BatchBackendConfigSchema.parse(JSON.parse(readFileSync(configFile, 'utf8')));
    expect(config).toMatchObject({
      backend: 'batch',
      maxVcpus: 3,
      vcpusPerJob: 1,
      runsPrefix: 'runs/',
    });
    const owner = `label=parallel-orchestrator.batch-sandbox.owner=${os.hostname()}:${child.pid}`;
    expect((await docker(['network', 'ls', '-q', '--filter', owner])).stdout.trim()).not.toBe('');

    // A job of the default definition runs: its model-key secret came from the environment.
    const batch = new BatchClient({
      endpoint: config.sandbox?.batch,
      region: config.region,
      credentials: config.sandbox?.credentials,
    });
    const { jobId } = await batch.send(
      new SubmitJobCommand({
        jobName: 'cli-job',
        jobQueue: config.jobQueueArn,
        jobDefinition: config.jobDefinitionArn,
        containerOverrides: {
          command: ['sh', '-c', 'test -s "$ANTHROPIC_API_KEY_FILE" && sleep 30'],
        },
      }),
    );
    for (let status = ''; status !== 'RUNNING' && Date.now() < deadline; await sleep(100)) {
      const { jobs } = await batch.send(new DescribeJobsCommand({ jobs: [jobId as string] }));
      status = jobs?.[0]?.status ?? '';
      expect(status).not.toBe('FAILED');
    }

    child.kill('SIGTERM');
    const { code } = await finished(child, output);
    expect(code).toBe(0);
    expect((await docker(['ps', '-aq', '--filter', owner])).stdout.trim()).toBe('');
    expect((await docker(['network', 'ls', '-q', '--filter', owner])).stdout.trim()).toBe('');
  });
});

function collect(child: ChildProcess): { stdout: string; stderr: string } {
  const output = { stdout: '', stderr: '' };
  child.stdout?.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  return output;
}

/** The child's exit code and output, or a failure after 30 s. */
function finished(
  child: ChildProcess,
  output = collect(child),
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the sandbox CLI did not exit: ${output.stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ...output });
    });
  });
}
