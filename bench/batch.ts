/**
 * The Batch backend on the local Batch sandbox: API calls per task, DescribeJobs calls with 100
 * jobs in flight, the speed-up of 16 one-second tasks, and the overhead per task with where it
 * goes. The sandbox runs in this process and the CLI as a child, as a user runs them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BatchSandbox, startBatchSandbox } from '../packages/batch-sandbox/src/index.js';
import { jobNamePrefix } from '../packages/runtime/src/backends/batch/submit.js';
import type { JournalEvent } from '../packages/runtime/src/contracts/events.js';
import type { PlanInput } from '../packages/runtime/src/contracts/plan.js';
import type { ExecutionSummary } from '../packages/runtime/src/contracts/results.js';
import { CLI, independent, median, type Result, round, speedupResult } from './common.js';

interface BatchRun {
  runId: string;
  summary: ExecutionSummary;
  events: JournalEvent[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a plan on the sandbox through the CLI. `during` gets the run id once the run exists and
 * may stop it (SIGINT) when it has seen what it measures.
 */
async function runOnSandbox(
  configFile: string,
  plan: PlanInput,
  executors: number,
  extra: string[] = [],
  during?: (runId: string, stop: () => void) => Promise<void>,
): Promise<BatchRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'po-bench-batch-'));
  const output = path.join(dir, 'runs');
  const planFile = path.join(dir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const args = ['run', '--backend-config', configFile, '--plan', planFile, '-e', String(executors)];
  const child = spawn(process.execPath, [CLI, ...args, '-o', output, '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  try {
    if (during) {
      let runId: string | undefined;
      while (!runId) {
        await sleep(50);
        runId = existsSync(output) ? readdirSync(output)[0] : undefined;
      }
      await during(runId, () => child.kill('SIGINT'));
    }
    await exited;
    const { runDir } = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    const read = (file: string) => readFileSync(path.join(runDir, file), 'utf8');
    return {
      runId: path.basename(runDir),
      summary: JSON.parse(read('execution_summary.json')),
      events: read('events.jsonl')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as JournalEvent),
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Requests of one operation made for one run (the job names carry the run's prefix). */
const callsOf = (sandbox: BatchSandbox, runId: string, operation: string) =>
  sandbox.record.calls.filter(
    (call) => call.operation === operation && call.body.includes(jobNamePrefix(runId)),
  );

/** Each task's phases from its journal: staging in, submission, waiting for and running the job, collecting. */
function phases(events: JournalEvent[]) {
  const byTask = new Map<string, Map<string, number>>();
  const mark = (taskId: string, phase: string, time: string) => {
    const marks = byTask.get(taskId) ?? new Map<string, number>();
    if (!marks.has(phase)) marks.set(phase, Date.parse(time));
    byTask.set(taskId, marks);
  };
  for (const event of events) {
    if (event.type === 'task-started') mark(event.taskId, 'started', event.time);
    if (event.type === 'task-job') mark(event.taskId, event.state, event.time);
    if (event.type === 'task-merging') mark(event.taskId, 'committed', event.time);
    if (event.type === 'task-succeeded') mark(event.taskId, 'merged', event.time);
  }
  const span = (from: string, to: string) =>
    round(
      median(
        [...byTask.values()]
          .map((m) => (m.get(to) ?? Number.NaN) - (m.get(from) ?? Number.NaN))
          .filter(Number.isFinite),
      ),
      0,
    );
  return {
    stageInMs: span('started', 'submitting'),
    submitMs: span('submitting', 'SUBMITTED'),
    queuedMs: span('SUBMITTED', 'RUNNING'),
    runningMs: span('RUNNING', 'SUCCEEDED'),
    collectAndCommitMs: span('SUCCEEDED', 'committed'),
    mergeMs: span('committed', 'merged'),
  };
}

async function callsPerAttempt(sandbox: BatchSandbox, config: string): Promise<Result> {
  const { runId, summary } = await runOnSandbox(config, independent(16, 0), 8);
  const submits = callsOf(sandbox, runId, 'SubmitJob').length;
  const value = round(submits / summary.totals.attempts, 2);
  return {
    name: 'batch-submits-per-attempt',
    description: '16 zero-length tasks on the Batch sandbox, M=8: SubmitJob requests per attempt',
    value,
    unit: 'calls/attempt',
    target: '== 1',
    pass: value === 1,
    attempts: summary.totals.attempts,
  };
}

/**
 * 100 jobs held RUNNABLE (none changes state, as on a queue waiting for capacity), polled with the
 * AWS defaults for a minute: DescribeJobs calls in that minute.
 */
async function describeRate(sandbox: BatchSandbox, config: string): Promise<Result> {
  const windowMs = 60_000;
  let measured = { calls: 0, jobs: 0 };
  const release = sandbox.holdRunnable('po-*');
  await runOnSandbox(
    config,
    independent(100, 0),
    100,
    ['--batch-poll', '2s-20s', '--batch-submit-rate', '50'],
    async (runId, stop) => {
      const prefix = jobNamePrefix(runId);
      try {
        while (sandbox.record.submissions.filter((s) => s.jobName.startsWith(prefix)).length < 100)
          await sleep(200);
        const from = Date.now();
        await sleep(windowMs);
        const described = sandbox.record.calls.filter(
          (call) =>
            call.operation === 'DescribeJobs' && call.at >= from && call.at < from + windowMs,
        );
        // Every call named all 100 jobs: one request per round, not one per job.
        measured = {
          calls: described.length,
          jobs: Math.min(
            ...described.map((call) => (call.body.match(/[0-9a-f-]{36}/g) ?? []).length),
          ),
        };
      } finally {
        stop();
      }
    },
  ).finally(release);
  return {
    name: 'batch-describe-calls-per-minute',
    description:
      '100 jobs in flight (held RUNNABLE) on the Batch sandbox, polled with the AWS defaults (2s-20s): DescribeJobs calls in one minute',
    value: measured.calls,
    unit: 'calls/min',
    target: '<= 30 (one per poll round, whatever the number of jobs)',
    pass: measured.calls <= 30 && measured.jobs === 100,
    jobsPerCall: measured.jobs,
  };
}

async function speedup(config: string, repeat: number): Promise<Result> {
  const plan = independent(16, 1000);
  const pairs: { one: number; eight: number }[] = [];
  for (let i = 0; i < repeat; i++) {
    const one = (await runOnSandbox(config, plan, 1)).summary.durationMs;
    const eight = (await runOnSandbox(config, plan, 8)).summary.durationMs;
    pairs.push({ one, eight });
  }
  return speedupResult(
    'batch-speedup-m8-vs-m1',
    '16 independent 1 s simulated tasks on the Batch sandbox, run time M=1 / M=8',
    4,
    pairs,
  );
}

async function overhead(config: string, repeat: number, dockerMs?: number): Promise<Result> {
  const runs: BatchRun[] = [];
  for (let i = 0; i < repeat; i++) runs.push(await runOnSandbox(config, independent(10, 0), 1));
  const samples = runs.map((run) => run.summary.durationMs / 10);
  const value = round(median(samples), 0);
  return {
    name: 'batch-overhead-per-task',
    description:
      '10 zero-length simulated tasks on the Batch sandbox, M=1: run time per task, and its median phases (from the journal)',
    value,
    unit: 'ms/task',
    target: 'measured (docker backend alongside)',
    pass: true,
    samples: samples.map((s) => round(s, 0)),
    phases: phases(runs.at(-1)?.events ?? []),
    ...(dockerMs !== undefined && { dockerBackendMsPerTask: dockerMs }),
  };
}

export async function batchScenarios(repeat: number, dockerMs?: number): Promise<Result[]> {
  // Capacity for 100 jobs at once; states change at the sandbox's pace (100 ms per queue state).
  const image = process.env.PO_TEST_IMAGE;
  const sandbox = await startBatchSandbox({ maxVcpus: 100, ...(image && { image }) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'po-bench-sandbox-'));
  const config = path.join(dir, 'batch.json');
  writeFileSync(config, JSON.stringify(sandbox.config));
  try {
    return [
      await callsPerAttempt(sandbox, config),
      await describeRate(sandbox, config),
      await speedup(config, repeat),
      await overhead(config, repeat, dockerMs),
    ];
  } finally {
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
