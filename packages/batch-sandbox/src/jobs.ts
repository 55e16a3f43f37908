import { randomBytes } from 'node:crypto';
import { BATCH_LIMITS, checkFargateSize } from '@parallel-orchestrator/runtime/contracts';
import { type JobMatch, matchesJob } from './faults.js';
import { clientError } from './http.js';
import type { LogStore } from './logs.js';
import type { SandboxRecord } from './record.js';
import {
  BLOCKED_REASONS,
  type EvaluateOnExit,
  type JobDefinition,
  type JobQueue,
  type JobStatus,
  type ResourceRequirement,
  type RetryStrategy,
} from './registry.js';
import {
  type ContainerExit,
  type DockerRunner,
  StartError,
  type StartedContainer,
} from './runner.js';

/** The statusReason strings Batch uses, which retry rules and the orchestrator match on. */
export const STATUS_REASONS = {
  exited: 'Essential container in task exited',
  timeout: 'Job attempt duration exceeded timeout',
  outOfMemory: 'OutOfMemoryError: Container killed due to memory usage',
  overridesTooLong: `Container Overrides length must be at most ${BATCH_LIMITS.containerOverridesChars}`,
  /** EC2 (and Spot) capacity reclaimed: the instance under the job went away. */
  hostTerminated: (instanceId: string) => `Host EC2 (instance ${instanceId}) terminated.`,
  /** Fargate Spot capacity reclaimed. */
  spotInterrupted: 'Your Spot Task was interrupted.',
  secretMissing: (arn: string) =>
    'ResourceInitializationError: unable to pull secrets or registry auth: execution resource ' +
    'retrieval failed: unable to retrieve secret from asm: service call has been retried 1 ' +
    `time(s): failed to fetch secret ${arn} from secrets manager: ResourceNotFoundException: ` +
    "Secrets Manager can't find the specified secret.",
  /** The execution role may not read the secret: ECS fails the task before the container starts. */
  secretDenied: (arn: string, denial: string) =>
    'ResourceInitializationError: unable to pull secrets or registry auth: execution resource ' +
    'retrieval failed: unable to retrieve secret from asm: service call has been retried 1 ' +
    `time(s): failed to fetch secret ${arn} from secrets manager: AccessDeniedException: ${denial}`,
  capacity: `${BLOCKED_REASONS.capacity} - Service cannot fulfill the capacity requested for instance type [sandbox]`,
  resources: `${BLOCKED_REASONS.resources} - The job resource requirement (vCPU/memory/GPU) is higher than that can be met by the CE(s) attached to the job queue.`,
  timeLimitCancel: (reason: string) =>
    `Canceled by JobStateTimeLimit action due to reason: ${reason}`,
} as const;

export type ReclaimKind = 'ec2' | 'fargate';

export type SecretRead = { value: string } | { failure: string };

export interface KeyValue {
  name: string;
  value: string;
}

export interface ContainerOverrides {
  command?: string[];
  environment?: KeyValue[];
  resourceRequirements?: ResourceRequirement[];
  vcpus?: number;
  memory?: number;
  instanceType?: string;
}

export interface SubmitRequest {
  jobId: string;
  jobName: string;
  queue: JobQueue;
  definition: JobDefinition;
  containerOverrides?: ContainerOverrides;
  /** JSON-serialised containerOverrides, counted as Batch counts them. */
  overridesChars: number;
  tags: Record<string, string>;
  timeoutSeconds?: number;
  retryStrategy?: RetryStrategy;
  propagateTags?: boolean;
}

interface AttemptDetail {
  container: { exitCode?: number; reason?: string; logStreamName?: string; taskArn: string };
  startedAt?: number;
  stoppedAt: number;
  statusReason: string;
}

type StopRequest =
  | { kind: 'terminate'; reason: string }
  | { kind: 'timeout' }
  | { kind: 'reclaim'; reclaim: ReclaimKind };

interface RunningAttempt {
  taskArn: string;
  logGroup: string;
  logStreamName: string;
  startedAt?: number;
  container?: StartedContainer;
  stop?: StopRequest;
  timeout?: NodeJS.Timeout;
}

