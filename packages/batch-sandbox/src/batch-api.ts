import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { BATCH_LIMITS } from '@parallel-orchestrator/runtime/contracts';
import { z } from 'zod';
import type { NextCalls, RateLimit } from './faults.js';
import { AwsError, authenticate, clientError, readBody, sendError, sendJson } from './http.js';
import { type Iam, notAuthorized, type Principal } from './iam.js';
import type { JobScheduler, JobView } from './jobs.js';
import { parseOrFail } from './parse.js';
import type { SandboxRecord } from './record.js';
import {
  JOB_STATUSES,
  type JobDefinition,
  type JobQueue,
  JobTimeoutSchema,
  ResourceRequirementSchema,
  RetryStrategySchema,
} from './registry.js';

const KeyValueSchema = z.object({ name: z.string().min(1), value: z.string() });

const ContainerOverridesSchema = z.strictObject({
  command: z.array(z.string()).optional(),
  environment: z
    .array(
      KeyValueSchema.refine(
        (e) => !e.name.startsWith('AWS_BATCH'),
        'environment variables cannot start with AWS_BATCH: Batch reserves those names',
      ),
    )
    .optional(),
  resourceRequirements: z.array(ResourceRequirementSchema).optional(),
  vcpus: z.number().positive().optional(),
  memory: z.number().int().positive().optional(),
  instanceType: z.string().optional(),
});

const TagsSchema = z
  .record(z.string().min(1).max(128), z.string().max(BATCH_LIMITS.tagValueChars))
  .refine((tags) => Object.keys(tags).length <= 50, 'at most 50 tags');

/**
 * What the sandbox runs of SubmitJob. Features it does not emulate (array and multi-node jobs,
 * dependencies, parameters, EKS and ECS properties) are refused rather than ignored.
 */
const SubmitJobSchema = z.strictObject({
  jobName: z.string().regex(BATCH_LIMITS.jobName, {
    error:
      'jobName must be 1-128 letters, digits, hyphens and underscores, starting with a letter or digit',
  }),
  jobQueue: z.string().min(1),
  jobDefinition: z.string().min(1),
  containerOverrides: ContainerOverridesSchema.optional(),
  tags: TagsSchema.optional(),
  timeout: JobTimeoutSchema.optional(),
  retryStrategy: RetryStrategySchema.optional(),
  propagateTags: z.boolean().optional(),
  schedulingPriorityOverride: z.number().int().optional(),
  shareIdentifier: z.string().optional(),
});

const DescribeJobsSchema = z.object({
  jobs: z.array(z.string()).max(BATCH_LIMITS.describeJobsIds, {
    error: `at most ${BATCH_LIMITS.describeJobsIds} job IDs per DescribeJobs request`,
  }),
});

const ListJobsSchema = z.object({
  jobQueue: z.string().min(1, 'jobQueue is required (array and multi-node jobs are not emulated)'),
  jobStatus: z.enum(JOB_STATUSES).optional(),
  maxResults: z.number().int().min(1).max(1000).optional(),
  nextToken: z.string().optional(),
  filters: z
    .array(
      z.object({
        name: z.enum(['JOB_NAME', 'JOB_DEFINITION', 'BEFORE_CREATED_AT', 'AFTER_CREATED_AT']),
        values: z.array(z.string()).length(1, 'a filter takes one value'),
      }),
    )
    .max(1, 'one filter per request')
    .optional(),
});

const StopJobSchema = z.object({
  jobId: z.string().min(1),
  reason: z.string().min(1).max(1024),
});

const DescribeJobQueuesSchema = z.object({
  jobQueues: z.array(z.string()).max(100).optional(),
  maxResults: z.number().int().min(1).max(100).optional(),
  nextToken: z.string().optional(),
});

const DeregisterJobDefinitionSchema = z.object({ jobDefinition: z.string().min(1) });

const DescribeJobDefinitionsSchema = z.object({
  jobDefinitions: z.array(z.string()).max(100).optional(),
  jobDefinitionName: z.string().optional(),
  status: z.enum(['ACTIVE', 'INACTIVE']).optional(),
  maxResults: z.number().int().min(1).max(1000).optional(),
  nextToken: z.string().optional(),
});

