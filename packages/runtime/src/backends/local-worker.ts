/**
 * Child-process side of the local backend: one long-lived executor process per slot, running
 * one task at a time. It exits when the orchestrator goes away, so a killed orchestrator never
 * leaves executors writing into a run.
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { executeTask } from '../executor/execute.js';
import { logLine } from '../run/run-log.js';
import { WorkspaceEscapeError } from '../workspace/path-safety.js';

export interface WorkerRequest {
  spec: TaskSpec;
  logPath: string;
}

export interface WorkerReply {
  outcome: ExecutorOutcome;
}

async function handle({ spec, logPath }: WorkerRequest): Promise<WorkerReply> {
  const log = (line: string) => appendFileSync(logPath, logLine(line));
  try {
    return { outcome: await executeTask(spec, { sleep: (ms) => sleep(ms), log }) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(`executor error: ${message}`);
    // Escaping the workspace is a property of the task; anything else may pass on a retry.
    const retryable = !(error instanceof WorkspaceEscapeError);
    return { outcome: { status: 'failed', error: message, retryable } };
  }
}

process.on('disconnect', () => process.exit(1));
process.on('message', (request: WorkerRequest) => {
  void handle(request).then((reply) => process.send?.(reply));
});