interface Job {
  sequence: number;
  jobId: string;
  jobName: string;
  jobArn: string;
  tags: Record<string, string>;
  queue: JobQueue;
  definition: JobDefinition;
  request: SubmitRequest;
  status: JobStatus;
  statusReason?: string;
  statusSince: number;
  /** Why it cannot start, and since when (a queue's time-limit actions count from then). */
  blocked?: { reason: string; since: number };
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  /** When DescribeJobs and ListJobs first show it (both eventually consistent). */
  visibleAt: { describe: number; list: number };
  command: string[] | undefined;
  environment: KeyValue[];
  resourceRequirements: ResourceRequirement[];
  vcpus: number;
  memoryMib: number | undefined;
  retryStrategy: RetryStrategy;
  timeoutSeconds?: number;
  attempts: AttemptDetail[];
  running?: RunningAttempt;
  isCancelled?: boolean;
  isTerminated?: boolean;
}

export interface SchedulerSettings {
  region: string;
  /** The local image every job runs. */
  image: string;
  queues: JobQueue[];
  definitions: JobDefinition[];
  /** Reads a definition's secret as ECS does when it starts the container: its value, or why not. */
  readSecret: (valueFrom: string, definition: JobDefinition) => Promise<SecretRead>;
  /** Added to every job's environment (endpoints, region, its job role's stand-in keys). */
  jobEnvironment: (definition: JobDefinition) => Record<string, string>;
  /** How long a job stays in each of SUBMITTED, PENDING and RUNNABLE at least. */
  transitionMs: number;
  /** Between SIGTERM and SIGKILL when a job is terminated or times out (ECS waits 30 s). */
  stopTimeoutSeconds: number;
  runner: DockerRunner;
  logs: LogStore;
  record: SandboxRecord;
}

const ACTIVE: readonly JobStatus[] = ['STARTING', 'RUNNING'];
const NOT_STARTED: readonly JobStatus[] = ['SUBMITTED', 'PENDING', 'RUNNABLE'];
const DONE: readonly JobStatus[] = ['SUCCEEDED', 'FAILED'];
/** How long close() waits for containers to end once killed. */
const CLOSE_WAIT_MS = 15_000;

/** The jobs and their state machine: SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING → end. */
export class JobScheduler {
  private readonly jobs = new Map<string, Job>();
  /** Jobs not yet SUCCEEDED or FAILED: all the scheduler has to look at. */
  private readonly unfinished = new Set<Job>();
  private sequence = 0;
  private readonly ticker: NodeJS.Timeout;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly holds = new Set<JobMatch>();
  private readonly reclaimRules = new Set<{
    match: JobMatch;
    afterMs: number;
    kind: ReclaimKind;
    reclaimed: Set<string>;
  }>();
  private visibilityDelayMs = { describe: 0, list: 0 };
  private closed = false;

  constructor(private readonly settings: SchedulerSettings) {
    this.ticker = setInterval(
      () => this.tick(),
      Math.max(10, Math.floor(settings.transitionMs / 2)),
    );
  }

  findQueue(ref: string): JobQueue | undefined {
    return this.settings.queues.find((q) => q.arn === ref || q.name === ref);
  }

  /** By ARN, `name:revision` (whatever its status), or `name` (its latest ACTIVE revision). */
  findDefinition(ref: string): JobDefinition | undefined {
    const definitions = this.settings.definitions;
    const exact = definitions.find((d) => d.arn === ref || `${d.name}:${d.revision}` === ref);
    if (exact) return exact;
    // A name alone is its latest ACTIVE revision.
    return definitions
      .filter((d) => d.name === ref && d.status === 'ACTIVE')
      .sort((a, b) => b.revision - a.revision)[0];
  }

  /**
   * DeregisterJobDefinition: the revision turns INACTIVE for good (Batch cannot reactivate one);
   * jobs already submitted run on, new ones are refused. False when no such revision exists.
   */
  deregister(ref: string): boolean {
    const definition = this.settings.definitions.find(
      (d) => d.arn === ref || `${d.name}:${d.revision}` === ref,
    );
    if (!definition) return false;
    definition.status = 'INACTIVE';
    return true;
  }

