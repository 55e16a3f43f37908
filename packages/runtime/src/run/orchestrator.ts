import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { JournalEvent, RunStatus } from '../contracts/events.js';
import { type Plan, parsePlan } from '../contracts/plan.js';
import type { ExecutionSummary } from '../contracts/results.js';
import { type RunConfig, RunConfigSchema } from '../contracts/run-config.js';
import type { RunLayout } from '../contracts/run-layout.js';
import { ZERO_USAGE } from '../contracts/usage.js';
import { verificationPassed } from '../contracts/verify.js';
import { preparedFields } from '../environment/environments.js';
import {
  BaseNotReadyError,
  describeError,
  errnoText,
  RunStoppedError,
  UsageError,
} from '../errors.js';
import type { ModelAccess } from '../models/access.js';
import { errorMessage } from '../scheduler/scheduler.js';
import { deliveryBranch } from '../workspace/deliver.js';
import { GitError } from '../workspace/git.js';
import { writeHostIgnoreRules } from '../workspace/ignore-rules.js';
import { Project } from '../workspace/project.js';
import { Slots } from '../workspace/slots.js';
import type { SourceRepository } from '../workspace/source.js';
import { ActiveRun, closeBackend, type OpenedBackend, openBackend } from './active-run.js';
import { type ReadyBase, readyBase } from './base.js';
import { Journal } from './journal.js';
import { FINAL_TASK_STATUSES, initialState, replay } from './replay.js';
import {
  acquireRunLock,
  createRunDir,
  openRunDir,
  processesWorkingIn,
  RunDirError,
} from './run-dir.js';

/** How a run executes; stored in `run.json` so a resume continues the same way. */
export type RunSettings = Omit<z.input<typeof RunConfigSchema>, 'version' | 'runId' | 'createdAt'>;

