import type { PlanInput, PlanTask } from '../../packages/runtime/src/contracts/plan.js';
import { parsePlan } from '../../packages/runtime/src/contracts/plan.js';

export type TaskInput = Partial<PlanTask> & { id: string };

/** A plan from short task descriptions: `task('b', ['a'], 100)`. */
export function task(
  id: string,
  dependsOn: string[] = [],
  durationMs?: number,
  extra: Partial<PlanTask> = {},
): TaskInput {
  return {
    id,
    title: `Task ${id}`,
    description: `Do ${id}.`,
    dependsOn,
    ...(durationMs !== undefined && { simulate: { durationMs } }),
    ...extra,
  };
}

export function planInput(tasks: TaskInput[], executorBudget = 4): PlanInput {
  return {
    requirements: 'Test requirement',
    executorBudget,
    tasks: tasks.map((t) => ({
      title: `Task ${t.id}`,
      description: `Do ${t.id}.`,
      dependsOn: [],
      ...t,
    })),
  };
}

export function plan(tasks: TaskInput[], executorBudget = 4) {
  return parsePlan(planInput(tasks, executorBudget));
}

/** `count` independent tasks of `durationMs` each. */
export function independent(count: number, durationMs: number) {
  return Array.from({ length: count }, (_, i) => task(`t${i}`, [], durationMs));
}
