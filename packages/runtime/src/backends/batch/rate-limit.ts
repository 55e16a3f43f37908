/**
 * A token bucket: at most `perSecond` calls a second, in bursts of at most `perSecond`. Callers
 * that must go wait their turn (`take`); work that can come back later takes a token only when
 * one is free and no one is waiting (`tryTake`), so it never delays the others.
 */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  /** Resolves when the caller may go; callers go in the order they asked. */
  take(): Promise<void> {
    this.waiting += 1;
    const turn = this.queue
      .then(() => this.wait())
      .finally(() => {
        this.waiting -= 1;
      });
    this.queue = turn;
    return turn;
  }

  /** A token if one is free now and no caller waits for one. */
  tryTake(): boolean {
    if (this.waiting > 0) return false;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(
      this.perSecond,
      this.tokens + ((now - this.last) / 1000) * this.perSecond,
    );
    this.last = now;
  }

  private async wait(): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((resolve) =>
        setTimeout(resolve, ((1 - this.tokens) / this.perSecond) * 1000),
      );
    }
  }
}