export interface RunHooks {
  signal?: AbortSignal;
  /**
   * Aborted once stopping is to wait for nothing (a second Ctrl-C): executors are killed rather
   * than given time to stop, upkeep is skipped, and the journal, summary and report are written.
   */
  force?: AbortSignal;
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

/** A plan made once the base is ready, and who made it. */
export interface MadePlan {
  plan: Plan;
  planner: RunConfig['planner'];
}

export interface StartRunOptions
  extends Omit<RunSettings, 'source' | 'deliver' | 'planner'>,
    RunHooks {
  /** `--verify-from-base`: the check's files, taken from the commit the run starts from. */
  verifyFromBase?: string[];
  outputDir: string;
  /**
   * The plan; or the way to make it, called once the base is ready (its environment prepared,
   * its check passed), so that a base that cannot pass costs no planning.
   */
  plan: Plan | { requirements: string; make: () => Promise<MadePlan> };
  /** Who made a given plan. */
  planner?: RunConfig['planner'];
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

/** Planning that cost nothing: a plan given as it is. */
const GIVEN_PLANNER: RunConfig['planner'] = { name: 'given', usage: ZERO_USAGE };

/**
 * Creates a run directory and runs it to the end: the project from its source, the base readied
 * (`--setup`, `--verify` on it), the plan written, then the tasks.
 */
export async function startRun(options: StartRunOptions): Promise<RunOutcome> {
  // Hooks (and the secrets among them) stay out of run.json: only settings are written.
  const {
    outputDir,
    plan: planned,
    planner,
    signal,
    force,
    onEvent,
    onRunDir,
    modelAccess,
    source,
    deliver,
    verifyFromBase,
    ...settings
  } = options;
  // Without a base to ready, planning comes first, as before: a plan that cannot be made
  // leaves nothing behind.
  const early =
    'make' in planned && !settings.setup && !settings.verify ? await planned.make() : undefined;
  const requirements = planned.requirements;
  const outputExisted = existsSync(outputDir);
  const layout = createRunDir(outputDir, requirements.split('\n')[0] ?? '');
  onRunDir?.(layout.root);
  const runId = path.basename(layout.root);
  const release = acquireRunLock(layout);
  let opened: OpenedBackend | undefined;
  try {
    let project: Project;
    let config: RunConfig;
    try {
      mkdirSync(layout.tasks);
      project = source
        ? await Project.fromRepository(layout.project, source)
        : await Project.init(layout.project, `Start run ${runId}\n\n${requirements}`);
      // Agents' work is held to the repository's own ignore rules, never to theirs.
      if (source) await writeHostIgnoreRules(project.gitDir, project.head);
      const fromBase = verifyFromBase && {
        commit: project.head,
        paths: await project.existingPaths(verifyFromBase, '--verify-from-base'),
      };
      // Complete once the plan is made: who made it is the last thing known.
      config = RunConfigSchema.parse({
        version: 1,
        runId,
        createdAt: new Date().toISOString(),
        ...settings,
        planner: planner ?? GIVEN_PLANNER,
        ...(settings.verify && fromBase && { verify: { ...settings.verify, fromBase } }),
        ...(source && { source: { repo: source.shown, base: project.head } }),
        ...(deliver && {
          deliver: { ...deliver, branch: deliver.branch ?? deliveryBranch(runId) },
        }),
      });
    } catch (error) {
      // Nothing has run: a run that could not even be set up leaves nothing behind.
      rmSync(layout.root, { recursive: true, force: true });
      if (error instanceof UsageError) throw error;
      // git says a full disk its own way: told as any other write would be.
      const full = error instanceof GitError && /no space left on device/i.test(error.stderr);
      throw new RunDirError(
        `cannot set up a run in ${outputDir}: ${full ? errnoText('ENOSPC') : describeError(error)}`,
      );
    }
    const slots = new Slots(project, config.source?.base);
    let ready: ReadyBase = {};
    if (config.setup || config.verify) {
      opened = await openBackend(config, layout, { modelAccess, force });
      try {
        ready = await readyBase({
          backend: opened.backend,
          config,
          layout,
          project,
          slots,
          signal: signal ?? new AbortController().signal,
        });
      } catch (error) {
        // The logs tell why; the backend and the checkouts are of no more use.
        const closing = opened;
        opened = undefined;
        await closeBackend(closing).catch(() => undefined);
        await slots.removeAll(layout.sandboxes).catch(() => undefined);
        rmSync(layout.project, { recursive: true, force: true });
        rmSync(layout.tasks, { recursive: true, force: true });
        throw error;
      }
    }
    let made: MadePlan;
    try {
      made =
        early ??
        ('make' in planned ? await planned.make() : { plan: planned, planner: config.planner });
    } catch (error) {
      // No plan, no run: what readying the base wrote goes too (the cache keeps the environment).
      if (opened) await closeBackend(opened).catch(() => undefined);
      opened = undefined;
      await slots.removeAll(layout.sandboxes).catch(() => undefined);
      rmSync(layout.root, { recursive: true, force: true });
      if (!outputExisted) rmSync(outputDir, { recursive: true, force: true });
      throw error;
    }
    const plan = made.plan;
    config = { ...config, planner: made.planner };
    writeJson(layout.plan, plan);
    writeJson(layout.config, config);
    const journal = Journal.create(layout.journal);
    const notes = source ? await project.leftAsIs() : [];
    const state = initialState(plan.tasks.map((t) => t.id));
    const run = new ActiveRun(layout, config, plan, project, journal, state, {
      signal,
      force,
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
    run.environments = ready.environments;
    if (ready.environment)
      run.emit({ type: 'environment-prepared', ...preparedFields(ready.environment) });
    if (ready.check) {
      run.emit({ type: 'base-verified', ...ready.check });
      run.baseFailing = ready.check.allowed;
    }
    const execution = run.execute(opened);
    opened = undefined;
    return await execution;
  } catch (error) {
    throw stopped(layout, error);
  } finally {
    if (opened) await closeBackend(opened);
    release();
  }
}

/** An error that ended a run midway, told as such (usage errors stay what they are). */
function stopped(layout: RunLayout, error: unknown): unknown {
  if (
    error instanceof UsageError ||
    error instanceof RunDirError ||
    error instanceof RunStoppedError ||
    error instanceof BaseNotReadyError
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
    await run.slots.removeAll(layout.sandboxes);
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
