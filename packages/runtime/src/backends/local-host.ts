/**
 * The executor host: the child process in which the local backend runs executors. It runs up
 * to M tasks at once, each with its own abort signal, and reports each outcome by task key.
 * It exits when the orchestrator goes away, so a killed orchestrator leaves nothing writing
 * into its run.
 */
import { appendFileSync } from 'node:fs';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { executeTask } from '../executor/execute.js';
import { logLine } from '../run/run-log.js';

export type HostRequest =
  | { type: 'run'; key: string; spec: TaskSpec; logPath: string }
  | { type: 'abort'; key: string };

export interface HostReply {
  key: string;
  outcome: ExecutorOutcome;
}

const running = new Map<string, AbortController>();

async function run(key: string, spec: TaskSpec, logPath: string): Promise<void> {
  const controller = new AbortController();
  running.set(key, controller);
  const log = (line: string) => appendFileSync(logPath, logLine(line));
  const outcome = await executeTask(spec, { signal: controller.signal, log });
  running.delete(key);
  const reply: HostReply = { key, outcome };
  process.send?.(reply);
}

process.on('disconnect', () => process.exit(1));
process.on('message', (request: HostRequest) => {
  if (request.type === 'run') void run(request.key, request.spec, request.logPath);
  else running.get(request.key)?.abort();
});
