import { createHash } from 'node:crypto';
import {
  type BatchClient,
  ListJobsCommand,
  SubmitJobCommand,
  type SubmitJobCommandInput,
} from '@aws-sdk/client-batch';
import { BATCH_INPUT_URL_ENV, BATCH_JOB_TAGS, BATCH_LIMITS } from '../../contracts/batch-job.js';
import { ENV } from '../../contracts/env.js';
import { RateLimiter } from './rate-limit.js';

/** Requirements ride along in REQUIREMENTS only when this short; the job reads them from S3. */
const MAX_INLINE_REQUIREMENTS = 2_000;

/** Batch refuses attempt timeouts under a minute. */
const MIN_ATTEMPT_SECONDS = 60;

/** A submission that Batch would refuse or fail: it is never sent. */
export class SubmissionTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubmissionTooLargeError';
  }
}

/**
 * Job names: `po-<run tag>-<task>-a<attempt>`, within Batch's charset and 128 characters. The
 * run tag is a hash of the run id, so every job of a run shares a prefix a resume can list by.
 */
export function jobNamePrefix(runId: string): string {
  return `po-${createHash('sha256').update(runId).digest('hex').slice(0, 10)}-`;
}

export function jobName(runId: string, taskId: string, attempt: number): string {
  const name = `${jobNamePrefix(runId)}${taskId}-a${attempt}`;
  if (!BATCH_LIMITS.jobName.test(name))
    throw new SubmissionTooLargeError(`job name ${name} is not valid for AWS Batch`);
  return name;
}

export interface JobRequest {
  name: string;
  runId: string;
  taskId: string;
  attempt: number;
  executor: number;
  executors: number;
  real: boolean;
  requirements: string;
  /** The attempt's S3 prefix: the job's S3_PREFIX. */
  prefix: string;
  /** Its `input.json`, presigned: the job's BATCH_INPUT_URL_ENV. */
  inputUrl: string;
  /** Batch ends the attempt itself after this long, should the orchestrator be gone. */
  timeoutMs: number;
}

/**
 * What one SubmitJob sends: ids and S3 locations only, so nothing of unbounded size is in the
 * request. Checked against Batch's limits before it is sent.
 */
export function submission(
  request: JobRequest,
  queue: string,
  definition: string,
): SubmitJobCommandInput {
  const environment = [
    { name: ENV.EXECUTOR_ID, value: String(request.executor) },
    { name: ENV.TASK_ID, value: request.taskId },
    { name: ENV.S3_PREFIX, value: request.prefix },
    { name: BATCH_INPUT_URL_ENV, value: request.inputUrl },
    { name: ENV.USE_REAL_EXECUTORS, value: request.real ? '1' : '0' },
    { name: ENV.MAX_EXECUTORS, value: String(request.executors) },
  ];
  // Inline only while the overrides keep well inside Batch's limit (a URL signed with a session
  // token takes a few thousand characters).
  const room = BATCH_LIMITS.containerOverridesChars - JSON.stringify({ environment }).length - 512;
  if (
    request.requirements.length <= MAX_INLINE_REQUIREMENTS &&
    JSON.stringify(request.requirements).length <= room
  )
    environment.push({ name: ENV.REQUIREMENTS, value: request.requirements });
  const input: SubmitJobCommandInput = {
    jobName: request.name,
    jobQueue: queue,
    jobDefinition: definition,
    containerOverrides: { environment },
    timeout: {
      attemptDurationSeconds: Math.max(MIN_ATTEMPT_SECONDS, Math.ceil(request.timeoutMs / 1000)),
    },
    tags: {
      [BATCH_JOB_TAGS.run]: request.runId.slice(0, BATCH_LIMITS.tagValueChars),
      [BATCH_JOB_TAGS.task]: request.taskId,
      [BATCH_JOB_TAGS.attempt]: String(request.attempt),
    },
    propagateTags: true,
  };
  const overrides = JSON.stringify(input.containerOverrides).length;
  if (overrides > BATCH_LIMITS.containerOverridesChars)
    throw new SubmissionTooLargeError(
      `container overrides of ${overrides} characters exceed Batch's ${BATCH_LIMITS.containerOverridesChars}`,
    );
  const bytes = Buffer.byteLength(JSON.stringify(input));
  if (bytes > BATCH_LIMITS.requestBytes)
    throw new SubmissionTooLargeError(
      `a SubmitJob request of ${bytes} bytes exceeds Batch's ${BATCH_LIMITS.requestBytes}`,
    );
  return input;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How often a submission is tried, and the backoff between tries (with full jitter). */
export const SUBMIT_RETRY = { tries: 10, baseMs: 250, capMs: 20_000 } as const;

/** Answers that say Batch refused the request for now: throttling and its own errors. */
function refusedForNow(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    status === 429 || status >= 500 || /Throttl|TooManyRequests|LimitExceeded/.test(e.name ?? '')
  );
}

