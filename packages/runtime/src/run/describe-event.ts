import type { JournalEvent, RetryReason } from '../contracts/events.js';
import { describeVerification } from '../contracts/verify.js';
import { printable } from '../util/printable.js';

const RETRY_WORDS: Record<RetryReason, string> = {
  transient: 'failed',
  conflict: 'hit a merge conflict',
  verify: 'failed --verify',
  interrupted: 'was interrupted',
};

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** One human line per journal event, for `orchestrator.log` and plain (non-TTY) progress. */
export function describeEvent(event: JournalEvent): string {
  switch (event.type) {
    case 'run-started':
      return [
        `run ${event.runId} started: ${event.tasks} tasks, ${event.executors} executors, ${event.backend} backend, ${event.mode} mode`,
        ...(event.notes ?? []).map((note) => `note: ${note}`),
      ].join('\n');
    case 'run-resumed':
      return [
        `run ${event.runId} resumed: ${event.remaining} tasks to go${event.retryFailed ? ' (failed tasks retried)' : ''}`,
        ...(event.recoveredLocks
          ? [`removed what a killed git left: ${event.recoveredLocks.join(', ')}`]
          : []),
      ].join('\n');
    case 'task-started':
      return `task ${event.taskId} started (attempt ${event.attempt}, executor ${event.executor})`;
    case 'task-merging':
      return `task ${event.taskId} committed ${event.commit.slice(0, 12)}, merging`;
    case 'task-job':
      return `task ${event.taskId} attempt ${event.attempt}: job ${event.job.name}${event.job.id ? ` (${event.job.id})` : ''} ${event.state}${event.reason ? `: ${printable(event.reason)}` : ''}`;
    case 'task-adopted':
      return `task ${event.taskId} attempt ${event.attempt}: job ${event.job.name} outlived the orchestrator; waiting for it`;
    case 'task-succeeded':
      return event.recovered
        ? `task ${event.taskId} was already merged before the interruption`
        : `task ${event.taskId} succeeded in ${seconds(event.durationMs)} (attempt ${event.attempt}, ${event.result.files?.length ?? 0} files)`;
    case 'task-retrying':
      return `task ${event.taskId} attempt ${event.attempt} ${RETRY_WORDS[event.reason]}: ${printable(event.error)}; retrying${event.delayMs ? ` in ${seconds(event.delayMs)}` : ''}`;
    case 'task-failed':
      return `task ${event.taskId} failed on attempt ${event.attempt}: ${printable(event.error)}`;
    case 'task-blocked':
      return `task ${event.taskId} blocked by failed ${event.blockedBy.join(', ')}`;
    case 'task-cancelled':
      return `task ${event.taskId} cancelled (attempt ${event.attempt})`;
    case 'run-budget-spent':
      return `run spent $${event.spentUsd.toFixed(4)} of its $${event.limitUsd} budget: no new task starts`;
    case 'environment-prepared': {
      const where = event.taskId
        ? ` for task ${event.taskId} attempt ${event.attempt}'s work`
        : ` for ${event.commit.slice(0, 12)}`;
      const how = event.cached
        ? `found in the cache (prepared in ${seconds(event.preparedMs)})`
        : `prepared in ${seconds(event.preparedMs)}`;
      return `environment ${event.key.slice(0, 12)}${where} ${how}: ${event.paths.join(', ') || 'nothing'}${event.note ? ` (${event.note})` : ''}`;
    }
    case 'base-verified':
      return `--verify on the base ${event.commit.slice(0, 12)} ${describeVerification(event.verification)} (${seconds(event.verification.durationMs)})${event.allowed ? ', allowed: --allow-failing-base' : ''}`;
    case 'run-verified':
      return `--verify on ${event.commit.slice(0, 12)} ${describeVerification(event.verification)} (${seconds(event.verification.durationMs)})`;
    case 'run-finished':
      return `run ${event.status} after ${seconds(event.durationMs)}`;
  }
}
