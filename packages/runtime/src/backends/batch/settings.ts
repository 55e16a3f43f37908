import { z } from 'zod';
import { BatchSandboxEndpointsSchema } from '../../contracts/backend-config.js';

/** Where and how the Batch backend submits jobs: a stack's runtimeConfig, flags over it. */
export const BatchSettingsSchema = z.object({
  region: z.string().min(1),
  jobQueue: z.string().min(1),
  jobDefinition: z.string().min(1),
  bucket: z.string().min(3),
  /** Where runs live in the bucket (`S3_LAYOUT.runsRoot`). */
  runsPrefix: z.string().min(1),
  logGroup: z.string().min(1),
  /** A job Batch reports blocked in RUNNABLE for this long is terminated: nothing can place it. */
  runnableTimeoutMs: z.number().int().positive(),
  /** The compute environment's ceiling and a job's share of it, as the stack reports them. */
  capacity: z
    .object({ maxVcpus: z.number().positive(), vcpusPerJob: z.number().positive() })
    .optional(),
  /** Most SubmitJob calls a second. */
  submitsPerSecond: z.number().int().positive(),
  /** DescribeJobs rounds: every `minMs` while jobs change state, backing off to `maxMs`. */
  poll: z.object({ minMs: z.number().int().positive(), maxMs: z.number().int().positive() }),
  /** The model the stack gives its jobs (its job definition holds the credentials). */
  model: z
    .object({
      provider: z.enum(['anthropic', 'bedrock']),
      model: z.string().optional(),
      /** The Bedrock models the job role may invoke: the only executor models its jobs can use. */
      allowed: z.array(z.string()).optional(),
    })
    .optional(),
  /** A local Batch sandbox instead of AWS. */
  sandbox: BatchSandboxEndpointsSchema.optional(),
});
export type BatchSettings = z.infer<typeof BatchSettingsSchema>;
