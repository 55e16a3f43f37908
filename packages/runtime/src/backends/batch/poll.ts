import { type BatchClient, DescribeJobsCommand, type JobDetail } from '@aws-sdk/client-batch';
import { BATCH_LIMITS } from '../../contracts/batch-job.js';
import { awsErrorMessage } from './aws-basics.js';

export const FINAL_JOB_STATES = new Set(['SUCCEEDED', 'FAILED']);

export interface PollIntervals {
  /** While jobs change state, and right after a submission. */
  minMs: number;
  /** When nothing has changed for a while. */
  maxMs: number;
}

/** How a watched job ended: with its final description, or never seen again. */
export type JobEnd = { kind: 'ended'; detail: JobDetail } | { kind: 'lost'; reason: string };

interface Watch {
  id: string;
  since: number;
  seen: boolean;
  /** The status and its reason last reported: a RUNNABLE job's reason says whether it is blocked. */
  state?: string;
  onChange: (detail: JobDetail) => void;
  settle: (end: JobEnd) => void;
}

/** A job DescribeJobs does not know yet right after submit counts as pending this long. */
const VISIBILITY_GRACE_MS = 60_000;
/** DescribeJobs failing (beyond the SDK's retries) for this long fails the jobs watched. */
const OUTAGE_LIMIT_MS = 5 * 60_000;

/**
 * One poller for the whole run: every watched job is described in calls of up to 100 ids, one
 * round per interval, whatever the number of jobs. The interval adapts: the minimum while jobs
 * change state or have just been submitted, doubling up to the maximum while nothing changes.
 */
export class JobPoller {
  private readonly watched = new Map<string, Watch>();
  private interval: number;
  private wake: (() => void) | undefined;
  private running = false;
  private failingSince: number | undefined;
  /** DescribeJobs calls made: what the benchmarks count. */
  calls = 0;

  constructor(
    private readonly batch: BatchClient,
    private readonly intervals: PollIntervals,
  ) {
    this.interval = intervals.minMs;
  }

  /**
   * Resolves when the job ends; `onChange` hears every state it is seen in on the way, and every
   * change of its status reason (Batch marks a blocked RUNNABLE job only there).
   */
  watch(id: string, onChange: (detail: JobDetail) => void): Promise<JobEnd> {
    return new Promise((settle) => {
      this.watched.set(id, { id, since: Date.now(), seen: false, onChange, settle });
      this.interval = this.intervals.minMs;
      if (!this.running) void this.loop();
    });
  }

  /** Stops watching a job (its attempt was given up); its promise never settles. */
  forget(id: string): void {
    this.watched.delete(id);
  }

  /** Polls again now rather than at the end of the interval. */
  nudge(): void {
    this.wake?.();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.watched.size > 0) {
        await this.sleep(this.interval);
        const changed = await this.round();
        this.interval = changed
          ? this.intervals.minMs
          : Math.min(this.intervals.maxMs, this.interval * 2);
      }
    } finally {
      this.running = false;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** One DescribeJobs round over every watched job; true when any job changed state. */
  private async round(): Promise<boolean> {
    const ids = [...this.watched.keys()];
    let changed = false;
    for (let i = 0; i < ids.length; i += BATCH_LIMITS.describeJobsIds) {
      const chunk = ids.slice(i, i + BATCH_LIMITS.describeJobsIds);
      let jobs: JobDetail[];
      try {
        this.calls += 1;
        jobs = (await this.batch.send(new DescribeJobsCommand({ jobs: chunk }))).jobs ?? [];
        this.failingSince = undefined;
      } catch (error) {
        this.failingSince ??= Date.now();
        if (Date.now() - this.failingSince > OUTAGE_LIMIT_MS) {
          for (const id of chunk)
            this.end(id, { kind: 'lost', reason: `cannot describe it: ${awsErrorMessage(error)}` });
        }
        continue;
      }
      const found = new Set<string>();
      for (const detail of jobs) {
        const watch = detail.jobId ? this.watched.get(detail.jobId) : undefined;
        if (!watch) continue;
        found.add(watch.id);
        watch.seen = true;
        const state = `${detail.status}\n${detail.statusReason ?? ''}`;
        if (state !== watch.state) {
          watch.state = state;
          changed = true;
          watch.onChange(detail);
        }
        if (FINAL_JOB_STATES.has(detail.status ?? ''))
          this.end(watch.id, { kind: 'ended', detail });
      }
      for (const id of chunk) {
        const watch = this.watched.get(id);
        if (!watch || found.has(id)) continue;
        // Batch may not list a job for a moment after accepting it; later it is gone for good.
        if (watch.seen || Date.now() - watch.since > VISIBILITY_GRACE_MS) {
          this.end(id, { kind: 'lost', reason: 'AWS Batch no longer knows the job' });
          changed = true;
        }
      }
    }
    return changed;
  }

  private end(id: string, end: JobEnd): void {
    const watch = this.watched.get(id);
    if (!watch) return;
    this.watched.delete(id);
    watch.settle(end);
  }
}
