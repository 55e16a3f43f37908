import { createHash } from 'node:crypto';
import {
  type BatchClient,
  ListJobsCommand,
  SubmitJobCommand,
  type SubmitJobCommandInput,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import { BATCH_INPUT_URL_ENV, BATCH_JOB_TAGS, BATCH_LIMITS } from '../../contracts/batch-job.js';
import { ENV } from '../../contracts/env.js';
import { FINAL_JOB_STATES } from './poll.js';
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

/**
 * After a lost SubmitJob answer: how long the job is looked for by name before it is submitted
 * again, and how often. ListJobs is eventually consistent and Batch documents no bound, so the
 * window is the one the poller gives DescribeJobs to show a new job; `sweepMs` is how often an
 * attempt whose submission was in doubt looks for a twin to terminate.
 */
export const LOST_ANSWER = { windowMs: 60_000, firstMs: 1_000, capMs: 10_000, sweepMs: 10_000 };

/** Clocks differ: a job created this long before its submission began still counts as its own. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** Connections that never carried the request (refused, no address yet): Batch has no job. */
const NEVER_SENT = ['ECONNREFUSED', 'EAI_AGAIN'];

/** Answers that say Batch refused the request for now (throttling, its own errors), or unsent. */
function refusedForNow(error: unknown): boolean {
  const e = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? 0;
  return (
    status === 429 ||
    status >= 500 ||
    /Throttl|TooManyRequests|LimitExceeded/.test(e.name ?? '') ||
    NEVER_SENT.includes(e.code ?? '')
  );
}

/**
 * Failures that leave it unknown whether Batch took the job: the connection broke or timed out
 * after the request went (the SDK names a reset connection a TimeoutError too).
 */
function unanswered(error: unknown): boolean {
  const e = error as { name?: string; code?: string };
  if (NEVER_SENT.includes(e.code ?? '')) return false;
  return e.name === 'TimeoutError' || ['ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(e.code ?? '');
}

/** A submission Batch refused because its job definition revision is retired (or gone). */
export class RetiredDefinitionError extends Error {
  constructor(definition: string) {
    super(
      `job definition ${definition} no longer takes jobs: the stack was updated: export runtimeConfig again (pulumi stack output runtimeConfig --json) and start the run with it`,
    );
    this.name = 'RetiredDefinitionError';
  }
}

/**
 * SubmitJob's answer for a deregistered (INACTIVE) or missing revision: a ClientException that
 * names the job definition (https://docs.aws.amazon.com/batch/latest/APIReference/API_SubmitJob.html;
 * the wording is not documented: "JobDefinition ... not found." and "... does not exist or is
 * not in ACTIVE status" are what users report).
 */
function retiredDefinition(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return (
    e.name === 'ClientException' &&
    /job ?definition/i.test(e.message ?? '') &&
    /not found|does not exist|not in ACTIVE status|INACTIVE/i.test(e.message ?? '')
  );
}

export interface Submitted {
  id: string;
  /** A SubmitJob answer was lost on the way: a twin of the job may yet show up (`sweepTwins`). */
  inDoubt: boolean;
}

interface NamedJob {
  id: string;
  createdAt: number;
  status?: string;
}

/**
 * Submits jobs: every request, retries included, passes one rate limit (AWS allows about 50
 * submissions a second per account, shared with everyone else's), and a throttled or failed
 * request is tried again after an exponential backoff with jitter. Batch takes no idempotency
 * token and does not deduplicate names, so a request whose answer was lost is not simply sent
 * again: its job is looked for by name until ListJobs would have caught up, and should a twin
 * appear anyway the attempt's watcher terminates it (`sweepTwins`).
 */
export class JobSubmitter {
  private readonly limiter: RateLimiter;

  constructor(
    /** Sends submissions, with no retry of its own; and a client for lookups, which retries. */
    private readonly clients: { submit: BatchClient; lookup: BatchClient },
    private readonly queue: string,
    private readonly definition: string,
    perSecond: number,
    private readonly lostAnswer: typeof LOST_ANSWER = LOST_ANSWER,
    private readonly random: () => number = Math.random,
  ) {
    this.limiter = new RateLimiter(perSecond);
  }

  /** Submits one attempt's job; returns its id. Throws before sending anything oversized. */
  async submit(request: JobRequest, signal: AbortSignal): Promise<Submitted> {
    const input = submission(request, this.queue, this.definition);
    const began = Date.now();
    let inDoubt = false;
    for (let attempt = 1; ; attempt++) {
      await this.limiter.take();
      try {
        const { jobId } = await this.clients.submit.send(new SubmitJobCommand(input), {
          abortSignal: signal,
        });
        if (!jobId) throw new Error(`SubmitJob for ${request.name} returned no job id`);
        return { id: jobId, inDoubt };
      } catch (error) {
        if (retiredDefinition(error)) throw new RetiredDefinitionError(this.definition);
        const lost = unanswered(error);
        if (signal.aborted || attempt >= SUBMIT_RETRY.tries || !(lost || refusedForNow(error)))
          throw error;
        if (lost) {
          inDoubt = true;
          const taken = await this.awaitListed(request.name, signal, began - CLOCK_SKEW_MS);
          if (taken) return { id: taken, inDoubt };
          continue;
        }
        await sleep(
          this.random() * Math.min(SUBMIT_RETRY.capMs, SUBMIT_RETRY.baseMs * 2 ** attempt),
          signal,
        );
      }
    }
  }

  /**
   * The newest job of this name (created after `createdAfter`), looked for until ListJobs would
   * have caught up with a submission: how a lost answer, or a resume that journaled a name but no
   * id, finds its job. Undefined when there is none by then.
   */
  async awaitListed(
    name: string,
    signal: AbortSignal,
    createdAfter = 0,
  ): Promise<string | undefined> {
    const deadline = Date.now() + this.lostAnswer.windowMs;
    for (let wait = this.lostAnswer.firstMs; ; wait = Math.min(this.lostAnswer.capMs, wait * 2)) {
      const jobs = await this.jobsNamed(name).catch(() => []);
      const newest = jobs
        .filter((job) => job.createdAt >= createdAfter)
        .sort((a, b) => b.createdAt - a.createdAt)[0];
      if (newest) return newest.id;
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return undefined;
      await sleep(Math.min(wait, left), signal);
    }
  }

  /**
   * While the returned stop is not called (and once more then), terminates every unfinished job
   * of this name but `keep`: the twin a lost SubmitJob answer may have made, which ListJobs
   * showed only after the job was submitted again. Both would use the same attempt prefix.
   */
  sweepTwins(name: string, keep: string): () => Promise<void> {
    const stopped = new AbortController();
    const sweep = async () => {
      const twins = (await this.jobsNamed(name).catch(() => [])).filter(
        (job) => job.id !== keep && !FINAL_JOB_STATES.has(job.status ?? ''),
      );
      for (const twin of twins)
        await this.clients.lookup
          .send(
            new TerminateJobCommand({
              jobId: twin.id,
              reason: `a twin of job ${keep}: the answer to its submission was lost`,
            }),
          )
          .catch(() => {});
    };
    const sweeping = (async () => {
      for (;;) {
        await sleep(this.lostAnswer.sweepMs, stopped.signal);
        if (stopped.signal.aborted) return;
        await sweep();
      }
    })();
    return async () => {
      stopped.abort();
      await sweeping;
      await sweep();
    };
  }

  /** Every job of this name in the queue, in any status. */
  private async jobsNamed(name: string): Promise<NamedJob[]> {
    const jobs: NamedJob[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.clients.lookup.send(
        new ListJobsCommand({
          jobQueue: this.queue,
          filters: [{ name: 'JOB_NAME', values: [name] }],
          ...(nextToken && { nextToken }),
        }),
      );
      for (const job of page.jobSummaryList ?? [])
        if (job.jobName === name && job.jobId)
          jobs.push({ id: job.jobId, createdAt: job.createdAt ?? 0, status: job.status });
      nextToken = page.nextToken;
    } while (nextToken);
    return jobs;
  }
}
