import { once } from 'node:events';
import { appendFileSync, mkdirSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { type JobDetail, TerminateJobCommand } from '@aws-sdk/client-batch';
import {
  type BatchJobInput,
  FINAL_VERIFY_TASK_ID,
  type JobEnvironment,
  SETUP_TASK_ID,
  type StagedObject,
} from '../../contracts/batch-job.js';
import type { PreparedEnvironment } from '../../contracts/environment.js';
import type { RemoteJob } from '../../contracts/events.js';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import type { RunConfig } from '../../contracts/run-config.js';
import type { RunLayout } from '../../contracts/run-layout.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';
import { type Verification, verificationPassed } from '../../contracts/verify.js';
import type { EnvironmentStore } from '../../environment/environments.js';
import {
  type EnvironmentRequest,
  type EnvironmentResult,
  SetupFailedError,
} from '../../environment/setup.js';
import { redactor } from '../../trust/secret-scanner.js';
import { CappedLog } from '../../util/capped-log.js';
import { git } from '../../workspace/git.js';
import { readRules } from '../../workspace/ignore-rules.js';
import { Project } from '../../workspace/project.js';
import type { Backend, ExecutionContext, VerifyRequest } from '../backend.js';
import { type AwsClients, awsClients } from './aws.js';
import { awsErrorMessage, deniedLine, isAccessDenied } from './aws-basics.js';
import { JobCollector } from './collect.js';
import { BucketEnvironments } from './environments.js';
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
  /**
   * Aborted when stopping is to wait for nothing: closing sends TerminateJob for the jobs in
   * flight and does not wait for Batch's answers.
   */
  force?: AbortSignal;
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
  /**
   * What each attempt's job found when it ran `--verify` on its work, until the host asks, and
   * the environment (its key) the job had.
   */
  private readonly verifications = new Map<
    string,
    { verification: Verification; environmentKey?: string }
  >();
  /** Jobs that run `--verify` alone, and setup jobs, so far: each gets a prefix of its own. */
  private verifyJobs = 0;
  private setupJobs = 0;
  /** Trees checked or prepared as commits of their own (a bundle carries commits). */
  private readonly treeCommits = new Map<string, Promise<string>>();
  /** `--setup`: environments kept in the state bucket, each made by one setup job. */
  readonly environments: EnvironmentStore;
  private readonly bucketEnvironments: BucketEnvironments;
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
    this.bucketEnvironments = new BucketEnvironments(this.staging, settings.runsPrefix);
    this.environments = {
      // The definition's revision names its image by digest: another image, another environment.
      identity: async () => `batch:${settings.jobDefinition}`,
      ensure: (request) => this.ensureEnvironment(request),
    };
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
          if (verification)
            this.verifications.set(attemptKey(spec), {
              verification,
              ...(context.environment && { environmentKey: context.environment.key }),
            });
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
    const ignoreRules = await this.rules();
    const environment = await this.jobEnvironment(context.environment);
    const inputUrl = await this.stageInput(prefix, {
      version: 1,
      spec: { ...spec, modelProxy: undefined },
      base: { commit: job.base, bundle },
      limits: this.options.config.outputLimits,
      ...(ignoreRules && { ignoreRules }),
      ...(environment && { environment }),
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
    archiveKey?: string,
  ): Promise<string> {
    const transfer = await this.presigner.attempt(prefix, input.base.bundle.key, archiveKey);
    const key = `${prefix}${S3_LAYOUT.files.input}`;
    const staged: BatchJobInput = { ...input, transfer };
    await this.staging.putBytes(key, JSON.stringify(staged), 'application/json');
    return this.presigner.get(key);
  }

  /** The run's ignore rules, which its jobs apply as the host does. */
  private rules(): Promise<string | undefined> {
    this.ignoreRules ??= readRules(path.join(this.options.layout.project, '.git'));
    return this.ignoreRules;
  }

  /**
   * What a job is told of the environment it starts from: the archive, by a URL presigned for
   * it, its digest and size, and its paths. None when the setup made no ignored path.
   */
  private async jobEnvironment(
    environment: PreparedEnvironment | undefined,
  ): Promise<JobEnvironment | undefined> {
    const archive = environment?.archive;
    if (!environment || !archive || environment.paths.length === 0) return undefined;
    return {
      url: await this.presigner.get(archive.key),
      key: archive.key,
      sha256: archive.sha256,
      bytes: archive.bytes,
      paths: environment.paths,
    };
  }

  /**
   * A commit to stage for `id`: itself, or for a tree (the merge of an attempt's work, checked
   * before it lands) a commit of that tree on top of the run's base, whose history a check
   * with `--verify-from-base` reads.
   */
  private commitFor(id: string): Promise<string> {
    let made = this.treeCommits.get(id);
    if (!made) {
      made = (async () => {
        this.project ??= Project.open(this.options.layout.project);
        const project = await this.project;
        const target = { gitDir: project.gitDir };
        const { stdout: type } = await git(target, ['cat-file', '-t', id]);
        if (type.trim() !== 'tree') return id;
        const { stdout } = await git(target, [
          'commit-tree',
          id,
          '-p',
          project.head,
          '-m',
          `tree ${id.slice(0, 12)}, as checked on AWS Batch`,
        ]);
        return stdout.trim();
      })();
      made.catch(() => this.treeCommits.delete(id));
      this.treeCommits.set(id, made);
    }
    return made;
  }

  /**
   * The key's environment: found in the state bucket, or prepared by a setup job of its own. An
   * AWS call that fails on the way (a denied read, a refused submission) is the setup failing,
   * said in one line: the run, or the attempt, cannot go on without the environment.
   */
  private async ensureEnvironment(request: EnvironmentRequest): Promise<EnvironmentResult> {
    try {
      const found = await this.bucketEnvironments.lookup(request.key);
      if ('environment' in found) return { environment: found.environment, cached: true };
      if (found.note) appendFileSync(request.logPath, `${found.note}\n`);
      const environment = await this.prepareEnvironment(request);
      return { environment, cached: false, ...(found.note && { note: found.note }) };
    } catch (error) {
      if (error instanceof SetupFailedError) throw error;
      const reason = isAccessDenied(error)
        ? deniedLine(error, "a permission of the stack's submitter policy on the runs prefix")
        : awsErrorMessage(error);
      throw new SetupFailedError(request.setup, notVerified(reason), request.logPath, {
        reason: `--setup "${request.setup.command}" could not be prepared on AWS Batch: ${reason}`,
      });
    }
  }

  /**
   * One setup job: `--setup` on the commit (the job's network is the stack's), the ignored paths
   * it made archived into the state bucket under a name of its own, then the key's record written
   * here, naming that archive. Throws SetupFailedError with the job's output when it failed.
   */
  private async prepareEnvironment(request: EnvironmentRequest): Promise<PreparedEnvironment> {
    const { config, settings } = this.options;
    const { setup, logPath, signal } = request;
    const name = `${jobNamePrefix(config.runId)}setup-${request.key.slice(0, 12)}-${++this.setupJobs}`;
    const prefix = S3_LAYOUT.setup(settings.runsPrefix, config.runId, name);
    const archiveKey = S3_LAYOUT.environment(settings.runsPrefix, request.key).archive(name);
    const commit = await this.commitFor(request.commit);
    const ignoreRules = await this.rules();
    appendFileSync(
      logPath,
      `== ${setup.command} on ${request.commit.slice(0, 12)}, in job ${name} ==\n`,
    );
    const started = Date.now();
    const end = await this.runAloneInJob({
      name,
      prefix,
      taskId: SETUP_TASK_ID,
      commit,
      timeoutMs: setup.timeoutMs + VERIFY_JOB_STAGING_MS,
      logPath,
      signal,
      input: {
        setupOnly: setup,
        ...(ignoreRules && { ignoreRules }),
      },
      archiveKey,
    });
    const collected = await this.collector.collectSetup(prefix, end, logPath);
    const { verification } = collected;
    const failed = (reason?: string) =>
      new SetupFailedError(setup, verification, logPath, reason ? { reason } : {});
    if (!collected.environment) {
      // The command itself failed: its own words. Anything else: what the job said.
      if (!verificationPassed(verification)) throw failed();
      const error = collected.error ?? 'the job reported no environment';
      throw failed(
        error.startsWith('--setup') ? error : `--setup "${setup.command}" in job ${name}: ${error}`,
      );
    }
    const { paths, bytes, archive } = collected.environment;
    const uploaded = await this.staging.head(archiveKey);
    if (uploaded?.bytes !== archive.bytes)
      throw failed(
        `--setup "${setup.command}" in job ${name}: its archive ${archiveKey} is ${uploaded ? `${uploaded.bytes} bytes, not the ${archive.bytes} it reported` : 'missing'}`,
      );
    const environment: PreparedEnvironment = {
      key: request.key,
      commit: request.commit,
      command: setup.command,
      paths,
      bytes,
      preparedMs: verification.durationMs,
      createdAt: new Date().toISOString(),
      archive: { key: archiveKey, sha256: archive.sha256, bytes: archive.bytes },
    };
    await this.bucketEnvironments.record(environment);
    appendFileSync(
      logPath,
      `== environment ${request.key.slice(0, 12)}: ${paths.length} path(s), ${bytes} bytes, archive of ${archive.bytes} bytes at ${archiveKey}; the setup took ${(verification.durationMs / 1000).toFixed(1)} s, its job ${((Date.now() - started) / 1000).toFixed(1)} s ==\n\n`,
    );
    return environment;
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
   * is), unless the work changed what the environment's key covers: its merge is then checked by
   * a job of its own with the environment prepared for it. The base before planning and the
   * integration branch at the end are checked by jobs of their own, which run the command alone
   * on a bundle of that commit.
   */
  async verify(request: VerifyRequest): Promise<Verification> {
    const { config, settings } = this.options;
    let job: { name: string; prefix: string } | undefined;
    if (request.attempt) {
      const key = attemptKey(request.attempt);
      const found = this.verifications.get(key);
      this.verifications.delete(key);
      if (!found) return notVerified('the job did not run --verify on its work');
      // Work that changed the manifests is checked with what they now say, installed by a setup
      // job: the attempt's job had the base's environment, so its own check does not count.
      if (!request.environment || request.environment.key === found.environmentKey)
        return found.verification;
      const { taskId, attempt } = request.attempt;
      job = {
        name: `${jobName(config.runId, taskId, attempt)}-verify`,
        prefix: `${S3_LAYOUT.attempt(settings.runsPrefix, config.runId, taskId, attempt)}verify/`,
      };
    }
    try {
      return await this.verifyInJob(request, job);
    } catch (error) {
      return notVerified(`batch: ${awsErrorMessage(error)}`);
    }
  }

  /**
   * `--verify` alone in a job of its own: on the base before planning, on the integration branch
   * at the end, or on the merge of work that changed the manifests. Each such job of the run has
   * its own name and prefix.
   */
  private async verifyInJob(
    { settings: verify, commit, logPath, signal, environment }: VerifyRequest,
    named?: { name: string; prefix: string },
  ): Promise<Verification> {
    const { config, settings } = this.options;
    let job = named;
    if (!job) {
      const n = ++this.verifyJobs;
      job = {
        name: `${jobNamePrefix(config.runId)}verify${n === 1 ? '' : `-${n}`}`,
        prefix: S3_LAYOUT.verify(settings.runsPrefix, config.runId, n),
      };
    }
    const jobEnvironment = await this.jobEnvironment(environment);
    const end = await this.runAloneInJob({
      ...job,
      taskId: FINAL_VERIFY_TASK_ID,
      commit: await this.commitFor(commit),
      timeoutMs: verify.timeoutMs + VERIFY_JOB_STAGING_MS,
      logPath,
      signal,
      input: { verifyOnly: verify, ...(jobEnvironment && { environment: jobEnvironment }) },
    });
    return this.collector.collectVerification(job.prefix, end, logPath);
  }

  /**
   * A job that belongs to no attempt (a check, a setup): staged at `prefix` from a bundle of
   * `commit`, submitted, its log copied to `logPath` as it runs; returns how it ended.
   */
  private async runAloneInJob(request: {
    name: string;
    prefix: string;
    taskId: string;
    commit: string;
    timeoutMs: number;
    logPath: string;
    signal: AbortSignal;
    input: Pick<BatchJobInput, 'verifyOnly' | 'setupOnly' | 'environment' | 'ignoreRules'>;
    archiveKey?: string;
  }): Promise<JobEnd> {
    const { config } = this.options;
    const { name, prefix, commit, logPath, signal } = request;
    const inputUrl = await this.stageInput(
      prefix,
      {
        version: 1,
        ...request.input,
        base: { commit, bundle: await this.stageBase(commit) },
        limits: config.outputLimits,
      },
      request.archiveKey,
    );
    const { id, inDoubt } = await this.submitter.submit(
      {
        name,
        runId: config.runId,
        taskId: request.taskId,
        attempt: 1,
        executor: 0,
        executors: config.executors,
        real: false,
        requirements: '',
        prefix,
        inputUrl,
        timeoutMs: request.timeoutMs,
      },
      signal,
    );
    const job = { name, base: commit, id };
    this.active.set(id, { job, record: undefined });
    const stopSweeping = inDoubt ? this.submitter.sweepTwins(name, id) : undefined;
    const log = new CappedLog(logPath, MAX_LOG_BYTES, this.redact);
    try {
      const watched = await this.watch(job, { signal }, log);
      await watched.logged;
      return watched.end;
    } finally {
      this.active.delete(id);
      await stopSweeping?.();
      await log.close();
    }
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
    const terminated = Promise.all(
      [...this.active.values()].map(({ job, record }) =>
        this.terminate(job, record, 'the orchestrator stopped'),
      ),
    );
    // A forced stop sends the terminations and does not wait for their answers.
    const { force } = this.options;
    if (!force?.aborted) await Promise.race([terminated, ...(force ? [once(force, 'abort')] : [])]);
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