  get queues(): readonly JobQueue[] {
    return this.settings.queues;
  }

  get definitions(): readonly JobDefinition[] {
    return this.settings.definitions;
  }

  submit(request: SubmitRequest): { jobArn: string; jobName: string; jobId: string } {
    const { definition, containerOverrides: overrides } = request;
    const properties = definition.containerProperties;
    const now = Date.now();
    const { jobId } = request;
    const resourceRequirements = mergeByKey(
      properties.resourceRequirements ?? [],
      overrides?.resourceRequirements ?? [],
      (r) => r.type,
    );
    const requirement = (type: ResourceRequirement['type']) => {
      const found = resourceRequirements.find((r) => r.type === type);
      return found ? Number(found.value) : undefined;
    };
    const job: Job = {
      sequence: ++this.sequence,
      jobId,
      jobName: request.jobName,
      jobArn: `${request.queue.arn.split(':job-queue/')[0]}:job/${jobId}`,
      tags: request.tags,
      queue: request.queue,
      definition,
      request,
      status: 'SUBMITTED',
      statusSince: now,
      createdAt: now,
      visibleAt: {
        describe: now + this.visibilityDelayMs.describe,
        list: now + this.visibilityDelayMs.list,
      },
      command: overrides?.command ?? properties.command,
      environment: mergeByKey(
        properties.environment ?? [],
        overrides?.environment ?? [],
        (e) => e.name,
      ),
      resourceRequirements,
      vcpus: requirement('VCPU') ?? overrides?.vcpus ?? properties.vcpus ?? 1,
      memoryMib: requirement('MEMORY') ?? overrides?.memory ?? properties.memory,
      retryStrategy: request.retryStrategy ?? definition.retryStrategy,
      timeoutSeconds: request.timeoutSeconds ?? definition.timeout?.attemptDurationSeconds,
      attempts: [],
    };
    // Fargate runs only its fixed task sizes; Batch refuses another pair when the job is
    // submitted. https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html
    const unfit = request.queue.fargate && checkFargateSize(job.vcpus, job.memoryMib ?? 0);
    if (unfit) throw clientError(`Fargate cannot run this job: ${unfit.message}`);
    this.jobs.set(jobId, job);
    this.unfinished.add(job);
    this.settings.record.submissions.push({
      jobId,
      jobName: job.jobName,
      at: now,
      overridesChars: request.overridesChars,
      tags: request.tags,
      environment: Object.fromEntries((overrides?.environment ?? []).map((e) => [e.name, e.value])),
    });
    this.record(job);
    return { jobArn: job.jobArn, jobName: job.jobName, jobId };
  }

  /** Jobs by id; unknown ids (and jobs not yet visible) are left out, as Batch does. */
  describe(jobIds: string[]): unknown[] {
    const now = Date.now();
    return jobIds
      .map((id) => this.jobs.get(id))
      .filter((job): job is Job => job !== undefined && job.visibleAt.describe <= now)
      .map((job) => this.detail(job));
  }

  /** Visible jobs of a queue, oldest first, for ListJobs to filter and page. */
  jobsOf(queue: JobQueue): JobView[] {
    const now = Date.now();
    return [...this.jobs.values()]
      .filter((job) => job.queue === queue && job.visibleAt.list <= now)
      .map((job) => ({
        sequence: job.sequence,
        jobName: job.jobName,
        status: job.status,
        createdAt: job.createdAt,
        jobDefinition: job.definition.arn,
        summary: this.summary(job),
      }));
  }

  /** A started job is stopped (FAILED); an earlier one is cancelled. Unknown or ended: nothing. */
  terminate(jobId: string, reason: string): void {
    const job = this.jobs.get(jobId);
    if (!job || DONE.includes(job.status)) return;
    if (NOT_STARTED.includes(job.status)) {
      job.isCancelled = true;
      this.finish(job, 'FAILED', reason);
      return;
    }
    this.requestStop(job, { kind: 'terminate', reason });
  }