/** A body cap well above every Batch limit, so that an oversized request is measured, not held. */
const BODY_CAP = 1 << 20;

const OPERATIONS: Record<string, string> = {
  '/v1/submitjob': 'SubmitJob',
  '/v1/describejobs': 'DescribeJobs',
  '/v1/listjobs': 'ListJobs',
  '/v1/terminatejob': 'TerminateJob',
  '/v1/canceljob': 'CancelJob',
  '/v1/describejobqueues': 'DescribeJobQueues',
  '/v1/describejobdefinitions': 'DescribeJobDefinitions',
  '/v1/deregisterjobdefinition': 'DeregisterJobDefinition',
};

export interface BatchApiFaults {
  throttles: NextCalls;
  /** Calls carried out whose answer never reaches the caller: the connection is reset. */
  lostAnswers: NextCalls;
  submitRateLimit?: RateLimit;
}

export interface BatchApiSettings {
  region: string;
  /** `arn:aws:batch:<region>:<account>`: where job ARNs are. */
  arnPrefix: string;
  iam: Iam;
}

/** Requires IAM to allow the caller an action on a resource; AccessDeniedException otherwise. */
type Authorize = (action: string, resource: string) => Promise<void>;

const throttled = () => new AwsError('TooManyRequestsException', 429, 'Too Many Requests');

/** The Batch endpoint: REST-JSON as @aws-sdk/client-batch speaks it. */
export function batchHandler(
  scheduler: JobScheduler,
  record: SandboxRecord,
  faults: BatchApiFaults,
  settings: BatchApiSettings,
): http.RequestListener {
  const jobArn = (jobId: string) => `${settings.arnPrefix}:job/${jobId}`;
  // Resources as the Service Authorization Reference for AWS Batch lists them; the actions
  // without a resource type (Describe*, ListJobs) are authorized on `*`.
  // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html
  const serve = async (operation: string, body: unknown, authorize: Authorize) => {
    switch (operation) {
      case 'SubmitJob':
        return submitJob(scheduler, body, authorize, jobArn);
      case 'DescribeJobs': {
        await authorize('batch:DescribeJobs', '*');
        return {
          jobs: scheduler.describe(parseOrFail(DescribeJobsSchema, body, clientError).jobs),
        };
      }
      case 'ListJobs':
        await authorize('batch:ListJobs', '*');
        return listJobs(scheduler, parseOrFail(ListJobsSchema, body, clientError));
      case 'TerminateJob': {
        const { jobId, reason } = parseOrFail(StopJobSchema, body, clientError);
        await authorize('batch:TerminateJob', jobArn(jobId));
        scheduler.terminate(jobId, reason);
        return {};
      }
      case 'CancelJob': {
        const { jobId, reason } = parseOrFail(StopJobSchema, body, clientError);
        await authorize('batch:CancelJob', jobArn(jobId));
        scheduler.cancel(jobId, reason);
        return {};
      }
      case 'DeregisterJobDefinition': {
        const { jobDefinition } = parseOrFail(DeregisterJobDefinitionSchema, body, clientError);
        const found = scheduler.findDefinition(jobDefinition);
        if (!found) throw clientError(`JobDefinition ${jobDefinition} not found`);
        await authorize('batch:DeregisterJobDefinition', found.arn);
        scheduler.deregister(found.arn);
        return {};
      }
      case 'DescribeJobQueues':
        await authorize('batch:DescribeJobQueues', '*');
        return describeJobQueues(
          scheduler,
          parseOrFail(DescribeJobQueuesSchema, body, clientError),
        );
      default:
        await authorize('batch:DescribeJobDefinitions', '*');
        return describeJobDefinitions(
          scheduler,
          parseOrFail(DescribeJobDefinitionsSchema, body, clientError),
        );
    }
  };

  return async (req, res) => {
    const at = Date.now();
    const { body, bytes } = await readBody(req, BODY_CAP);
    const path = (req.url ?? '').split('?')[0] ?? '';
    const operation = OPERATIONS[path] ?? path;
    const isThrottled =
      faults.throttles.take(operation) ||
      (operation === 'SubmitJob' && faults.submitRateLimit?.allow() === false);
    let status = 200;
    let lost = false;
    try {
      const principal: Principal = await authenticate(
        req,
        body,
        'batch',
        settings.region,
        settings.iam,
      );
      if (isThrottled) throw throttled();
      if (req.method !== 'POST' || !OPERATIONS[path])
        throw new AwsError('UnknownOperationException', 404, `${req.method} ${path} is not served`);
      if (operation === 'SubmitJob' && bytes > BATCH_LIMITS.requestBytes) {
        throw clientError(
          `Job size must be less than ${BATCH_LIMITS.requestBytes / 1024} KiB, got ${Math.ceil(bytes / 1024)} KiB`,
        );
      }
      if (bytes > BODY_CAP) throw clientError('request too large');
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8') || '{}');
      } catch {
        throw clientError('the request body is not JSON');
      }
      const authorize: Authorize = async (action, resource) => {
        if (!(await settings.iam.allows(principal, action, resource)))
          throw new AwsError(
            'AccessDeniedException',
            403,
            notAuthorized(principal.arn, action, resource),
          );
      };
      const answer = await serve(operation, parsed, authorize);
      if (faults.lostAnswers.take(operation)) {
        lost = true;
        res.destroy();
      } else sendJson(res, 200, answer);
    } catch (error) {
      const aws =
        error instanceof AwsError ? error : new AwsError('ServerException', 500, String(error));
      status = aws.status;
      sendError(res, aws);
    }
    record.calls.push({
      service: 'batch',
      operation,
      at,
      requestBytes: bytes,
      body: body.toString('utf8'),
      throttled: isThrottled,
      status,
      ...(lost && { answerLost: true }),
    });
  };
}

