import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Backend } from '../backends/backend.js';
import { backendKind, backendSettings } from '../backends/kinds.js';
import type { PreparedEnvironment } from '../contracts/environment.js';
import type { EventBody, RunStatus } from '../contracts/events.js';
import type { Plan, PlanTask } from '../contracts/plan.js';
import type { RunConfig } from '../contracts/run-config.js';
import type { RunLayout } from '../contracts/run-layout.js';
import {
  describeVerification,
  type Verification,
  type VerifySettings,
  verificationPassed,
} from '../contracts/verify.js';
import { Environments, preparedFields } from '../environment/environments.js';
import { SetupFailedError } from '../environment/setup.js';
import { describeError, UsageError } from '../errors.js';
import type { ModelProxy } from '../proxy/model-proxy.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { seededRandom } from '../util/random.js';
import { treeToCheck } from '../verify/from-base.js';
import type { Project } from '../workspace/project.js';
import { Slots } from '../workspace/slots.js';
import { Attempt, type AttemptHost } from './attempt.js';
import { describeEvent } from './describe-event.js';
import type { Journal } from './journal.js';
import type { RunHooks, RunOutcome } from './orchestrator.js';
import { applyEvent, FINAL_TASK_STATUSES, type RunState } from './replay.js';
import { RunDirError } from './run-dir.js';
import { RunLog } from './run-log.js';
import { buildSummary, taskResult } from './summary.js';

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A run's backend, started and warm, and the model proxy its agents use in a real run. */
export interface OpenedBackend {
  backend: Backend;
  proxy?: ModelProxy;
}

/** Stops the backend and the model proxy. */
export async function closeBackend({ backend, proxy }: OpenedBackend): Promise<void> {
  try {
    await backend.close();
  } finally {
    await proxy?.close();
  }
}

/**
 * Starts the run's backend: for a real run whose agents use it, the model proxy first (agents get
 * a token per attempt and the proxy adds the credentials, which stay in this process); then the
 * backend, warmed (an interrupted orchestrator's leftovers cleared, slots' limits set up).
 */
export async function openBackend(
  config: RunConfig,
  layout: RunLayout,
  { modelAccess, force }: Pick<RunHooks, 'modelAccess' | 'force'>,
): Promise<OpenedBackend> {
  const kind = backendKind(config.backend);
  let proxy: ModelProxy | undefined;
  if (kind.usesModelProxy && config.mode === 'real') {
    if (!modelAccess)
      throw new UsageError('a real run needs model access: resolve credentials first');
    const { startModelProxy } = await import('../proxy/model-proxy.js');
    proxy = await startModelProxy(modelAccess, { maxBudgetUsd: config.maxBudgetUsd });
  }
  try {
    const backend = await kind
      .create(backendSettings(config), {
        config,
        layout,
        proxy,
        ...(force && { force }),
        secrets: Object.values(modelAccess?.secrets ?? {}).filter((value): value is string =>
          Boolean(value),
        ),
      })
      .catch((error: unknown) => {
        throw new RunDirError(`cannot start the ${kind.name} backend: ${describeError(error)}`);
      });
    try {
      await backend.warm();
    } catch (error) {
      await backend.close();
      throw error;
    }
    return { backend, ...(proxy && { proxy }) };
  } catch (error) {
    await proxy?.close();
    throw error;
  }
}

/** A run being driven: journal, project, backend and scheduler wired together. */
export class ActiveRun implements AttemptHost {
  private readonly log: RunLog;
  readonly tasksById: Map<string, PlanTask>;
  /** The slots' workspaces, which agents work in. */
  readonly slots: Slots;
  /** Task directories known to exist: creating one costs a syscall every time otherwise. */
  private readonly taskDirs = new Set<string>();
  /**
   * Spent so far: planning and every attempt, counted as soon as an executor reports, before the
   * attempt is committed and merged (its slot may go to the next task meanwhile).
   */
  private spentUsd: number;
  /** The model proxy of a real run, once started: the run's budget is its to keep. */
  private proxy: ModelProxy | undefined;
  /** `--setup`: the run's environments, by key; set once the backend is open. */
  environments: Environments | undefined;
  /**
   * `--allow-failing-base`: the check failed on the base, and no task's work has passed it since;
   * until one does, a failing check does not keep work from merging.
   */
  baseFailing: boolean;

  constructor(
    readonly layout: RunLayout,
    readonly config: RunConfig,
    readonly plan: Plan,
    readonly project: Project,
    private readonly journal: Journal,
    /** Folded from the journal: what `emit` updates and the scheduler starts from. */
    readonly state: RunState,
    private readonly hooks: RunHooks,
  ) {
    this.log = new RunLog(layout.log);
    this.tasksById = new Map(plan.tasks.map((t) => [t.id, t]));
    this.slots = new Slots(project, config.source?.base);
    this.spentUsd = [...state.tasks.values()].reduce(
      (sum, t) => sum + t.usage.costUsd,
      config.planner.usage.costUsd,
    );
    this.baseFailing =
      state.baseCheck !== undefined &&
      !verificationPassed(state.baseCheck.verification) &&
      ![...state.tasks.values()].some(
        (t) => t.status === 'succeeded' && t.result.verify && verificationPassed(t.result.verify),
      );
  }

