import {
  BATCH_BLOCKED_REASONS,
  BATCH_JOB_DEFINITION,
  BATCH_JOB_ENV,
  ENV,
  IMAGE,
} from '@parallel-orchestrator/runtime/contracts';
import { z } from 'zod';
import { parseOrFail } from './parse.js';

/** The account every sandbox ARN names. */
export const SANDBOX_ACCOUNT = '000000000000';
/** Name of the default queue, definition, log group and model-key secret. */
export const SANDBOX_NAME = 'parallel-orchestrator-sandbox';

export const JOB_STATUSES = [
  'SUBMITTED',
  'PENDING',
  'RUNNABLE',
  'STARTING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

const KeyValueSchema = z.object({ name: z.string().min(1), value: z.string() });
export const ResourceRequirementSchema = z.object({
  type: z.enum(['VCPU', 'MEMORY', 'GPU']),
  value: z.string().regex(/^\d+(\.\d+)?$/, 'must be a number'),
});
export type ResourceRequirement = z.infer<typeof ResourceRequirementSchema>;

/** A glob as evaluateOnExit takes it: exact, or a prefix when it ends with `*`. */
const GlobSchema = z.string().max(512);
export const EvaluateOnExitSchema = z.object({
  // Batch takes the action in any case.
  action: z
    .string()
    .transform((action) => action.toUpperCase())
    .pipe(z.enum(['RETRY', 'EXIT'])),
  onStatusReason: GlobSchema.optional(),
  onReason: GlobSchema.optional(),
  onExitCode: z
    .string()
    .regex(/^\d*\*?$/, 'only digits, optionally ending with *')
    .optional(),
});
export type EvaluateOnExit = z.infer<typeof EvaluateOnExitSchema>;

export const RetryStrategySchema = z.object({
  attempts: z.number().int().min(1).max(10).optional(),
  evaluateOnExit: z.array(EvaluateOnExitSchema).max(5).optional(),
});
export type RetryStrategy = z.infer<typeof RetryStrategySchema>;

/** Any length of at least one second: real Batch wants 60 or more (a sandbox deviation). */
export const JobTimeoutSchema = z.object({
  attemptDurationSeconds: z.number().int().min(1).optional(),
});

/**
 * `containerProperties` of a job definition, as the Pulumi component writes it. Fields the
 * sandbox does not act on (roles, platform, network configuration) are kept and shown as given;
 * those it cannot honour are refused rather than ignored.
 */
export const ContainerPropertiesSchema = z.looseObject({
  image: z.string().min(1),
  command: z.array(z.string()).optional(),
  environment: z.array(KeyValueSchema).optional(),
  secrets: z.array(z.object({ name: z.string().min(1), valueFrom: z.string().min(1) })).optional(),
  resourceRequirements: z.array(ResourceRequirementSchema).optional(),
  /** The legacy fields, for definitions that predate resourceRequirements. */
  vcpus: z.number().positive().optional(),
  memory: z.number().int().positive().optional(),
  readonlyRootFilesystem: z.boolean().optional(),
  user: z.string().min(1).optional(),
  /** The job's credentials: the role its AWS calls are authorized as. */
  jobRoleArn: z.string().startsWith('arn:').optional(),
  /** The role ECS starts the container as: it reads the secrets. */
  executionRoleArn: z.string().startsWith('arn:').optional(),
  privileged: z
    .literal(false, { error: 'privileged containers are not run by the sandbox' })
    .optional(),
  volumes: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        /**
         * A host path (EC2 only in Batch). Without one: on EC2 a Docker volume (a copy of the
         * image's directory), on Fargate an empty root-owned directory.
         */
        host: z.strictObject({ sourcePath: z.string().startsWith('/').optional() }).optional(),
      }),
    )
    .optional(),
  mountPoints: z
    .array(
      z.object({
        sourceVolume: z.string().min(1),
        containerPath: z.string().startsWith('/'),
        readOnly: z.boolean().optional(),
      }),
    )
    .optional(),
  linuxParameters: z.looseObject({ initProcessEnabled: z.boolean().optional() }).optional(),
  logConfiguration: z
    .looseObject({
      logDriver: z.literal('awslogs', { error: 'the sandbox serves awslogs logs only' }),
      options: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});
export type ContainerProperties = z.infer<typeof ContainerPropertiesSchema>;

const JOB_DEFINITION_ARN =
  /^arn:aws[\w-]*:batch:[\w-]+:\d{12}:job-definition\/([\w-]{1,128}):(\d+)$/;
const JOB_QUEUE_ARN = /^arn:aws[\w-]*:batch:[\w-]+:\d{12}:job-queue\/([\w-]{1,128})$/;

