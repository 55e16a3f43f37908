import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Backend } from '../backends/backend.js';
import { LocalBackend } from '../backends/local.js';
import type { EventBody, JournalEvent, RunStatus } from '../contracts/events.js';
import type { TaskSpec } from '../contracts/executor.js';
import { type Plan, parsePlan } from '../contracts/plan.js';
import type { ExecutionSummary } from '../contracts/results.js';
import { type RunConfig, RunConfigSchema } from '../contracts/run-config.js';
import { type RunLayout, taskBranch } from '../contracts/run-layout.js';
import type { AttemptContext, AttemptOutcome } from '../scheduler/scheduler.js';
import { errorMessage, Scheduler } from '../scheduler/scheduler.js';
import { seededRandom } from '../util/random.js';
import { WorkspaceEscapeError } from '../workspace/path-safety.js';
import { Project, type TaskCommit } from '../workspace/project.js';
import { describeEvent } from './describe-event.js';
import { Journal } from './journal.js';
import { applyEvent, FINAL_TASK_STATUSES, initialState, type RunState, replay } from './replay.js';
import { acquireRunLock, createRunDir, openRunDir, RunDirError } from './run-dir.js';
import { RunLog } from './run-log.js';
import { buildSummary, taskResult } from './summary.js';

/** How a run executes; stored in `run.json` so a resume continues the same way. */
export type RunSettings = Omit<RunConfig, 'version' | 'runId' | 'createdAt'>;

export interface RunHooks {
  signal?: AbortSignal;
  /** Every journal event, after it is written. */
  onEvent?: (event: JournalEvent) => void;
  /**
   * Environment for real executors: model credentials and AWS chain settings. Handed to executor
   * processes only, never written anywhere; a resume is given them again.
   */
  executorEnv?: Record<string, string>;
}

export interface StartRunOptions extends RunSettings, RunHooks {
  outputDir: string;
  plan: Plan;
}

export interface ResumeRunOptions extends RunHooks {
  /** Give failed and blocked tasks another chance instead of keeping their outcome. */
  retryFailed?: boolean;
  /** Change the executor budget for the rest of the run. */
  executors?: number;
  /** Change the spending limit for the rest of the run (one that stopped it, typically). */
  maxBudgetUsd?: number;
}

export interface RunOutcome {
  runDir: string;
  status: RunStatus;
  summary: ExecutionSummary;
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

async function createBackend(
  config: RunConfig,
  executorEnv: Record<string, string> | undefined,
): Promise<Backend> {
  const real = config.mode === 'real';
  switch (config.backend) {
    case 'local':
      return new LocalBackend({ real, executorEnv });
    case 'docker': {
      if (!config.docker)
        throw new RunDirError('run.json has no docker settings for the docker backend');
      // Loaded on demand: the Docker client takes a fifth of a second to import.
      const { DockerBackend } = await import('../backends/docker.js');
      return new DockerBackend({ runId: config.runId, real, settings: config.docker, executorEnv });
    }
  }
}

/** Creates a run directory for the plan and runs it to the end. */
export async function startRun(options: StartRunOptions): Promise<RunOutcome> {
  // Hooks (and the secrets among them) stay out of run.json: only settings are written.
  const { outputDir, plan, signal, onEvent, executorEnv, ...settings } = options;
  const layout = createRunDir(outputDir, plan.requirements.split('\n')[0] ?? '');
  const config: RunConfig = {
    version: 1,
    runId: path.basename(layout.root),
    createdAt: new Date().toISOString(),
    ...settings,
  };
  const release = acquireRunLock(layout);
  try {
    writeJson(layout.config, config);
    writeJson(layout.plan, plan);
    mkdirSync(layout.tasks);
    const project = await Project.init(
      layout.project,
      `Start run ${config.runId}\n\n${plan.requirements}`,
    );
    const journal = Journal.create(layout.journal);
    const state = initialState(plan.tasks.map((t) => t.id));
    const run = new ActiveRun(layout, config, plan, project, journal, state, {
      signal,
      onEvent,
      executorEnv,
    });
    run.emit({
      type: 'run-started',
      runId: config.runId,
      tasks: plan.tasks.length,
      executors: config.executors,
      backend: config.backend,
      mode: config.mode,
    });
    return await run.execute();
  } finally {
    release();
  }
}

/** Reads a run directory's config, plan and journal. */
export function loadRun(runDir: string): { layout: RunLayout; config: RunConfig; plan: Plan } {
  const layout = openRunDir(runDir);
  const read = (file: string) => {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    } catch (error) {
      throw new RunDirError(`cannot read ${file}: ${errorMessage(error)}`);
    }
  };
  const config = RunConfigSchema.safeParse(read(layout.config));
  if (!config.success) throw new RunDirError(`${layout.config} is not a valid run config`);
  let plan: Plan;
  try {
    plan = parsePlan(read(layout.plan));
  } catch (error) {
    throw new RunDirError(`${layout.plan} is not a valid plan: ${errorMessage(error)}`);
  }
  return { layout, config: config.data, plan };
}

