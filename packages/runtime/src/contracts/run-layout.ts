import path from 'node:path';

/**
 * Files in `tasks/<id>/` (the host's record of a task) and in an executor's OUTPUT_DIR (what a
 * containerised executor leaves: its outcome and transcript, which the host reads as data).
 */
export const TASK_FILES = {
  spec: 'task.json',
  result: 'result.json',
  log: 'executor.log',
  transcript: 'transcript.jsonl',
  outcome: 'outcome.json',
  /** `--verify` output, one section per attempt checked. */
  verifyLog: 'verify.log',
  /** `--setup` output: the run's, and an attempt's whose work changed the manifests. */
  setupLog: 'setup.log',
} as const;

/**
 * An executor slot's sandbox: the only directories of a run an agent can write. The workspace
 * holds the project's files and nothing of git; the home and the output are made afresh for
 * every attempt. What the host reads from here it reads as untrusted data.
 */
export function sandboxLayout(root: string) {
  return {
    root,
    /** The task's files, reused by the tasks the slot runs (reset by the host between them). */
    workspace: path.join(root, 'workspace'),
    /** HOME of the agent (Claude Code's configuration and sessions). */
    home: path.join(root, 'home'),
    /** Where a containerised executor leaves its outcome and transcript for the host. */
    output: path.join(root, 'output'),
  };
}
export type SandboxLayout = ReturnType<typeof sandboxLayout>;

/**
 * The run directory layout: one place that names every file a run writes. Only the orchestrator
 * writes outside `sandboxes/`; `tasks/<id>/` in particular is never shared with an agent.
 */
export function runLayout(runDir: string) {
  const root = path.resolve(runDir);
  const taskDir = (taskId: string) => path.join(root, 'tasks', taskId);
  return {
    root,
    config: path.join(root, 'run.json'),
    plan: path.join(root, 'execution_plan.json'),
    journal: path.join(root, 'events.jsonl'),
    log: path.join(root, 'orchestrator.log'),
    summary: path.join(root, 'execution_summary.json'),
    lock: path.join(root, '.lock'),
    project: path.join(root, 'project'),
    /** Everything agents may write, one directory per executor slot; nothing else is theirs. */
    sandboxes: path.join(root, 'sandboxes'),
    sandbox: (executor: number) =>
      sandboxLayout(path.join(root, 'sandboxes', `executor-${executor}`)),
    tasks: path.join(root, 'tasks'),
    /** What a remote backend moves to and from its jobs while it does (bundles), host-only. */
    staging: path.join(root, 'staging'),
    taskDir,
    taskSpec: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.spec),
    taskResult: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.result),
    executorLog: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.log),
    verifyLog: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.verifyLog),
    setupLog: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.setupLog),
    /** `--setup` on the run's base. */
    baseSetupLog: path.join(root, TASK_FILES.setupLog),
    /** `--verify` on the integration branch at the end of the run: its log and its checkout. */
    finalVerifyLog: path.join(root, TASK_FILES.verifyLog),
    finalVerifySandbox: sandboxLayout(path.join(root, 'sandboxes', 'final-verify')),
  };
}

export type RunLayout = ReturnType<typeof runLayout>;

export const INTEGRATION_BRANCH = 'main';
export const taskBranch = (taskId: string) => `task/${taskId}`;
