import {
  type CloudWatchLogsClient,
  GetLogEventsCommand,
  type GetLogEventsCommandOutput,
  ResourceNotFoundException,
} from '@aws-sdk/client-cloudwatch-logs';
import type { CappedLog } from '../../util/capped-log.js';
import { RateLimiter } from './rate-limit.js';

interface Followed {
  stream: string;
  sink: CappedLog;
  token?: string;
  /** When the stream was last read. */
  readAt: number;
}

/** Pages read from one stream in one go, at most: a chatty job cannot starve the others. */
const PAGES_PER_TURN = 4;
/** A finished stream is read until its token stops moving, within this many pages. */
const FINAL_PAGES = 1_000;

/**
 * Copies job log streams from CloudWatch Logs into each task's `executor.log` while the jobs run
 * (Batch's awslogs driver puts a container's output there). Reads go through one rate limit for
 * the whole run, round-robin over the streams, so the API calls per second stay bounded however
 * many jobs run: with many jobs a live log lags a little, and is completed when its job ends.
 */
export class LogFollower {
  private readonly streams = new Map<string, Followed>();
  private readonly limiter: RateLimiter;
  private running = false;
  /** GetLogEvents calls made: what the benchmarks count. */
  calls = 0;

  constructor(
    private readonly logs: CloudWatchLogsClient,
    private readonly logGroup: string,
    callsPerSecond: number,
    /** A stream is read again no sooner than this after its last read. */
    private readonly everyMs: number,
  ) {
    this.limiter = new RateLimiter(callsPerSecond);
  }

  follow(stream: string, sink: CappedLog): void {
    if (this.streams.has(stream)) return;
    this.streams.set(stream, { stream, sink, readAt: 0 });
    if (!this.running) void this.loop();
  }

  /**
   * Reads what is left of a stream (its job has ended) and stops following it. These reads go
   * before live ones: an attempt waits for its log to be complete.
   */
  async finish(stream: string): Promise<void> {
    const followed = this.streams.get(stream);
    if (!followed) return;
    this.streams.delete(stream);
    await this.read(followed, FINAL_PAGES, true).catch(() => {});
  }

  /** Stops following a stream without reading further. */
  drop(stream: string): void {
    this.streams.delete(stream);
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.streams.size > 0) {
        const due = [...this.streams.values()].sort((a, b) => a.readAt - b.readAt)[0] as Followed;
        const wait = due.readAt + this.everyMs - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.streams.get(due.stream) !== due) continue;
        await this.read(due, PAGES_PER_TURN, false).catch(() => {});
      }
    } finally {
      this.running = false;
    }
  }

  /**
   * Reads forward from the stream's token until the token stops moving (the end of the stream,
   * as GetLogEvents says: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html)
   * or `pages` are read. A page may come back empty while the token moves on, with events after
   * it: an empty page is no end. A live read stops, to be taken up later, when the rate limit
   * has no token to spare.
   */
  private async read(followed: Followed, pages: number, final: boolean): Promise<void> {
    followed.readAt = Date.now();
    for (let page = 0; page < pages; page++) {
      if (final) await this.limiter.take();
      else if (!this.limiter.tryTake()) return;
      this.calls += 1;
      let answer: GetLogEventsCommandOutput;
      try {
        answer = await this.logs.send(
          new GetLogEventsCommand({
            logGroupName: this.logGroup,
            logStreamName: followed.stream,
            startFromHead: true,
            ...(followed.token && { nextToken: followed.token }),
          }),
        );
      } catch (error) {
        // The stream appears with the container's first output.
        if (error instanceof ResourceNotFoundException) return;
        throw error;
      }
      const { events = [], nextForwardToken } = answer;
      for (const event of events) followed.sink.write(`${event.message ?? ''}\n`);
      const same = nextForwardToken === followed.token;
      followed.token = nextForwardToken;
      if (same || !nextForwardToken) return;
    }
  }
}