  /**
   * The environment of a tree an attempt works on or is checked on: the base's when the tree's
   * manifests are the base's, else one prepared for it (journaled the first time its key comes).
   */
  async environmentFor(
    tree: string,
    who: { taskId: string; attempt: number },
    signal: AbortSignal,
  ): Promise<PreparedEnvironment | undefined> {
    if (!this.environments) return undefined;
    const found = await this.environments.forCommit(tree, {
      logPath: this.layout.setupLog(who.taskId),
      signal,
      attempt: who,
    });
    if (found.first) this.emit({ type: 'environment-prepared', ...preparedFields(found), ...who });
    return found.environment;
  }

  /** Journals an event before anything acts on it, then updates state, results and log. */
  emit(body: EventBody): void {
    const event = this.journal.append(body);
    const record = applyEvent(this.state, event);
    if (record && 'taskId' in event && event.taskId && FINAL_TASK_STATUSES.has(record.status)) {
      this.writeTaskResult(event.taskId);
    }
    this.log.write(describeEvent(event), new Date(event.time));
    this.hooks.onEvent?.(event);
  }

  /**
   * Runs the tasks to the end on the run's backend (opened here unless the caller opened it to
   * ready the base first), then the final check; closes the backend.
   */
  async execute(opened?: OpenedBackend): Promise<RunOutcome> {
    const started = Date.now();
    const { backend, proxy } = opened ?? (await openBackend(this.config, this.layout, this.hooks));
    this.proxy = proxy;
    if (this.config.setup && backend.environments && !this.environments)
      this.environments = new Environments(
        backend.environments,
        this.config.setup,
        this.project.gitDir,
      );
    // Planning was paid for before the proxy counted (and earlier attempts, on a resume).
    proxy?.setRunBudget(this.config.maxBudgetUsd, this.spentUsd);
    let status: RunStatus;
    try {
      try {
        for (const limit of backend.limits ?? []) this.log.write(`limits: ${limit}`, new Date());
        const attempts = new Attempt(this, backend, proxy);
        const scheduler = new Scheduler({
          tasks: this.plan.tasks,
          concurrency: this.config.executors,
          runAttempt: (context) => attempts.run(context),
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
    const compacted = (
      this.hooks.force?.aborted ? Promise.resolve() : this.project.compact()
    ).catch((error: Error) =>
      this.log.write(`repository upkeep failed: ${error.message}`, new Date()),
    );
    try {
      await this.slots.removeAll(this.layout.sandboxes);
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

  spend(usd: number): void {
    this.spentUsd += usd;
  }

  /** What the run has spent: as the proxy counts it, calls in flight included, where it runs. */
  private get spent(): number {
    return Math.max(this.spentUsd, this.proxy?.runSpentUsd ?? 0);
  }

  get modelAccess() {
    return this.hooks.modelAccess;
  }

  /**
   * False once the run's spending limit is reached, or so nearly that the model proxy would let
   * no call of the executor's model through; says so in the journal, once.
   */
  private withinBudget(): boolean {
    const limit = this.config.maxBudgetUsd;
    const model = this.config.agent?.model;
    const affords = !this.proxy || !model || this.proxy.runAffords(model);
    if (limit === undefined || (this.spent < limit && affords)) return true;
    if (!this.state.stoppedBy)
      this.emit({ type: 'run-budget-spent', spentUsd: this.spent, limitUsd: limit });
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
  ensureTaskDir(taskId: string): void {
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
   * `--verify` on the integration branch once the last merge landed, in a checkout of its own:
   * the run's result is checked as a whole. Journaled; false when it did not pass.
   */
  async verifyFinal(backend: Backend): Promise<boolean> {
    const settings = this.config.verify as VerifySettings;
    const sandbox = this.layout.finalVerifySandbox;
    const commit = this.project.head;
    await this.slots.prepare(sandbox.workspace, await treeToCheck(this.project, commit, settings));
    appendFileSync(
      this.layout.finalVerifyLog,
      `== ${settings.command} on main at ${commit.slice(0, 12)} ==\n`,
    );
    const signal = this.hooks.signal ?? new AbortController().signal;
    let verification: Verification;
    try {
      const environment = await this.environments?.forCommit(commit, {
        logPath: this.layout.baseSetupLog,
        signal,
      });
      if (environment?.first)
        this.emit({ type: 'environment-prepared', ...preparedFields(environment) });
      verification = await backend.verify({
        settings,
        sandbox,
        commit,
        logPath: this.layout.finalVerifyLog,
        signal,
        ...(environment && { environment: environment.environment }),
      });
    } catch (error) {
      if (!(error instanceof SetupFailedError)) throw error;
      // The merged manifests cannot be installed: the result fails as a whole.
      verification = {
        ...error.verification,
        tail: `${error.message}\n${error.verification.tail}`,
      };
    }
    appendFileSync(this.layout.finalVerifyLog, `\n== ${describeVerification(verification)} ==\n`);
    this.emit({ type: 'run-verified', commit, verification });
    return verificationPassed(verification);
  }
}
