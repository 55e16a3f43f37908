import { z } from 'zod';
import { AgentSettingsSchema, ExecutionModeSchema } from './executor.js';
import { UsageSchema } from './usage.js';

export const BACKEND_NAMES = ['local'] as const;
export const BackendNameSchema = z.enum(BACKEND_NAMES);
export type BackendName = z.infer<typeof BackendNameSchema>;

/** `run.json`: the options a run was started with, so `resume` continues it the same way. */
export const RunConfigSchema = z.object({
  version: z.literal(1),
  runId: z.string(),
  createdAt: z.string(),
  backend: BackendNameSchema,
  mode: ExecutionModeSchema,
  executors: z.number().int().min(1).max(1000),
  retries: z.number().int().min(0),
  retryDelayMs: z.number().int().min(0),
  taskTimeoutMs: z.number().int().min(1),
  seed: z.number().int(),
  /** Real mode: how executors drive Claude Code. */
  agent: AgentSettingsSchema.optional(),
  /** No task starts once the run has spent this much. */
  maxBudgetUsd: z.number().positive().optional(),
  /** Who made the plan, and what planning cost. */
  planner: z.object({ name: z.string(), model: z.string().optional(), usage: UsageSchema }),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;
