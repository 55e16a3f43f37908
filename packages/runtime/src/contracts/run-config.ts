import { z } from 'zod';
import { BatchSettingsSchema } from '../backends/batch/settings.js';
import { DockerSettingsSchema } from '../backends/docker/settings.js';
import { LocalSettingsSchema } from '../backends/local/settings.js';
import { SetupSettingsSchema } from './environment.js';
import { AgentSettingsSchema, ExecutionModeSchema } from './executor.js';
import { UsageSchema } from './usage.js';
import { VerifySettingsSchema } from './verify.js';

export const BACKEND_NAMES = ['local', 'docker', 'batch'] as const;
export const BackendNameSchema = z.enum(BACKEND_NAMES);
export type BackendName = z.infer<typeof BackendNameSchema>;

/** Bounds on what one attempt may add to the project; an attempt over them fails for good. */
export const OutputLimitsSchema = z.object({
  /** Largest file an attempt may add or change. */
  maxFileBytes: z.number().int().positive(),
  /** All files an attempt adds or changes, together. */
  maxTaskBytes: z.number().int().positive(),
});
export type OutputLimits = z.infer<typeof OutputLimitsSchema>;

/** GitHub refuses files over 100 MiB; no source tree needs half a GiB of changes in one task. */
export const DEFAULT_OUTPUT_LIMITS: OutputLimits = {
  maxFileBytes: 100 * 2 ** 20,
  maxTaskBytes: 512 * 2 ** 20,
};

/** Whether agents reach the network beyond the model proxy (`none`, the default) or not. */
export const AgentNetworkSchema = z.enum(['none', 'open']);
export type AgentNetwork = z.infer<typeof AgentNetworkSchema>;

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
  /** Each backend's settings, under its name: the chosen backend's are present. */
  local: LocalSettingsSchema.optional(),
  docker: DockerSettingsSchema.optional(),
  batch: BatchSettingsSchema.optional(),
  /** No task starts once the run has spent this much. */
  maxBudgetUsd: z.number().positive().optional(),
  outputLimits: OutputLimitsSchema.default(DEFAULT_OUTPUT_LIMITS),
  agentNetwork: AgentNetworkSchema.default('none'),
  /** The repository the run started from (`--repo`) and the commit its main started at. */
  source: z.object({ repo: z.string(), base: z.string() }).optional(),
  /**
   * Where the result goes when the run ends: a new branch of the source repository (by default
   * `parallel-orchestrator/<run id>`), only when the run succeeded unless `partial`, then pushed.
   * A run from a URL has no `gitDir`: its `main` is pushed as that branch to `push`.
   */
  deliver: z
    .object({
      gitDir: z.string().optional(),
      branch: z.string(),
      partial: z.boolean(),
      push: z.string().optional(),
    })
    .optional(),
  /** `--verify`: the check each task's work must pass to merge, and the run's result at the end. */
  verify: VerifySettingsSchema.optional(),
  /**
   * `--allow-failing-base`: the check fails on the base and the requirement is to make it pass;
   * until a task's work passes it, a failing check does not stop work from merging.
   */
  allowFailingBase: z.boolean().optional(),
  /** `--setup`: what prepares the repository to run, before any agent or check. */
  setup: SetupSettingsSchema.optional(),
  /** Where prepared environments are kept on this machine, shared by runs. */
  cacheDir: z.string().optional(),
  /** Who made the plan, and what planning cost. */
  planner: z.object({ name: z.string(), model: z.string().optional(), usage: UsageSchema }),
});
export type RunConfig = z.infer<typeof RunConfigSchema>;