/**
 * SubmitJob is authorized on the queue and the job definition revision, and, when it tags the
 * job, batch:TagResource on the new job.
 * https://docs.aws.amazon.com/batch/latest/userguide/iam-example-restrict-job-submission.html
 * https://docs.aws.amazon.com/batch/latest/userguide/tag-resources.html
 */
async function submitJob(
  scheduler: JobScheduler,
  body: unknown,
  authorize: Authorize,
  jobArn: (jobId: string) => string,
) {
  const request = parseOrFail(SubmitJobSchema, body, clientError);
  const queue = scheduler.findQueue(request.jobQueue);
  if (!queue) throw clientError(`JobQueue ${request.jobQueue} not found`);
  const definition = scheduler.findDefinition(request.jobDefinition);
  // Batch's words: "JobDefinition arn:... not found." for an ARN, "JobDefinition name X does not
  // exist or is not in ACTIVE status" for a name (as users report them in aws-samples issues).
  if (!definition)
    throw clientError(
      request.jobDefinition.startsWith('arn:') || request.jobDefinition.includes(':')
        ? `JobDefinition ${request.jobDefinition} not found.`
        : `JobDefinition name ${request.jobDefinition} does not exist or is not in ACTIVE status`,
    );
  const jobId = randomUUID();
  await authorize('batch:SubmitJob', queue.arn);
  await authorize('batch:SubmitJob', definition.arn);
  if (request.tags && Object.keys(request.tags).length > 0)
    await authorize('batch:TagResource', jobArn(jobId));
  // A retired revision takes no jobs: what a real account answered (no message is documented).
  // https://github.com/chanzuckerberg/single-cell-data-portal/issues/1068
  if (definition.status !== 'ACTIVE')
    throw clientError(`JobDefinition ${definition.arn} is not in ACTIVE status`);
  return scheduler.submit({
    jobId,
    jobName: request.jobName,
    queue,
    definition,
    ...(request.containerOverrides && { containerOverrides: request.containerOverrides }),
    overridesChars: request.containerOverrides
      ? JSON.stringify(request.containerOverrides).length
      : 0,
    tags: request.tags ?? {},
    ...(request.timeout?.attemptDurationSeconds && {
      timeoutSeconds: request.timeout.attemptDurationSeconds,
    }),
    ...(request.retryStrategy && { retryStrategy: request.retryStrategy }),
    ...(request.propagateTags !== undefined && { propagateTags: request.propagateTags }),
  });
}

/** A ListJobs page token: the sequence number of the last job returned. */
const pageToken = (sequence: number) =>
  Buffer.from(JSON.stringify({ after: sequence })).toString('base64url');

