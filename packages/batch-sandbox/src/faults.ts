/** Which jobs a fault applies to: a job name (a trailing `*` matches a prefix), a RegExp, or a test. */
export type JobMatch =
  | string
  | RegExp
  | ((job: { jobId: string; jobName: string; tags: Record<string, string> }) => boolean);

export function matchesJob(
  match: JobMatch,
  job: { jobId: string; jobName: string; tags: Record<string, string> },
): boolean {
  if (typeof match === 'function') return match(job);
  if (match instanceof RegExp) return match.test(job.jobName);
  return match.endsWith('*') ? job.jobName.startsWith(match.slice(0, -1)) : job.jobName === match;
}

/** Calls a fault applies to (a throttling error, a lost answer): the next N of each operation. */
export class NextCalls {
  private readonly pending = new Map<string, number>();

  add(operation: string, count: number): void {
    this.pending.set(operation, (this.pending.get(operation) ?? 0) + count);
  }

  /** Whether this call is one of them (it uses one up). */
  take(operation: string): boolean {
    const left = this.pending.get(operation) ?? 0;
    if (left <= 0) return false;
    this.pending.set(operation, left - 1);
    return true;
  }
}

/** A token bucket of `perSecond` tokens holding at most one second's worth. */
export class RateLimit {
  private tokens: number;
  private refilledAt = Date.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  /** Whether a call may go through now (it takes a token). */
  allow(): boolean {
    const now = Date.now();
    this.tokens = Math.min(
      this.perSecond,
      this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
