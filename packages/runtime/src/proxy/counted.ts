import type { ExecutorOutcome } from '../contracts/executor.js';
import type { GrantUsage } from './model-proxy.js';

/**
 * An attempt's outcome with the model proxy's count of what it spent, which the agent cannot
 * change, in place of what the executor reported; an attempt a budget stopped says which.
 */
export function countedByProxy(outcome: ExecutorOutcome, counted: GrantUsage): ExecutorOutcome {
  const withUsage = { ...outcome, usage: counted.usage };
  if (outcome.status !== 'failed' || !counted.stoppedBy) return withUsage;
  const counts = `the model proxy counted $${counted.usage.costUsd.toFixed(4)} and refused the next call`;
  if (counted.stoppedBy === 'task')
    return {
      ...withUsage,
      error: `task reached its budget of $${counted.limitUsd}: ${counts}`,
      retryable: false,
    };
  // The run's budget: the task is left for a resume with a larger one, not failed for good.
  return {
    ...withUsage,
    error: `the run reached its budget: for this attempt ${counts}`,
    retryable: true,
  };
}
