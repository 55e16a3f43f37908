import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { Backend } from '../backends/backend.js';
import { backendKind, backendSettings } from '../backends/kinds.js';
import type { AttemptResult, EventBody, JournalEvent, RunStatus } from '../contracts/events.js';
import type { TaskSpec } from '../contracts/executor.js';
import { type Plan, type PlanTask, parsePlan } from '../contracts/plan.js';
import type { ExecutionSummary } from '../contracts/results.js';
import { type RunConfig, RunConfigSchema } from '../contracts/run-config.js';
import {
  type RunLayout,
  type SandboxLayout,
  TASK_FILES,
  taskBranch,
} from '../contracts/run-layout.js';
import {
  describeVerification,
  type Verification,
  type VerifySettings,
  verificationPassed,
} from '../contracts/verify.js';
import { describeError, RunStoppedError, UsageError } from '../errors.js';
import type { ModelAccess } from '../models/access.js';
import type { ModelProxy } from '../proxy/model-proxy.js';
import type { AttemptContext, AttemptOutcome } from '../scheduler/scheduler.js';
import { errorMessage, Scheduler } from '../scheduler/scheduler.js';
import { OutputCheck, OutputRejectedError } from '../trust/output-check.js';
import { SecretScanner } from '../trust/secret-scanner.js';
import { seededRandom } from '../util/random.js';
import { deliveryBranch } from '../workspace/deliver.js';
import { Project, type TaskCommit } from '../workspace/project.js';
import type { SourceRepository } from '../workspace/source.js';
import { describeEvent } from './describe-event.js';
import { Journal } from './journal.js';
import { applyEvent, FINAL_TASK_STATUSES, initialState, type RunState, replay } from './replay.js';
import {
  acquireRunLock,
  createRunDir,
  openRunDir,
  processesWorkingIn,
  RunDirError,
} from './run-dir.js';
import { logLine, RunLog } from './run-log.js';
import { buildSummary, taskResult } from './summary.js';

/** How a run executes; stored in `run.json` so a resume continues the same way. */
export type RunSettings = Omit<z.input<typeof RunConfigSchema>, 'version' | 'runId' | 'createdAt'>;

export interface RunHooks {
  signal?: AbortSignal;
  /** Every journal event, after it is written. */
  onEvent?: (event: JournalEvent) => void;
  /** The run's directory, as soon as it exists (before the first event). */
  onRunDir?: (runDir: string) => void;
  /**
   * Real mode: the model access (credentials included) the model proxy uses for the agents.
   * Held in memory only, never written anywhere and never given to an agent; a resume is given
   * it again.
   */
  modelAccess?: ModelAccess;
}

