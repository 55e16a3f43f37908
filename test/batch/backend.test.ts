import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  BatchClient,
  DeregisterJobDefinitionCommand,
  DescribeJobsCommand,
} from '@aws-sdk/client-batch';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type BatchSandbox,
  type BatchSandboxOptions,
  type PolicyDocument,
  sandboxStackFrom,
  startBatchSandbox,
} from '../../packages/batch-sandbox/src/index.js';
import { awsClients } from '../../packages/runtime/src/backends/batch/aws.js';
import { JobSubmitter, jobNamePrefix } from '../../packages/runtime/src/backends/batch/submit.js';
import {
  BATCH_INPUT_URL_ENV,
  BATCH_JOB_ENV,
  BATCH_LIMITS,
  type BatchBackendConfig,
  FINAL_VERIFY_TASK_ID,
  SETUP_TASK_ID,
} from '../../packages/runtime/src/contracts/index.js';
import { resolved, underMocks } from '../pulumi/mocks.js';
import {
  readEvents,
  readSummary,
  resultLine,
  runCli,
  startRunIn,
  waitFor,
} from '../support/cli.js';
import { describeDocker, docker, IMAGE } from '../support/docker.js';
import { fixtureEnv } from '../support/fixture-git.js';
import { gitOut, treeHash } from '../support/git.js';
import { makeOfflineJsRepo, manifestsAddingTinyDep2, tinyDep2Test } from '../support/js-repo.js';
import {
  conversationText,
  type ModelServer,
  startModelServer,
  text,
  toolResults,
  toolUse,
} from '../support/model-server.js';
import { planInput, type TaskInput, task } from '../support/plans.js';
import { stackUnderMocks } from '../support/stack-under-mocks.js';
import { tempDir } from '../support/tmp.js';
import { NODE_TEST, operation } from '../support/verify.js';

const work = tempDir('po-batch-');
const ACTIVE = ['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING'] as const;