  /** Only jobs that have not started: once STARTING or RUNNING it does nothing, as in Batch. */
  cancel(jobId: string, reason: string): void {
    const job = this.jobs.get(jobId);
    if (!job || !NOT_STARTED.includes(job.status)) return;
    job.isCancelled = true;
    this.finish(job, 'FAILED', reason);
  }

  reclaim(jobId: string, kind: ReclaimKind): void {
    const job = this.jobs.get(jobId);
    if (!job?.running) throw new Error(`job ${jobId} has no running attempt to reclaim`);
    this.requestStop(job, { kind: 'reclaim', reclaim: kind });
  }

  holdRunnable(match: JobMatch): () => void {
    this.holds.add(match);
    return () => {
      this.holds.delete(match);
    };
  }

  reclaimWhenRunning(match: JobMatch, afterMs: number, kind: ReclaimKind): () => void {
    const rule = { match, afterMs, kind, reclaimed: new Set<string>() };
    this.reclaimRules.add(rule);
    return () => {
      this.reclaimRules.delete(rule);
    };
  }

  hideAfterSubmit(describeMs: number, listMs = describeMs): void {
    this.visibilityDelayMs = { describe: describeMs, list: listMs };
  }

  /** Stops scheduling and kills every container; waits (bounded) for them to end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    for (const timer of this.timers) clearTimeout(timer);
    for (const job of this.unfinished) void job.running?.container?.kill();
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS)),
    ]);
  }

  private tick(): void {
    const now = Date.now();
    const { transitionMs } = this.settings;
    for (const job of this.unfinished) {
      if (now - job.statusSince < transitionMs) continue;
      if (job.status === 'SUBMITTED') this.setStatus(job, 'PENDING');
      else if (job.status === 'PENDING') this.setStatus(job, 'RUNNABLE');
    }
    for (const queue of this.settings.queues) this.schedule(queue, now);
  }

  /** Starts RUNNABLE jobs, oldest first, while the queue's vCPUs allow. */
  private schedule(queue: JobQueue, now: number): void {
    const queued = [...this.unfinished].filter((job) => job.queue === queue);
    let usedVcpus = queued
      .filter((job) => ACTIVE.includes(job.status))
      .reduce((sum, job) => sum + job.vcpus, 0);
    for (const job of queued) {
      if (job.status !== 'RUNNABLE' || now - job.statusSince < this.settings.transitionMs) continue;
      if (job.request.overridesChars > BATCH_LIMITS.containerOverridesChars) {
        // Batch accepts the submission; ECS refuses the task when the job would start.
        this.finish(job, 'FAILED', STATUS_REASONS.overridesTooLong);
        continue;
      }
      const blocked = this.blockedReason(job);
      if (blocked) {
        this.block(job, blocked, now);
        continue;
      }
      if (job.blocked) {
        job.blocked = undefined;
        job.statusReason = undefined;
      }
      // A little slack: fractional vCPUs (0.1 + 0.2) must not lose a job to rounding.
      if (usedVcpus + job.vcpus > queue.maxVcpus + 1e-9) continue;
      usedVcpus += job.vcpus;
      this.track(this.runAttempt(job));
    }
  }

  private blockedReason(job: Job): string | undefined {
    if (job.vcpus > job.queue.maxVcpus) return STATUS_REASONS.resources;
    for (const match of this.holds) if (matchesJob(match, job)) return STATUS_REASONS.capacity;
    return undefined;
  }

  /** Marks a job blocked and, past a time-limit action of its queue, cancels it. */
  private block(job: Job, reason: string, now: number): void {
    if (job.blocked?.reason !== reason) {
      job.blocked = { reason, since: now };
      job.statusReason = reason;
    }
    const action = job.queue.jobStateTimeLimitActions.find((a) => reason.startsWith(a.reason));
    if (action && now - job.blocked.since >= action.maxTimeSeconds * 1000) {
      job.isCancelled = true;
      this.finish(job, 'FAILED', STATUS_REASONS.timeLimitCancel(action.reason));
    }
  }

