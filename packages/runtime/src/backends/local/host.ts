/**
 * The executor host: the child process in which the local backend runs executors. It runs up
 * to M tasks at once, each with its own abort signal, and reports each outcome by task key.
 * It exits when the orchestrator goes away, so a killed orchestrator leaves nothing writing
 * into its run. It is the orchestrator's own code, outside any sandbox; the agents it starts
 * run confined when the request carries a confinement.
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import { executeTask } from '../../executor/execute.js';
import { logLine } from '../../run/run-log.js';
import type { AgentUser } from '../../sandbox/agent-user.js';
import { agentSpawn, type Confinement } from '../../sandbox/bubblewrap.js';

export type HostRequest =
  | {
      type: 'run';
      key: string;
      spec: TaskSpec;
      logPath: string;
      modelToken?: string;
      /** Claude Code in a bubblewrap sandbox; absent where bubblewrap cannot run. */
      confinement?: Confinement;
      /** The unprivileged user agents run as (a root orchestrator's), confined or not. */
      runAs?: AgentUser;
      /** What the agent's command starts with: its slot's limits. */
      launcher?: string[];
    }
  | { type: 'abort'; key: string };

export interface HostReply {
  key: string;
  outcome: ExecutorOutcome;
}

const running = new Map<string, AbortController>();

/** How long a finished agent's sandbox may take to exit before it is killed. */
const EXIT_GRACE_MS = 5_000;

/** Resolves once `child` has exited, killing it if it lingers past the grace period. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function run(request: Extract<HostRequest, { type: 'run' }>): Promise<void> {
  const { key, spec, logPath, modelToken, confinement, runAs, launcher } = request;
  const controller = new AbortController();
  running.set(key, controller);
  const log = (line: string) => appendFileSync(logPath, logLine(line));
  const sandboxes: ChildProcess[] = [];
  const spawn = (confinement || runAs || launcher) && agentSpawn(confinement, runAs, log, launcher);
  const outcome = await executeTask(spec, {
    signal: controller.signal,
    log,
    modelToken,
    ...(spawn && {
      spawnAgent: (options) => {
        const child = spawn(options);
        sandboxes.push(child);
        return child;
      },
    }),
  });
  // The host reads the workspace once this reply arrives: no sandboxed process may outlive it.
  await Promise.all(sandboxes.map(exited));
  running.delete(key);
  const reply: HostReply = { key, outcome };
  process.send?.(reply);
}

process.on('disconnect', () => process.exit(1));
process.on('message', (request: HostRequest) => {
  if (request.type === 'run') void run(request);
  else running.get(request.key)?.abort();
});