/**
 * Continues an interrupted run from its journal: finished tasks stay finished, tasks that were
 * running start again on the current integration state, and a task whose merge had landed
 * before the interruption is recorded as succeeded without running again.
 */
export async function resumeRun(
  runDir: string,
  options: ResumeRunOptions = {},
): Promise<RunOutcome> {
  const loaded = loadRun(runDir);
  const { layout, plan } = loaded;
  const config: RunConfig = {
    ...loaded.config,
    executors: options.executors ?? loaded.config.executors,
    maxBudgetUsd: options.maxBudgetUsd ?? loaded.config.maxBudgetUsd,
  };
  const release = acquireRunLock(layout);
  try {
    const { journal, events } = Journal.reopen(layout.journal);
    const state = replay(
      plan.tasks.map((t) => t.id),
      events,
    );
    const project = await Project.open(layout.project);
    const run = new ActiveRun(layout, config, plan, project, journal, state, options);
    const records = [...state.tasks.values()];
    const retryFailed =
      (options.retryFailed ?? false) && records.some((t) => t.status !== 'succeeded');
    if (!retryFailed && records.every((t) => FINAL_TASK_STATUSES.has(t.status))) {
      // Nothing left to run; the orchestrator may have died before it wrapped up.
      await project.checkoutHead();
      const status = records.every((t) => t.status === 'succeeded') ? 'succeeded' : 'failed';
      if (!state.status) run.emit({ type: 'run-finished', status, durationMs: 0 });
      return run.close(status);
    }
    // Executor worktrees may hold half-done work of interrupted attempts.
    await project.removeWorkspaces(layout.worktrees);
    for (const task of plan.tasks) {
      const record = state.tasks.get(task.id);
      if (record?.status !== 'running') continue;
      if (record.merging && (await project.contains(record.merging.commit))) {
        run.emit({
          type: 'task-succeeded',
          taskId: task.id,
          attempt: record.merging.attempt,
          durationMs: 0,
          result: {
            commit: record.merging.commit,
            files: await project.changedFiles(record.merging.commit),
          },
          recovered: true,
        });
      } else {
        run.emit({
          type: 'task-retrying',
          taskId: task.id,
          attempt: record.attempts,
          reason: 'interrupted',
          error: 'the orchestrator stopped during this attempt',
          durationMs: 0,
          delayMs: 0,
        });
      }
    }
    const remaining = [...state.tasks.values()].filter(
      (t) => !FINAL_TASK_STATUSES.has(t.status) || (retryFailed && t.status !== 'succeeded'),
    ).length;
    run.emit({ type: 'run-resumed', runId: config.runId, remaining, retryFailed });
    return await run.execute();
  } finally {
    release();
  }
}

/** A run being driven: journal, project, backend and scheduler wired together. */
class ActiveRun {
  private readonly log: RunLog;
  private readonly tasksById: Map<string, Plan['tasks'][number]>;
  /** Task directories known to exist: creating one costs a syscall every time otherwise. */
  private readonly taskDirs = new Set<string>();
  /**
   * Spent so far: planning and every attempt, counted as soon as an executor reports, before the
   * attempt is committed and merged (its slot may go to the next task meanwhile).
   */
  private spentUsd: number;

  constructor(
    private readonly layout: RunLayout,
    private readonly config: RunConfig,
    private readonly plan: Plan,
    private readonly project: Project,
    private readonly journal: Journal,
    /** Folded from the journal: what `emit` updates and the scheduler starts from. */
    private readonly state: RunState,
    private readonly hooks: RunHooks,
  ) {
    this.log = new RunLog(layout.log);
    this.tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
    this.spentUsd = [...state.tasks.values()].reduce(
      (sum, t) => sum + t.usage.costUsd,
      config.planner.usage.costUsd,
    );
  }

  /** Journals an event before anything acts on it, then updates state, results and log. */
  emit(body: EventBody): void {
    const event = this.journal.append(body);
    const record = applyEvent(this.state, event);
    if (record && 'taskId' in event && FINAL_TASK_STATUSES.has(record.status)) {
      this.writeTaskResult(event.taskId);
    }
    this.log.write(describeEvent(event), new Date(event.time));
    this.hooks.onEvent?.(event);
  }

  async execute(): Promise<RunOutcome> {
    const started = Date.now();
    const backend = await createBackend(this.config, this.hooks.executorEnv);
    let status: RunStatus;
    try {
      await backend.warm();
      const scheduler = new Scheduler({
        tasks: this.plan.tasks,
        concurrency: this.config.executors,
        runAttempt: (context) => this.runAttempt(backend, context),
        emit: (event) => this.emit(event),
        retry: { retries: this.config.retries, baseDelayMs: this.config.retryDelayMs },
        random: seededRandom(this.config.seed),
        taskTimeoutMs: this.config.taskTimeoutMs,
        signal: this.hooks.signal,
        initial: this.state.tasks,
        admit: () => this.withinBudget(),
      });
      status = (await scheduler.run()).status;
    } finally {
      await backend.close();
    }
    await this.project.removeWorkspaces(this.layout.worktrees);
    await this.project.checkoutHead();
    this.emit({ type: 'run-finished', status, durationMs: Date.now() - started });
    return this.close(status);
  }

