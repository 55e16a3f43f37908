import type { PlanTask } from '../contracts/plan.js';
import { VirtualClock } from './clock.js';
import { criticalPath, type ReadyOrder, taskWeight } from './ranking.js';
import { Scheduler } from './scheduler.js';

export interface ScheduleEstimate {
  /** Time to run every task with M executors and no overhead. */
  makespanMs: number;
  criticalPathMs: number;
  totalWorkMs: number;
  /** No schedule can beat max(critical path, total work / M). */
  lowerBoundMs: number;
}

/**
 * Runs the real scheduler over the plan in virtual time, each task taking its weight
 * (`simulate.durationMs`, else `estimateMinutes`): what M executors would take, in milliseconds
 * of compute rather than of waiting.
 */
export async function estimateSchedule(
  tasks: readonly PlanTask[],
  concurrency: number,
  order: ReadyOrder = 'critical-path',
): Promise<ScheduleEstimate> {
  const clock = new VirtualClock();
  const scheduler = new Scheduler({
    tasks,
    concurrency,
    clock,
    order,
    emit: () => {},
    runAttempt: async ({ task }) => {
      await clock.sleep(taskWeight(task));
      return { ok: true, result: {} };
    },
  });
  await clock.run(scheduler.run());
  const criticalPathMs = criticalPath(tasks).reduce((sum, t) => sum + taskWeight(t), 0);
  const totalWorkMs = tasks.reduce((sum, t) => sum + taskWeight(t), 0);
  return {
    makespanMs: clock.now(),
    criticalPathMs,
    totalWorkMs,
    lowerBoundMs: Math.max(criticalPathMs, totalWorkMs / concurrency),
  };
}

/** What is left of a run, task by task: its expected duration, and how long it has run. */
export interface RemainingTask {
  task: PlanTask;
  /** Expected duration of one attempt. */
  expectedMs: number;
  /** How long its attempt in flight has run; absent for a task not started. */
  elapsedMs?: number;
}

/**
 * The time the rest of a run takes with M executors: the unfinished tasks scheduled by the real
 * scheduler in virtual time, each its expected duration (less what a running attempt has already
 * spent), dependencies on finished tasks dropped. The same estimate `plan` prints, for the tail.
 */
export async function estimateRemaining(
  remaining: readonly RemainingTask[],
  concurrency: number,
): Promise<number> {
  if (remaining.length === 0) return 0;
  const left = new Set(remaining.map((r) => r.task.id));
  const tasks = remaining.map(({ task, expectedMs, elapsedMs }) => ({
    ...task,
    dependsOn: task.dependsOn.filter((id) => left.has(id)),
    simulate: { durationMs: Math.max(0, Math.round(expectedMs - (elapsedMs ?? 0))) },
  }));
  return (await estimateSchedule(tasks, concurrency)).makespanMs;
}
