/** Time as the scheduler sees it: the wall clock in production, virtual time in simulations. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
}

/**
 * Discrete-event time: `run(promise)` lets pending callbacks run, then jumps to the earliest
 * timer, until the promise settles. Hours of simulated work take
 * milliseconds, and a run that waits on nothing is reported as a deadlock instead of hanging.
 */
export class VirtualClock implements Clock {
  private time = 0;
  private seq = 0;
  private timers: Timer[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.time + Math.max(0, ms),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.timers = this.timers.filter((t) => t !== timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.insert(timer);
    });
  }

  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const done = work.finally(() => {
      settled = true;
    });
    done.catch(() => {});
    // Work that is neither settled nor waiting on a timer may still be in flight (a chain of
    // immediates); give it a bounded number of turns before calling it a deadlock.
    let idleTurns = 0;
    while (true) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (settled) return done;
      const next = this.timers.shift();
      if (!next) {
        if (++idleTurns > 100)
          throw new Error('virtual clock deadlock: work is pending but no timer is set');
        continue;
      }
      idleTurns = 0;
      this.time = next.at;
      next.fire();
    }
  }

  private insert(timer: Timer): void {
    // Binary search keeps timers ordered by (at, seq) so equal times fire in creation order.
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const t = this.timers[mid] as Timer;
      if (t.at < timer.at || (t.at === timer.at && t.seq < timer.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, timer);
  }
}
