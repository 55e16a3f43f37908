import { z } from 'zod';
import { UsageSchema } from './usage.js';
import { VerificationSchema } from './verify.js';

/** Final states of a task, and of a run. */
export const TaskStatusSchema = z.enum([
  'pending',
  'running',
  'retrying',
  'succeeded',
  'failed',
  'blocked',
  'cancelled',
]);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

export const RunStatusSchema = z.enum(['succeeded', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof RunStatusSchema>;

/** What a finished attempt leaves behind, as far as the workspace is concerned. */
export const AttemptResultSchema = z.object({
  commit: z.string().optional(),
  mergeCommit: z.string().optional(),
  files: z.array(z.string()).optional(),
  conflictFiles: z.array(z.string()).optional(),
  /** Tasks whose merged work the conflicting files came from. */
  conflictsWith: z.array(z.string()).optional(),
  usage: UsageSchema.optional(),
  /** How the attempt's work fared under `--verify`, when it was checked. */
  verify: VerificationSchema.optional(),
});
export type AttemptResult = z.infer<typeof AttemptResultSchema>;

export const RetryReasonSchema = z.enum(['transient', 'conflict', 'verify', 'interrupted']);
export type RetryReason = z.infer<typeof RetryReasonSchema>;

const task = { taskId: z.string(), attempt: z.number().int().min(1) };

/**
 * A job that runs an attempt elsewhere (a Batch job): named before it is submitted, its id
 * recorded once known, so a resumed run finds it again instead of submitting another.
 */
export const RemoteJobSchema = z.object({
  name: z.string(),
  id: z.string().optional(),
  /** The integration commit the attempt started from. */
  base: z.string(),
});
export type RemoteJob = z.infer<typeof RemoteJobSchema>;

/** `submitting` before the job is submitted, then the job's own states, `terminating` on a stop. */
export const RemoteJobStateSchema = z.string().regex(/^[a-zA-Z_-]{1,32}$/);

/** Event bodies, before the journal stamps them with `seq` and `time`. */
export const EventBodySchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('run-started'),
    runId: z.string(),
    tasks: z.number().int(),
    executors: z.number().int(),
    backend: z.string(),
    mode: z.string(),
    /** What of the source repository the run leaves as it is (submodules, LFS files). */
    notes: z.array(z.string()).optional(),
  }),
  z.object({
    type: z.literal('run-resumed'),
    runId: z.string(),
    remaining: z.number().int(),
    /** Failed and blocked tasks were given another chance. */
    retryFailed: z.boolean(),
    /** Lock files a killed git left in the repository, removed before going on. */
    recoveredLocks: z.array(z.string()).optional(),
  }),
  z.object({ type: z.literal('task-started'), ...task, executor: z.number().int() }),
  z.object({
    type: z.literal('task-merging'),
    ...task,
    commit: z.string(),
    /** When the executor had finished: from then to this event the host committed and checked. */
    executedAt: z.string().optional(),
  }),
  z.object({
    type: z.literal('task-job'),
    ...task,
    job: RemoteJobSchema,
    state: RemoteJobStateSchema,
    /** Why the job is in this state, as its backend says (a failure, a stop). */
    reason: z.string().optional(),
  }),
  z.object({
    /** A resumed run takes up an attempt whose job outlived the orchestrator. */
    type: z.literal('task-adopted'),
    ...task,
    job: RemoteJobSchema,
  }),
  z.object({
    type: z.literal('task-succeeded'),
    ...task,
    durationMs: z.number(),
    result: AttemptResultSchema,
    /** Set when a resumed run found the task's merge already on the integration branch. */
    recovered: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('task-retrying'),
    ...task,
    reason: RetryReasonSchema,
    error: z.string(),
    durationMs: z.number(),
    delayMs: z.number(),
    result: AttemptResultSchema.optional(),
  }),
  z.object({
    type: z.literal('task-failed'),
    ...task,
    error: z.string(),
    durationMs: z.number(),
    result: AttemptResultSchema.optional(),
  }),
  z.object({ type: z.literal('task-blocked'), taskId: z.string(), blockedBy: z.array(z.string()) }),
  z.object({ type: z.literal('task-cancelled'), ...task, durationMs: z.number() }),
  z.object({
    type: z.literal('run-budget-spent'),
    spentUsd: z.number(),
    limitUsd: z.number(),
  }),
  z.object({
    /**
     * `--setup`: the environment a base is checked and worked on in, prepared or found in the
     * cache; for a task's work that changed what the key covers, prepared on its tree.
     */
    type: z.literal('environment-prepared'),
    command: z.string(),
    key: z.string(),
    commit: z.string(),
    cached: z.boolean(),
    /** How long the setup took when it ran (earlier, for a cached one). */
    preparedMs: z.number(),
    paths: z.array(z.string()),
    bytes: z.number(),
    taskId: z.string().optional(),
    attempt: z.number().int().optional(),
    /** Why it was prepared again (a cached copy was missing or incomplete). */
    note: z.string().optional(),
  }),
  z.object({
    /** `--verify` on the base before any task, in its prepared environment. */
    type: z.literal('base-verified'),
    commit: z.string(),
    verification: VerificationSchema,
    /** `--allow-failing-base`: a failing base did not stop the run. */
    allowed: z.boolean(),
  }),
  z.object({
    /** `--verify` on the integration branch once the last merge landed. */
    type: z.literal('run-verified'),
    commit: z.string(),
    verification: VerificationSchema,
  }),
  z.object({
    type: z.literal('run-finished'),
    status: RunStatusSchema,
    durationMs: z.number(),
  }),
]);
export type EventBody = z.infer<typeof EventBodySchema>;
export type EventType = EventBody['type'];
export type EventOf<T extends EventType> = Extract<EventBody, { type: T }>;

export const JournalEventSchema = z.intersection(
  z.object({ seq: z.number().int().min(1), time: z.string() }),
  EventBodySchema,
);
export type JournalEvent = EventBody & { seq: number; time: string };
