import type { Plan } from '../contracts/plan.js';

export interface PlannerOptions {
  /** M, the executor budget the plan's parallel width should suit. */
  executors: number;
  maxTasks: number;
}

/** Turns a requirement into a validated task DAG. */
export interface Planner {
  readonly name: string;
  plan(requirements: string, options: PlannerOptions): Promise<Plan>;
}