function writeJson(name: string, value: unknown): string {
  const file = path.join(work, `${name}-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

const writePlan = (tasks: TaskInput[], executors: number, requirements?: string) =>
  writeJson('plan', { ...planInput(tasks, executors), ...(requirements && { requirements }) });

/** A run through `--backend-config`, as a user types it; its exit, output and run directory. */
async function batchRun(configFile: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const output = path.join(work, `runs-${randomUUID()}`);
  const result = await runCli(
    ['run', '--backend-config', configFile, ...args, '-o', output, '--json'],
    work,
    env,
  );
  const runDir = result.stdout.trim() ? resultLine(result.stdout).runDir : '';
  return { ...result, runDir };
}

/** The same plan on the local backend: the tree a Batch run must reproduce. */
async function localTree(plan: string, executors: number): Promise<string> {
  const output = path.join(work, `local-${randomUUID()}`);
  const result = await runCli(
    ['run', '--plan', plan, '-e', String(executors), '-o', output, '--json'],
    work,
  );
  expect(result.code, result.stderr).toBe(0);
  return treeHash(path.join(resultLine(result.stdout).runDir, 'project'));
}

/** Starts a run in the background; resolves once its run directory exists. */
function startBatchRun(configFile: string, args: string[]) {
  const output = path.join(work, `runs-${randomUUID()}`);
  return startRunIn(['run', '--backend-config', configFile, ...args], work, output);
}

const jobsOf = (sandbox: BatchSandbox, runId: string) =>
  sandbox.record.submissions.filter((s) => s.jobName.startsWith(jobNamePrefix(runId)));
const submissionsFor = (sandbox: BatchSandbox, runId: string, taskId: string) =>
  jobsOf(sandbox, runId).filter((s) => s.tags['parallel-orchestrator:task-id'] === taskId);
const statusOf = (sandbox: BatchSandbox, jobId: string) => sandbox.record.statusesOf(jobId).at(-1);

/** Twelve tasks in four levels, fan-in and fan-out. */
const TWELVE = [
  task('a', [], 300),
  task('b', [], 300),
  task('c', [], 300),
  task('d', ['a'], 300),
  task('e', ['a', 'b'], 300),
  task('f', ['b'], 300),
  task('g', ['c'], 300),
  task('h', ['d', 'e'], 300),
  task('i', ['e', 'f'], 300),
  task('j', ['g'], 300),
  task('k', ['h', 'i'], 300),
  task('l', ['j', 'k'], 300),
];

/** What a hostile agent in a job reads for credentials and URLs. */
const LEAK_SOURCES =
  '/run/secrets/* /proc/[0-9]*/environ /output/staging /output/staging/* /output/task/*';

describeDocker('the Batch backend on the local Batch sandbox', () => {
  let sandbox: BatchSandbox;
  let config: string;
  let made: Awaited<ReturnType<typeof stackUnderMocks>>;

  async function withSandbox(options: BatchSandboxOptions) {
    const own = await startBatchSandbox({
      image: IMAGE,
      transitionMs: 50,
      stopTimeoutSeconds: 5,
      ...options,
    });
    return { own, file: writeJson('sandbox', own.config) };
  }

  beforeAll(async () => {
    // The stack the component makes, IAM enforced with its policies: the host holds only the
    // submitter policy, jobs their job role, container starts the execution role.
    made = await stackUnderMocks({
      computeType: 'EC2',
      maxVcpus: 8,
      vcpus: 1,
      memoryMib: 2048,
    });
    ({ own: sandbox, file: config } = await withSandbox({
      stack: made.stack,
      secrets: { [made.apiKeySecretArn as string]: 'sk-placeholder-for-simulated-runs' },
    }));
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  it('runs 12 dependent tasks as one job per attempt, never more than M at once, to the local tree', async () => {
    const requirements = `Build it.\n${'Every detail matters. '.repeat(1_000)}`;
    const plan = writePlan(TWELVE, 3, requirements);
    const run = await batchRun(config, ['--plan', plan, '-e', '3']);
    expect(run.code, run.stderr).toBe(0);
    // Every call of the host and of the jobs was one the stack's policies allow.
    expect(sandbox.record.denied()).toEqual([]);
    const summary = readSummary(run.runDir);
    const runId = path.basename(run.runDir);
    const jobs = jobsOf(sandbox, runId);
    // One SubmitJob per attempt, each its own job.
    expect(jobs).toHaveLength(summary.totals.attempts);
    expect(new Set(jobs.map((j) => j.jobName)).size).toBe(jobs.length);
    expect(
      sandbox.record.maxConcurrent(
        ACTIVE,
        jobs.map((j) => j.jobId),
      ),
    ).toBeLessThanOrEqual(3);
    expect(
      sandbox.record.maxConcurrent(
        ACTIVE,
        jobs.map((j) => j.jobId),
      ),
    ).toBeGreaterThan(1);
    // Requirements of 22,000 characters stay in S3: the overrides carry ids and locations.
    const submitted: readonly string[] = [...BATCH_JOB_ENV.submission, BATCH_INPUT_URL_ENV];
    for (const job of jobs) {
      expect(job.overridesChars).toBeLessThan(BATCH_LIMITS.containerOverridesChars);
      expect(Object.keys(job.environment).every((name) => submitted.includes(name))).toBe(true);
      expect(job.environment).not.toHaveProperty('REQUIREMENTS');
      expect(job.environment.S3_PREFIX).toMatch(
        new RegExp(`^runs/${runId}/tasks/[a-l]/attempt-1/$`),
      );
    }
    expect(treeHash(path.join(run.runDir, 'project'))).toBe(await localTree(plan, 3));
    // Each task's log came from the job's log stream; status shows the job and its state.
    expect(readFileSync(path.join(run.runDir, 'tasks', 'l', 'executor.log'), 'utf8')).toMatch(
      /running task l .*on AWS Batch/,
    );
    const status = await runCli(['status', run.runDir], work);
    expect(status.stdout).toMatch(/JOB STATE/);
    expect(status.stdout).toMatch(/\bl\s+succeeded\s+1\s+\S+\s+[0-9a-f-]{36}\s+SUCCEEDED/);
    // Simulated mode on Batch: the jobs ran the simulated executor, which calls no model.
    for (const id of ['a', 'l'])
      expect(readFileSync(path.join(run.runDir, 'tasks', id, 'executor.log'), 'utf8')).toMatch(
        new RegExp(
          `running task ${id} \\(attempt 1, simulate\\) on AWS Batch\\n.*simulating task ${id} attempt 1`,
        ),
      );
  });

  it('prints at most 3 lines a task without a terminal; orchestrator.log keeps every job state', async () => {
    const plan = writePlan(
      Array.from({ length: 6 }, (_, i) => task(`p${i}`, [], 200)),
      3,
    );
    const output = path.join(work, `runs-${randomUUID()}`);
    const run = await runCli(
      ['run', '--backend-config', config, '--plan', plan, '-e', '3', '-o', output],
      work,
    );
    expect(run.code, run.stderr).toBe(0);
    for (let i = 0; i < 6; i++) {
      const lines = run.stdout.split('\n').filter((line) => line.includes(`task p${i} `));
      expect(lines.length, lines.join('\n')).toBeLessThanOrEqual(3);
      expect(lines.some((line) => / job \S+ \(\S+\) RUNNING$/.test(line))).toBe(true);
    }
    const [runDir] = readdirSync(output);
    const log = readFileSync(path.join(output, runDir as string, 'orchestrator.log'), 'utf8');
    for (const state of ['SUBMITTED', 'RUNNING', 'SUCCEEDED'])
      expect(log).toMatch(new RegExp(`task p0 attempt 1: job \\S+ \\(\\S+\\) ${state}`));
  });

  it('survives Spot reclaims and throttling, with the submit rate bounded', async () => {
    const plan = writePlan(
      [task('spot', [], 2500), ...Array.from({ length: 7 }, (_, i) => task(`t${i}`, [], 200))],
      8,
    );
    sandbox.throttle('SubmitJob', 4);
    // Batch may not list a job for a while after accepting it: that is pending, not lost.
    sandbox.hideAfterSubmit(1500);
    const stop = sandbox.reclaimWhenRunning(/-spot-a1$/, 700, 'ec2');
    let run: Awaited<ReturnType<typeof batchRun>>;
    try {
      run = await batchRun(config, ['--plan', plan, '-e', '8', '--batch-submit-rate', '2']);
    } finally {
      stop();
      sandbox.hideAfterSubmit(0);
    }
    expect(run.code, run.stderr).toBe(0);
    const runId = path.basename(run.runDir);
    // The reclaimed job was retried by Batch's own retry strategy: one submission, two runs.
    const [spot] = submissionsFor(sandbox, runId, 'spot');
    expect(submissionsFor(sandbox, runId, 'spot')).toHaveLength(1);
    const statuses = sandbox.record.statusesOf(spot?.jobId ?? '');
    expect(statuses.filter((s) => s === 'RUNNING')).toHaveLength(2);
    expect(
      sandbox.record.transitions.some(
        (t) => t.jobId === spot?.jobId && /Host EC2 .* terminated/.test(t.statusReason ?? ''),
      ),
    ).toBe(true);
    // Four throttled answers, retried; every request, retries too, within the rate: 2 + 2 a second.
    const submits = sandbox.record.calls.filter(
      (c) => c.operation === 'SubmitJob' && c.body.includes(jobNamePrefix(runId)),
    );
    expect(submits.filter((c) => c.throttled)).toHaveLength(4);
    expect(submits.filter((c) => !c.throttled)).toHaveLength(8);
    const times = submits.map((c) => c.at);
    const busiest = Math.max(
      ...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length),
    );
    expect(busiest).toBeLessThanOrEqual(4);
  });

  it('terminates a job stuck in RUNNABLE and says why; its dependents are blocked, the rest goes on', async () => {
    const plan = writePlan(
      [task('stuck', [], 200), task('after', ['stuck'], 200), task('free', [], 200)],
      2,
    );
    const release = sandbox.holdRunnable(/-stuck-a\d$/);
    let run: Awaited<ReturnType<typeof batchRun>>;
    try {
      run = await batchRun(config, [
        '--plan',
        plan,
        '-e',
        '2',
        '--retries',
        '0',
        '--batch-runnable-timeout',
        '2s',
      ]);
    } finally {
      release();
    }
    expect(run.code, run.stderr).toBe(1);
    const summary = readSummary(run.runDir);
    const byId = Object.fromEntries(summary.tasks.map((t) => [t.taskId, t]));
    expect(byId.stuck?.status).toBe('failed');
    expect(byId.stuck?.error).toMatch(
      /waited 2s in RUNNABLE: no compute environment of the queue can place it/,
    );
    expect(byId.after?.status).toBe('blocked');
    expect(byId.free?.status).toBe('succeeded');
    const [stuck] = submissionsFor(sandbox, path.basename(run.runDir), 'stuck');
    expect(
      sandbox.record.calls.some(
        (c) => c.operation === 'TerminateJob' && c.body.includes(stuck?.jobId ?? '?'),
      ),
    ).toBe(true);
    expect(statusOf(sandbox, stuck?.jobId ?? '')).toBe('FAILED');
  });

  it('lets jobs wait their turn for the vCPUs: -e 6 on 2 vCPUs with a 3s RUNNABLE timeout, each task in one attempt', async () => {
    const { own, file } = await withSandbox({ maxVcpus: 2, vcpusPerJob: 1 });
    try {
      const plan = writePlan(
        Array.from({ length: 6 }, (_, i) => task(`q${i}`, [], 2500)),
        6,
      );
      const run = await batchRun(file, [
        '--plan',
        plan,
        '-e',
        '6',
        '--batch-runnable-timeout',
        '3s',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const summary = readSummary(run.runDir);
      expect(summary.tasks.map((t) => t.attempts)).toEqual([1, 1, 1, 1, 1, 1]);
      const jobs = jobsOf(own, path.basename(run.runDir));
      expect(jobs).toHaveLength(6);
      const ids = jobs.map((j) => j.jobId);
      expect(own.record.maxConcurrent(['STARTING', 'RUNNING'], ids)).toBe(2);
      expect(own.record.calls.filter((c) => c.operation === 'TerminateJob')).toEqual([]);
      // Jobs did wait in RUNNABLE past the timeout, with no status reason: queued, not blocked.
      const waited = ids.map((id) => {
        const seen = own.record.transitions.filter((t) => t.jobId === id);
        const runnable = seen.find((t) => t.status === 'RUNNABLE');
        const starting = seen.find((t) => t.status === 'STARTING');
        expect(runnable?.statusReason).toBeUndefined();
        return (starting?.at ?? 0) - (runnable?.at ?? 0);
      });
      expect(Math.max(...waited)).toBeGreaterThan(3000);
      // Said at the start: more executors than the compute environment runs at once.
      expect(run.stderr).toMatch(
        /note: -e 6, but the compute environment runs at most 2 jobs at once \(maxVcpus 2, 1 vCPU a job\)/,
      );
    } finally {
      await own.close();
    }
  });

  it("copies a job's whole log, past empty pages whose token still moves on", async () => {
    // The job's last line comes 2 s after the one before; read in windows of 100 ms of event
    // time, the stream answers empty pages across that gap before the tail.
    sandbox.pageLogsByTime(100);
    let run: Awaited<ReturnType<typeof batchRun>>;
    try {
      run = await batchRun(config, ['--plan', writePlan([task('tail', [], 2000)], 1)]);
    } finally {
      sandbox.pageLogsByTime(0);
    }
    expect(run.code, run.stderr).toBe(0);
    const log = readFileSync(path.join(run.runDir, 'tasks', 'tail', 'executor.log'), 'utf8');
    expect(log).toMatch(/simulating task tail attempt 1/);
    expect(log.trimEnd().split('\n').at(-1)).toMatch(/task tail succeeded$/);
  });

  it('finds the job of a lost SubmitJob answer once ListJobs shows it: one job for the attempt', async () => {
    sandbox.loseAnswers('SubmitJob', 1);
    // ListJobs shows new jobs 4 s late, DescribeJobs 1.5 s.
    sandbox.hideAfterSubmit(1500, 4000);
    let run: Awaited<ReturnType<typeof batchRun>>;
    try {
      run = await batchRun(config, ['--plan', writePlan([task('lost', [], 500)], 1)]);
    } finally {
      sandbox.hideAfterSubmit(0);
    }
    expect(run.code, run.stderr).toBe(0);
    const runId = path.basename(run.runDir);
    expect(readSummary(run.runDir).tasks[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
    const submits = sandbox.record.calls.filter(
      (c) => c.operation === 'SubmitJob' && c.body.includes(jobNamePrefix(runId)),
    );
    expect(submits.map((c) => c.answerLost ?? false)).toEqual([true]);
    expect(submissionsFor(sandbox, runId, 'lost')).toHaveLength(1);
  });

  it('terminates a twin that ListJobs shows only after its job was submitted again', async () => {
    const { own } = await withSandbox({
      jobDefinitions: [
        {
          arn: 'arn:aws:batch:us-east-1:000000000000:job-definition/sleeper:1',
          containerProperties: {
            image: 'parallel-orchestrator:latest',
            command: ['sleep', '30'],
            resourceRequirements: [
              { type: 'VCPU', value: '0.5' },
              { type: 'MEMORY', value: '512' },
            ],
          },
        },
      ],
    });
    try {
      // ListJobs lags 3 s behind a submission; the submitter looks for 1 s only.
      own.loseAnswers('SubmitJob', 1);
      own.hideAfterSubmit(0, 3000);
      const clients = awsClients(own.config);
      const submitter = new JobSubmitter(
        { submit: clients.submit, lookup: clients.batch },
        own.config.jobQueueArn,
        own.config.jobDefinitionArn,
        10,
        { windowMs: 1000, firstMs: 200, capMs: 400, sweepMs: 200 },
      );
      const name = 'po-twins-t-a1';
      const { id, inDoubt } = await submitter.submit(
        {
          name,
          runId: 'twins',
          taskId: 't',
          attempt: 1,
          executor: 0,
          executors: 1,
          real: false,
          requirements: '',
          prefix: 'runs/twins/tasks/t/attempt-1/',
          // Nothing answers there: the job only has to exist.
          inputUrl: 'http://127.0.0.1:9/input.json',
          timeoutMs: 60_000,
        },
        new AbortController().signal,
      );
      expect(inDoubt).toBe(true);
      const stop = submitter.sweepTwins(name, id);
      const twin = own.record.submissions.find((s) => s.jobId !== id);
      await waitFor(
        () => (statusOf(own, twin?.jobId ?? '') === 'FAILED' ? true : undefined),
        20_000,
      );
      await stop();
      expect(own.record.submissions).toHaveLength(2);
      const last = own.record.transitions.filter((t) => t.jobId === twin?.jobId).at(-1);
      expect(last?.statusReason).toBe(`a twin of job ${id}: the answer to its submission was lost`);
      expect(['RUNNABLE', 'STARTING', 'RUNNING']).toContain(statusOf(own, id));
      for (const client of Object.values(clients)) client.destroy();
    } finally {
      await own.close();
    }
  });

  it('says in one line that the stack was updated when its job definition revision is retired, and tries no job again', async () => {
    const { own, file } = await withSandbox({});
    try {
      const batch = new BatchClient({
        region: own.config.region,
        endpoint: own.config.sandbox?.batch,
        credentials: own.config.sandbox?.credentials,
      });
      // What `pulumi up` does to the revision the exported config names.
      await batch.send(
        new DeregisterJobDefinitionCommand({ jobDefinition: own.config.jobDefinitionArn }),
      );
      batch.destroy();
      const plan = writePlan([task('one', [], 100), task('two', [], 100)], 2);
      const run = await batchRun(file, ['--plan', plan, '-e', '2', '--retry-delay', '0s']);
      expect(run.code, run.stderr).toBe(1);
      for (const result of readSummary(run.runDir).tasks) {
        expect(result).toMatchObject({ status: 'failed', attempts: 1 });
        expect(result.error).toMatch(
          /^job definition \S+:1 no longer takes jobs: the stack was updated: export runtimeConfig again/,
        );
        expect(result.error).not.toContain('\n');
      }
      expect(own.record.calls.filter((c) => c.operation === 'SubmitJob')).toHaveLength(2);
    } finally {
      await own.close();
    }
  });

  it('says in one line which permission a denied read of result.json lacks, and does not retry it', async () => {
    // The stack's submitter policy with the task's result.json taken away, as a hand-made
    // policy might leave it.
    const bucketArn = `arn:aws:s3:::${made.runtimeConfig.bucketName}`;
    const noResult: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'NoResult',
          Effect: 'Deny',
          Action: ['s3:GetObject'],
          Resource: [`${bucketArn}/runs/*/tasks/denied/*/result.json`],
        },
      ],
    };
    const { own, file } = await withSandbox({
      stack: made.stack,
      iam: { submitter: [made.stack.submitterPolicy, noResult], roles: made.stack.rolePolicies },
      secrets: { [made.apiKeySecretArn as string]: 'sk-placeholder-for-simulated-runs' },
    });
    try {
      const run = await batchRun(file, [
        '--plan',
        writePlan([task('denied', [], 100)], 1),
        '--retries',
        '1',
        '--retry-delay',
        '0s',
      ]);
      expect(run.code, run.stderr).toBe(1);
      const [result] = readSummary(run.runDir).tasks;
      expect(result).toMatchObject({ status: 'failed', attempts: 1 });
      expect(result?.error).toMatch(
        /cannot read s3:\/\/\S+\/tasks\/denied\/attempt-1\/result\.json: access denied: the orchestrator's AWS credentials lack s3:GetObject/,
      );
      expect(submissionsFor(own, path.basename(run.runDir), 'denied')).toHaveLength(1);
      expect(own.record.denied().map((d) => d.action)).toEqual(['s3:GetObject']);
    } finally {
      await own.close();
    }
  });

  it('adopts jobs that outlive a killed orchestrator: no second submission, same tree', async () => {
    const tasks = [
      task('quick', [], 1500),
      task('slow', [], 6000),
      task('next', ['quick'], 200),
      task('last', ['slow'], 200),
    ];
    const plan = writePlan(tasks, 2);
    const run = await startBatchRun(config, ['--plan', plan, '-e', '2']);
    const jobsRunning = () => {
      const jobs = jobsOf(sandbox, run.runId);
      return jobs.length === 2 && jobs.every((j) => statusOf(sandbox, j.jobId) === 'RUNNING')
        ? jobs
        : undefined;
    };
    const jobs = await waitFor(jobsRunning, 30_000);
    run.child.kill('SIGKILL');
    await run.done;
    const quick = jobs.find((j) => j.tags['parallel-orchestrator:task-id'] === 'quick');
    // One job ends while no orchestrator watches; the other is still running at the resume.
    await waitFor(
      () => (statusOf(sandbox, quick?.jobId ?? '') === 'SUCCEEDED' ? true : undefined),
      30_000,
    );
    const slow = jobs.find((j) => j.tags['parallel-orchestrator:task-id'] === 'slow');
    expect(statusOf(sandbox, slow?.jobId ?? '')).toBe('RUNNING');
    // As if the orchestrator died between SubmitJob and journaling its answer: slow's job is
    // known by name only, and found by it.
    const journal = path.join(run.runDir, 'events.jsonl');
    const kept = readFileSync(journal, 'utf8')
      .split('\n')
      .filter(
        (line) =>
          !(
            line.includes('"task-job"') &&
            line.includes('"taskId":"slow"') &&
            !line.includes('"submitting"')
          ),
      );
    writeFileSync(journal, kept.join('\n'));
    const resumed = await runCli(['resume', run.runDir, '--json'], work);
    expect(resumed.code, resumed.stderr).toBe(0);
    for (const id of ['quick', 'slow', 'next', 'last'])
      expect(submissionsFor(sandbox, run.runId, id), id).toHaveLength(1);
    const adopted = readEvents(run.runDir).filter((e) => e.type === 'task-adopted');
    expect(adopted.map((e) => 'taskId' in e && e.taskId).sort()).toEqual(['quick', 'slow']);
    expect(treeHash(path.join(run.runDir, 'project'))).toBe(await localTree(plan, 2));
  });

  it('Ctrl-C terminates every unfinished job and leaves nothing running in Docker', async () => {
    const plan = writePlan(
      [task('x', [], 60_000), task('y', [], 60_000), task('z', ['x'], 100)],
      2,
    );
    const run = await startBatchRun(config, ['--plan', plan, '-e', '2']);
    const jobs = await waitFor(() => {
      const found = jobsOf(sandbox, run.runId);
      return found.length === 2 && found.every((j) => statusOf(sandbox, j.jobId) === 'RUNNING')
        ? found
        : undefined;
    }, 30_000);
    run.child.kill('SIGINT');
    const { code } = await run.done;
    expect(code).toBe(130);
    for (const job of jobs) {
      await waitFor(() => (statusOf(sandbox, job.jobId) === 'FAILED' ? true : undefined), 20_000);
      const last = sandbox.record.transitions.filter((t) => t.jobId === job.jobId).at(-1);
      expect(last?.statusReason).toMatch(/cancelled by SIGINT/);
    }
    // The job entrypoint stopped its agent on SIGTERM and exited non-zero (so a Spot retry fires).
    const batch = new BatchClient({
      region: sandbox.config.region,
      endpoint: sandbox.config.sandbox?.batch,
      credentials: sandbox.config.sandbox?.credentials,
    });
    const described = await batch.send(new DescribeJobsCommand({ jobs: jobs.map((j) => j.jobId) }));
    batch.destroy();
    expect(described.jobs?.map((j) => j.container?.exitCode)).toEqual([143, 143]);
    const terminating = readEvents(run.runDir).filter(
      (e) => e.type === 'task-job' && e.state === 'terminating',
    );
    expect(terminating).toHaveLength(2);
    const left = await docker([
      'ps',
      '-q',
      '--filter',
      `label=parallel-orchestrator.batch-sandbox=${sandbox.id}`,
    ]);
    expect(left.stdout.trim()).toBe('');
  });

  it('meets conflicts, retries and failed attempts as the local backend does', async () => {
    const tasks = [
      task('first', [], undefined, {
        simulate: { durationMs: 100, files: { 'shared.txt': 'first\n' } },
      }),
      task('second', [], undefined, {
        simulate: { durationMs: 2500, files: { 'shared.txt': 'second\n' } },
      }),
      task('flaky', [], undefined, { simulate: { durationMs: 100, failAttempts: 1 } }),
      task('broken', [], undefined, {
        simulate: { durationMs: 100, failAttempts: 9, failure: 'permanent' },
      }),
      task('after', ['broken'], 100),
    ];
    const plan = writePlan(tasks, 4);
    const outcome = async (runDir: string) => ({
      tasks: readSummary(runDir).tasks.map(({ taskId, status, attempts, conflicts }) => ({
        taskId,
        status,
        attempts,
        conflicts: conflicts?.length ?? 0,
      })),
      tree: treeHash(path.join(runDir, 'project')),
      branches: gitOut(path.join(runDir, 'project'), ['branch', '--format=%(refname:short)']),
    });
    const local = await runCli(
      [
        'run',
        '--plan',
        plan,
        '-e',
        '4',
        '--retry-delay',
        '0s',
        '-o',
        path.join(work, `local-${randomUUID()}`),
        '--json',
      ],
      work,
    );
    const batch = await batchRun(config, ['--plan', plan, '-e', '4', '--retry-delay', '0s']);
    expect([local.code, batch.code]).toEqual([1, 1]);
    const expected = await outcome(resultLine(local.stdout).runDir);
    expect(expected.tasks.find((t) => t.taskId === 'second')?.conflicts).toBe(1);
    expect(await outcome(batch.runDir)).toEqual(expected);
  });

  it('runs --verify in the job on its work, and in a job of its own on main at the end', async () => {
    const plan = writePlan(
      [operation('mul', 'a * b', 6, 'a + b'), operation('sub', 'a - b', -1)],
      2,
    );
    const run = await batchRun(config, ['--plan', plan, '--verify', NODE_TEST]);
    expect(run.code, run.stderr).toBe(0);
    const summary = readSummary(run.runDir);
    expect(summary.tasks.find((t) => t.taskId === 'mul')).toMatchObject({
      attempts: 2,
      verifyFailures: 1,
    });
    expect(summary.verify?.final).toMatchObject({ passed: true, exitCode: 0 });
    expect(readFileSync(path.join(run.runDir, 'tasks/mul/verify.log'), 'utf8')).toContain('5 == 6');
    expect(readFileSync(path.join(run.runDir, 'verify.log'), 'utf8')).toMatch(/pass 2\n/);
    // One job per attempt, each checking its own work, and one for the base before planning
    // and one for main at the end, each with a name and a prefix of its own.
    const runId = path.basename(run.runDir);
    expect(
      jobsOf(sandbox, runId)
        .map((s) => s.jobName)
        .sort(),
    ).toEqual(
      ['verify', 'verify-2', 'mul-a1', 'mul-a2', 'sub-a1']
        .map((j) => `${jobNamePrefix(runId)}${j}`)
        .sort(),
    );
    const prefixes = jobsOf(sandbox, runId)
      .filter((s) => s.tags['parallel-orchestrator:task-id'] === FINAL_VERIFY_TASK_ID)
      .map((s) => s.environment.S3_PREFIX);
    expect(prefixes.sort()).toEqual([`runs/${runId}/verify-2/`, `runs/${runId}/verify/`]);
  });

  it('--setup prepares the environment in one _setup job, an archive in the state bucket every job starts from read-only; a second run finds it', async () => {
    const repo = await javascriptRepository();
    const plan = writePlan(
      [
        task('triple', [], undefined, {
          simulate: {
            durationMs: 100,
            files: { 'test/triple.test.js': depTest('triple', 'double(3) + 3', 9) },
          },
        }),
        task('quad', ['triple'], undefined, {
          simulate: {
            durationMs: 100,
            files: { 'test/quad.test.js': depTest('quad', 'double(double(1))', 4) },
          },
        }),
      ],
      2,
    );
    const args = setupArgs(repo, plan);
    const first = await batchRun(config, args);
    expect(first.code, first.stderr).toBe(0);
    const summary = readSummary(first.runDir);
    expect(summary.verify?.final).toMatchObject({ passed: true, exitCode: 0 });
    expect(summary.tasks.map((t) => [t.taskId, t.status, t.attempts])).toEqual([
      ['triple', 'succeeded', 1],
      ['quad', 'succeeded', 1],
    ]);
    const runId = path.basename(first.runDir);
    // One setup job for the run's one key; every other job got its archive.
    const setups = submissionsFor(sandbox, runId, SETUP_TASK_ID);
    expect(setups).toHaveLength(1);
    expect(setups[0]?.environment.S3_PREFIX).toMatch(new RegExp(`^runs/${runId}/setup/`));
    const [prepared] = readEvents(first.runDir).filter((e) => e.type === 'environment-prepared');
    expect(prepared).toMatchObject({ cached: false, paths: ['node_modules/'] });
    const key = (prepared as { key: string }).key;
    const objects = await bucketKeys(sandbox, made.runtimeConfig.bucketName, 'runs/_environments/');
    expect(objects).toEqual(
      expect.arrayContaining([
        `runs/_environments/${key}.json`,
        expect.stringMatching(
          new RegExp(`^runs/_environments/${key}\\.po-[0-9a-f]+-setup-[0-9a-f]+-1\\.tar\\.gz$`),
        ),
      ]),
    );
    // The base's check, each attempt's and main's ran the dependency's tests in jobs that
    // extracted the archive; `test/env.test.js` showed it unwritable to the check, its cache not.
    for (const log of ['verify.log', 'tasks/triple/verify.log', 'tasks/quad/verify.log'])
      expect(readFileSync(path.join(first.runDir, log), 'utf8')).toMatch(/\bfail 0\n/);
    expect(readFileSync(path.join(first.runDir, 'verify.log'), 'utf8')).toMatch(/\bpass 4\n/);
    expect(readFileSync(path.join(first.runDir, 'tasks/quad/executor.log'), 'utf8')).toMatch(
      /environment: \d+ bytes downloaded and checked/,
    );
    expect(sandbox.record.denied()).toEqual([]);
    // Ignored, never committed, whatever the jobs had in their workspaces.
    const project = path.join(first.runDir, 'project');
    const committed = gitOut(project, ['log', '--all', '--format=', '--name-only']);
    expect(committed).toContain('test/quad.test.js');
    expect(committed).not.toMatch(/node_modules/);

    // The same repository again: the environment is found in the bucket, no setup job runs.
    const second = await batchRun(config, args);
    expect(second.code, second.stderr).toBe(0);
    const secondId = path.basename(second.runDir);
    expect(submissionsFor(sandbox, secondId, SETUP_TASK_ID)).toEqual([]);
    expect(readEvents(second.runDir).find((e) => e.type === 'environment-prepared')).toMatchObject({
      key,
      cached: true,
    });
    expect(readSummary(second.runDir).verify?.final).toMatchObject({ passed: true });
    expect(sandbox.record.denied()).toEqual([]);
  }, 240_000);

  it('prepares the merge of work that adds a dependency in a setup job of its own, checks it there, and starts dependents from it', async () => {
    const repo = await javascriptRepository();
    const plan = writePlan(
      [
        task('add-dep', [], undefined, {
          simulate: {
            durationMs: 100,
            files: { 'test/add-dep.test.js': tinyDep2Test('add-dep', 2) },
            replace: await manifestsAddingTinyDep2(),
          },
        }),
        task('use-dep', ['add-dep'], undefined, {
          simulate: {
            durationMs: 100,
            files: { 'test/use-dep.test.js': tinyDep2Test('use-dep', 3) },
          },
        }),
      ],
      1,
    );
    const run = await batchRun(config, setupArgs(repo, plan));
    expect(run.code, run.stderr).toBe(0);
    const runId = path.basename(run.runDir);
    const prepared = readEvents(run.runDir).filter((e) => e.type === 'environment-prepared');
    const merged = prepared.find((e) => 'taskId' in e && e.taskId === 'add-dep') as
      | { key: string; cached: boolean; paths: string[] }
      | undefined;
    expect(merged).toMatchObject({ cached: false });
    const base = prepared.find((e) => !('taskId' in e && e.taskId)) as { key: string };
    expect(merged?.key).not.toBe(base.key);
    // The attempt's job had the base's environment, without tiny-dep2: its merge was checked
    // again in a job of its own with the new one, from which the dependent's job and main's
    // check started too.
    const names = jobsOf(sandbox, runId).map((j) => j.jobName);
    expect(names).toContain(`${jobNamePrefix(runId)}add-dep-a1-verify`);
    const summary = readSummary(run.runDir);
    expect(summary.tasks.map((t) => [t.taskId, t.status, t.attempts])).toEqual([
      ['add-dep', 'succeeded', 1],
      ['use-dep', 'succeeded', 1],
    ]);
    expect(readFileSync(path.join(run.runDir, 'tasks/add-dep/setup.log'), 'utf8')).toContain(
      `_environments/${merged?.key}.`,
    );
    expect(readFileSync(path.join(run.runDir, 'tasks/use-dep/executor.log'), 'utf8')).toContain(
      `_environments/${merged?.key}.`,
    );
    expect(summary.verify?.final).toMatchObject({ passed: true });
    expect(readFileSync(path.join(run.runDir, 'verify.log'), 'utf8')).toMatch(/\bpass 4\n/);
    expect(sandbox.record.denied()).toEqual([]);
  }, 240_000);

  it('stops before any task when the setup fails or writes outside ignored paths, with its output', async () => {
    const repo = await javascriptRepository();
    const plan = writePlan([task('x', [], 100)], 1);
    const failing = await batchRun(config, [
      '--repo',
      repo,
      '--plan',
      plan,
      '--setup',
      'echo no registry here >&2; exit 3',
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/--setup "echo no registry here >&2; exit 3" failed \(exit 3\)/);
    expect(failing.stderr).toContain('no registry here');
    expect(submissionsFor(sandbox, path.basename(failing.runDir), 'x')).toEqual([]);
    const stray = await batchRun(config, [
      '--repo',
      repo,
      '--plan',
      plan,
      '--setup',
      'npm ci --offline && echo changed >> package.json',
    ]);
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(
      /--setup changed tracked files or wrote outside ignored paths: package\.json/,
    );
    expect(submissionsFor(sandbox, path.basename(stray.runDir), 'x')).toEqual([]);
  }, 120_000);

  it('keeps a link a setup leaves out of the environment, as every backend does', async () => {
    const repo = await javascriptRepository();
    writeFileSync(path.join(repo, '.gitignore'), 'node_modules/\ndeps\n');
    execFileSync('git', ['commit', '-qam', 'deps are ignored'], { cwd: repo, env: fixtureEnv() });
    const run = await batchRun(config, [
      '--repo',
      repo,
      '--plan',
      writePlan([task('a', [], 100)], 1),
      '--setup',
      'npm ci --offline && ln -s / deps',
      '--verify',
      'npm test && test ! -e deps',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(readSummary(run.runDir).environment?.paths).toEqual(['node_modules/']);
    expect(readFileSync(path.join(run.runDir, 'setup.log'), 'utf8')).toContain(
      'left out of the environment: deps (not a file or a directory)',
    );
  }, 120_000);

  it('refuses --setup-network none on Batch in one line, before any job', async () => {
    const repo = await javascriptRepository();
    const run = await batchRun(config, [
      '--repo',
      repo,
      '--plan',
      writePlan([task('x', [], 100)], 1),
      '--setup',
      'npm ci --offline',
      '--setup-network',
      'none',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/--setup-network none: a Batch job's network is its stack's/);
  });

  it('--task-timeout terminates the job and tries again', async () => {
    const plan = writePlan([task('slow', [], 60_000)], 1);
    const run = await batchRun(config, [
      '--plan',
      plan,
      '-e',
      '1',
      '--task-timeout',
      '3s',
      '--retries',
      '1',
      '--retry-delay',
      '0s',
    ]);
    expect(run.code, run.stderr).toBe(1);
    const [result] = readSummary(run.runDir).tasks;
    expect(result).toMatchObject({ status: 'failed', attempts: 2 });
    expect(result?.error).toMatch(/timed out/i);
    const jobs = submissionsFor(sandbox, path.basename(run.runDir), 'slow');
    expect(jobs).toHaveLength(2);
    for (const job of jobs)
      expect(
        sandbox.record.calls.some(
          (c) => c.operation === 'TerminateJob' && c.body.includes(job.jobId),
        ),
      ).toBe(true);
  });

  it('fails an attempt whose job staged a corrupt, missing or unreadable output, as retryable, saying which', async () => {
    // A job that runs no executor: it uploads what a compromised job might, and exits 0.
    const hostile = `
      const { createHash } = require('node:crypto');
      (async () => {
        const input = await (await fetch(process.env.S3_INPUT_URL)).json();
        const put = (name, body) => fetch(input.transfer.put[name], { method: 'PUT', body });
        const claimed = { key: process.env.S3_PREFIX + 'output.bundle', bytes: 6,
          sha256: createHash('sha256').update('honest').digest('hex') };
        const result = { version: 1, outcome: { status: 'succeeded' }, commit: '1'.repeat(40), bundle: claimed };
        const task = process.env.TASK_ID;
        if (task === 'garbage') return put('result', '{"version": 1, "outcome": ');
        if (task === 'corrupt') await put('bundle', 'forged');
        if (task === 'elsewhere') claimed.key = 'runs/another-run/tasks/x/attempt-1/output.bundle';
        await put('result', JSON.stringify(result));
      })();`;
    const { own, file } = await withSandbox({
      jobDefinitions: [
        {
          arn: 'arn:aws:batch:us-east-1:000000000000:job-definition/hostile:1',
          containerProperties: {
            image: IMAGE,
            command: ['node', '-e', hostile],
            resourceRequirements: [
              { type: 'VCPU', value: '1' },
              { type: 'MEMORY', value: '512' },
            ],
            environment: [{ name: 'S3_BUCKET', value: 'parallel-orchestrator-sandbox' }],
            logConfiguration: {
              logDriver: 'awslogs',
              options: { 'awslogs-group': '/aws/batch/hostile' },
            },
          },
        },
      ],
    });
    try {
      const plan = writePlan(
        [task('corrupt'), task('missing'), task('garbage'), task('elsewhere')],
        4,
      );
      const run = await batchRun(file, [
        '--plan',
        plan,
        '-e',
        '4',
        '--retries',
        '1',
        '--retry-delay',
        '0s',
      ]);
      expect(run.code, run.stderr).toBe(1);
      const results = Object.fromEntries(readSummary(run.runDir).tasks.map((t) => [t.taskId, t]));
      expect(results.corrupt?.error).toMatch(
        /output\.bundle is corrupt: 6 bytes with SHA-256 \w+, expected 6 bytes/,
      );
      expect(results.missing?.error).toMatch(/output\.bundle is missing/);
      expect(results.garbage?.error).toMatch(/result\.json is not JSON/);
      // The host reads with its own credentials only what belongs to the attempt.
      expect(results.elsewhere?.error).toMatch(
        /result\.json names runs\/another-run\/tasks\/x\/attempt-1\/output\.bundle as its bundle/,
      );
      for (const id of ['corrupt', 'missing', 'garbage', 'elsewhere']) {
        // Retryable: each got its second attempt, as a job of its own.
        expect(results[id]?.attempts, id).toBe(2);
        expect(submissionsFor(own, path.basename(run.runDir), id)).toHaveLength(2);
      }
      expect(
        gitOut(path.join(run.runDir, 'project'), ['ls-tree', '-r', '--name-only', 'main']),
      ).toBe('');
    } finally {
      await own.close();
    }
  });

  it.each([
    ['FARGATE', 'simulated'],
    ['EC2', 'real'],
  ] as const)(
    'runs with only the submitter policy on %s compute (%s): every task done, no call denied',
    async (computeType, mode) => {
      const made = await stackUnderMocks({ computeType, maxVcpus: 4, vcpus: 1, memoryMib: 2048 });
      const server = await startModelServer(
        (r) =>
          toolResults(r) > 0
            ? { content: [text('done')] }
            : {
                content: [toolUse('Write', { file_path: 'src/made.ts', content: 'export {};\n' })],
              },
        '0.0.0.0',
      );
      // Jobs reach the scripted model server at the host's address, as a stack's reach a gateway.
      const properties = JSON.parse(made.stack.jobDefinition.containerProperties as string);
      properties.environment.push({
        name: 'ANTHROPIC_BASE_URL',
        value: `http://host.docker.internal:${new URL(server.url).port}`,
      });
      const { own, file } = await withSandbox({
        stack: {
          ...made.stack,
          jobDefinition: {
            ...made.stack.jobDefinition,
            containerProperties: JSON.stringify(properties),
          },
        },
        secrets: { [made.apiKeySecretArn as string]: `sk-ant-api03-${randomUUID()}` },
      });
      try {
        const plan = writePlan([task('one'), task('two', ['one'])], 2);
        const run = await batchRun(
          file,
          ['--plan', plan, '-e', '2', '--retries', '0', ...(mode === 'real' ? ['--real'] : [])],
          { ANTHROPIC_API_KEY: 'sk-ant-api03-host', ANTHROPIC_BASE_URL: server.url },
        );
        expect(run.code, run.stderr).toBe(0);
        expect(readSummary(run.runDir).totals.succeeded).toBe(2);
        expect(own.record.denied()).toEqual([]);
        // The jobs really ran the mode asked for.
        expect(server.messages().length > 0).toBe(mode === 'real');
      } finally {
        await own.close();
        await server.close();
      }
    },
  );

  it("runs real Claude Code in jobs of the stack's own definition; the agent reaches neither its key nor the job's URLs", async () => {
    const STACK_KEY = `sk-ant-api03-BATCH-STACK-${randomUUID()}`;
    const HOST_KEY = `sk-ant-api03-BATCH-HOST-${randomUUID()}`;
    // The stack as `pulumi up` would make it, under mocks: its runtimeConfig and job definition.
    const component = await import('../../packages/pulumi/src/index.js');
    const { mocks, result } = await underMocks(
      'dev',
      (opts) =>
        new component.ParallelOrchestrator(
          'po',
          {
            context: path.resolve(import.meta.dirname, '../..'),
            model: { provider: 'anthropic', apiKey: STACK_KEY },
          },
          opts,
        ),
    );
    const runtimeConfig = (await resolved(result.runtimeConfig)) as BatchBackendConfig;
    const stackRead = sandboxStackFrom(mocks.resources, {
      region: runtimeConfig.region,
      bucketName: runtimeConfig.bucketName,
      jobQueueArn: runtimeConfig.jobQueueArn,
      jobDefinitionArn: runtimeConfig.jobDefinitionArn,
      submitterPolicyArn: (await resolved(result.submitterPolicyArn)) as string,
    });
    expect(runtimeConfig.model.provider).toBe('anthropic');
    const secretArn =
      runtimeConfig.model.provider === 'anthropic' ? runtimeConfig.model.apiKeySecretArn : '';

    // Jobs reach the scripted model server through the host's address (as a stack's jobs reach a
    // gateway): the one change made to the stack's definition.
    const server: ModelServer = await startModelServer((r) => {
      const id = /Your task: ([a-z0-9-]+):/.exec(conversationText(r))?.[1] ?? 'x';
      // A prompt-injected agent: it copies into its work whatever of its job it can read (the
      // secret, every process's environment, the job's presigned URLs and transcript).
      if (id === 'leak' && toolResults(r) === 0)
        return {
          content: [
            toolUse('Bash', {
              command: `{ id -u; env; cat ${LEAK_SOURCES}; ls -la /output; } > leak.txt 2>&1; true`,
            }),
          ],
        };
      return toolResults(r) > 0
        ? { content: [text(`wrote ${id}`)] }
        : {
            content: [
              toolUse('Write', { file_path: `src/${id}.ts`, content: `export const ${id} = 1;\n` }),
            ],
          };
    }, '0.0.0.0');
    const port = new URL(server.url).port;
    const properties = JSON.parse(stackRead.jobDefinition.containerProperties as string);
    properties.environment.push({
      name: 'ANTHROPIC_BASE_URL',
      value: `http://host.docker.internal:${port}`,
    });
    let stack: BatchSandbox | undefined;
    try {
      stack = await startBatchSandbox({
        image: IMAGE,
        transitionMs: 50,
        stopTimeoutSeconds: 5,
        secrets: { [secretArn]: STACK_KEY },
        // The stack as the component makes it (its default compute type), IAM enforced.
        stack: {
          ...stackRead,
          jobDefinition: {
            ...stackRead.jobDefinition,
            containerProperties: JSON.stringify(properties),
          },
        },
      });
      const file = writeJson('stack', { ...runtimeConfig, sandbox: stack.config.sandbox });
      const plan = writePlan([task('alpha'), task('beta', ['alpha']), task('leak')], 2);
      const run = await batchRun(file, ['--plan', plan, '-e', '2', '--real', '--retries', '0'], {
        ANTHROPIC_API_KEY: HOST_KEY,
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`,
      });
      expect(run.code, run.stderr).toBe(0);
      expect(stack.record.denied()).toEqual([]);
      const results = Object.fromEntries(readSummary(run.runDir).tasks.map((t) => [t.taskId, t]));
      expect(results.alpha?.status).toBe('succeeded');
      expect(results.beta?.status).toBe('succeeded');
      // The agent ran as a user of its own and was refused everything it tried.
      expect(results.leak?.status).toBe('succeeded');
      const leaked = gitOut(path.join(run.runDir, 'project'), ['show', 'main:leak.txt']);
      expect(leaked.split('\n')[0]).not.toBe('0');
      expect(leaked).toMatch(/\/run\/secrets\/ANTHROPIC_API_KEY: Permission denied/);
      expect(leaked).toMatch(/\/proc\/1\/environ: Permission denied/);
      expect(leaked).toMatch(/\/output\/staging\/?[^\n]*: Permission denied/);
      for (const secret of [STACK_KEY, 'X-Amz-Signature', 'AWS_SECRET_ACCESS_KEY'])
        expect(leaked).not.toContain(secret);
      // What the jobs spent comes back with their results and counts toward the run's budget.
      expect(readSummary(run.runDir).usage.costUsd).toBeGreaterThan(0);
      expect(
        readFileSync(path.join(run.runDir, 'tasks', 'alpha', 'transcript.jsonl'), 'utf8'),
      ).toContain('"type":"result"');
      const project = path.join(run.runDir, 'project');
      expect(gitOut(project, ['ls-tree', '-r', '--name-only', 'main'])).toMatch(
        /src\/alpha\.ts[\s\S]*src\/beta\.ts/,
      );
      // The key the model server saw is the stack's secret, not the orchestrator's.
      const keys = new Set(server.requests.map((r) => r.headers['x-api-key']));
      expect([...keys]).toEqual([STACK_KEY]);
      // ...and it is nowhere the run wrote: run directory, git history, S3, the submissions.
      const everything = [
        gitOut(project, ['log', '-p', '--all']),
        ...walk(run.runDir).map((f) => readFileSync(f, 'latin1')),
        ...stack.record.calls.map((c) => c.body),
        ...(await bucketContents(stack, runtimeConfig.bucketName)),
      ].join('\n');
      expect(everything).not.toContain(STACK_KEY);
      expect(everything).toContain('export const beta');
    } finally {
      await stack?.close();
      await server.close();
    }
  }, 240_000);
});

/**
 * The offline JavaScript fixture (`tiny-dep` vendored as a packed tarball, `npm ci --offline`,
 * node_modules/ ignored, `npm test` over test/*.test.js), with one more test of its own: the
 * installed dependencies unwritable to the check, their cache directory writable.
 */
/** A run of `plan` on the offline JavaScript repository, prepared by `npm ci` and checked by `npm test`. */
function setupArgs(repo: string, plan: string): string[] {
  return ['--repo', repo, '--plan', plan, '--setup', 'npm ci --offline', '--verify', 'npm test'];
}

async function javascriptRepository(): Promise<string> {
  const { dir } = await makeOfflineJsRepo(work);
  writeFileSync(
    path.join(dir, 'test/env.test.js'),
    [
      "const { test } = require('node:test');",
      "const assert = require('node:assert');",
      "const fs = require('node:fs');",
      "test('the installed dependencies are read-only, their cache is not', () => {",
      "  assert.throws(() => fs.writeFileSync('node_modules/tiny-dep/index.js', ''), { code: 'EACCES' });",
      "  assert.throws(() => fs.mkdirSync('node_modules/planted'), { code: 'EACCES' });",
      "  fs.mkdirSync('node_modules/.cache/app', { recursive: true });",
      "  fs.writeFileSync('node_modules/.cache/app/ok', 'ok');",
      '});',
      '',
    ].join('\n'),
  );
  execFileSync('git', ['add', 'test/env.test.js'], { cwd: dir, env: fixtureEnv() });
  execFileSync('git', ['commit', '-qm', 'The environment is read-only'], {
    cwd: dir,
    env: fixtureEnv(),
  });
  return dir;
}

/** A test of tiny-dep's `double`: `call` is `expected`. */
function depTest(name: string, call: string, expected: number): string {
  return [
    "const { test } = require('node:test');",
    "const assert = require('node:assert');",
    "const { double } = require('tiny-dep');",
    `test('${name}', () => assert.equal(${call}, ${expected}));`,
    '',
  ].join('\n');
}

/** The keys of the bucket under `prefix`. */
async function bucketKeys(
  sandbox: BatchSandbox,
  bucket: string,
  prefix: string,
): Promise<string[]> {
  const s3 = new S3Client({
    region: sandbox.config.region,
    endpoint: sandbox.config.sandbox?.s3,
    credentials: sandbox.config.sandbox?.credentials,
  });
  try {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (listed.Contents ?? []).map(({ Key }) => Key as string);
  } finally {
    s3.destroy();
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(full) : entry.isFile() ? [full] : [];
  });
}

/** Every object of the bucket: its metadata and its bytes. */
async function bucketContents(sandbox: BatchSandbox, bucket: string): Promise<string[]> {
  const s3 = new S3Client({
    region: sandbox.config.region,
    endpoint: sandbox.config.sandbox?.s3,
    credentials: sandbox.config.sandbox?.credentials,
  });
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  const out: string[] = [];
  for (const { Key } of listed.Contents ?? []) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
    out.push(JSON.stringify(head.Metadata ?? {}));
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    out.push(
      Buffer.from(await (object.Body?.transformToByteArray() ?? new Uint8Array())).toString(
        'latin1',
      ),
    );
  }
  s3.destroy();
  return out;
}
