import type { JournalEvent, RetryReason } from '../contracts/events.js';
import type { PlanTask } from '../contracts/plan.js';
import { topologicalOrder } from '../scheduler/ranking.js';

/** How an attempt ended, as the journal says. */
export type AttemptEnd = 'succeeded' | 'failed' | RetryReason | 'cancelled' | 'unfinished';

/** One attempt on the run's clock: milliseconds from the run's start. */
export interface AttemptSpan {
  taskId: string;
  attempt: number;
  executor: number;
  /** When it could have started: its dependencies merged, or its retry's delay over. */
  readyMs: number;
  startMs: number;
  /** The executor was done; the host committed (and checked) until `mergingMs`. */
  executedMs?: number;
  mergingMs?: number;
  endMs: number;
  /** The executor slot was free again: at the merge's start, or at the end. */
  slotEndMs: number;
  end: AttemptEnd;
  error?: string;
  /** `--verify` on this attempt's work, when it ran. */
  verify?: { passed: boolean; durationMs: number };
}

export interface Timeline {
  /** The run's first event, epoch milliseconds. */
  origin: number;
  durationMs: number;
  attempts: AttemptSpan[];
  /** Attempts holding an executor slot, at each time the count changed. */
  inFlight: { atMs: number; count: number }[];
  blocked: { taskId: string; atMs: number; by: string[] }[];
  /** When the spending limit stopped new tasks from starting. */
  budgetStopMs?: number;
  /** Times the run was resumed. */
  resumedMs: number[];
}

/** Folds the journal into one span per attempt, on the run's own clock. */
export function buildTimeline(
  tasks: readonly PlanTask[],
  events: readonly JournalEvent[],
): Timeline {
  const origin = events.length ? Date.parse(events[0]?.time as string) : 0;
  const at = (event: JournalEvent) => Date.parse(event.time) - origin;
  const dependsOn = new Map(tasks.map((t) => [t.id, t.dependsOn]));
  const mergedAt = new Map<string, number>();
  const retryAt = new Map<string, number>();
  const open = new Map<string, AttemptSpan>();
  const attempts: AttemptSpan[] = [];
  const blocked: Timeline['blocked'] = [];
  const resumedMs: number[] = [];
  let startedMs = 0;
  let budgetStopMs: number | undefined;
  let endMs = 0;
  const close = (taskId: string, time: number, end: AttemptEnd, error?: string) => {
    const span = open.get(taskId);
    if (!span) return undefined;
    open.delete(taskId);
    span.endMs = time;
    span.slotEndMs = span.mergingMs ?? time;
    span.end = end;
    if (error) span.error = error;
    return span;
  };
  let lastMs = 0;
  for (const event of events) {
    const time = at(event);
    lastMs = endMs;
    endMs = Math.max(endMs, time);
    switch (event.type) {
      case 'run-started':
        startedMs = time;
        break;
      case 'run-resumed':
        startedMs = time;
        resumedMs.push(time);
        // Attempts the interruption cut short (a job the resume adopts) end where the journal
        // last heard of the run; the adopted job's wait shows as the next span.
        for (const id of [...open.keys()]) close(id, lastMs, 'interrupted');
        break;
      case 'run-budget-spent':
        budgetStopMs ??= time;
        break;
      case 'task-started': {
        const ready = Math.max(
          startedMs,
          retryAt.get(event.taskId) ?? 0,
          ...(dependsOn.get(event.taskId) ?? []).map((id) => mergedAt.get(id) ?? 0),
        );
        const span: AttemptSpan = {
          taskId: event.taskId,
          attempt: event.attempt,
          executor: event.executor,
          readyMs: Math.min(ready, time),
          startMs: time,
          endMs: time,
          slotEndMs: time,
          end: 'unfinished',
        };
        open.set(event.taskId, span);
        attempts.push(span);
        break;
      }
      case 'task-merging': {
        const span = open.get(event.taskId);
        if (span) {
          span.mergingMs = time;
          if (event.executedAt) span.executedMs = Date.parse(event.executedAt) - origin;
        }
        break;
      }
      case 'task-succeeded': {
        const span = close(event.taskId, time, 'succeeded');
        if (span && event.result.verify) span.verify = verifyOf(event.result.verify);
        mergedAt.set(event.taskId, time);
        break;
      }
      case 'task-retrying': {
        const span = close(event.taskId, time, event.reason, event.error);
        if (span && event.result?.verify) span.verify = verifyOf(event.result.verify);
        retryAt.set(event.taskId, time + event.delayMs);
        break;
      }
      case 'task-failed':
        close(event.taskId, time, 'failed', event.error);
        break;
      case 'task-cancelled':
        close(event.taskId, time, 'cancelled');
        break;
      case 'task-blocked':
        blocked.push({ taskId: event.taskId, atMs: time, by: event.blockedBy });
        break;
    }
  }
  for (const span of open.values()) {
    span.endMs = endMs;
    span.slotEndMs = span.mergingMs ?? endMs;
  }
  return {
    origin,
    durationMs: endMs,
    attempts,
    inFlight: inFlight(attempts),
    blocked,
    ...(budgetStopMs !== undefined && { budgetStopMs }),
    resumedMs,
  };
}