/** A job definition to register, in the shape the Pulumi component gives `aws.batch.JobDefinition`. */
export const JobDefinitionInputSchema = z.object({
  arn: z.string().regex(JOB_DEFINITION_ARN, 'a job definition ARN ending in name:revision'),
  /** An object, or the JSON string the Pulumi component writes. */
  containerProperties: z.union([
    z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'containerProperties is not JSON' });
          return z.NEVER;
        }
      })
      .pipe(ContainerPropertiesSchema),
    ContainerPropertiesSchema,
  ]),
  /** Pulumi names the rules `evaluateOnExits`; the Batch API `evaluateOnExit`. Both are taken. */
  retryStrategy: z
    .object({
      attempts: z.number().int().min(1).max(10).optional(),
      evaluateOnExit: z.array(EvaluateOnExitSchema).max(5).optional(),
      evaluateOnExits: z.array(EvaluateOnExitSchema).max(5).optional(),
    })
    .transform(({ attempts, evaluateOnExit, evaluateOnExits }) => ({
      attempts,
      evaluateOnExit: evaluateOnExit ?? evaluateOnExits,
    }))
    .optional(),
  timeout: JobTimeoutSchema.optional(),
  platformCapabilities: z.array(z.enum(['EC2', 'FARGATE'])).optional(),
  propagateTags: z.boolean().optional(),
  tags: z.record(z.string(), z.string()).optional(),
});
export type JobDefinitionInput = z.input<typeof JobDefinitionInputSchema>;

export const JobStateTimeLimitActionSchema = z.object({
  state: z.literal('RUNNABLE'),
  action: z.literal('CANCEL'),
  /** Real Batch wants 600 or more; the sandbox takes any (a deviation). */
  maxTimeSeconds: z.number().positive(),
  /** Acts on RUNNABLE jobs whose statusReason starts with this, e.g. CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY. */
  reason: z.string().min(1),
});
export type JobStateTimeLimitAction = z.infer<typeof JobStateTimeLimitActionSchema>;

export const COMPUTE_TYPES = ['EC2', 'SPOT', 'FARGATE', 'FARGATE_SPOT'] as const;

export const JobQueueInputSchema = z.object({
  arn: z.string().regex(JOB_QUEUE_ARN, 'a job queue ARN'),
  /** Its compute environment's ceiling; the sandbox's maxVcpus by default. */
  maxVcpus: z.number().positive().optional(),
  /** Its compute environment's type: Fargate or EC2 volume semantics (EC2 by default). */
  computeType: z.enum(COMPUTE_TYPES).optional(),
  jobStateTimeLimitActions: z.array(JobStateTimeLimitActionSchema).optional(),
});
export type JobQueueInput = z.input<typeof JobQueueInputSchema>;

export interface JobDefinition {
  arn: string;
  name: string;
  revision: number;
  containerProperties: ContainerProperties;
  retryStrategy: RetryStrategy;
  timeout?: { attemptDurationSeconds?: number };
  platformCapabilities: ('EC2' | 'FARGATE')[];
  propagateTags: boolean;
  tags: Record<string, string>;
  /** INACTIVE once deregistered: it takes no new jobs. */
  status: 'ACTIVE' | 'INACTIVE';
}

export interface JobQueue {
  arn: string;
  name: string;
  computeEnvironmentArn: string;
  maxVcpus: number;
  /** Its compute environment is Fargate (FARGATE or FARGATE_SPOT). */
  fargate: boolean;
  jobStateTimeLimitActions: JobStateTimeLimitAction[];
}

export function jobDefinitionFrom(input: JobDefinitionInput): JobDefinition {
  const parsed = parseOrFail(
    JobDefinitionInputSchema,
    input,
    (message) => new Error(`job definition ${(input as { arn?: string }).arn ?? ''}: ${message}`),
  );
  const [, name, revision] = JOB_DEFINITION_ARN.exec(parsed.arn) as RegExpExecArray;
  const properties = parsed.containerProperties;
  const volumeNames = new Set((properties.volumes ?? []).map((volume) => volume.name));
  for (const mount of properties.mountPoints ?? []) {
    if (!volumeNames.has(mount.sourceVolume))
      throw new Error(`${parsed.arn}: mount point ${mount.containerPath} names no volume`);
  }
  return {
    arn: parsed.arn,
    name: name as string,
    revision: Number(revision),
    containerProperties: properties,
    retryStrategy: parsed.retryStrategy ?? {},
    ...(parsed.timeout && { timeout: parsed.timeout }),
    platformCapabilities: parsed.platformCapabilities ?? ['EC2'],
    propagateTags: parsed.propagateTags ?? false,
    tags: parsed.tags ?? {},
    status: 'ACTIVE',
  };
}

/**
 * Registers `input` as the next revision of its definition's name (the revision in its ARN is
 * ignored), as RegisterJobDefinition does; with `deregisterPrevious`, every earlier ACTIVE
 * revision becomes INACTIVE, as the Pulumi AWS provider does on an update unless
 * `deregisterOnNewRevision` is false. Returns the new revision.
 * https://docs.aws.amazon.com/batch/latest/APIReference/API_RegisterJobDefinition.html
 * https://docs.aws.amazon.com/batch/latest/APIReference/API_DeregisterJobDefinition.html
 */