  /** False once the run's spending limit is reached; says so in the journal, once. */
  private withinBudget(): boolean {
    const limit = this.config.maxBudgetUsd;
    if (limit === undefined || this.spentUsd < limit) return true;
    if (!this.state.stoppedBy)
      this.emit({ type: 'run-budget-spent', spentUsd: this.spentUsd, limitUsd: limit });
    return false;
  }

  /** Writes every result and the summary, and closes the journal and the log. */
  close(status: RunStatus): RunOutcome {
    this.journal.close();
    this.log.close();
    for (const task of this.plan.tasks) this.writeTaskResult(task.id);
    const summary = buildSummary(this.plan, this.config, this.state, status, this.project.head);
    writeJson(this.layout.summary, summary);
    return { runDir: this.layout.root, status, summary };
  }

  private ensureTaskDir(taskId: string): void {
    if (this.taskDirs.has(taskId)) return;
    mkdirSync(this.layout.taskDir(taskId), { recursive: true });
    this.taskDirs.add(taskId);
  }

  private writeTaskResult(taskId: string): void {
    const task = this.tasksById.get(taskId);
    const record = this.state.tasks.get(taskId);
    if (!task || !record) return;
    this.ensureTaskDir(taskId);
    writeJson(this.layout.taskResult(taskId), taskResult(task, record));
  }

  /** One attempt: a worktree at the integration commit, execute, commit, merge. */
  private async runAttempt(
    backend: Backend,
    { task, attempt, executor, signal, releaseExecutor }: AttemptContext,
  ): Promise<AttemptOutcome> {
    const workspace = this.layout.workspace(executor);
    this.ensureTaskDir(task.id);
    // Every dependency has succeeded, so it is merged: the head holds all the task builds on.
    await this.project.prepareWorkspace(workspace, task.id, this.project.head);
    const spec: TaskSpec = {
      runId: this.config.runId,
      taskId: task.id,
      attempt,
      executor,
      mode: this.config.mode,
      requirements: this.plan.requirements,
      task,
      mergedDependencies: task.dependsOn.map((id) => ({
        id,
        title: this.tasksById.get(id)?.title ?? id,
      })),
      workspaceDir: workspace,
      outputDir: this.layout.taskDir(task.id),
      seed: this.config.seed,
      ...(this.config.mode === 'real' && {
        agent: this.config.agent,
        agentHome: this.layout.agentHome,
        planContext: this.plan.tasks.map(({ id, title, description, dependsOn, files }) => ({
          id,
          title,
          summary: description.split('\n')[0]?.slice(0, 200),
          dependsOn,
          files,
        })),
      }),
    };
    writeJson(this.layout.taskSpec(task.id), spec);
    const outcome = await backend.execute(spec, {
      executor,
      signal,
      logPath: this.layout.executorLog(task.id),
    });
    this.spentUsd += outcome.usage?.costUsd ?? 0;
    const usage = outcome.usage && { usage: outcome.usage };
    const trailer = `Task-Id: ${task.id}\nAttempt: ${attempt}\nRun-Id: ${this.config.runId}\n`;
    if (outcome.status === 'failed' || signal.aborted) {
      const permanent = outcome.retryable === false && !signal.aborted;
      let kept: TaskCommit | undefined;
      if (permanent) {
        // Keep what the failed attempt did on its branch for inspection; it is never merged.
        kept = await this.project
          .commitWorkspace(workspace, `task(${task.id}): failed attempt, not merged\n\n${trailer}`)
          .catch(() => undefined);
      }
      return {
        ok: false,
        error: outcome.error ?? 'executor failed without a message',
        kind: permanent ? 'permanent' : 'transient',
        result: { ...kept, ...usage },
      };
    }
    let committed: TaskCommit;
    try {
      committed = await this.project.commitWorkspace(
        workspace,
        `task(${task.id}): ${task.title}\n\n${trailer}`,
      );
    } catch (error) {
      if (!(error instanceof WorkspaceEscapeError)) throw error;
      return { ok: false, error: error.message, kind: 'permanent', result: usage };
    }
    this.emit({ type: 'task-merging', taskId: task.id, attempt, commit: committed.commit });
    // The commit holds the work; the slot's worktree can serve the next task while this merges.
    releaseExecutor();
    const merge = await this.project.merge(
      committed.commit,
      `Merge ${taskBranch(task.id)}: ${task.title}\n\n${trailer}`,
    );
    const result = { ...committed, ...usage };
    if (!merge.merged) {
      return {
        ok: false,
        kind: 'conflict',
        error: `merge conflict with ${this.project.head.slice(0, 12)} in ${merge.conflictFiles.join(', ')}; the task's work is kept on ${taskBranch(task.id)}`,
        result: { ...result, conflictFiles: merge.conflictFiles },
      };
    }
    return { ok: true, result: { ...result, mergeCommit: merge.mergeCommit } };
  }
}
