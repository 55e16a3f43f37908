import { type ChildProcess, fork } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ENV, INHERITED_HOST_ENV } from '../contracts/env.js';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import type { Backend, ExecutionContext } from './backend.js';
import type { WorkerReply, WorkerRequest } from './local-worker.js';

const WORKER_PATH = fileURLToPath(new URL('./local-worker.js', import.meta.url));

export interface LocalBackendOptions {
  /** Whether executors call models (`USE_REAL_EXECUTORS`). */
  real: boolean;
  /** Time a stopped executor gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

/** The environment an executor process gets: a short allow-list, never the host's secrets. */
function executorEnv(executor: number, real: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_HOST_ENV)
    if (process.env[name] !== undefined) env[name] = process.env[name];
  env[ENV.EXECUTOR_ID] = String(executor);
  env[ENV.USE_REAL_EXECUTORS] = real ? '1' : '0';
  return env;
}

/**
 * Executors as child processes on this machine. Each slot keeps one executor process alive and
 * feeds it tasks, so a crash costs one task, not the orchestrator, and Node's start-up (about
 * 90 ms here) is paid once per slot rather than once per task. Each process leads its own
 * process group; stopping a task kills the whole group.
 */
export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  private readonly workers = new Map<number, ChildProcess>();
  private readonly killGraceMs: number;

  constructor(private readonly options: LocalBackendOptions) {
    this.killGraceMs = options.killGraceMs ?? 2_000;
  }

  execute(
    spec: TaskSpec,
    { executor, signal, logPath }: ExecutionContext,
  ): Promise<ExecutorOutcome> {
    if (signal.aborted) return Promise.resolve(aborted(signal));
    const worker = this.worker(executor);
    return new Promise<ExecutorOutcome>((resolve) => {
      const onOutput = (chunk: Buffer) => appendFileSync(logPath, chunk);
      const settle = (outcome: ExecutorOutcome) => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        worker.stdout?.off('data', onOutput);
        worker.stderr?.off('data', onOutput);
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onMessage = (reply: WorkerReply) => settle(reply.outcome);
      const onExit = (code: number | null, exitSignal: NodeJS.Signals | null) => {
        this.workers.delete(executor);
        if (signal.aborted) return settle(aborted(signal));
        settle({
          status: 'failed',
          error: `executor process ${exitSignal ? `killed by ${exitSignal}` : `exited with code ${code}`}`,
          retryable: true,
        });
      };
      const onAbort = () => this.stop(executor);
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      worker.stdout?.on('data', onOutput);
      worker.stderr?.on('data', onOutput);
      signal.addEventListener('abort', onAbort, { once: true });
      const request: WorkerRequest = { spec, logPath };
      worker.send(request);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((slot) => this.stop(slot)));
  }

  private worker(executor: number): ChildProcess {
    const existing = this.workers.get(executor);
    if (existing && existing.exitCode === null && existing.signalCode === null) return existing;
    const child = fork(WORKER_PATH, [], {
      env: executorEnv(executor, this.options.real),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      serialization: 'advanced',
    });
    this.workers.set(executor, child);
    return child;
  }

  /** Stops an executor and everything it started: SIGTERM to its group, SIGKILL after a grace. */
  private stop(executor: number): Promise<void> {
    const child = this.workers.get(executor);
    this.workers.delete(executor);
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve();
    const pid = child.pid;
    return new Promise<void>((resolve) => {
      const escalate = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.killGraceMs);
      child.once('exit', () => {
        clearTimeout(escalate);
        resolve();
      });
      signalGroup(pid, 'SIGTERM');
    });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function aborted(signal: AbortSignal): ExecutorOutcome {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'cancelled';
  return { status: 'failed', error: reason, retryable: true };
}
