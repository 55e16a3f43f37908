import type { Decision } from './iam.js';
import type { JobStatus } from './registry.js';

/** One API request as the sandbox received it. */
export interface ApiCall {
  service: 'batch' | 'logs' | 's3' | 'sts' | 'iam';
  operation: string;
  at: number;
  requestBytes: number;
  /** The raw request body (what the client sent, in full up to 1 MiB; S3: DeleteObjects only). */
  body: string;
  /** Answered with a throttling error instead of being served. */
  throttled: boolean;
  status: number;
  /** Served, but its answer was lost on the way (the connection was reset). */
  answerLost?: boolean;
}

export interface Submission {
  jobId: string;
  jobName: string;
  at: number;
  /** Characters of the JSON-serialised containerOverrides, as Batch counts them. */
  overridesChars: number;
  tags: Record<string, string>;
  /** The environment of the container overrides (names and values as submitted). */
  environment: Record<string, string>;
}

export interface Transition {
  at: number;
  jobId: string;
  jobName: string;
  status: JobStatus;
  statusReason?: string;
}

/** Everything the sandbox saw and did, for tests to assert on. Holds no secret value. */
export class SandboxRecord {
  readonly calls: ApiCall[] = [];
  readonly submissions: Submission[] = [];
  readonly transitions: Transition[] = [];
  /** Every IAM decision: who asked to do what on which resource, and whether IAM allowed it. */
  readonly decisions: Decision[] = [];

  /** The decisions IAM denied. */
  denied(): Decision[] {
    return this.decisions.filter((decision) => !decision.allowed);
  }

  /** Calls of one operation (throttled ones included). */
  count(operation: string): number {
    return this.calls.filter((call) => call.operation === operation).length;
  }

  /** Calls per operation. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const call of this.calls) counts[call.operation] = (counts[call.operation] ?? 0) + 1;
    return counts;
  }

  /** The statuses one job went through, in order. */
  statusesOf(jobId: string): JobStatus[] {
    return this.transitions.filter((t) => t.jobId === jobId).map((t) => t.status);
  }

  /**
   * The most jobs that were at once in one of these statuses, replaying the transitions (of the
   * given jobs only, when given).
   */
  maxConcurrent(statuses: readonly JobStatus[], jobIds?: Iterable<string>): number {
    const only = jobIds && new Set(jobIds);
    const current = new Map<string, JobStatus>();
    let inStatuses = 0;
    let max = 0;
    for (const { jobId, status } of this.transitions) {
      if (only && !only.has(jobId)) continue;
      const before = current.get(jobId);
      if (before && statuses.includes(before)) inStatuses--;
      if (statuses.includes(status)) inStatuses++;
      current.set(jobId, status);
      max = Math.max(max, inStatuses);
    }
    return max;
  }
}
