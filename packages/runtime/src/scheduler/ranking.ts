import type { PlanTask } from '../contracts/plan.js';

const DEFAULT_TASK_WEIGHT_MS = 60_000;

/** Expected duration of a task, the unit the critical path is measured in. */
export function taskWeight(task: PlanTask): number {
  if (task.simulate?.durationMs !== undefined) return task.simulate.durationMs;
  if (task.estimateMinutes !== undefined) return task.estimateMinutes * 60_000;
  return DEFAULT_TASK_WEIGHT_MS;
}

/** Reverse edges: for each task, the tasks that depend on it. */
export function dependentsOf(tasks: readonly PlanTask[]): Map<string, string[]> {
  const dependents = new Map<string, string[]>(tasks.map((t) => [t.id, []]));
  for (const task of tasks) for (const dep of task.dependsOn) dependents.get(dep)?.push(task.id);
  return dependents;
}

/** Tasks in an order where every dependency comes before its dependents (Kahn). */
export function topologicalOrder(tasks: readonly PlanTask[]): PlanTask[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const dependents = dependentsOf(tasks);
  const missing = new Map(tasks.map((t) => [t.id, t.dependsOn.length]));
  const queue = tasks.filter((t) => t.dependsOn.length === 0);
  const order: PlanTask[] = [];
  for (let i = 0; i < queue.length; i++) {
    const task = queue[i] as PlanTask;
    order.push(task);
    for (const child of dependents.get(task.id) ?? []) {
      const left = (missing.get(child) ?? 0) - 1;
      missing.set(child, left);
      if (left === 0) queue.push(byId.get(child) as PlanTask);
    }
  }
  return order;
}

/** Tasks grouped by depth (the longest chain of dependencies above them): what can run side by side. */
export function stages(tasks: readonly PlanTask[]): PlanTask[][] {
  const depth = new Map<string, number>();
  const result: PlanTask[][] = [];
  for (const task of topologicalOrder(tasks)) {
    const d = task.dependsOn.reduce((max, dep) => Math.max(max, (depth.get(dep) ?? 0) + 1), 0);
    depth.set(task.id, d);
    const stage = result[d] ?? [];
    stage.push(task);
    result[d] = stage;
  }
  return result;
}

/**
 * Longest weighted path from each task to the end of the plan, the task's own weight included.
 * Starting the task with the longest remaining path first is the classic critical-path list
 * scheduling rule (HLFET).
 */
export function remainingPathLengths(tasks: readonly PlanTask[]): Map<string, number> {
  const dependents = dependentsOf(tasks);
  const lengths = new Map<string, number>();
  for (const task of topologicalOrder(tasks).reverse()) {
    let longest = 0;
    for (const child of dependents.get(task.id) ?? [])
      longest = Math.max(longest, lengths.get(child) ?? 0);
    lengths.set(task.id, taskWeight(task) + longest);
  }
  return lengths;
}

/** The chain of tasks that bounds the run's duration, first task first. */
export function criticalPath(tasks: readonly PlanTask[]): PlanTask[] {
  if (tasks.length === 0) return [];
  const lengths = remainingPathLengths(tasks);
  const dependents = dependentsOf(tasks);
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const longestOf = (ids: readonly string[]) =>
    ids.reduce<string | undefined>(
      (best, id) =>
        best === undefined || (lengths.get(id) ?? 0) > (lengths.get(best) ?? 0) ? id : best,
      undefined,
    );
  const path: PlanTask[] = [];
  let current = longestOf(tasks.filter((t) => t.dependsOn.length === 0).map((t) => t.id));
  while (current) {
    path.push(byId.get(current) as PlanTask);
    current = longestOf(dependents.get(current) ?? []);
  }
  return path;
}

export type ReadyOrder = 'critical-path' | 'plan-order';

/**
 * Comparator for ready tasks. `critical-path`: longest remaining path, then priority (1 first),
 * then id. `plan-order` is the FIFO baseline the benchmark compares against.
 */
export function readyComparator(
  tasks: readonly PlanTask[],
  order: ReadyOrder,
): (a: PlanTask, b: PlanTask) => number {
  if (order === 'plan-order') {
    const index = new Map(tasks.map((t, i) => [t.id, i]));
    return (a, b) => (index.get(a.id) ?? 0) - (index.get(b.id) ?? 0);
  }
  const lengths = remainingPathLengths(tasks);
  return (a, b) =>
    (lengths.get(b.id) ?? 0) - (lengths.get(a.id) ?? 0) ||
    (a.priority ?? 3) - (b.priority ?? 3) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
