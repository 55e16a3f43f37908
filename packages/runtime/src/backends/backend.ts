import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import type { BackendName } from '../contracts/run-config.js';
import type { SandboxLayout } from '../contracts/run-layout.js';

export interface ExecutionContext {
  /** Executor slot 0..M-1 (the contract's EXECUTOR_ID). */
  executor: number;
  /** Aborts on timeout or cancellation; the backend must stop the executor and settle. */
  signal: AbortSignal;
  /** Where the executor's output goes. */
  logPath: string;
  /**
   * The slot's sandbox: its workspace is ready for the task; its home and output are the
   * backend's to make afresh for the attempt if its executors need them.
   */
  sandbox: SandboxLayout;
  /** This attempt's model proxy token (real mode): handed to the executor, never written. */
  modelToken?: string;
}

/**
 * Where executors run. Every backend takes the same task spec and settles with the same
 * outcome; an executor that crashes or is killed settles as a retryable failure, never a throw.
 * At most M `execute` calls are in flight; the scheduler sees to that. When `execute` settles,
 * no process of the attempt may be left: the host then reads and resets the sandbox.
 */
export interface Backend {
  readonly name: BackendName;
  execute(spec: TaskSpec, context: ExecutionContext): Promise<ExecutorOutcome>;
  /**
   * Gets ready before the first task: starts what executors need, and clears what an
   * interrupted orchestrator left behind for this run.
   */
  warm(): Promise<void>;
  /** Stops every executor the backend started. */
  close(): Promise<void>;
}