  private async runAttempt(job: Job): Promise<void> {
    const properties = job.definition.containerProperties;
    const logOptions = properties.logConfiguration?.options ?? {};
    const taskId = randomBytes(16).toString('hex');
    const clusterName = `${job.queue.name}_Batch_sandbox`;
    const attempt: RunningAttempt = {
      taskArn: `arn:aws:ecs:${this.settings.region}:${job.queue.arn.split(':')[4]}:task/${clusterName}/${taskId}`,
      logGroup: logOptions['awslogs-group'] ?? '/aws/batch/job',
      // The awslogs driver names streams <prefix>/<container name>/<task id>; Batch's
      // container is "default" and its prefix the definition's name unless one is set.
      logStreamName: `${logOptions['awslogs-stream-prefix'] ?? job.definition.name}/default/${taskId}`,
    };
    job.running = attempt;
    this.setStatus(job, 'STARTING');

    const secrets: { name: string; value: string }[] = [];
    for (const { name, valueFrom } of properties.secrets ?? []) {
      const read = await this.settings.readSecret(valueFrom, job.definition);
      if ('failure' in read) {
        this.endAttempt(job, { failure: read.failure });
        return;
      }
      secrets.push({ name, value: read.value });
    }
    let container: StartedContainer;
    try {
      container = await this.settings.runner.start(this.attemptSpec(job, attempt, secrets));
    } catch (error) {
      if (this.closed) return;
      const failure =
        error instanceof StartError ? error.message : `CannotStartContainerError: ${error}`;
      this.endAttempt(job, { failure });
      return;
    }
    if (this.closed) {
      await container.kill();
      await container.exited.catch(() => {});
      return;
    }
    attempt.container = container;
    attempt.startedAt = Date.now();
    job.startedAt = attempt.startedAt;
    this.settings.logs.createStream(attempt.logGroup, attempt.logStreamName);
    this.setStatus(job, 'RUNNING');
    this.armStops(job, attempt);

    let exit: ContainerExit | undefined;
    try {
      exit = await container.exited;
    } catch (error) {
      if (!this.closed) this.endAttempt(job, { failure: `CannotInspectContainerError: ${error}` });
      return;
    } finally {
      clearTimeout(attempt.timeout);
    }
    if (!this.closed) this.endAttempt(job, { exit });
  }

  private attemptSpec(
    job: Job,
    attempt: RunningAttempt,
    secrets: { name: string; value: string }[],
  ): Parameters<DockerRunner['start']>[0] {
    const properties = job.definition.containerProperties;
    const attemptNumber = job.attempts.length + 1;
    const volumes = new Map((properties.volumes ?? []).map((v) => [v.name, v]));
    const hostlessVolumes: string[] = [];
    const binds: string[] = [];
    for (const mount of properties.mountPoints ?? []) {
      const source = volumes.get(mount.sourceVolume)?.host?.sourcePath;
      if (source) binds.push(`${source}:${mount.containerPath}${mount.readOnly ? ':ro' : ''}`);
      else hostlessVolumes.push(mount.containerPath);
    }
    const environment: Record<string, string> = {
      ...Object.fromEntries(job.environment.map((e) => [e.name, e.value])),
      ...this.settings.jobEnvironment(job.definition),
      // What Batch sets in every job's container.
      AWS_BATCH_JOB_ID: job.jobId,
      AWS_BATCH_JOB_ATTEMPT: String(attemptNumber),
      AWS_BATCH_JQ_NAME: job.queue.name,
      AWS_BATCH_CE_NAME: job.queue.computeEnvironmentArn.split('/').pop() as string,
    };
    return {
      jobId: job.jobId,
      attempt: attemptNumber,
      image: this.settings.image,
      command: job.command,
      env: Object.entries(environment).map(([name, value]) => `${name}=${value}`),
      secrets,
      user: properties.user,
      vcpus: job.vcpus,
      memoryMib: job.memoryMib,
      readonlyRootfs: properties.readonlyRootFilesystem === true,
      hostlessVolumes,
      fargate: job.queue.fargate,
      binds,
      init: properties.linuxParameters?.initProcessEnabled === true,
      log: (timestamp, message) =>
        this.settings.logs.append(attempt.logGroup, attempt.logStreamName, timestamp, message),
    };
  }

