import type { AttemptResult, EventBody, RunStatus, TaskStatus } from '../contracts/events.js';
import type { PlanTask } from '../contracts/plan.js';
import { type Clock, systemClock } from './clock.js';
import { dependentsOf, type ReadyOrder, readyComparator } from './ranking.js';
import {
  DEFAULT_RETRY_POLICY,
  decideRetry,
  type FailureKind,
  type RetryPolicyOptions,
} from './retry-policy.js';

export interface AttemptContext {
  task: PlanTask;
  attempt: number;
  /** Executor slot, 0..M-1: which of the M executors runs this attempt. */
  executor: number;
  /** Aborts on task timeout and on cancellation of the run. */
  signal: AbortSignal;
  /**
   * Hands the executor slot back before the attempt settles, once the executor's work is
   * committed: merging it needs no executor, so the next task can start meanwhile.
   */
  releaseExecutor(): void;
}

export type AttemptOutcome =
  | { ok: true; result: AttemptResult }
  | { ok: false; error: string; kind: FailureKind; result?: AttemptResult };

export interface TaskState {
  status: TaskStatus;
  attempts: number;
  transientFailures: number;
  conflicts: number;
  verifyFailures?: number;
  error?: string;
  blockedBy?: string[];
}

export interface SchedulerOptions {
  tasks: readonly PlanTask[];
  /** M: at most this many attempts hold an executor at once. */
  concurrency: number;
  runAttempt(context: AttemptContext): Promise<AttemptOutcome>;
  /** Records a state change; awaited before the change is acted on. */
  emit(event: EventBody): void | Promise<void>;
  clock?: Clock;
  retry?: Partial<RetryPolicyOptions>;
  /** Uniform [0, 1) source for backoff jitter; seeded in tests and benchmarks. */
  random?: () => number;
  taskTimeoutMs?: number;
  /** How long an aborted attempt may take to wind down before it is abandoned. */
  abandonAfterMs?: number;
  order?: ReadyOrder;
  signal?: AbortSignal;
  /** State carried over from an interrupted run (resume). Tasks not listed start pending. */
  initial?: ReadonlyMap<string, TaskState>;
  /**
   * Asked before each start; once it says no (a spending limit is reached), nothing new starts,
   * attempts in flight finish, and the run ends with the rest unstarted.
   */
  admit?: () => boolean;
}

export interface SchedulerResult {
  status: RunStatus;
  tasks: Map<string, TaskState>;
  /** True when `admit` ended the run before every task could run. */
  stopped: boolean;
}

export class TaskTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'TaskTimeoutError';
  }
}

const FINISHED: ReadonlySet<TaskStatus> = new Set(['succeeded', 'failed', 'blocked']);

/**
 * Runs a task DAG with at most M executors busy at once. A task becomes ready when every dependency
 * has succeeded; ready tasks start in critical-path order. A task that fails for good blocks
 * everything downstream of it while independent branches go on, so the run always ends.
 */
