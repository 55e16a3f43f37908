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
