import { z } from 'zod';
import { PlanTaskSchema } from './plan.js';
import { UsageSchema } from './usage.js';
import { VerifyFailureSchema, VerifySettingsSchema } from './verify.js';

export const ExecutionModeSchema = z.enum(['simulate', 'real']);
export type ExecutionMode = z.infer<typeof ExecutionModeSchema>;

/** How a real executor drives Claude Code. No secrets: those reach executors as environment. */
export const AgentSettingsSchema = z.object({
  provider: z.enum(['anthropic', 'bedrock']),
  model: z.string().min(1),
  /** A gateway speaking the Messages API. */
  baseURL: z.string().optional(),
  /** Bedrock's region. */
  region: z.string().optional(),
  maxTurns: z.number().int().min(1),
  /** Tools the agent may use without asking; file tools stay inside the workspace regardless. */
  allowedTools: z.array(z.string()),
  /** Stops one task once it has spent this much. */
  maxBudgetUsd: z.number().positive().optional(),
});
export type AgentSettings = z.infer<typeof AgentSettingsSchema>;

/** A line of the plan as an executor's prompt shows it. */
export const PlanContextTaskSchema = z.object({
  id: z.string(),
  title: z.string(),
  /** The first line of the task's description. */
  summary: z.string().optional(),
  dependsOn: z.array(z.string()),
  files: z.array(z.string()).optional(),
});

/** The conflict that ended a task's previous attempt: what its retry must build on. */
export const ConflictSchema = z.object({
  attempt: z.number().int().min(1),
  /** Tasks whose merged work the attempt conflicted with. */
  withTasks: z.array(z.string()),
  files: z.array(z.string()),
});
export type Conflict = z.infer<typeof ConflictSchema>;

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
  /** The task's directory for its log and transcript (the contract's OUTPUT_DIR). */
  outputDir: z.string(),
  seed: z.number().int(),
  /** Real mode: how to drive the agent, where its HOME is, and the rest of the plan. */
  agent: AgentSettingsSchema.optional(),
  agentHome: z.string().optional(),
  planContext: z.array(PlanContextTaskSchema).optional(),
  /**
   * Real mode: the model proxy's socket as the executor sees it. The agent reaches models only
   * through it, with a token for this attempt (never in the spec); the proxy adds the real
   * credentials. Absent when the executor holds credentials itself (a container run by hand).
   */
  modelProxy: z.object({ socket: z.string() }).optional(),
  /** Set on the attempt after a merge conflict: whose work to keep, in which files. */
  conflict: ConflictSchema.optional(),
  /** Set on the attempt after one whose work failed `--verify`: the command and its output. */
  verifyFailure: VerifyFailureSchema.optional(),
  /**
   * `--verify`: the check the attempt's work must pass to merge, told to the agent. A backend
   * whose jobs check their own work (Batch) runs it in the job; elsewhere the host runs it.
   */
  verify: VerifySettingsSchema.optional(),
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