export interface StartRunOptions extends Omit<RunSettings, 'source' | 'deliver'>, RunHooks {
  outputDir: string;
  plan: Plan;
  /** A repository to start from (`--repo`); without one the project starts empty. */
  source?: SourceRepository;
  /** Where the result goes; the branch defaults to one named after the run. */
  deliver?: Omit<NonNullable<RunConfig['deliver']>, 'branch'> & { branch?: string };
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
  /** `report.html`, or why it could not be written (the run's own outcome stands either way). */
  report: { file: string } | { error: string };
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Creates a run directory for the plan and runs it to the end. */
export async function startRun(options: StartRunOptions): Promise<RunOutcome> {
  // Hooks (and the secrets among them) stay out of run.json: only settings are written.
  const { outputDir, plan, signal, onEvent, onRunDir, modelAccess, source, deliver, ...settings } =
    options;
  const layout = createRunDir(outputDir, plan.requirements.split('\n')[0] ?? '');
  onRunDir?.(layout.root);
  const runId = path.basename(layout.root);
  const release = acquireRunLock(layout);
  try {
    let project: Project;
    let journal: Journal;
    let config: RunConfig;
    try {
      writeJson(layout.plan, plan);
      mkdirSync(layout.tasks);
      project = source
        ? await Project.fromRepository(layout.project, source)
        : await Project.init(layout.project, `Start run ${runId}\n\n${plan.requirements}`);
      // Written once the base is known: a repository's is resolved by the clone.
      config = RunConfigSchema.parse({
        version: 1,
        runId,
        createdAt: new Date().toISOString(),
        ...settings,
        ...(source && { source: { repo: source.shown, base: project.head } }),
        ...(deliver && {
          deliver: { ...deliver, branch: deliver.branch ?? deliveryBranch(runId) },
        }),
      });
      writeJson(layout.config, config);
      journal = Journal.create(layout.journal);
    } catch (error) {
      // Nothing has run: a run that could not even be set up leaves nothing behind.
      rmSync(layout.root, { recursive: true, force: true });
      if (error instanceof UsageError) throw error;
      throw new RunDirError(`cannot set up a run in ${outputDir}: ${describeError(error)}`);
    }
    const notes = source ? await project.leftAsIs() : [];
    const state = initialState(plan.tasks.map((t) => t.id));
    const run = new ActiveRun(layout, config, plan, project, journal, state, {
      signal,
      onEvent,
      modelAccess,
    });
    run.emit({
      type: 'run-started',
      runId: config.runId,
      tasks: plan.tasks.length,
      executors: config.executors,
      backend: config.backend,
      mode: config.mode,
      ...(notes.length > 0 && { notes }),
    });
    return await run.execute();
  } catch (error) {
    throw stopped(layout, error);
  } finally {
    release();
  }
}

/** An error that ended a run midway, told as such (usage errors stay what they are). */
function stopped(layout: RunLayout, error: unknown): unknown {
  if (
    error instanceof UsageError ||
    error instanceof RunDirError ||
    error instanceof RunStoppedError
  )
    return error;
  return new RunStoppedError(layout.root, error);
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
  options.onRunDir?.(layout.root);
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
    const recoveredLocks = await recoverGitLocks(layout);
    const project = await Project.open(layout.project);
    const run = new ActiveRun(layout, config, plan, project, journal, state, options);
    // Sandboxes may hold half-done work of interrupted attempts, or a finished run's leftovers.
    await project.removeWorkspaces(layout.sandboxes);
    const records = [...state.tasks.values()];
    const retryFailed =
      (options.retryFailed ?? false) && records.some((t) => t.status !== 'succeeded');
    // A run with --verify is not over until its final check has run on the branch as it is.
    const verified = !config.verify || state.verified?.commit === project.head;
    if (!retryFailed && verified && records.every((t) => FINAL_TASK_STATUSES.has(t.status))) {
      // Nothing left to run; the orchestrator may have died before it wrapped up.
      await project.checkoutHead();
      const checked = !state.verified || verificationPassed(state.verified.verification);
      const status =
        checked && records.every((t) => t.status === 'succeeded') ? 'succeeded' : 'failed';
      if (!state.status) run.emit({ type: 'run-finished', status, durationMs: 0 });
      return run.close(status);
    }
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
      } else if (record.job?.attempt === record.attempts) {
        // Its job may still be running, or have finished while no one watched: take it up.
        const { name, id, base } = record.job;
        run.emit({
          type: 'task-adopted',
          taskId: task.id,
          attempt: record.attempts,
          job: { name, base, ...(id && { id }) },
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
    run.emit({
      type: 'run-resumed',
      runId: config.runId,
      remaining,
      retryFailed,
      ...(recoveredLocks.length > 0 && { recoveredLocks }),
    });
    return await run.execute();
  } catch (error) {
    throw stopped(layout, error);
  } finally {
    release();
  }
}

/**
 * Removes the lock files a killed git left in the run's repository, once it is proved that none
 * is in use: the run's lock is held (no other orchestrator) and no process works in the run
 * directory (every git the orchestrator runs works there). Where that cannot be told (no /proc),
 * locks are left for git to report.
 */
async function recoverGitLocks(layout: RunLayout): Promise<string[]> {
  const busy = processesWorkingIn(layout.root);
  if (busy === undefined) return [];
  if (busy.length > 0) {
    throw new RunDirError(
      `process ${busy.join(', ')} still works in ${layout.root}; wait for it to end or stop it, then resume`,
    );
  }
  return Project.removeStaleLocks(layout.project);
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
    const kind = backendKind(this.config.backend);
    const proxy = kind.usesModelProxy ? await this.startModelProxy() : undefined;
    let status: RunStatus;
    try {
      const backend = await kind
        .create(backendSettings(this.config), {
          config: this.config,
          layout: this.layout,
          proxy,
          secrets: Object.values(this.hooks.modelAccess?.secrets ?? {}).filter(
            (value): value is string => Boolean(value),
          ),
        })
        .catch((error: unknown) => {
          throw new RunDirError(`cannot start the ${kind.name} backend: ${describeError(error)}`);
        });
      try {
        await backend.warm();
        const scheduler = new Scheduler({
          tasks: this.plan.tasks,
          concurrency: this.config.executors,
          runAttempt: (context) => this.runAttempt(backend, proxy, context),
          emit: (event) => this.emit(event),
          retry: { retries: this.config.retries, baseDelayMs: this.config.retryDelayMs },
          random: seededRandom(this.config.seed),
          taskTimeoutMs: this.config.taskTimeoutMs,
          signal: this.hooks.signal,
          initial: this.state.tasks,
          admit: () => this.withinBudget(),
        });
        status = (await scheduler.run()).status;
        if (this.config.verify && status !== 'cancelled' && !this.hooks.signal?.aborted) {
          // A run whose merged result fails the repository's check has not succeeded.
          if (!(await this.verifyFinal(backend)) && status === 'succeeded') status = 'failed';
        }
      } finally {
        await backend.close();
      }
    } finally {
      await proxy?.close();
    }
    // Packing goes on while the slots are deleted and the project is checked out: they touch
    // other files, and git packs beside readers as it does beside the run's merges. A failed
    // upkeep leaves the repository larger than it need be, never broken.
    const compacted = this.project
      .compact()
      .catch((error: Error) =>
        this.log.write(`repository upkeep failed: ${error.message}`, new Date()),
      );
    try {
      await this.project.removeWorkspaces(this.layout.sandboxes);
      // Only the orchestrator moves `main`; a published head it did not make means that broke.
      const published = await this.project.publishedHead();
      if (published !== this.project.head) {
        throw new Error(
          `main is at ${published.slice(0, 12)}, not at the integration commit ${this.project.head.slice(0, 12)}`,
        );
      }
      await this.project.checkoutHead();
    } finally {
      await compacted;
    }
    this.emit({ type: 'run-finished', status, durationMs: Date.now() - started });
    return this.close(status);
  }

  /**
   * Real runs start the model proxy: agents get a token per attempt and the proxy adds the
   * credentials, which stay in this process.
   */
  private async startModelProxy(): Promise<ModelProxy | undefined> {
    if (this.config.mode !== 'real') return undefined;
    const access = this.hooks.modelAccess;
    if (!access) throw new UsageError('a real run needs model access: resolve credentials first');
    const { startModelProxy } = await import('../proxy/model-proxy.js');
    return startModelProxy(access);
  }

  /** False once the run's spending limit is reached; says so in the journal, once. */
  private withinBudget(): boolean {
    const limit = this.config.maxBudgetUsd;
    if (limit === undefined || this.spentUsd < limit) return true;
    if (!this.state.stoppedBy)
      this.emit({ type: 'run-budget-spent', spentUsd: this.spentUsd, limitUsd: limit });
    return false;
  }

  /**
   * Writes every result and the summary, closes the journal and the log, and writes the report
   * from them.
   */
  async close(status: RunStatus): Promise<RunOutcome> {
    this.journal.close();
    this.log.close();
    for (const task of this.plan.tasks) this.writeTaskResult(task.id);
    const summary = buildSummary(this.plan, this.config, this.state, status, this.project.head);
    writeJson(this.layout.summary, summary);
    // Loaded here: the image's executors, which import the orchestrator's modules, ship no report.
    const report = await import('../report/report.js')
      .then(({ writeReport }) => writeReport(this.layout, this.config, this.plan))
      .then(
        (file) => ({ file }),
        (error: unknown) => ({ error: describeError(error) }),
      );
    return { runDir: this.layout.root, status, summary, report };
  }

  /**
   * Not recursive: `tasks/` exists from the start, so a run directory deleted mid-run shows up as
   * an error here instead of being silently made again.
   */
  private ensureTaskDir(taskId: string): void {
    if (this.taskDirs.has(taskId)) return;
    try {
      mkdirSync(this.layout.taskDir(taskId));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    this.taskDirs.add(taskId);
  }

  private writeTaskResult(taskId: string): void {
    const task = this.tasksById.get(taskId);
    const record = this.state.tasks.get(taskId);
    if (!task || !record) return;
    this.ensureTaskDir(taskId);
    writeJson(this.layout.taskResult(taskId), taskResult(task, record));
  }

  /**
   * The rules this attempt's changes must pass: the run's size limits and, in real mode, no
   * secret the run handed out (the model credentials and the attempt's own proxy token).
   */
  private outputCheck(modelToken: string | undefined): OutputCheck {
    const secrets: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.hooks.modelAccess?.secrets ?? {})) {
      if (value) secrets[name] = value;
    }
    if (modelToken) secrets['the model proxy token'] = modelToken;
    return new OutputCheck(this.config.outputLimits, new SecretScanner(secrets));
  }