  /** The attempt timeout, a stop asked for while the job was STARTING, and reclaim rules. */
  private armStops(job: Job, attempt: RunningAttempt): void {
    if (attempt.stop) this.applyStop(attempt);
    if (job.timeoutSeconds) {
      attempt.timeout = setTimeout(
        () => this.requestStop(job, { kind: 'timeout' }),
        job.timeoutSeconds * 1000,
      );
    }
    for (const rule of this.reclaimRules) {
      if (rule.reclaimed.has(job.jobId) || !matchesJob(rule.match, job)) continue;
      rule.reclaimed.add(job.jobId);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (job.running === attempt) this.requestStop(job, { kind: 'reclaim', reclaim: rule.kind });
      }, rule.afterMs);
      this.timers.add(timer);
    }
  }

  /** The first reason to stop an attempt wins; it takes effect once the container runs. */
  private requestStop(job: Job, stop: StopRequest): void {
    const attempt = job.running;
    if (!attempt || attempt.stop) return;
    attempt.stop = stop;
    if (attempt.container) this.applyStop(attempt);
  }

  private applyStop(attempt: RunningAttempt): void {
    const container = attempt.container;
    if (!container || !attempt.stop) return;
    if (attempt.stop.kind === 'reclaim') void container.kill();
    else void container.stop(this.settings.stopTimeoutSeconds);
  }

  /** Records the attempt and decides: succeeded, failed for good, or RUNNABLE for a retry. */
  private endAttempt(job: Job, outcome: { exit?: ContainerExit; failure?: string }): void {
    const attempt = job.running;
    if (!attempt) return;
    job.running = undefined;
    const { exit, failure } = outcome;
    const stop = attempt.stop;
    const container: AttemptDetail['container'] = { taskArn: attempt.taskArn };
    if (attempt.startedAt) container.logStreamName = attempt.logStreamName;
    let statusReason: string;
    if (stop?.kind === 'reclaim') {
      // The host went away with the container: no exit code is reported.
      statusReason =
        stop.reclaim === 'ec2'
          ? STATUS_REASONS.hostTerminated(`i-0sandbox${attempt.taskArn.slice(-8)}`)
          : STATUS_REASONS.spotInterrupted;
    } else {
      statusReason =
        stop?.kind === 'terminate'
          ? stop.reason
          : stop?.kind === 'timeout'
            ? STATUS_REASONS.timeout
            : (failure ?? STATUS_REASONS.exited);
      if (exit) container.exitCode = exit.exitCode;
      if (exit?.oomKilled) container.reason = STATUS_REASONS.outOfMemory;
    }
    const detail: AttemptDetail = {
      container,
      ...(attempt.startedAt && { startedAt: attempt.startedAt }),
      stoppedAt: Date.now(),
      statusReason,
    };
    job.attempts.push(detail);

    if (!stop && !failure && exit?.exitCode === 0) {
      this.finish(job, 'SUCCEEDED', STATUS_REASONS.exited);
    } else if (stop?.kind === 'terminate') {
      job.isTerminated = true;
      this.finish(job, 'FAILED', statusReason);
    } else if (stop?.kind === 'timeout' || !this.retries(job, detail)) {
      // Batch never retries an attempt that ran out of time.
      this.finish(job, 'FAILED', statusReason);
    } else {
      // Back in the queue for another attempt, saying why the last one ended.
      this.setStatus(job, 'RUNNABLE', statusReason);
    }
  }

  /**
   * Whether Batch would run another attempt: attempts left, and the first evaluateOnExit rule
   * whose conditions all match says RETRY; when none matches, it retries.
   */
  private retries(job: Job, attempt: AttemptDetail): boolean {
    if (job.attempts.length >= (job.retryStrategy.attempts ?? 1)) return false;
    const rule = (job.retryStrategy.evaluateOnExit ?? []).find((r) => ruleMatches(r, attempt));
    return rule ? rule.action === 'RETRY' : true;
  }

  private finish(job: Job, status: 'SUCCEEDED' | 'FAILED', statusReason: string): void {
    job.blocked = undefined;
    job.stoppedAt = Date.now();
    this.unfinished.delete(job);
    this.setStatus(job, status, statusReason);
  }

  private setStatus(job: Job, status: JobStatus, statusReason?: string): void {
    job.status = status;
    job.statusReason = statusReason;
    job.statusSince = Date.now();
    this.record(job);
  }

  private record(job: Job): void {
    this.settings.record.transitions.push({
      at: job.statusSince,
      jobId: job.jobId,
      jobName: job.jobName,
      status: job.status,
      ...(job.statusReason && { statusReason: job.statusReason }),
    });
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch(() => {}).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** The latest attempt's container outcome, or the running one's identifiers. */
  private latestContainer(job: Job): AttemptDetail['container'] | undefined {
    if (job.running)
      return { taskArn: job.running.taskArn, logStreamName: job.running.logStreamName };
    return job.attempts.at(-1)?.container;
  }

  private summary(job: Job) {
    const latest = this.latestContainer(job);
    return {
      jobArn: job.jobArn,
      jobId: job.jobId,
      jobName: job.jobName,
      createdAt: job.createdAt,
      status: job.status,
      statusReason: job.statusReason,
      startedAt: job.startedAt,
      stoppedAt: job.stoppedAt,
      container: latest && { exitCode: latest.exitCode, reason: latest.reason },
      jobDefinition: job.definition.arn,
      isCancelled: job.isCancelled,
      isTerminated: job.isTerminated,
    };
  }

  /** A JobDetail as DescribeJobs returns it. Secrets appear as names and ARNs only. */
  private detail(job: Job) {
    const latest = this.latestContainer(job);
    const { definition } = job;
    return {
      jobArn: job.jobArn,
      jobName: job.jobName,
      jobId: job.jobId,
      jobQueue: job.queue.arn,
      status: job.status,
      statusReason: job.statusReason,
      attempts: job.attempts,
      createdAt: job.createdAt,
      startedAt: job.startedAt,
      stoppedAt: job.stoppedAt,
      retryStrategy: job.retryStrategy,
      dependsOn: [],
      jobDefinition: definition.arn,
      parameters: {},
      container: {
        ...definition.containerProperties,
        command: job.command ?? [],
        environment: job.environment,
        resourceRequirements: job.resourceRequirements,
        secrets: definition.containerProperties.secrets ?? [],
        volumes: definition.containerProperties.volumes ?? [],
        mountPoints: definition.containerProperties.mountPoints ?? [],
        ulimits: [],
        networkInterfaces: [],
        ...latest,
      },
      timeout: job.timeoutSeconds ? { attemptDurationSeconds: job.timeoutSeconds } : undefined,
      tags: job.tags,
      propagateTags: job.request.propagateTags ?? definition.propagateTags,
      platformCapabilities: definition.platformCapabilities,
      eksAttempts: [],
      isCancelled: job.isCancelled,
      isTerminated: job.isTerminated,
    };
  }
}

/** What ListJobs filters and pages on. */
export interface JobView {
  sequence: number;
  jobName: string;
  status: JobStatus;
  createdAt: number;
  jobDefinition: string;
  summary: unknown;
}

/** An evaluateOnExit glob: exact, or a prefix when it ends with `*`. */
function globMatches(pattern: string | undefined, value: string): boolean {
  if (pattern === undefined) return true;
  return pattern.endsWith('*') ? value.startsWith(pattern.slice(0, -1)) : value === pattern;
}

function ruleMatches(rule: EvaluateOnExit, attempt: AttemptDetail): boolean {
  return (
    globMatches(rule.onStatusReason, attempt.statusReason) &&
    globMatches(rule.onReason, attempt.container.reason ?? '') &&
    globMatches(rule.onExitCode, attempt.container.exitCode?.toString() ?? '')
  );
}

/** The base list with the overrides replacing entries of the same key, new keys appended. */
function mergeByKey<T>(base: T[], overrides: T[], key: (item: T) => string): T[] {
  const merged = new Map(base.map((item) => [key(item), item]));
  for (const item of overrides) merged.set(key(item), item);
  return [...merged.values()];
}
