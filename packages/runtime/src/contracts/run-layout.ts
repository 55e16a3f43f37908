import path from 'node:path';

/** Files in `tasks/<id>/`: the executor writes the log and transcript, knowing only the folder. */
export const TASK_FILES = {
  spec: 'task.json',
  result: 'result.json',
  log: 'executor.log',
  transcript: 'transcript.jsonl',
} as const;

/** The run directory layout: one place that names every file a run writes. */
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
    worktrees: path.join(root, 'worktrees'),
    /** The worktree of executor slot `executor`, reused by the tasks that slot runs. */
    workspace: (executor: number) => path.join(root, 'worktrees', `executor-${executor}`),
    tasks: path.join(root, 'tasks'),
    /** HOME of the agents (Claude Code's configuration and sessions), inside the run. */
    agentHome: path.join(root, 'agent-home'),
    taskDir,
    taskSpec: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.spec),
    taskResult: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.result),
    executorLog: (taskId: string) => path.join(taskDir(taskId), TASK_FILES.log),
  };
}

export type RunLayout = ReturnType<typeof runLayout>;

export const INTEGRATION_BRANCH = 'main';
export const taskBranch = (taskId: string) => `task/${taskId}`;
