import type { Plan } from '../contracts/plan.js';
import type { Usage } from '../contracts/usage.js';

export interface PlannerOptions {
  /** M, the executor budget the plan's parallel width should suit. */
  executors: number;
  maxTasks: number;
  /** The repository the run starts from, described (its files, README, manifests). */
  codebase?: string;
}

export interface PlanResult {
  plan: Plan;
  /** Tokens and cost spent planning (zero for the simulated planner). */
  usage: Usage;
}

/** Turns a requirement into a validated task DAG. */
export interface Planner {
  readonly name: string;
  plan(requirements: string, options: PlannerOptions): Promise<PlanResult>;
}
