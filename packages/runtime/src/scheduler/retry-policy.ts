import type { RetryReason } from '../contracts/events.js';

/** How a failed attempt asks to be treated. */
export type FailureKind = 'transient' | 'conflict' | 'verify' | 'permanent';

export interface RetryPolicyOptions {
  /** Further attempts after a transient failure (a crash, a timeout, a rate limit). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A merge conflict is retried on the fresh integration state this many times, then fails. */
  conflictRetries: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicyOptions = {
  retries: 2,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
  conflictRetries: 1,
};

export interface FailureHistory {
  transientFailures: number;
  conflicts: number;
  /** Attempts whose work failed `--verify`. */
  verifyFailures?: number;
}

export type RetryDecision =
  | { retry: true; reason: RetryReason; delayMs: number }
  | { retry: false };

/**
 * Exponential backoff with "equal jitter": half the capped exponential delay is fixed, the other
 * half random, so retries of tasks that failed together spread out without ever retrying at once.
 * `history` counts failures so far, including the one being decided.
 */
export function decideRetry(
  kind: FailureKind,
  history: FailureHistory,
  policy: RetryPolicyOptions,
  random: () => number,
): RetryDecision {
  if (kind === 'conflict') {
    // The integration branch has already moved on: retry at once, no backoff to wait for.
    return history.conflicts <= policy.conflictRetries
      ? { retry: true, reason: 'conflict', delayMs: 0 }
      : { retry: false };
  }
  if (kind === 'verify') {
    // The agent is told what failed and fixes it: nothing to wait for, as many tries as crashes.
    return (history.verifyFailures ?? 0) <= policy.retries
      ? { retry: true, reason: 'verify', delayMs: 0 }
      : { retry: false };
  }
  if (kind === 'permanent' || history.transientFailures > policy.retries) return { retry: false };
  const cap = Math.min(
    policy.maxDelayMs,
    policy.baseDelayMs * 2 ** (history.transientFailures - 1),
  );
  return { retry: true, reason: 'transient', delayMs: Math.round(cap / 2 + (random() * cap) / 2) };
}
