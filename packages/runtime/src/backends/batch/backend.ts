import { mkdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { type JobDetail, TerminateJobCommand } from '@aws-sdk/client-batch';
import {
  type BatchJobInput,
  FINAL_VERIFY_TASK_ID,
  type StagedObject,
} from '../../contracts/batch-job.js';
import type { RemoteJob } from '../../contracts/events.js';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import type { RunConfig } from '../../contracts/run-config.js';
import type { RunLayout } from '../../contracts/run-layout.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';
import type { Verification } from '../../contracts/verify.js';
import { redactor } from '../../trust/secret-scanner.js';
import { CappedLog } from '../../util/capped-log.js';
import { readRules } from '../../workspace/ignore-rules.js';
import { Project } from '../../workspace/project.js';
import type { Backend, ExecutionContext, VerifyRequest } from '../backend.js';
import { type AwsClients, awsClients } from './aws.js';
import { awsErrorMessage, deniedLine, isAccessDenied } from './aws-basics.js';
import { JobCollector } from './collect.js';
import { LogFollower } from './logs.js';
import { blockedReason } from './outcome.js';
import { type JobEnd, JobPoller } from './poll.js';
import { Presigner, presignedSeconds } from './presign.js';
import type { BatchSettings } from './settings.js';
import { Staging } from './staging.js';
import {
  JobSubmitter,
  jobName,
  jobNamePrefix,
  RetiredDefinitionError,
  SubmissionTooLargeError,
  type Submitted,
} from './submit.js';

/** The most a task's executor.log takes from its job's log stream. */
const MAX_LOG_BYTES = 32 * 2 ** 20;
/** GetLogEvents calls a second for the whole run (CloudWatch allows 25 per account and region). */
const LOG_CALLS_PER_SECOND = 10;

export interface BatchBackendOptions {
  settings: BatchSettings;
  config: RunConfig;
  layout: RunLayout;
  /** Values kept out of the logs and transcripts copied from jobs. */
  secrets: readonly string[];
}

/**
 * Executors as AWS Batch jobs, one per attempt, while the DAG, the journal and git stay here.
 * An attempt stages its base commit (a bundle, shared by attempts on the same commit) and its
 * task into the state bucket, journals the job's name, submits, and is watched by the run's one
 * poller; its log is copied from CloudWatch Logs as it runs. A job that ends is collected: its
 * result is read and checked against the checksums it gives, its bundle taken into quarantine
 * and written into the slot's workspace, which the orchestrator then commits like any other.
 * Nothing the job uploads is run or trusted. A resumed run adopts the jobs it left running.
 */
export class BatchBackend implements Backend {
  readonly name = 'batch' as const;
  private readonly clients: AwsClients;
  private readonly staging: Staging;
  private readonly presigner: Presigner;
  private readonly submitter: JobSubmitter;
  private readonly poller: JobPoller;
  private readonly logs: LogFollower;
  /** Base bundles staged so far (or being staged), by commit. */
  private readonly bases = new Map<string, Promise<StagedObject>>();
  /** What each attempt's job found when it ran `--verify` on its work, until the host asks. */
  private readonly verifications = new Map<string, Verification>();
  /** Jobs that run `--verify` alone so far: each gets a name and a prefix of its own. */
  private verifyJobs = 0;
  /** Jobs of attempts in flight, terminated if the backend closes before they end. */
  private readonly active = new Map<
    string,
    { job: RemoteJob & { id: string }; record: ExecutionContext['recordJob'] }
  >();
  /** The run's repository, opened once: base bundles are written from it. */
  private project: Promise<Project> | undefined;
  /** The run's ignore rules, which its jobs apply as the host does. */
  private ignoreRules: Promise<string | undefined> | undefined;
  private readonly redact: (text: string) => string;
  private readonly collector: JobCollector;

  constructor(private readonly options: BatchBackendOptions) {
    const { settings } = options;
    this.clients = awsClients(settings);
    this.staging = new Staging(this.clients.s3, settings.bucket);
    this.presigner = new Presigner(
      this.clients.presign,
      settings.bucket,
      presignedSeconds(options.config.taskTimeoutMs),
    );
    this.submitter = new JobSubmitter(
      { submit: this.clients.submit, lookup: this.clients.batch },
      settings.jobQueue,
      settings.jobDefinition,
      settings.submitsPerSecond,
    );
    this.poller = new JobPoller(this.clients.batch, settings.poll);
    this.logs = new LogFollower(
      this.clients.logs,
      settings.logGroup,
      LOG_CALLS_PER_SECOND,
      settings.poll.minMs,
    );
    this.redact = redactor(options.secrets);
    this.collector = new JobCollector(this.staging, options.layout, options.config, this.redact);
  }

  /** API calls made so far, for the benchmarks. */
  get calls(): { describeJobs: number; getLogEvents: number } {
    return { describeJobs: this.poller.calls, getLogEvents: this.logs.calls };
  }

  /** Staging starts empty: what a killed orchestrator left half-moved is of no further use. */
  async warm(): Promise<void> {
    await rm(this.options.layout.staging, { recursive: true, force: true });
    mkdirSync(this.options.layout.staging);
  }

  async execute(spec: TaskSpec, context: ExecutionContext): Promise<ExecutorOutcome> {
    const { runId } = this.options.config;
    const prefix = S3_LAYOUT.attempt(
      this.options.settings.runsPrefix,
      runId,
      spec.taskId,
      spec.attempt,
    );
    const job: RemoteJob = context.adopt ?? {
      name: jobName(runId, spec.taskId, spec.attempt),
      base: context.base,
    };
    const log = new CappedLog(context.logPath, MAX_LOG_BYTES, this.redact);
    try {
      const submitted = await this.findOrSubmit(spec, context, job, prefix);
      if (!('id' in submitted)) return submitted;
      const { id } = submitted;
      const known = { ...job, id };
      this.active.set(id, { job: known, record: context.recordJob });
      const stopSweeping = submitted.inDoubt ? this.submitter.sweepTwins(job.name, id) : undefined;
      try {
        const { end, logged } = await this.watch(known, context, log);
        try {
          if (context.signal.aborted) return stopped(context.signal);
          const { verification, ...outcome } = await this.collector.collect(
            spec,
            context.sandbox.workspace,
            known,
            prefix,
            end,
          );
          if (verification) this.verifications.set(attemptKey(spec), verification);
          return outcome;
        } finally {
          await logged;
        }
      } finally {
        this.active.delete(id);
        await stopSweeping?.();
      }
    } catch (error) {
      if (context.signal.aborted) return stopped(context.signal);
      if (error instanceof SubmissionTooLargeError || error instanceof RetiredDefinitionError)
        return { status: 'failed', error: error.message, retryable: false };
      if (isAccessDenied(error))
        return {
          status: 'failed',
          error: `batch: ${deniedLine(error, "a permission of the stack's submitter policy")}`,
          retryable: false,
        };
      return { status: 'failed', error: `batch: ${awsErrorMessage(error)}`, retryable: true };
    } finally {
      await log.close();
    }
  }

  /**
   * The job's id: an adopted attempt's if its job was submitted (looked for by name if its id
   * was never journaled); otherwise the attempt is staged and submitted, its name journaled
   * first. In doubt when a job of its name may exist unseen: a twin is looked for while it runs.
   */
  private async findOrSubmit(
    spec: TaskSpec,
    context: ExecutionContext,
    job: RemoteJob,
    prefix: string,
  ): Promise<Submitted | ExecutorOutcome> {
    if (context.adopt) {
      const id = job.id ?? (await this.submitter.awaitListed(job.name, context.signal));
      if (id) {
        context.recordJob?.({ ...job, id }, 'adopted');
        return { id, inDoubt: !job.id };
      }
    }
    const bundle = await this.stageBase(job.base);
    this.ignoreRules ??= readRules(path.join(this.options.layout.project, '.git'));
    const ignoreRules = await this.ignoreRules;
    const inputUrl = await this.stageInput(prefix, {
      version: 1,
      spec: { ...spec, modelProxy: undefined },
      base: { commit: job.base, bundle },
      limits: this.options.config.outputLimits,
      ...(ignoreRules && { ignoreRules }),
    });
    if (context.signal.aborted) return stopped(context.signal);
    context.recordJob?.(job, 'submitting');
    const submitted = await this.submitter.submit(
      {
        name: job.name,
        runId: this.options.config.runId,
        taskId: spec.taskId,
        attempt: spec.attempt,
        executor: context.executor,
        executors: this.options.config.executors,
        real: spec.mode === 'real',
        requirements: spec.requirements,
        prefix,
        inputUrl,
        timeoutMs: this.options.config.taskTimeoutMs,
      },
      context.signal,
    );
    context.recordJob?.({ ...job, id: submitted.id }, 'SUBMITTED');
    // A resumed attempt whose job was not found may have one ListJobs did not show yet.
    return context.adopt ? { ...submitted, inDoubt: true } : submitted;
  }

  /**
   * Writes a job's `input.json` with the URLs it moves its objects by, and returns the URL the
   * job reads it by.
   */
  private async stageInput(
    prefix: string,
    input: Omit<BatchJobInput, 'transfer'>,
  ): Promise<string> {
    const transfer = await this.presigner.attempt(prefix, input.base.bundle.key);
    const key = `${prefix}${S3_LAYOUT.files.input}`;
    const staged: BatchJobInput = { ...input, transfer };
    await this.staging.putBytes(key, JSON.stringify(staged), 'application/json');
    return this.presigner.get(key);
  }

  /** A bundle of the base commit in the bucket, staged once per commit for the whole run. */
  private stageBase(commit: string): Promise<StagedObject> {
    let staged = this.bases.get(commit);
    if (!staged) {
      staged = (async () => {
        const { layout, config, settings } = this.options;
        const file = path.join(layout.staging, `${commit}.bundle`);
        this.project ??= Project.open(layout.project);
        await (await this.project).writeBundle(file, `refs/staging/${commit}`, commit);
        try {
          return await this.staging.putFile(
            S3_LAYOUT.base(settings.runsPrefix, config.runId, commit),
            file,
          );
        } finally {
          await rm(file, { force: true });
        }
      })();
      // A failed staging is tried again by the next attempt that needs it.
      staged.catch(() => this.bases.delete(commit));
      this.bases.set(commit, staged);
    }
    return staged;
  }

  /**
   * Waits for the job to end, journaling each state it is seen in, following its log, and
   * terminating it when the attempt is aborted or Batch reports it blocked in RUNNABLE for too
   * long. A job that only waits its turn for the compute environment's vCPUs is left to wait.
   * Returns how it ended and the reading of the rest of its log, under way.
   */
  private async watch(
    job: RemoteJob & { id: string },
    context: Pick<ExecutionContext, 'signal' | 'recordJob'>,
    log: CappedLog,
  ): Promise<{ end: JobEnd; logged: Promise<void> }> {
    const { signal, recordJob } = context;
    const { runnableTimeoutMs } = this.options.settings;
    let stream: string | undefined;
    let blockedTimer: NodeJS.Timeout | undefined;
    let stuck: string | undefined;
    const onChange = (detail: JobDetail) => {
      recordJob?.(job, detail.status ?? 'UNKNOWN', detail.statusReason);
      const blocked = blockedReason(detail);
      if (!blocked) {
        clearTimeout(blockedTimer);
        blockedTimer = undefined;
      } else if (!blockedTimer) {
        // Counted from the first report of it blocked; a changed reason does not restart it.
        blockedTimer = setTimeout(() => {
          stuck = `the job waited ${duration(runnableTimeoutMs)} in RUNNABLE: no compute environment of the queue can place it (${blocked})`;
          void this.terminate(job, recordJob, stuck);
        }, runnableTimeoutMs);
      }
      const next = detail.container?.logStreamName;
      if (next && next !== stream) {
        if (stream) void this.logs.finish(stream);
        stream = next;
        this.logs.follow(stream, log);
      }
    };
    const onAbort = () => {
      const reason = signal.reason instanceof Error ? signal.reason.message : 'cancelled';
      void this.terminate(job, recordJob, reason);
      this.poller.forget(job.id);
      settleAborted?.({ kind: 'lost', reason });
    };
    let settleAborted: ((end: JobEnd) => void) | undefined;
    const aborted = new Promise<JobEnd>((resolve) => {
      settleAborted = resolve;
    });
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      const end = await Promise.race([this.poller.watch(job.id, onChange), aborted]);
      // The rest of the log is read while the job's results are collected.
      const logged = stream ? this.logs.finish(stream) : Promise.resolve();
      return { end: stuck && end.kind === 'ended' ? { kind: 'lost', reason: stuck } : end, logged };
    } finally {
      clearTimeout(blockedTimer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * An attempt's verification is the one its job ran on its work (the job is where the work
   * is). The integration branch at the end is checked by a job of its own, which runs the
   * command alone on a bundle of that commit.
   */
  async verify(request: VerifyRequest): Promise<Verification> {
    if (request.attempt) {
      const key = attemptKey(request.attempt);
      const found = this.verifications.get(key);
      this.verifications.delete(key);
      return found ?? notVerified('the job did not run --verify on its work');
    }
    try {
      return await this.verifyInJob(request);
    } catch (error) {
      return notVerified(`batch: ${awsErrorMessage(error)}`);
    }
  }

  private async verifyInJob({
    settings: verify,
    commit,
    logPath,
    signal,
  }: VerifyRequest): Promise<Verification> {
    const { config, settings } = this.options;
    // The base is checked before planning and main at the end: a job that reports nothing must
    // never be read as the earlier one's result.
    const n = ++this.verifyJobs;
    const prefix = S3_LAYOUT.verify(settings.runsPrefix, config.runId, n);
    const name = `${jobNamePrefix(config.runId)}verify${n === 1 ? '' : `-${n}`}`;
    const inputUrl = await this.stageInput(prefix, {
      version: 1,
      verifyOnly: verify,
      base: { commit, bundle: await this.stageBase(commit) },
      limits: config.outputLimits,
    });
    const { id, inDoubt } = await this.submitter.submit(
      {
        name,
        runId: config.runId,
        taskId: FINAL_VERIFY_TASK_ID,
        attempt: 1,
        executor: 0,
        executors: config.executors,
        real: false,
        requirements: '',
        prefix,
        inputUrl,
        timeoutMs: verify.timeoutMs + VERIFY_JOB_STAGING_MS,
      },
      signal,
    );
    const job = { name, base: commit, id };
    this.active.set(id, { job, record: undefined });
    const stopSweeping = inDoubt ? this.submitter.sweepTwins(name, id) : undefined;
    const log = new CappedLog(logPath, MAX_LOG_BYTES, this.redact);
    let end: JobEnd;
    try {
      const watched = await this.watch(job, { signal }, log);
      await watched.logged;
      end = watched.end;
    } finally {
      this.active.delete(id);
      await stopSweeping?.();
      await log.close();
    }
    return this.collector.collectVerification(prefix, end, logPath);
  }

  /** Ends a job whatever its state (CancelJob does nothing once a job is STARTING or RUNNING). */
  private async terminate(
    job: RemoteJob & { id: string },
    recordJob: ExecutionContext['recordJob'],
    reason: string,
  ): Promise<void> {
    recordJob?.(job, 'terminating', reason);
    await this.clients.batch
      .send(new TerminateJobCommand({ jobId: job.id, reason: reason.slice(0, 256) }))
      .catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.all(
      [...this.active.values()].map(({ job, record }) =>
        this.terminate(job, record, 'the orchestrator stopped'),
      ),
    );
    for (const client of Object.values(this.clients)) client.destroy();
    // Bundles pass through staging/ and are removed once moved; an empty directory goes too.
    await rmdir(this.options.layout.staging).catch(() => {});
  }
}

/** `90s`, `30m`: how long a limit is, as the flag that sets it reads. */
function duration(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)}s` : `${Math.round(ms / 60_000)}m`;
}

/** Time a verify job gets beyond the command's own timeout, to stage in and out. */
const VERIFY_JOB_STAGING_MS = 10 * 60_000;

function attemptKey({ taskId, attempt }: { taskId: string; attempt: number }): string {
  return `${taskId}#${attempt}`;
}

function notVerified(error: string): Verification {
  return { exitCode: null, timedOut: false, durationMs: 0, tail: '', error };
}

function stopped(signal: AbortSignal): ExecutorOutcome {
  return {
    status: 'failed',
    error: signal.reason instanceof Error ? signal.reason.message : 'cancelled',
    retryable: true,
  };
}
