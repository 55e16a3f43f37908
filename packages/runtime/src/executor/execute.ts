import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { WorkspaceEscapeError } from '../trust/path-safety.js';
import { runClaudeCodeTask } from './claude-code.js';
import type { ExecutorIo } from './io.js';
import { runSimulatedTask } from './simulated.js';

export type { ExecutorIo };

/**
 * Runs one attempt of a task in its workspace, in whatever process or container hosts it.
 * Never throws: every failure becomes an outcome, retryable unless the task itself is at fault.
 */
export async function executeTask(spec: TaskSpec, io: ExecutorIo): Promise<ExecutorOutcome> {
  try {
    return spec.mode === 'real'
      ? await runClaudeCodeTask(spec, io)
      : await runSimulatedTask(spec, io);
  } catch (error) {
    if (io.signal.aborted) return { status: 'failed', error: 'aborted', retryable: true };
    const message = error instanceof Error ? error.message : String(error);
    io.log(`executor error: ${message}`);
    // Escaping the workspace is a property of the task; anything else may pass on a retry.
    return {
      status: 'failed',
      error: message,
      retryable: !(error instanceof WorkspaceEscapeError),
    };
  }
}
