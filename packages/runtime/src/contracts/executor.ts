import { z } from 'zod';
import { PlanTaskSchema } from './plan.js';
import { UsageSchema } from './usage.js';

export const ExecutionModeSchema = z.enum(['simulate', 'real']);
export type ExecutionMode = z.infer<typeof ExecutionModeSchema>;

/** What an executor is given for one attempt of one task, whatever backend runs it. */
export const TaskSpecSchema = z.object({
  runId: z.string(),
  taskId: z.string(),
  attempt: z.number().int().min(1),
  /** Executor slot 0..M-1: the contract's EXECUTOR_ID. */
  executor: z.number().int().min(0),
  mode: ExecutionModeSchema,
  requirements: z.string(),
  task: PlanTaskSchema,
  /** Tasks whose work is already merged into the workspace. */
  mergedDependencies: z.array(z.object({ id: z.string(), title: z.string() })),
  /** Absolute path of the workspace as the executor sees it. */
  workspaceDir: z.string(),
  seed: z.number().int(),
});
export type TaskSpec = z.infer<typeof TaskSpecSchema>;

/** What an executor reports back for one attempt. */
export const ExecutorOutcomeSchema = z.object({
  status: z.enum(['succeeded', 'failed']),
  error: z.string().optional(),
  /** A failed attempt that may succeed if tried again (a crash, a timeout, a rate limit). */
  retryable: z.boolean().optional(),
  summary: z.string().optional(),
  filesWritten: z.array(z.string()).optional(),
  usage: UsageSchema.optional(),
});
export type ExecutorOutcome = z.infer<typeof ExecutorOutcomeSchema>;