/** Failures that leave it unknown whether Batch took the job: the connection broke. */
function unanswered(error: unknown): boolean {
  const e = error as { name?: string; code?: string };
  return (
    e.name === 'TimeoutError' ||
    ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN'].includes(e.code ?? '')
  );
}

/**
 * Submits jobs: every request, retries included, passes one rate limit (AWS allows about 50
 * submissions a second per account, shared with everyone else's), and a throttled or failed
 * request is tried again after an exponential backoff with jitter. A request whose answer was
 * lost is not simply sent again (Batch does not deduplicate names): the job is looked up first.
 */
export class JobSubmitter {
  private readonly limiter: RateLimiter;

  constructor(
    /** Sends submissions, with no retry of its own; and a client for lookups, which retries. */
    private readonly clients: { submit: BatchClient; lookup: BatchClient },
    private readonly queue: string,
    private readonly definition: string,
    perSecond: number,
    private readonly random: () => number = Math.random,
  ) {
    this.limiter = new RateLimiter(perSecond);
  }

  /** Submits one attempt's job; returns its id. Throws before sending anything oversized. */
  async submit(request: JobRequest, signal: AbortSignal): Promise<string> {
    const input = submission(request, this.queue, this.definition);
    for (let attempt = 1; ; attempt++) {
      await this.limiter.take();
      try {
        const { jobId } = await this.clients.submit.send(new SubmitJobCommand(input), {
          abortSignal: signal,
        });
        if (!jobId) throw new Error(`SubmitJob for ${request.name} returned no job id`);
        return jobId;
      } catch (error) {
        const lost = unanswered(error);
        if (signal.aborted || attempt >= SUBMIT_RETRY.tries || !(lost || refusedForNow(error)))
          throw error;
        await sleep(
          this.random() * Math.min(SUBMIT_RETRY.capMs, SUBMIT_RETRY.baseMs * 2 ** attempt),
          signal,
        );
        const taken = lost ? await this.findByName(request.name).catch(() => undefined) : undefined;
        if (taken) return taken;
      }
    }
  }

  /**
   * The most recent job of this name in the queue: how a resume finds a job whose submission was
   * journaled but whose id was not.
   */
  async findByName(name: string): Promise<string | undefined> {
    let newest: { id: string; createdAt: number } | undefined;
    let nextToken: string | undefined;
    do {
      const page = await this.clients.lookup.send(
        new ListJobsCommand({
          jobQueue: this.queue,
          filters: [{ name: 'JOB_NAME', values: [name] }],
          ...(nextToken && { nextToken }),
        }),
      );
      for (const job of page.jobSummaryList ?? []) {
        if (job.jobName !== name || !job.jobId) continue;
        const createdAt = job.createdAt ?? 0;
        if (!newest || createdAt > newest.createdAt) newest = { id: job.jobId, createdAt };
      }
      nextToken = page.nextToken;
    } while (nextToken);
    return newest?.id;
  }
}