export function registerRevision(
  definitions: JobDefinition[],
  input: JobDefinitionInput,
  deregisterPrevious: boolean,
): JobDefinition {
  const [, name] = JOB_DEFINITION_ARN.exec(input.arn) ?? [];
  const previous = definitions.filter((d) => d.name === name);
  const revision = Math.max(0, ...previous.map((d) => d.revision)) + 1;
  const definition = jobDefinitionFrom({
    ...input,
    arn: input.arn.replace(/:\d+$/, `:${revision}`),
  });
  if (deregisterPrevious) for (const old of previous) old.status = 'INACTIVE';
  definitions.push(definition);
  return definition;
}

export function jobQueueFrom(input: JobQueueInput, defaultMaxVcpus: number): JobQueue {
  const parsed = parseOrFail(
    JobQueueInputSchema,
    input,
    (message) => new Error(`job queue ${(input as { arn?: string }).arn ?? ''}: ${message}`),
  );
  const name = (JOB_QUEUE_ARN.exec(parsed.arn) as RegExpExecArray)[1] as string;
  const [prefix] = parsed.arn.split(':job-queue/');
  return {
    arn: parsed.arn,
    name,
    computeEnvironmentArn: `${prefix}:compute-environment/${name}`,
    maxVcpus: parsed.maxVcpus ?? defaultMaxVcpus,
    fargate: parsed.computeType?.startsWith('FARGATE') ?? false,
    jobStateTimeLimitActions: parsed.jobStateTimeLimitActions ?? [],
  };
}

export const sandboxArn = (region: string, service: string, resource: string) =>
  `arn:aws:${service}:${region}:${SANDBOX_ACCOUNT}:${resource}`;

/** Why a RUNNABLE job cannot start, in the words Batch puts in statusReason. */
export const BLOCKED_REASONS = {
  capacity: BATCH_BLOCKED_REASONS[0],
  resources: BATCH_BLOCKED_REASONS[2],
} as const;

/**
 * The sandbox's own queue: with a RUNNABLE timeout it cancels jobs blocked for capacity or by
 * resource requirements no compute environment can meet, as a queue's jobStateTimeLimitActions do.
 */
export function defaultJobQueue(region: string, runnableTimeoutSeconds?: number): JobQueueInput {
  return {
    arn: sandboxArn(region, 'batch', `job-queue/${SANDBOX_NAME}`),
    ...(runnableTimeoutSeconds && {
      jobStateTimeLimitActions: Object.values(BLOCKED_REASONS).map((reason) => ({
        state: 'RUNNABLE' as const,
        action: 'CANCEL' as const,
        maxTimeSeconds: runnableTimeoutSeconds,
        reason,
      })),
    }),
  };
}

const volumeName = (path: string) => path.replace(/^\//, '').replaceAll('/', '-');

/**
 * The job definition the Pulumi component would register for this sandbox, built from the same
 * contracts: the executor command, the definition environment, the model key as a secret,
 * retries on capacity loss only, a read-only root with the image's writable paths as volumes.
 */
export function defaultJobDefinition(settings: {
  region: string;
  imageRef: string;
  bucket: string;
  logGroupName: string;
  apiKeySecretArn: string;
  vcpus: number;
  memoryMib: number;
  attemptDurationSeconds: number;
}): JobDefinitionInput {
  const environment: Record<(typeof BATCH_JOB_ENV.definition)[number], string> = {
    [ENV.OUTPUT_DIR]: IMAGE.output,
    [ENV.S3_BUCKET]: settings.bucket,
    [ENV.AWS_REGION]: settings.region,
    [ENV.USE_BEDROCK]: '0',
  };
  const writable = BATCH_JOB_DEFINITION.writablePaths;
  return {
    arn: sandboxArn(settings.region, 'batch', `job-definition/${SANDBOX_NAME}:1`),
    containerProperties: {
      image: settings.imageRef,
      command: [...BATCH_JOB_DEFINITION.command],
      user: BATCH_JOB_DEFINITION.user,
      resourceRequirements: [
        { type: 'VCPU', value: String(settings.vcpus) },
        { type: 'MEMORY', value: String(settings.memoryMib) },
      ],
      environment: Object.entries(environment).map(([name, value]) => ({ name, value })),
      secrets: BATCH_JOB_ENV.secretWithAnthropic.map((name) => ({
        name,
        valueFrom: settings.apiKeySecretArn,
      })),
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': settings.logGroupName,
          'awslogs-region': settings.region,
          'awslogs-stream-prefix': BATCH_JOB_DEFINITION.logStreamPrefix,
        },
      },
      readonlyRootFilesystem: true,
      volumes: writable.map((path) => ({ name: volumeName(path) })),
      mountPoints: writable.map((path) => ({
        sourceVolume: volumeName(path),
        containerPath: path,
        readOnly: false,
      })),
      linuxParameters: { initProcessEnabled: true },
    },
    retryStrategy: {
      attempts: 3,
      evaluateOnExit: BATCH_JOB_DEFINITION.retryOnCapacityLoss.map((rule) => ({ ...rule })),
    },
    timeout: { attemptDurationSeconds: settings.attemptDurationSeconds },
    platformCapabilities: ['EC2'],
    propagateTags: true,
  };
}
