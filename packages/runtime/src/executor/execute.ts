import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { runSimulatedTask, type SimulationIo } from './simulated.js';

/** Runs one attempt of a task in its workspace, in whatever process or container hosts it. */
export async function executeTask(spec: TaskSpec, io: SimulationIo): Promise<ExecutorOutcome> {
  if (spec.mode === 'real') {
    return {
      status: 'failed',
      error: 'real executors are not available in this build; use simulation',
      retryable: false,
    };
  }
  return runSimulatedTask(spec, io);
}