  /** One attempt: the slot's workspace at the integration commit, execute, commit, merge. */
  private async runAttempt(
    backend: Backend,
    proxy: ModelProxy | undefined,
    { task, attempt, executor, signal, releaseExecutor }: AttemptContext,
  ): Promise<AttemptOutcome> {
    const sandbox = this.layout.sandbox(executor);
    this.ensureTaskDir(task.id);
    const record = this.state.tasks.get(task.id);
    const adopt = record?.adopting?.attempt === attempt ? record.adopting : undefined;
    // Every dependency has succeeded, so it is merged: the head holds all the task builds on.
    // An adopted attempt keeps the base its job started from.
    const base = adopt?.base ?? this.project.head;
    await this.project.prepareWorkspace(sandbox.workspace, base);
    const lastConflict = record?.conflictLog.at(-1);
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
      workspaceDir: sandbox.workspace,
      outputDir: this.layout.taskDir(task.id),
      seed: this.config.seed,
      ...(lastConflict?.attempt === attempt - 1 && { conflict: lastConflict }),
      ...(this.config.verify && { verify: this.config.verify }),
      ...(this.config.verify &&
        record?.verifyFailure?.attempt === attempt - 1 && {
          verifyFailure: {
            attempt: attempt - 1,
            command: this.config.verify.command,
            exitCode: record.verifyFailure.verification.exitCode,
            timedOut: record.verifyFailure.verification.timedOut,
            tail: record.verifyFailure.verification.tail,
          },
        }),
      ...(this.config.mode === 'real' && {
        agent: this.config.agent,
        agentHome: sandbox.home,
        planContext: this.plan.tasks.map(({ id, title, description, dependsOn, files }) => ({
          id,
          title,
          summary: description.split('\n')[0]?.slice(0, 200),
          dependsOn,
          files,
        })),
        ...(proxy && { modelProxy: { socket: proxy.socketPath } }),
      }),
    };
    writeJson(this.layout.taskSpec(task.id), spec);
    const modelToken = proxy?.issue(`task ${task.id} attempt ${attempt}`);
    let outcome: Awaited<ReturnType<Backend['execute']>>;
    try {
      outcome = await backend.execute(spec, {
        executor,
        signal,
        logPath: this.layout.executorLog(task.id),
        sandbox,
        modelToken,
        base,
        recordJob: (job, state, reason) =>
          this.emit({
            type: 'task-job',
            taskId: task.id,
            attempt,
            job,
            state,
            ...(reason && { reason }),
          }),
        ...(adopt && {
          adopt: { name: adopt.name, base: adopt.base, ...(adopt.id && { id: adopt.id }) },
        }),
      });
    } finally {
      // The attempt is over: its token opens nothing any more.
      if (modelToken) proxy?.revoke(modelToken);
    }
    const executedAt = new Date().toISOString();
    this.spentUsd += outcome.usage?.costUsd ?? 0;
    const usage = outcome.usage && { usage: outcome.usage };
    const trailer = `Task-Id: ${task.id}\nAttempt: ${attempt}\nRun-Id: ${this.config.runId}\n`;
    const commit = (message: string, onStaged?: () => void) =>
      this.project.commitWorkspace(sandbox.workspace, {
        taskId: task.id,
        base,
        message: `${message}\n\n${trailer}`,
        check: this.outputCheck(modelToken),
        onStaged,
      });
    if (outcome.status === 'failed' || signal.aborted) {
      const permanent = outcome.retryable === false && !signal.aborted;
      let kept: TaskCommit | undefined;
      if (permanent) {
        // Keep what the failed attempt did on its branch for inspection, if it passes the
        // output rules; it is never merged.
        kept = await commit(`task(${task.id}): failed attempt, not merged`).catch(() => undefined);
      }
      return {
        ok: false,
        error: outcome.error ?? 'executor failed without a message',
        kind: permanent ? 'permanent' : 'transient',
        result: { ...(kept && { commit: kept.commit, files: kept.files }), ...usage },
      };
    }
    let committed: TaskCommit;
    try {
      // With nothing to verify in it, the workspace is free once the work is in git.
      committed = await commit(
        `task(${task.id}): ${task.title}`,
        this.config.verify ? undefined : releaseExecutor,
      );
    } catch (error) {
      if (!(error instanceof OutputRejectedError)) throw error;
      return { ok: false, error: error.message, kind: 'permanent', result: usage };
    }
    if (committed.removed) {
      appendFileSync(
        this.layout.executorLog(task.id),
        logLine(
          `removed what git must not read from the workspace: ${committed.removed.join(', ')}`,
        ),
      );
    }
    const result: AttemptResult = { commit: committed.commit, files: committed.files, ...usage };
    if (this.config.verify) {
      const verified = await this.verifyAttempt(backend, task, attempt, committed, sandbox, signal);
      if (!verified.ok) return { ...verified, result: { ...result, ...verified.result } };
      result.verify = verified.verification;
    }
    this.emit({
      type: 'task-merging',
      taskId: task.id,
      attempt,
      commit: committed.commit,
      executedAt,
    });
    // The commit holds the work; the slot's workspace can serve the next task while this merges.
    releaseExecutor();
    const merge = await this.project.merge(
      committed.commit,
      `Merge ${taskBranch(task.id)}: ${task.title}\n\n${trailer}`,
    );
    if (!merge.merged) return this.conflictOutcome(task, merge.conflictFiles, result);
    return { ok: true, result: { ...result, mergeCommit: merge.mergeCommit } };
  }

  /** A task whose work conflicts with the integration branch: told whose work it met, where. */
  private async conflictOutcome(
    task: PlanTask,
    conflictFiles: string[],
    result: AttemptResult,
  ): Promise<Extract<AttemptOutcome, { ok: false }>> {
    const conflictsWith = await this.project.tasksTouching(conflictFiles);
    const whose = conflictsWith.length
      ? `task ${conflictsWith.join(', ')}`
      : 'the integration branch';
    return {
      ok: false,
      kind: 'conflict',
      error: `merge conflict with ${whose} in ${conflictFiles.join(', ')}; the task's work is kept on ${taskBranch(task.id)}`,
      result: { ...result, conflictFiles, conflictsWith },
    };
  }

  /**
   * `--verify` on the tree the attempt's work would land as: its commit merged onto the
   * integration branch as it is now, checked out in the slot's workspace (the executor's slot is
   * held meanwhile) and checked with the backend's isolation. A failure is the agent's to fix:
   * the attempt fails as `verify`, and its retry is told the command's output.
   */
  private async verifyAttempt(
    backend: Backend,
    task: PlanTask,
    attempt: number,
    committed: TaskCommit,
    sandbox: SandboxLayout,
    signal: AbortSignal,
  ): Promise<{ ok: true; verification: Verification } | Extract<AttemptOutcome, { ok: false }>> {
    const settings = this.config.verify as VerifySettings;
    const preview = await this.project.previewMerge(committed.commit);
    if (!preview.merged) return this.conflictOutcome(task, preview.conflictFiles, {});
    await this.project.prepareWorkspace(sandbox.workspace, preview.tree);
    const logPath = this.layout.verifyLog(task.id);
    appendFileSync(
      logPath,
      `== attempt ${attempt}: ${settings.command} (on the merge of ${committed.commit.slice(0, 12)} into ${this.project.head.slice(0, 12)}) ==\n`,
    );
    const verification = await backend.verify({
      settings,
      sandbox,
      commit: preview.tree,
      logPath,
      signal,
      attempt: { taskId: task.id, attempt },
    });
    appendFileSync(
      logPath,
      `\n== attempt ${attempt}: ${describeVerification(verification)} ==\n\n`,
    );
    if (signal.aborted)
      return { ok: false, kind: 'transient', error: abortReason(signal), result: {} };
    if (verification.error)
      return {
        ok: false,
        kind: 'transient',
        error: `--verify could not run: ${verification.error}`,
        result: { verify: verification },
      };
    if (!verificationPassed(verification))
      return {
        ok: false,
        kind: 'verify',
        error: `--verify ${describeVerification(verification)} on the merged work (tasks/${task.id}/${TASK_FILES.verifyLog})`,
        result: { verify: verification },
      };
    return { ok: true, verification };
  }

  /**
   * `--verify` on the integration branch once the last merge landed, in a checkout of its own:
   * the run's result is checked as a whole. Journaled; false when it did not pass.
   */
  async verifyFinal(backend: Backend): Promise<boolean> {
    const settings = this.config.verify as VerifySettings;
    const sandbox = this.layout.finalVerifySandbox;
    const commit = this.project.head;
    await this.project.prepareWorkspace(sandbox.workspace, commit);
    appendFileSync(
      this.layout.finalVerifyLog,
      `== ${settings.command} on main at ${commit.slice(0, 12)} ==\n`,
    );
    const verification = await backend.verify({
      settings,
      sandbox,
      commit,
      logPath: this.layout.finalVerifyLog,
      signal: this.hooks.signal ?? new AbortController().signal,
    });
    appendFileSync(this.layout.finalVerifyLog, `\n== ${describeVerification(verification)} ==\n`);
    this.emit({ type: 'run-verified', commit, verification });
    return verificationPassed(verification);
  }
}

function abortReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'cancelled';
}