function verifyOf(v: { exitCode: number | null; timedOut: boolean; durationMs: number }) {
  return { passed: v.exitCode === 0 && !v.timedOut, durationMs: v.durationMs };
}

/** The number of attempts holding a slot, as a step function. */
function inFlight(attempts: readonly AttemptSpan[]): Timeline['inFlight'] {
  const changes = attempts.flatMap((a) => [
    { atMs: a.startMs, delta: 1 },
    { atMs: a.slotEndMs, delta: -1 },
  ]);
  changes.sort((a, b) => a.atMs - b.atMs || a.delta - b.delta);
  const steps: Timeline['inFlight'] = [];
  let count = 0;
  for (const { atMs, delta } of changes) {
    count += delta;
    const last = steps.at(-1);
    if (last?.atMs === atMs) last.count = count;
    else steps.push({ atMs, count });
  }
  return steps;
}

/** How long each task's final attempt took from its start to its merge. */
function taskSpans(timeline: Timeline): Map<string, number> {
  const spans = new Map<string, number>();
  for (const a of timeline.attempts)
    if (a.end === 'succeeded') spans.set(a.taskId, a.endMs - a.startMs);
  return spans;
}

export interface Bounds {
  /** The longest chain of merged tasks, each as long as its final attempt took. */
  criticalPathMs: number;
  criticalPath: string[];
  /** Time attempts held executor slots, all attempts together. */
  workMs: number;
  /** No schedule on M slots beats max(critical path, work / M). */
  lowerBoundMs: number;
  /** Work over the slots' time: M × the run's duration. */
  utilisation: number;
}

export function runBounds(
  tasks: readonly PlanTask[],
  timeline: Timeline,
  executors: number,
): Bounds {
  const spans = taskSpans(timeline);
  const longest = new Map<string, { ms: number; path: string[] }>();
  for (const task of topologicalOrder(tasks)) {
    const before = task.dependsOn
      .map((id) => longest.get(id))
      .reduce<{ ms: number; path: string[] } | undefined>(
        (best, next) => (next && (!best || next.ms > best.ms) ? next : best),
        undefined,
      );
    const own = spans.get(task.id) ?? 0;
    longest.set(task.id, {
      ms: (before?.ms ?? 0) + own,
      path: [...(before?.path ?? []), ...(own > 0 ? [task.id] : [])],
    });
  }
  const critical = [...longest.values()].reduce((best, next) => (next.ms > best.ms ? next : best), {
    ms: 0,
    path: [] as string[],
  });
  const workMs = timeline.attempts.reduce((sum, a) => sum + (a.slotEndMs - a.startMs), 0);
  return {
    criticalPathMs: critical.ms,
    criticalPath: critical.path,
    workMs,
    lowerBoundMs: Math.max(critical.ms, workMs / executors),
    utilisation: timeline.durationMs > 0 ? workMs / (executors * timeline.durationMs) : 0,
  };
}
