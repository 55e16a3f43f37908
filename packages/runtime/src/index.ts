/**
 * @parallel-orchestrator/runtime: plan a requirement into a task DAG, run it with up to M
 * executors, and integrate every task into one git repository.
 */
export type { Backend, ExecutionContext } from './backends/backend.js';
export { LocalBackend } from './backends/local/backend.js';
export {
  type AttemptResult,
  type EventBody,
  EventBodySchema,
  type JournalEvent,
  JournalEventSchema,
  type RunStatus,
  type TaskStatus,
} from './contracts/events.js';
export {
  type ExecutionMode,
  type ExecutorOutcome,
  ExecutorOutcomeSchema,
  type TaskSpec,
  TaskSpecSchema,
} from './contracts/executor.js';
export {
  BATCH_JOB_ENV,
  type BackendConfig,
  BackendConfigSchema,
  ENV,
  ENV_NAMES,
  type EnvName,
  IMAGE,
  S3_LAYOUT,
  SECRET_ENV_NAMES,
} from './contracts/index.js';
export {
  findCycle,
  MAX_PLAN_TASKS,
  type Plan,
  type PlanInput,
  PlanSchema,
  type PlanTask,
  PlanTaskSchema,
  PlanValidationError,
  parsePlan,
  TASK_ID_PATTERN,
} from './contracts/plan.js';
export {
  type ExecutionSummary,
  ExecutionSummarySchema,
  type TaskResult,
  TaskResultSchema,
} from './contracts/results.js';
export {
  type AgentNetwork,
  BACKEND_NAMES,
  type BackendName,
  DEFAULT_OUTPUT_LIMITS,
  type OutputLimits,
  type RunConfig,
  RunConfigSchema,
} from './contracts/run-config.js';
export {
  INTEGRATION_BRANCH,
  type RunLayout,
  runLayout,
  taskBranch,
} from './contracts/run-layout.js';
export { type Usage, UsageSchema } from './contracts/usage.js';
export { type ModelAccess, type ModelFlags, resolveModelAccess } from './models/access.js';
export type { Planner, PlannerOptions } from './planner/planner.js';
export { assignSimulatedDurations, SimulatedPlanner } from './planner/simulated.js';
export { readJournal } from './run/journal.js';
export {
  loadRun,
  type ResumeRunOptions,
  type RunHooks,
  type RunOutcome,
  type RunSettings,
  resumeRun,
  type StartRunOptions,
  startRun,
} from './run/orchestrator.js';
export { type RunState, replay, type TaskRecord } from './run/replay.js';
export { type Clock, systemClock, VirtualClock } from './scheduler/clock.js';
export { estimateSchedule, type ScheduleEstimate } from './scheduler/estimate.js';
export { criticalPath, type ReadyOrder, stages } from './scheduler/ranking.js';
export type { RetryPolicyOptions } from './scheduler/retry-policy.js';
export {
  type AttemptContext,
  type AttemptOutcome,
  Scheduler,
  type SchedulerOptions,
  type SchedulerResult,
} from './scheduler/scheduler.js';
