import type {
  AttemptResult,
  EventOf,
  JournalEvent,
  RemoteJob,
  RunStatus,
  TaskStatus,
} from '../contracts/events.js';
import type { Conflict } from '../contracts/executor.js';
import { addUsage, type Usage, ZERO_USAGE } from '../contracts/usage.js';
import { type Verification, verificationPassed } from '../contracts/verify.js';

/** Everything the journal says about one task. */
export interface TaskRecord {
  status: TaskStatus;
  attempts: number;
  transientFailures: number;
  conflicts: number;
  verifyFailures: number;
  /** The latest attempt whose work failed `--verify`: what its retry is told. */
  verifyFailure?: { attempt: number; verification: Verification };
  /** Every conflict met, in attempt order. */
  conflictLog: Conflict[];
  executor?: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  totalDurationMs: number;
  result: AttemptResult;
  usage: Usage;
  error?: string;
  blockedBy?: string[];
  /** The task commit being merged when the journal was last written. */
  merging?: { attempt: number; commit: string };
  /** The remote job of the latest attempt, and its last known state. */
  job?: RemoteJob & { attempt: number; state: string; reason?: string };
  /** Set by a resume: the next start of the task continues this job's attempt. */
  adopting?: RemoteJob & { attempt: number };
}

export interface RunState {
  runId?: string;
  startedAt?: string;
  finishedAt?: string;
  status?: RunStatus;
  /** `--verify` on the integration branch at the end of the run, when it ran. */
  verified?: { commit: string; verification: Verification };
  /** Set when the spending limit stopped new tasks from starting. */
  stoppedBy?: 'budget';
  /** `--setup`: the base's environment, as first prepared or found. */
  environment?: EventOf<'environment-prepared'>;
  /** Environments prepared again for tasks' work that changed what the key covers. */
  environmentsForWork: number;
  /** `--verify` on the base before any task. */
  baseCheck?: { commit: string; verification: Verification; allowed: boolean };
  tasks: Map<string, TaskRecord>;
}

export function emptyRecord(): TaskRecord {
  return {
    status: 'pending',
    attempts: 0,
    transientFailures: 0,
    conflicts: 0,
    verifyFailures: 0,
    conflictLog: [],
    totalDurationMs: 0,
    result: {},
    usage: ZERO_USAGE,
  };
}

export function initialState(taskIds: readonly string[]): RunState {
  return { tasks: new Map(taskIds.map((id) => [id, emptyRecord()])), environmentsForWork: 0 };
}

/** Folds one event into the state; returns the task it touched, if any. */
export function applyEvent(state: RunState, event: JournalEvent): TaskRecord | undefined {
  switch (event.type) {
    case 'run-started':
      state.runId = event.runId;
      state.startedAt = event.time;
      return undefined;
    case 'run-budget-spent':
      state.stoppedBy = 'budget';
      return undefined;
    case 'run-resumed':
      state.status = undefined;
      state.finishedAt = undefined;
      state.stoppedBy = undefined;
      state.verified = undefined;
      if (event.retryFailed) {
        for (const [id, task] of state.tasks) {
          if (task.status === 'failed' || task.status === 'blocked') {
            const { attempts, usage, totalDurationMs, conflictLog } = task;
            state.tasks.set(id, {
              ...emptyRecord(),
              attempts,
              usage,
              totalDurationMs,
              conflictLog,
            });
          }
        }
      }
      return undefined;
    case 'environment-prepared':
      if (event.taskId === undefined) state.environment ??= event;
      else if (!event.cached) state.environmentsForWork++;
      return undefined;
    case 'base-verified':
      state.baseCheck = {
        commit: event.commit,
        verification: event.verification,
        allowed: event.allowed,
      };
      return undefined;
    case 'run-verified':
      state.verified = { commit: event.commit, verification: event.verification };
      return undefined;
    case 'run-finished':
      state.status = event.status;
      state.finishedAt = event.time;
      return undefined;
  }
  const task = state.tasks.get(event.taskId);
  if (!task) return undefined;
  switch (event.type) {
    case 'task-started':
      task.status = 'running';
      task.attempts = Math.max(task.attempts, event.attempt);
      task.executor = event.executor;
      task.startedAt = event.time;
      task.finishedAt = undefined;
      task.merging = undefined;
      if (task.job?.attempt !== event.attempt) task.job = undefined;
      if (task.adopting?.attempt !== event.attempt) task.adopting = undefined;
      break;
    case 'task-job':
      task.job = {
        ...event.job,
        id: event.job.id ?? task.job?.id,
        attempt: event.attempt,
        state: event.state,
        ...(event.reason && { reason: event.reason }),
      };
      break;
    case 'task-adopted':
      // The attempt is not over: it is started again under its own number.
      task.status = 'pending';
      task.attempts = event.attempt - 1;
      task.adopting = { ...event.job, attempt: event.attempt };
      break;
    case 'task-merging':
      task.merging = { attempt: event.attempt, commit: event.commit };
      break;
    case 'task-succeeded':
      finishAttempt(task, 'succeeded', event, event.result);
      task.error = undefined;
      break;
    case 'task-retrying':
      finishAttempt(task, 'retrying', event, event.result);
      task.error = event.error;
      if (event.reason === 'transient') task.transientFailures += 1;
      if (event.reason === 'conflict') task.conflicts += 1;
      if (event.reason === 'verify') task.verifyFailures += 1;
      break;
    case 'task-failed':
      finishAttempt(task, 'failed', event, event.result);
      task.error = event.error;
      break;
    case 'task-cancelled':
      finishAttempt(task, 'cancelled', event, undefined);
      break;
    case 'task-blocked':
      task.status = 'blocked';
      task.blockedBy = event.blockedBy;
      task.finishedAt = event.time;
      break;
  }
  return task;
}

function finishAttempt(
  task: TaskRecord,
  status: TaskStatus,
  { time, durationMs, attempt }: { time: string; durationMs: number; attempt: number },
  result: AttemptResult | undefined,
): void {
  task.status = status;
  task.finishedAt = time;
  task.durationMs = durationMs;
  task.totalDurationMs += durationMs;
  task.merging = undefined;
  if (result) {
    task.result = result;
    if (result.usage) task.usage = addUsage(task.usage, result.usage);
    if (result.verify && !verificationPassed(result.verify))
      task.verifyFailure = { attempt, verification: result.verify };
    if (result.conflictFiles) {
      task.conflictLog = [
        ...task.conflictLog,
        { attempt, withTasks: result.conflictsWith ?? [], files: result.conflictFiles },
      ];
    }
  }
}

export function replay(taskIds: readonly string[], events: readonly JournalEvent[]): RunState {
  const state = initialState(taskIds);
  for (const event of events) applyEvent(state, event);
  return state;
}

export const FINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set([
  'succeeded',
  'failed',
  'blocked',
]);
