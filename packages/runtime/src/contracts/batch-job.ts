import { z } from 'zod';
import { SetupSettingsSchema } from './environment.js';
import { ExecutorOutcomeSchema, TaskSpecSchema } from './executor.js';
import { OutputLimitsSchema } from './run-config.js';
import { VerificationSchema, VerifySettingsSchema } from './verify.js';

export {
  BATCH_BLOCKED_REASONS,
  BATCH_JOB_DEFINITION,
  BATCH_JOB_ENV,
} from '@parallel-orchestrator/contracts';

/** AWS Batch's own limits, which every submission keeps to. */
export const BATCH_LIMITS = {
  /** Letters, digits, hyphens and underscores, starting with a letter or digit. */
  jobName: /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/,
  /** Batch accepts longer container overrides, then fails the job when it starts. */
  containerOverridesChars: 8192,
  /** Batch refuses a SubmitJob request body larger than this. */
  requestBytes: 30 * 1024,
  /** Job ids per DescribeJobs call. */
  describeJobsIds: 100,
  /** Characters of a tag value. */
  tagValueChars: 256,
} as const;

/** Tags on every job the Batch backend submits (propagated to its ECS task). */
export const BATCH_JOB_TAGS = {
  run: 'parallel-orchestrator:run-id',
  task: 'parallel-orchestrator:task-id',
  attempt: 'parallel-orchestrator:attempt',
} as const;

const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);
const CommitSchema = z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/);

/** An object in the state bucket with the checksum and size its reader verifies. */
export const StagedObjectSchema = z.object({
  key: z.string().min(1),
  sha256: Sha256Schema,
  bytes: z.number().int().min(0),
});
export type StagedObject = z.infer<typeof StagedObjectSchema>;

/**
 * Where a job finds its `input.json`: a URL presigned for it alone, in the submission's
 * environment. Every object a job moves has a URL of its own, so the job role needs no access
 * to the bucket and a job reaches no other attempt's objects.
 */
export const BATCH_INPUT_URL_ENV = 'S3_INPUT_URL';

/** An S3 URL signed for one method on one key (SigV4 query authentication). */
const PresignedUrlSchema = z.url({ protocol: /^https?$/ });

/** What a job moves: a GET for its base bundle, a PUT for each object it stages out. */
export const JobTransferSchema = z.strictObject({
  base: PresignedUrlSchema,
  put: z.strictObject({
    bundle: PresignedUrlSchema,
    transcript: PresignedUrlSchema,
    verifyLog: PresignedUrlSchema,
    result: PresignedUrlSchema,
    /** A setup job's archive of the environment it prepared. */
    environment: PresignedUrlSchema.optional(),
  }),
});
export type JobTransfer = z.infer<typeof JobTransferSchema>;

/** TASK_ID of the job that runs `--verify` on the final integration commit (no task has it). */
export const FINAL_VERIFY_TASK_ID = '_verify';

/** TASK_ID of a job that prepares an environment (`--setup`; no task has it either). */
export const SETUP_TASK_ID = '_setup';

/**
 * A relative path of a prepared environment, as git lists ignored paths (`node_modules/`,
 * `packages/a/.venv/`, `.env`): no `.`, `..` or empty component, never `.git`, nothing absolute.
 */
export const PreparedPathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      !p.includes('\0') &&
      p
        .replace(/\/$/, '')
        .split('/')
        .every((part) => part !== '' && part !== '.' && part !== '..' && part !== '.git'),
    { message: 'is not a relative path inside the workspace' },
  );

/**
 * The environment an attempt or a check starts from (`--setup`): the archive a setup job made,
 * by a URL presigned for this job, with the digest and size the job checks before extracting it.
 */
export const JobEnvironmentSchema = z.object({
  url: PresignedUrlSchema,
  key: z.string().min(1),
  sha256: Sha256Schema,
  bytes: z.number().int().min(0),
  paths: z.array(PreparedPathSchema).max(256),
});
export type JobEnvironment = z.infer<typeof JobEnvironmentSchema>;

/**
 * `input.json`: what one job runs, uploaded by the orchestrator before it submits the job: a
 * task's attempt (`spec`), `--verify` alone on the base (`verifyOnly`), or `--setup` on the base
 * (`setupOnly`), whose prepared paths go up as an archive.
 */
export const BatchJobInputSchema = z
  .object({
    version: z.literal(1),
    /** The task as the job sees it (its paths are the job's own). */
    spec: TaskSpecSchema.optional(),
    verifyOnly: VerifySettingsSchema.optional(),
    setupOnly: SetupSettingsSchema.optional(),
    /** `--setup`: the prepared environment the agent and the check start from, read-only. */
    environment: JobEnvironmentSchema.optional(),
    /** The integration commit the task starts from, in a bundle shared by attempts. */
    base: z.object({ commit: CommitSchema, bundle: StagedObjectSchema }),
    transfer: JobTransferSchema,
    /** The job refuses to stage out more than this; the host checks again. */
    limits: OutputLimitsSchema,
    /**
     * The ignore rules the orchestrator holds agents' work to (those of the repository the run
     * started from): what the job leaves out of its bundle, as the host would.
     */
    ignoreRules: z
      .string()
      .max(2 ** 20)
      .optional(),
  })
  .refine((input) => [input.spec, input.verifyOnly, input.setupOnly].filter(Boolean).length === 1, {
    message: 'holds one of a task (spec), a verification (verifyOnly) or a setup (setupOnly)',
  });
export type BatchJobInput = z.infer<typeof BatchJobInputSchema>;

/**
 * `result.json`: the job's outcome, uploaded last, so its presence means the rest is complete.
 * Written by an untrusted job: the host checks every object against it and trusts nothing else.
 */
export const BatchJobResultSchema = z.object({
  version: z.literal(1),
  outcome: ExecutorOutcomeSchema,
  /** The job's commit on top of the base (a succeeded attempt), as `refs/heads/result`. */
  commit: CommitSchema.optional(),
  bundle: StagedObjectSchema.optional(),
  transcript: StagedObjectSchema.optional(),
  /** `--verify` run by the job on its work (or alone), and its output; a setup job's run of `--setup`. */
  verification: VerificationSchema.optional(),
  verifyLog: StagedObjectSchema.optional(),
  /** A setup job's environment: the ignored paths the setup made, their size, and its archive. */
  environment: z
    .object({
      paths: z.array(PreparedPathSchema).max(256),
      bytes: z.number().int().min(0),
      /** Where it went is the host's to say (it presigned the URL): its digest and size. */
      archive: z.object({ sha256: Sha256Schema, bytes: z.number().int().min(0) }),
    })
    .optional(),
});
export type BatchJobResult = z.infer<typeof BatchJobResultSchema>;

/** The branch a job's bundle carries its commit on: the only ref the host fetches. */
export const BATCH_RESULT_REF = 'refs/heads/result';