function afterToken(token: string | undefined): number {
  if (token === undefined) return 0;
  try {
    const { after } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as {
      after: unknown;
    };
    if (typeof after === 'number') return after;
  } catch {}
  throw clientError('nextToken is not a token this API returned');
}

/**
 * By status (RUNNING unless given), or with a filter, every status, as Batch does. A JOB_NAME
 * value is case-insensitive and matches a prefix when it ends with `*`.
 */
function listJobs(scheduler: JobScheduler, request: z.infer<typeof ListJobsSchema>) {
  const queue = scheduler.findQueue(request.jobQueue);
  if (!queue) throw clientError(`JobQueue ${request.jobQueue} not found`);
  const filter = request.filters?.[0];
  const matches: (job: JobView) => boolean = filter
    ? filterPredicate(scheduler, filter.name, filter.values[0] as string)
    : (job) => job.status === (request.jobStatus ?? 'RUNNING');
  const after = afterToken(request.nextToken);
  const maxResults = request.maxResults ?? 1000;
  const selected = scheduler
    .jobsOf(queue)
    .filter((job) => job.sequence > after && matches(job))
    .slice(0, maxResults + 1);
  const page = selected.slice(0, maxResults);
  const last = page.at(-1);
  return {
    jobSummaryList: page.map((job) => job.summary),
    ...(selected.length > maxResults && last && { nextToken: pageToken(last.sequence) }),
  };
}

function filterPredicate(
  scheduler: JobScheduler,
  name: string,
  value: string,
): (job: JobView) => boolean {
  switch (name) {
    case 'JOB_NAME': {
      const wanted = value.toLowerCase();
      return wanted.endsWith('*')
        ? (job) => job.jobName.toLowerCase().startsWith(wanted.slice(0, -1))
        : (job) => job.jobName.toLowerCase() === wanted;
    }
    case 'JOB_DEFINITION': {
      const definition = scheduler.findDefinition(value);
      return (job) => job.jobDefinition === definition?.arn;
    }
    default: {
      const time = Number(value);
      if (!Number.isFinite(time)) throw clientError(`${name} takes epoch milliseconds`);
      return name === 'BEFORE_CREATED_AT'
        ? (job) => job.createdAt < time
        : (job) => job.createdAt > time;
    }
  }
}

function describeJobQueues(
  scheduler: JobScheduler,
  request: z.infer<typeof DescribeJobQueuesSchema>,
) {
  const wanted = request.jobQueues;
  const queues = wanted?.length
    ? wanted.map((ref) => scheduler.findQueue(ref)).filter((q): q is JobQueue => q !== undefined)
    : scheduler.queues;
  return {
    jobQueues: queues.map((queue) => ({
      jobQueueName: queue.name,
      jobQueueArn: queue.arn,
      state: 'ENABLED',
      status: 'VALID',
      statusReason: 'JobQueue Healthy',
      priority: 1,
      computeEnvironmentOrder: [{ order: 1, computeEnvironment: queue.computeEnvironmentArn }],
      jobStateTimeLimitActions: queue.jobStateTimeLimitActions,
      jobQueueType: 'ECS',
      tags: {},
    })),
  };
}

function describeJobDefinitions(
  scheduler: JobScheduler,
  request: z.infer<typeof DescribeJobDefinitionsSchema>,
) {
  let definitions: readonly JobDefinition[] = scheduler.definitions;
  if (request.jobDefinitions?.length) {
    definitions = request.jobDefinitions
      .map((ref) => scheduler.findDefinition(ref))
      .filter((d): d is JobDefinition => d !== undefined);
  }
  if (request.jobDefinitionName)
    definitions = definitions.filter((d) => d.name === request.jobDefinitionName);
  if (request.status) definitions = definitions.filter((d) => d.status === request.status);
  return {
    jobDefinitions: definitions.map((definition) => ({
      jobDefinitionName: definition.name,
      jobDefinitionArn: definition.arn,
      revision: definition.revision,
      status: definition.status,
      type: 'container',
      containerProperties: definition.containerProperties,
      retryStrategy: definition.retryStrategy,
      ...(definition.timeout && { timeout: definition.timeout }),
      platformCapabilities: definition.platformCapabilities,
      propagateTags: definition.propagateTags,
      tags: definition.tags,
      containerOrchestrationType: 'ECS',
    })),
  };
}
