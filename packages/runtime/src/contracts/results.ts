import { z } from 'zod';
import { RunStatusSchema, TaskStatusSchema } from './events.js';
import { ConflictSchema, ExecutionModeSchema } from './executor.js';
import { UsageSchema } from './usage.js';
import { VerificationSchema } from './verify.js';

/**
 * A merge conflict and how it ended: the retry was told whose work to keep and merged
 * (`merged-on-retry`), the task failed, or it has not ended yet.
 */
export const ConflictRecordSchema = ConflictSchema.extend({
  resolution: z.enum(['merged-on-retry', 'failed', 'pending']),
});
export type ConflictRecord = z.infer<typeof ConflictRecordSchema>;

/** `tasks/<id>/result.json`. */
export const TaskResultSchema = z.object({
  taskId: z.string(),
  title: z.string(),
  status: TaskStatusSchema,
  attempts: z.number().int(),
  /** Executor slot of the last attempt. */
  executor: z.number().int().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** Wall time of the last attempt. */
  durationMs: z.number().optional(),
  /** Wall time of every attempt together. */
  totalDurationMs: z.number(),
  branch: z.string(),
  commit: z.string().optional(),
  mergeCommit: z.string().optional(),
  files: z.array(z.string()),
  conflictFiles: z.array(z.string()).optional(),
  /** Every merge conflict the task met, in attempt order. */
  conflicts: z.array(ConflictRecordSchema).optional(),
  /** `--verify` runs: attempts whose work failed it, and how the last check went. */
  verifyFailures: z.number().int().optional(),
  verify: VerificationSchema.optional(),
  error: z.string().optional(),
  blockedBy: z.array(z.string()).optional(),
  /** Tokens and cost over every attempt (failed attempts cost too). */
  usage: UsageSchema,
});
export type TaskResult = z.infer<typeof TaskResultSchema>;

/** `execution_summary.json`. */
export const ExecutionSummarySchema = z.object({
  runId: z.string(),
  requirements: z.string(),
  backend: z.string(),
  mode: ExecutionModeSchema,
  executorBudget: z.number().int(),
  status: RunStatusSchema,
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number(),
  totals: z.object({
    tasks: z.number().int(),
    succeeded: z.number().int(),
    failed: z.number().int(),
    blocked: z.number().int(),
    /** Interrupted by cancellation or never started; `resume` runs them. */
    unfinished: z.number().int(),
    attempts: z.number().int(),
    filesChanged: z.number().int(),
    /** Merge conflicts met, resolved or not. */
    conflicts: z.number().int(),
    /** Attempts whose work failed `--verify` (each was retried or failed its task). */
    verifyFailures: z.number().int(),
  }),
  /** succeeded / tasks, 0..1. */
  successRate: z.number(),
  /** Planning and every task attempt together. */
  usage: UsageSchema,
  planning: z.object({ planner: z.string(), model: z.string().optional(), usage: UsageSchema }),
  /** Set when a spending limit, not the tasks, ended the run. */
  stoppedBy: z.enum(['budget']).optional(),
  /**
   * `--verify`: the command, and its run on the integration branch after the last merge (absent
   * when the run was cancelled before). A failing final check fails the run.
   */
  verify: z
    .object({
      command: z.string(),
      final: VerificationSchema.extend({ commit: z.string(), passed: z.boolean() }).optional(),
    })
    .optional(),
  /** `--setup`: the environment the base was prepared in, and how often tasks' work needed another. */
  environment: z
    .object({
      command: z.string(),
      key: z.string(),
      cached: z.boolean(),
      preparedMs: z.number(),
      bytes: z.number(),
      paths: z.array(z.string()),
      /** Environments prepared for tasks' work that changed the manifests. */
      preparedForWork: z.number().int(),
    })
    .optional(),
  /** `--verify` on the base before any task. */
  baseCheck: VerificationSchema.extend({
    commit: z.string(),
    passed: z.boolean(),
    allowed: z.boolean(),
  }).optional(),
  /** The integration commit holding every merged task. */
  integrationCommit: z.string(),
  orchestrator: z.object({ peakRssBytes: z.number().int() }),
  tasks: z.array(TaskResultSchema),
});
export type ExecutionSummary = z.infer<typeof ExecutionSummarySchema>;
