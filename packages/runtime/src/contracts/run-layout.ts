import path from 'node:path';

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
    taskDir,
    taskSpec: (taskId: string) => path.join(taskDir(taskId), 'task.json'),
    taskResult: (taskId: string) => path.join(taskDir(taskId), 'result.json'),
    executorLog: (taskId: string) => path.join(taskDir(taskId), 'executor.log'),
  };
}

export type RunLayout = ReturnType<typeof runLayout>;

export const INTEGRATION_BRANCH = 'main';
export const taskBranch = (taskId: string) => `task/${taskId}`;