export class Scheduler {
  private readonly tasks: readonly PlanTask[];
  private readonly byId: Map<string, PlanTask>;
  private readonly dependents: Map<string, string[]>;
  private readonly states = new Map<string, TaskState>();
  private readonly ready: PlanTask[] = [];
  private readonly queued = new Set<string>();
  private readonly freeSlots: number[];
  private readonly inFlight = new Set<Promise<void>>();
  /** Abort controllers of the attempts in flight; cancelling the run aborts them all. */
  private readonly running = new Set<AbortController>();
  private readonly compare: (a: PlanTask, b: PlanTask) => number;
  private readonly clock: Clock;
  private readonly policy: RetryPolicyOptions;
  private readonly random: () => number;
  private backingOff = 0;
  /** Admission closed: no new attempt starts. */
  private closed = false;
  /** An error no attempt can recover from (the journal cannot be written); ends the run. */
  private fatal: { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private woken = false;

  constructor(private readonly options: SchedulerOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${options.concurrency}`);
    }
    this.tasks = options.tasks;
    this.byId = new Map(this.tasks.map((t) => [t.id, t]));
    this.dependents = dependentsOf(this.tasks);
    this.compare = readyComparator(this.tasks, options.order ?? 'critical-path');
    this.clock = options.clock ?? systemClock;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.freeSlots = Array.from(
      { length: Math.min(options.concurrency, this.tasks.length) },
      (_, i) => i,
    );
  }

  async run(): Promise<SchedulerResult> {
    const { signal } = this.options;
    const onAbort = () => {
      for (const controller of this.running) controller.abort(signal?.reason);
      this.notify();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.initialise();
      while (!signal?.aborted && !this.fatal) {
        while (this.freeSlots.length > 0 && this.ready.length > 0 && this.admits()) {
          this.launch(this.takeBest());
        }
        if (this.inFlight.size === 0 && this.backingOff === 0) break;
        await this.changed();
      }
      // After a cancellation the attempts in flight have been aborted; let them wind down.
      await Promise.all([...this.inFlight]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (this.fatal) throw this.fatal.error;
    return { status: this.finalStatus(), tasks: this.states, stopped: this.closed };
  }

  private admits(): boolean {
    if (!this.closed && this.options.admit && !this.options.admit()) this.closed = true;
    return !this.closed;
  }

  private async initialise(): Promise<void> {
    for (const task of this.tasks) {
      const carried = this.options.initial?.get(task.id);
      this.states.set(
        task.id,
        carried && FINISHED.has(carried.status)
          ? { ...carried }
          : {
              status: 'pending',
              attempts: carried?.attempts ?? 0,
              transientFailures: carried?.transientFailures ?? 0,
              conflicts: carried?.conflicts ?? 0,
              verifyFailures: carried?.verifyFailures ?? 0,
            },
      );
    }
    for (const task of this.tasks) {
      if (this.state(task.id).status === 'failed') await this.blockDependents(task.id);
    }
    for (const task of this.tasks) this.enqueueIfReady(task);
  }

  /**
   * Queues a task whose dependencies have all succeeded, once: two dependencies that succeed
   * together both get here after their events are written, and only one may queue it.
   */
  private enqueueIfReady(task: PlanTask): void {
    if (this.queued.has(task.id) || !this.isReady(task)) return;
    this.queued.add(task.id);
    this.ready.push(task);
  }

  private state(id: string): TaskState {
    return this.states.get(id) as TaskState;
  }

  private isReady(task: PlanTask): boolean {
    return (
      this.state(task.id).status === 'pending' &&
      task.dependsOn.every((dep) => this.state(dep).status === 'succeeded')
    );
  }

  private takeBest(): PlanTask {
    let best = 0;
    for (let i = 1; i < this.ready.length; i++) {
      if (this.compare(this.ready[i] as PlanTask, this.ready[best] as PlanTask) < 0) best = i;
    }
    const [task] = this.ready.splice(best, 1) as [PlanTask];
    this.queued.delete(task.id);
    return task;
  }

  /** Starts an attempt; its executor slot is taken before anything is awaited. */
  private launch(task: PlanTask): void {
    const executor = this.freeSlots.shift() as number;
    const state = this.state(task.id);
    state.status = 'running';
    state.attempts += 1;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.freeSlots.push(executor);
      this.freeSlots.sort((a, b) => a - b);
      this.notify();
    };
    // A slot let go before the attempt settles (its work is committed, its merge under way) would
    // go to whatever is ready now, not to a dependent the merge is about to make ready: that
    // dependent would then wait for the next slot to free, off the critical path the ranking
    // chose. Such a slot is kept for the attempt until it settles.
    const releaseEarly = () => {
      if (!this.unlocksDependent(task)) release();
    };
    const attempt = this.attempt(task, state.attempts, executor, releaseEarly)
      .catch((error: unknown) => {
        this.fatal ??= { error };
      })
      .finally(() => {
        this.inFlight.delete(attempt);
        release();
        this.notify();
      });
    this.inFlight.add(attempt);
  }

  /** Whether the task's success would make a dependent ready (its other dependencies done). */
  private unlocksDependent(task: PlanTask): boolean {
    return (this.dependents.get(task.id) ?? []).some((id) => {
      const dependent = this.byId.get(id) as PlanTask;
      return (
        this.state(id).status === 'pending' &&
        dependent.dependsOn.every(
          (dep) => dep === task.id || this.state(dep).status === 'succeeded',
        )
      );
    });
  }

  private async attempt(
    task: PlanTask,
    attempt: number,
    executor: number,
    releaseExecutor: () => void,
  ): Promise<void> {
    const { emit, runAttempt, signal: runSignal } = this.options;
    await emit({ type: 'task-started', taskId: task.id, attempt, executor });
    const controller = new AbortController();
    if (runSignal?.aborted) controller.abort(runSignal.reason);
    this.running.add(controller);
    const timers = new AbortController();
    const timeoutMs = this.options.taskTimeoutMs;
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      this.clock
        .sleep(timeoutMs, timers.signal)
        .then(() => controller.abort(new TaskTimeoutError(timeoutMs)))
        .catch(() => {});
    }
    const startedAt = this.clock.now();
    let outcome: AttemptOutcome;
    try {
      outcome = await this.untilAbandoned(
        runAttempt({ task, attempt, executor, signal: controller.signal, releaseExecutor }),
        controller.signal,
        timers.signal,
      );
    } catch (error) {
      outcome = { ok: false, error: errorMessage(error), kind: 'transient' };
    } finally {
      timers.abort();
      this.running.delete(controller);
    }
    const durationMs = this.clock.now() - startedAt;
    const state = this.state(task.id);

    if (runSignal?.aborted) {
      state.status = 'cancelled';
      await emit({ type: 'task-cancelled', taskId: task.id, attempt, durationMs });
      return;
    }
    const timeout = controller.signal.reason;
    if (!outcome.ok && timeout instanceof TaskTimeoutError) {
      const error = outcome.error.includes(timeout.message)
        ? outcome.error
        : `${timeout.message}: ${outcome.error}`;
      outcome = { ...outcome, error, kind: 'transient' };
    }
    if (outcome.ok) {
      state.status = 'succeeded';
      await emit({
        type: 'task-succeeded',
        taskId: task.id,
        attempt,
        durationMs,
        result: outcome.result,
      });
      for (const child of this.dependents.get(task.id) ?? [])
        this.enqueueIfReady(this.byId.get(child) as PlanTask);
      return;
    }
    await this.handleFailure(task, attempt, durationMs, outcome);
  }

  /**
   * Waits for the attempt, but once it has been aborted gives it only `abandonAfterMs` to
   * finish: an executor that ignores its abort must not hang the run.
   */
  private untilAbandoned<T>(work: Promise<T>, aborted: AbortSignal, done: AbortSignal): Promise<T> {
    const graceMs = this.options.abandonAfterMs ?? 30_000;
    const abandoned = new Promise<never>((_, reject) => {
      const onAbort = () =>
        this.clock
          .sleep(graceMs, done)
          .then(() =>
            reject(new Error(`executor did not stop within ${graceMs} ms of being aborted`)),
          )
          .catch(() => {});
      if (aborted.aborted) onAbort();
      else aborted.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([work, abandoned]);
  }

  private async handleFailure(
    task: PlanTask,
    attempt: number,
    durationMs: number,
    outcome: Extract<AttemptOutcome, { ok: false }>,
  ): Promise<void> {
    const { emit } = this.options;
    const state = this.state(task.id);
    if (outcome.kind === 'transient') state.transientFailures += 1;
    if (outcome.kind === 'conflict') state.conflicts += 1;
    if (outcome.kind === 'verify') state.verifyFailures = (state.verifyFailures ?? 0) + 1;
    const decision = decideRetry(outcome.kind, state, this.policy, this.random);
    if (!decision.retry) {
      state.status = 'failed';
      state.error = outcome.error;
      await emit({
        type: 'task-failed',
        taskId: task.id,
        attempt,
        error: outcome.error,
        durationMs,
        ...(outcome.result && { result: outcome.result }),
      });
      await this.blockDependents(task.id);
      return;
    }
    state.status = 'retrying';
    await emit({
      type: 'task-retrying',
      taskId: task.id,
      attempt,
      reason: decision.reason,
      error: outcome.error,
      durationMs,
      delayMs: decision.delayMs,
      ...(outcome.result && { result: outcome.result }),
    });
    this.backingOff += 1;
    try {
      await this.clock.sleep(decision.delayMs, this.options.signal);
      state.status = 'pending';
      this.enqueueIfReady(task);
    } catch {
      // Cancelled during backoff: the task stays `retrying`, and a resume picks it up.
    } finally {
      this.backingOff -= 1;
      this.notify();
    }
  }

  /** Marks everything downstream of a failed task as blocked by it. */
  private async blockDependents(failedId: string): Promise<void> {
    const queue = [...(this.dependents.get(failedId) ?? [])];
    for (let i = 0; i < queue.length; i++) {
      const id = queue[i] as string;
      const state = this.state(id);
      if (state.status !== 'pending') continue;
      state.status = 'blocked';
      state.blockedBy = [failedId];
      await this.options.emit({ type: 'task-blocked', taskId: id, blockedBy: [failedId] });
      queue.push(...(this.dependents.get(id) ?? []));
    }
  }

  private finalStatus(): RunStatus {
    if (this.options.signal?.aborted) return 'cancelled';
    const unfinished = [...this.states].filter(([, s]) => !FINISHED.has(s.status));
    if (unfinished.length > 0 && this.closed) return 'failed';
    if (unfinished.length > 0) {
      throw new Error(
        `scheduler stopped with unfinished tasks: ${unfinished.map(([id]) => id).join(', ')}`,
      );
    }
    return [...this.states.values()].every((s) => s.status === 'succeeded')
      ? 'succeeded'
      : 'failed';
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    if (wake) wake();
    else this.woken = true;
  }

  private changed(): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
