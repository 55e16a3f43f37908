import type { JobDetail } from '@aws-sdk/client-batch';
import { BATCH_BLOCKED_REASONS } from '../../contracts/batch-job.js';

/** What a failed job says about its attempt: why, and whether another attempt may succeed. */
export interface JobFailure {
  error: string;
  retryable: boolean;
}

/**
 * The heads of the status reasons Batch gives a RUNNABLE job it cannot place (a blocked queue:
 * https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable.html and the reasons
 * of https://docs.aws.amazon.com/batch/latest/userguide/job_stuck_in_runnable_time_limit_actions.html).
 * A job that only waits its turn behind the compute environment's maxvCpus has none of them.
 */
const BLOCKED_HEADS = ['CAPACITY:', 'MISCONFIGURATION:', 'ACTION_REQUIRED', 'UNDETERMINED'];

/** Batch's reason why a RUNNABLE job cannot be placed; undefined while it only waits its turn. */
export function blockedReason(
  detail: Pick<JobDetail, 'status' | 'statusReason'>,
): string | undefined {
  const reason = detail.statusReason ?? '';
  return detail.status === 'RUNNABLE' && BLOCKED_HEADS.some((head) => reason.startsWith(head))
    ? reason
    : undefined;
}

/** Stop reasons of capacity that went away: Spot reclaims on EC2 and on Fargate. */
const CAPACITY_LOST = [/^Host EC2 .* terminated/i, /^Your Spot Task was interrupted/i];

/** Failures of the infrastructure around the container, not of the task. */
const INFRASTRUCTURE = [
  /CannotPullContainerError/i,
  /CannotStartContainerError/i,
  /CannotInspectContainerError/i,
  /CannotCreateContainerError/i,
  /ResourceInitializationError/i,
  /DockerTimeoutError/i,
  /Task failed to start/i,
  /InternalError/i,
  /Timeout waiting for network interface/i,
];

/**
 * Reads a FAILED job the way Nextflow's Batch handler does: Spot reclaims and infrastructure
 * errors are worth another attempt; running out of memory and the attempt timeout say so; any
 * other end is the container's own exit, retried like a crashed executor.
 */
export function jobFailure(detail: Pick<JobDetail, 'statusReason' | 'container'>): JobFailure {
  const statusReason = detail.statusReason ?? '';
  const container = detail.container ?? {};
  const reason = container.reason ?? '';
  const exitCode = container.exitCode;
  const said = [statusReason, reason].filter(Boolean).join('; ');
  if (CAPACITY_LOST.some((pattern) => pattern.test(statusReason)))
    return { error: `the job's Spot capacity was reclaimed (${statusReason})`, retryable: true };
  if (/^OutOfMemoryError/i.test(reason))
    return { error: `the job ran out of memory (${reason})`, retryable: true };
  if (/attempt duration exceeded timeout/i.test(statusReason))
    return { error: `the job exceeded its attempt timeout (${statusReason})`, retryable: true };
  // The queue's time limit cancelled a job nothing could place: capacity may come back,
  // a configuration that cannot fit the job will not.
  const blocked = BATCH_BLOCKED_REASONS.find((code) => statusReason.includes(code));
  if (blocked)
    return {
      error: `no compute environment could place the job (${statusReason})`,
      retryable: blocked.startsWith('CAPACITY:'),
    };
  if (INFRASTRUCTURE.some((pattern) => pattern.test(said)))
    return { error: `AWS Batch could not run the job: ${said}`, retryable: true };
  if (exitCode !== undefined)
    return {
      error: `the job exited with code ${exitCode} and no outcome${said ? ` (${said})` : ''}`,
      retryable: true,
    };
  return { error: `the job failed: ${said || 'no reason given'}`, retryable: true };
}
