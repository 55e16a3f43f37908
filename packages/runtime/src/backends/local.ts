import { type ChildProcess, fork } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ENV, INHERITED_HOST_ENV } from '../contracts/env.js';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import type { Backend, ExecutionContext } from './backend.js';
import type { HostReply, HostRequest } from './local-host.js';

const HOST_PATH = fileURLToPath(new URL('./local-host.js', import.meta.url));

export interface LocalBackendOptions {
  /** Whether executors call models (`USE_REAL_EXECUTORS`). */
  real: boolean;
  /** Model credentials and AWS chain settings for real executors: process environment only. */
  executorEnv?: Record<string, string>;
  /** How long an aborted task may take to stop before the whole host is killed. */
  killGraceMs?: number;
}

interface Pending {
  settle: (outcome: ExecutorOutcome) => void;
  logPath: string;
}

/**
 * The executor host's environment, built from scratch: a short allow-list of the orchestrator's
 * own, plus exactly the model settings real executors were given.
 */
function hostEnv({ real, executorEnv }: LocalBackendOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_HOST_ENV) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  env[ENV.USE_REAL_EXECUTORS] = real ? '1' : '0';
  return { ...env, ...(real && executorEnv) };
}

/**
 * Executors on this machine, in one child process (the executor host) that runs up to M tasks
 * at once: a crash there fails the tasks in flight, which are retried, never the orchestrator.
 * One host rather than one process per executor because Node's start-up (70-90 ms of CPU here)
 * per executor outweighed the rest of the per-task overhead. The host leads its own process
 * group; a task that does not stop when aborted gets the whole group killed.
 */
export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  private host: ChildProcess | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly killGraceMs: number;

  constructor(private readonly options: LocalBackendOptions) {
    this.killGraceMs = options.killGraceMs ?? 5_000;
  }

  async warm(): Promise<void> {
    this.ensureHost();
  }

  execute(spec: TaskSpec, { signal, logPath }: ExecutionContext): Promise<ExecutorOutcome> {
    if (signal.aborted) return Promise.resolve(aborted(signal));
    const host = this.ensureHost();
    const key = `${spec.taskId}#${spec.attempt}`;
    return new Promise<ExecutorOutcome>((resolve) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.send({ type: 'abort', key });
        killTimer = setTimeout(() => this.kill(), this.killGraceMs);
      };
      this.pending.set(key, {
        logPath,
        settle: (outcome) => {
          clearTimeout(killTimer);
          signal.removeEventListener('abort', onAbort);
          this.pending.delete(key);
          resolve(signal.aborted && outcome.status === 'failed' ? aborted(signal) : outcome);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
      host.send({ type: 'run', key, spec, logPath } satisfies HostRequest);
    });
  }

  async close(): Promise<void> {
    const host = this.host;
    if (!host) return;
    await new Promise<void>((resolve) => {
      host.once('exit', () => resolve());
      this.kill();
    });
  }

  private ensureHost(): ChildProcess {
    if (this.host) return this.host;
    const host = fork(HOST_PATH, [], {
      env: hostEnv(this.options),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      serialization: 'advanced',
    });
    // Output outside any task's own log (a crash trace) goes to the logs of the tasks in flight.
    const toLogs = (chunk: Buffer) => {
      for (const { logPath } of this.pending.values()) appendFileSync(logPath, chunk);
    };
    host.stdout?.on('data', toLogs);
    host.stderr?.on('data', toLogs);
    host.on('message', (reply: HostReply) => this.pending.get(reply.key)?.settle(reply.outcome));
    // A failed send (the host just died) surfaces as its exit, which settles the tasks.
    host.on('error', () => {});
    host.on('exit', (code, exitSignal) => {
      if (this.host === host) this.host = undefined;
      const error = `executor host ${exitSignal ? `killed by ${exitSignal}` : `exited with code ${code}`}`;
      for (const { settle } of [...this.pending.values()])
        settle({ status: 'failed', error, retryable: true });
    });
    this.host = host;
    return host;
  }

  private send(request: HostRequest): void {
    this.host?.send(request);
  }

  /** Kills the host and everything it started (its process group). */
  private kill(): void {
    const pid = this.host?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

function aborted(signal: AbortSignal): ExecutorOutcome {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'cancelled';
  return { status: 'failed', error: reason, retryable: true };
}
