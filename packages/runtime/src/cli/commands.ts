import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackendKind } from '../backends/backend.js';
import { backendKind, backendSettings } from '../backends/kinds.js';
import type { SetupSettings } from '../contracts/environment.js';
import type { JournalEvent } from '../contracts/events.js';
import type { Plan } from '../contracts/plan.js';
import type { AgentNetwork, BackendName, RunConfig } from '../contracts/run-config.js';
import { INTEGRATION_BRANCH } from '../contracts/run-layout.js';
import { ZERO_USAGE } from '../contracts/usage.js';
import { describeDetected, detectSetupAt } from '../environment/detect.js';
import { describeError, EXIT, UsageError } from '../errors.js';
import {
  agentSettingsFor,
  MODEL_DEFAULTS,
  type ModelAccess,
  type ModelFlags,
  redactUrl,
  resolveModelAccess,
} from '../models/access.js';
import { findClaudeBinary } from '../models/claude-binary.js';
import { createMessagesClient } from '../models/client.js';
import type { PlannerContainer } from '../planner/docker.js';
import { ModelPlanner } from '../planner/model.js';
import { assignSimulatedDurations, SimulatedPlanner } from '../planner/simulated.js';
import { readJournal } from '../run/journal.js';
import {
  loadRun,
  type RunHooks,
  type RunOutcome,
  resumeRun,
  startRun,
} from '../run/orchestrator.js';
import { checkOutputDir, prepareOutputDir } from '../run/output-dir.js';
import { replay } from '../run/replay.js';
import { lockHolder } from '../run/run-dir.js';
import { estimateSchedule } from '../scheduler/estimate.js';
import { isInside } from '../trust/path-safety.js';
import {
  checkDelivery,
  deliver,
  type PushTarget,
  pushDelivery,
  pushTarget,
} from '../workspace/deliver.js';
import { diffOf, runBase, writePatchSeries } from '../workspace/history.js';
import {
  describeCodebase,
  fetchSource,
  leftOut,
  resolveSource,
  type SourceRepository,
} from '../workspace/source.js';
import { paletteFor } from './colour.js';
import { backendOfGroup, type OptionSource } from './config.js';
import { doctor, formatChecks, gitPreflight } from './doctor.js';
import {
  type Delivered,
  formatDelivery,
  formatPlan,
  formatStatus,
  formatSummary,
  formatTable,
  formatUsage,
  shownPath,
} from './format.js';
import { errorNote, whyNoOutput } from './history.js';
import { openInBrowser } from './open.js';
import { loadBackendConfig, loadPlanFile, loadRequirements, type SetupNetwork } from './options.js';
import { err, out } from './output.js';
import { createReporter, progressMode } from './progress.js';

export interface PlanningOptions extends ModelFlags {
  /** `--repo` and `--base`: the repository the work starts from. */
  repo?: string;
  base?: string;
  file?: string;
  executors: number;
  maxTasks: number;
  json?: boolean;
  real?: boolean;
  planRepairs: number;
}

/** `plan`: what a simulated run of the plan would draw. */
export interface PlanOptions extends PlanningOptions {
  simTaskMs: { min: number; max: number };
  seed: number;
}

export interface RunCommandOptions extends PlanOptions {
  plan?: string;
  into?: string;
  deliverPartial?: boolean;
  push?: string;
  verify?: string;
  verifyTimeout: number;
  verifyFromBase?: string[];
  setup?: string;
  setupNetwork: SetupNetwork;
  setupTimeout: number;
  allowFailingBase?: boolean;
  cacheDir?: string;
  backendConfig?: string;
  backend: BackendName;
  output: string;
  taskTimeout: number;
  retries: number;
  retryDelay: number;
  maxTurns: number;
  allowedTools: string[];
  maxFileSize: number;
  maxTaskSize: number;
  agentNetwork: AgentNetwork;
  maxTaskUsd?: number;
  maxBudgetUsd?: number;
  dockerPlanner?: boolean;
  /** Each backend's own flags, read by its kind. */
  [backendFlag: string]: unknown;
}

/**
 * The backend a run uses and its settings: from `--backend`, or from a stack's `runtimeConfig`
 * (`--backend-config`), whose values flags typed on the command line still override.
 */
function chooseBackend(
  options: Pick<RunCommandOptions, 'backend' | 'backendConfig'> & Record<string, unknown>,
  given: (option: string) => boolean,
): { kind: BackendKind<unknown>; settings: unknown } {
  const config = options.backendConfig ? loadBackendConfig(options.backendConfig) : undefined;
  if (config && given('backend') && options.backend !== config.backend) {
    throw new UsageError(
      `--backend ${options.backend} contradicts the backend config (${config.backend})`,
    );
  }
  const kind = backendKind(config?.backend ?? options.backend);
  return { kind, settings: kind.settings(options, given, config) };
}

export interface ResumeCommandOptions {
  executors?: number;
  retryFailed?: boolean;
  maxBudgetUsd?: number;
  json?: boolean;
}

const modelFlags = ({
  plannerModel,
  executorModel,
  bedrock,
  bedrockRegion,
}: ModelFlags): ModelFlags => ({
  plannerModel,
  executorModel,
  bedrock,
  bedrockRegion,
});

/**
 * Everything `--real` needs, checked before any work starts: model credentials and the Claude
 * Code binary. Throws UsageError (exit 2) naming what is missing.
 */
async function realModePreflight(flags: ModelFlags): Promise<ModelAccess> {
  const access = await resolveModelAccess(process.env, flags);
  findClaudeBinary();
  return access;
}

/** The plan from `--plan`, the model (`--real`) or the simulated planner, and who made it. */
async function makePlan(
  words: string[],
  options: PlanningOptions & {
    plan?: string;
    /** `--docker-planner`: plan in a container of the image. */
    plannerContainer?: PlannerContainer;
    /** The repository the work starts from, as the model planner is shown it. */
    codebase?: string;
  },
  access: ModelAccess | undefined,
): Promise<{ plan: Plan; planner: RunConfig['planner'] }> {
  if (options.plan !== undefined) {
    if (words.length > 0 || options.file !== undefined) {
      throw new UsageError('--plan replaces the requirements: do not give both');
    }
    return {
      plan: loadPlanFile(options.plan, options.maxTasks),
      planner: { name: 'plan-file', usage: ZERO_USAGE },
    };
  }
  const requirements = loadRequirements(words, options.file);
  if (options.plannerContainer) {
    const { planInContainer } = await import('../planner/docker.js');
    prepareOutputDir(options.plannerContainer.scratchParent);
    return planInContainer(requirements, {
      ...options.plannerContainer,
      executors: options.executors,
      maxTasks: options.maxTasks,
      access,
    });
  }
  const planning = {
    executors: options.executors,
    maxTasks: options.maxTasks,
    ...(options.codebase && { codebase: options.codebase }),
  };
  if (!access) {
    const { plan, usage } = await new SimulatedPlanner().plan(requirements, planning);
    return { plan, planner: { name: 'simulated', usage } };
  }
  const planner = new ModelPlanner({
    client: await createMessagesClient(access),
    model: access.plannerModel,
    repairs: options.planRepairs,
    timeoutMs: MODEL_DEFAULTS.plannerTimeoutMs,
    baseURL: access.baseURL && redactUrl(access.baseURL),
  });
  const { plan, usage } = await planner.plan(requirements, planning);
  return { plan, planner: { name: 'model', model: access.plannerModel, usage } };
}

/**
 * Signals this close to the last one counted are the same press: under `pnpm start` one Ctrl-C
 * reaches the CLI from the terminal and again from pnpm (its second as SIGINT and SIGTERM).
 */
const SAME_PRESS_MS = 300;

/** After a second press, how long writing the summary and report may take before exiting. */
const FINISH_LIMIT_MS = 10_000;

/** What of the run's records this session has not written yet, in one phrase. */
function unwritten(runDir: string | undefined, since: number): string {
  if (!runDir) return 'no run directory was created';
  const missing = ['execution_summary.json', 'report.html'].filter((file) => {
    const stat = statSync(path.join(runDir, file), { throwIfNoEntry: false });
    return !stat || stat.mtimeMs < since;
  });
  return missing.length
    ? `not written: ${missing.join(', ')} (events.jsonl has every event; resume ${shownPath(runDir)} finishes the run)`
    : 'the summary and report are written';
}

/**
 * Ctrl-C (SIGINT) or SIGTERM stops the run: executors are stopped, then the journal, the
 * summary and the report are written. A second press kills the executors instead of waiting for
 * them and gives the writing 10 s; a third exits at once, saying what was not written.
 */
function cancellation(runDir: () => string | undefined): {
  signal: AbortSignal;
  force: AbortSignal;
  ended: () => void;
  dispose: () => void;
} {
  const since = Date.now();
  const stop = new AbortController();
  const force = new AbortController();
  let presses = 0;
  let last = 0;
  let limit: NodeJS.Timeout | undefined;
  let runEnded = false;
  const exitNow = (why: string) => {
    err(`${why}: exiting now; ${unwritten(runDir(), since)}\n`);
    process.exit(EXIT.cancelled);
  };
  const onSignal = (name: NodeJS.Signals) => {
    const now = Date.now();
    if (now - last < SAME_PRESS_MS) return;
    last = now;
    presses += 1;
    if (presses >= 3) exitNow(name);
    // Ended: the summary is written and printed next; only a delivery may take longer.
    else if (runEnded) return;
    else if (presses === 1) {
      err(`\n${name}: stopping executors (again to kill them)\n`);
      stop.abort(new Error(`cancelled by ${name}`));
    } else if (presses === 2) {
      err(`${name}: killing executors; writing the summary and report (again to exit now)\n`);
      force.abort(new Error(`forced by ${name}`));
      limit = setTimeout(
        () => exitNow(`the summary and report took over ${FINISH_LIMIT_MS / 1000}s`),
        FINISH_LIMIT_MS,
      );
      limit.unref();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    force: force.signal,
    ended: () => {
      runEnded = true;
      clearTimeout(limit);
    },
    dispose: () => {
      clearTimeout(limit);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function exitCodeOf(outcome: RunOutcome): number {
  if (outcome.status === 'succeeded') return EXIT.succeeded;
  return outcome.status === 'cancelled' ? EXIT.cancelled : EXIT.failed;
}

/**
 * The run's result delivered into its source repository, as run.json says: after a succeeded run,
 * or any finished one with `partial`. A cancelled run delivers nothing (resume finishes it). A run
 * from a URL keeps its result in its own repository (the source is not written) and pushes it on
 * if asked; `pushUrl` is the push target with the credentials run.json does not keep.
 */
async function deliverResult(
  outcome: RunOutcome,
  pushUrl?: string,
): Promise<Delivered | undefined> {
  const { config } = loadRun(outcome.runDir);
  const target = config.deliver;
  if (!config.source) return undefined;
  const project = path.join(outcome.runDir, 'project');
  const { base } = config.source;
  const gitDir = target?.gitDir;
  const about: Delivered = gitDir
    ? { repo: config.source.repo, branch: target.branch, base }
    : { repo: project, branch: INTEGRATION_BRANCH, base, inRun: true };
  if (!target) return about;
  const pushTo = target.push && { pushTo: target.push };
  const done = outcome.status === 'succeeded' || (target.partial && outcome.status === 'failed');
  if (!done) return { ...about, ...pushTo, skipped: true };
  if (gitDir) {
    try {
      await deliver(project, { ...target, gitDir });
    } catch (error) {
      return { ...about, error: describeError(error) };
    }
  }
  if (!target.push) return about;
  try {
    await pushDelivery(project, target, pushUrl);
    return { ...about, pushed: target.push, pushedBranch: target.branch };
  } catch (error) {
    const reason = describeError(error);
    return {
      ...about,
      ...pushTo,
      pushError: pushUrl ? reason.replaceAll(pushUrl, target.push) : reason,
    };
  }
}

/** Starts the progress output once the plan is known (a run plans after readying its base). */
type StartProgress = (plan: Plan, executors: number) => void;

/**
 * Runs (or resumes) with progress output and Ctrl-C handling; returns the exit code. `known`'s
 * history is what a resumed run's journal held: its progress counts the whole run.
 */
async function drive(
  json: boolean,
  known: { plan: Plan; executors: number; history?: readonly JournalEvent[] } | undefined,
  run: (
    hooks: Required<Pick<RunHooks, 'signal' | 'force' | 'onEvent' | 'onRunDir'>>,
    startProgress: StartProgress,
  ) => Promise<RunOutcome>,
  pushUrl?: string,
): Promise<number> {
  let reporter: ReturnType<typeof createReporter> | undefined;
  let runDir: string | undefined;
  const startProgress = (plan: Plan, executors: number, history?: readonly JournalEvent[]) => {
    reporter = createReporter(progressMode(json), plan, executors, history);
    if (runDir) reporter.onRunDir(runDir);
  };
  if (known) startProgress(known.plan, known.executors, known.history);
  const { signal, force, ended, dispose } = cancellation(() => runDir);
  try {
    return await finish(await runWithProgress(), json, pushUrl);
  } finally {
    dispose();
  }

  async function runWithProgress(): Promise<RunOutcome> {
    try {
      return await run(
        {
          signal,
          force,
          onEvent: (event) => reporter?.onEvent(event),
          onRunDir: (dir) => {
            runDir = dir;
            reporter?.onRunDir(dir);
          },
        },
        startProgress,
      );
    } finally {
      reporter?.close();
      ended();
    }
  }
}

/** The run's result delivered as asked, and said: the summary, or `--json`'s result line. */
async function finish(outcome: RunOutcome, json: boolean, pushUrl?: string): Promise<number> {
  const delivered = await deliverResult(outcome, pushUrl);
  const exitCode =
    (delivered?.error || delivered?.pushError) && outcome.status === 'succeeded'
      ? EXIT.failed
      : exitCodeOf(outcome);
  if (json) {
    const { totals, usage, stoppedBy } = outcome.summary;
    const result = {
      type: 'result',
      runDir: outcome.runDir,
      status: outcome.status,
      exitCode,
      totals,
      usage,
      stoppedBy,
      ...('file' in outcome.report && { report: outcome.report.file }),
      ...(delivered && { delivered }),
    };
    out(`${JSON.stringify(result)}\n`);
  } else {
    const paint = paletteFor(process.stdout);
    out(`\n${formatSummary(outcome.summary, outcome.runDir, outcome.report, paint)}\n`);
    if (delivered) out(`${formatDelivery(delivered)}\n`);
  }
  return exitCode;
}

/**
 * Where prepared environments are kept: `--cache-dir`, else the user's cache directory; never
 * inside the repository the run starts from or the output directory.
 */
function cacheDirFor(options: RunCommandOptions, source: SourceRepository): string {
  const dir = path.resolve(
    options.cacheDir ??
      path.join(
        process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'),
        'parallel-orchestrator',
      ),
  );
  const checkout =
    source.gitDir && path.basename(source.gitDir) === '.git'
      ? path.dirname(source.gitDir)
      : undefined;
  for (const [inside, what] of [
    [checkout, 'the repository'],
    [source.gitDir, 'the repository'],
    [path.resolve(options.output), 'the output directory'],
  ] as const) {
    if (inside && isInside(inside, dir))
      throw new UsageError(`--cache-dir ${dir} is inside ${what} (${inside}): give another`);
  }
  return dir;
}

/**
 * The setup a run gets: `--setup` as given, or with `auto` what the repository's lockfiles say
 * (an error when they say nothing). Without `--setup`, one line says what would prepare it.
 */
async function setupFor(
  source: SourceRepository,
  settings: SetupSettings | undefined,
): Promise<SetupSettings | undefined> {
  const wanted = settings?.command;
  if (wanted !== undefined && wanted !== ':') return settings;
  const found = await detectSetupAt(source.location, source.commit as string);
  if (!settings) {
    if (found) process.stderr.write(`note: ${describeDetected(found)}\n`);
    return undefined;
  }
  if (!found)
    throw new UsageError(
      `--setup auto: ${source.shown} has no lockfile that says how to prepare it; give the command`,
    );
  process.stderr.write(`note: --setup auto: ${found.because} says "${found.command}"\n`);
  return { ...settings, command: found.command };
}

export async function runCommand(
  words: string[],
  options: RunCommandOptions,
  given: (option: string) => boolean,
) {
  // Everything that can be checked is checked before any work, or model spending, starts.
  checkOutputDir(options.output);
  await gitPreflight();
  const { kind, settings } = chooseBackend(options, given);
  if (options.base !== undefined && options.repo === undefined)
    throw new UsageError('--base names a commit of --repo: give the repository too');
  if (
    options.repo === undefined &&
    (options.into ?? options.push ?? options.deliverPartial) !== undefined
  )
    throw new UsageError('--into, --push and --deliver-partial deliver a --repo run: give one');
  const named =
    options.repo !== undefined ? await resolveSource(options.repo, options.base) : undefined;
  // A run from a URL keeps its result in the run's repository: it goes elsewhere only by --push.
  const unpushed = options.into !== undefined ? `--into ${options.into}` : '--deliver-partial';
  if (
    named &&
    !named.gitDir &&
    options.push === undefined &&
    (options.into ?? options.deliverPartial) !== undefined
  )
    throw new UsageError(
      `${unpushed}: a run from a URL keeps its result in the run's repository; add --push REMOTE to deliver it`,
    );
  const pushTo: PushTarget | undefined =
    named && !named.gitDir && options.push !== undefined
      ? pushTarget(options.push, named)
      : undefined;
  const deliver =
    named && (named.gitDir || pushTo)
      ? {
          ...(named.gitDir && { gitDir: named.gitDir }),
          partial: options.deliverPartial ?? false,
          ...(options.into !== undefined && { branch: options.into }),
          ...(options.push !== undefined && { push: pushTo?.shown ?? options.push }),
        }
      : undefined;
  if (deliver) await checkDelivery(deliver, pushTo);
  if (options.verify !== undefined && !options.verify.trim())
    throw new UsageError('--verify needs a command');
  const verify = options.verify
    ? { command: options.verify.trim(), timeoutMs: options.verifyTimeout }
    : undefined;
  if (!verify && given('verifyTimeout'))
    throw new UsageError('--verify-timeout limits --verify: give the command too');
  if (options.verifyFromBase && !verify)
    throw new UsageError("--verify-from-base names the check's files: give --verify too");
  if (options.verifyFromBase && !named)
    throw new UsageError(
      '--verify-from-base takes the check from the repository the run starts from: give --repo',
    );
  const setupCommand = options.setup?.trim();
  if (options.setup !== undefined && !setupCommand)
    throw new UsageError('--setup needs a command, or auto');
  if (setupCommand && !named)
    throw new UsageError('--setup prepares the repository the run starts from: give --repo');
  if (!setupCommand && (given('setupNetwork') || given('setupTimeout')))
    throw new UsageError(
      '--setup-network and --setup-timeout go with --setup: give the command too',
    );
  if (options.allowFailingBase && !verify)
    throw new UsageError('--allow-failing-base lets a base fail --verify: give --verify too');
  const cacheDir = setupCommand && named ? cacheDirFor(options, named) : undefined;
  const setupSettings: SetupSettings | undefined = setupCommand
    ? {
        // `auto` is known once the repository is: its program is then found, or not, by the setup.
        command: setupCommand === 'auto' ? ':' : setupCommand,
        network: options.setupNetwork,
        timeoutMs: options.setupTimeout,
      }
    : undefined;
  const access = options.real ? await realModePreflight(modelFlags(options)) : undefined;
  const ready = await kind.preflight(settings, {
    real: access !== undefined,
    allowedTools: options.allowedTools,
    toolsGiven: given('allowedTools'),
    ...(verify && { verify }),
    ...(setupSettings && { setup: setupSettings }),
    ...(access && { agent: { provider: access.provider, model: access.executorModel } }),
  });
  // Said once everything is checked, so that bad input stays one line.
  const dirty = named && (await leftOut(named));
  if (dirty) process.stderr.write(`note: ${dirty}\n`);
  // A URL is fetched once, before planning: its --base is checked and its codebase can be shown.
  const fetched = named ? await fetchSource(named, options.output) : undefined;
  const source = fetched?.source;
  try {
    const setup = source && (await setupFor(source, setupSettings));
    const plannerContainer = options.dockerPlanner
      ? await (await import('../planner/docker.js')).plannerContainer(
          options,
          kind.name,
          ready.settings,
        )
      : undefined;
    const codebase = source && access ? await describeCodebase(source) : undefined;
    // A plan file brings its own budget unless --executors overrides it.
    const planFile = options.plan !== undefined;
    const finish = (made: Awaited<ReturnType<typeof makePlan>>, executors: number) => {
      const budgeted = { ...made.plan, executorBudget: executors };
      const plan = access
        ? budgeted
        : assignSimulatedDurations(budgeted, options.simTaskMs, options.seed);
      return { plan, planner: made.planner };
    };
    // A plan file is read now (its errors are bad input); planning waits for a ready base.
    const fromFile = planFile
      ? await makePlan(words, options, access).then((made) =>
          finish(made, given('executors') ? options.executors : made.plan.executorBudget),
        )
      : undefined;
    const executors = fromFile?.plan.executorBudget ?? options.executors;
    return await drive(
      options.json ?? false,
      fromFile && { plan: fromFile.plan, executors },
      (hooks, startProgress) =>
        startRun({
          ...hooks,
          outputDir: options.output,
          ...(fromFile
            ? { plan: fromFile.plan, planner: fromFile.planner }
            : {
                plan: {
                  requirements: loadRequirements(words, options.file),
                  make: async () => {
                    const made = finish(
                      await makePlan(words, { ...options, plannerContainer, codebase }, access),
                      executors,
                    );
                    startProgress(made.plan, executors);
                    return made;
                  },
                },
              }),
          ...(source && { source }),
          ...(deliver && { deliver }),
          ...(verify && { verify }),
          ...(options.verifyFromBase && { verifyFromBase: options.verifyFromBase }),
          ...(setup && { setup, cacheDir }),
          ...(options.allowFailingBase && { allowFailingBase: true }),
          backend: kind.name,
          [kind.name]: ready.settings,
          mode: access ? 'real' : 'simulate',
          executors,
          retries: options.retries,
          retryDelayMs: options.retryDelay,
          taskTimeoutMs: options.taskTimeout,
          seed: options.seed,
          ...(options.maxBudgetUsd !== undefined && { maxBudgetUsd: options.maxBudgetUsd }),
          outputLimits: { maxFileBytes: options.maxFileSize, maxTaskBytes: options.maxTaskSize },
          agentNetwork: options.agentNetwork,
          ...(access && {
            modelAccess: access,
            agent: agentSettingsFor(access, {
              maxTurns: options.maxTurns,
              allowedTools: ready.allowedTools,
              maxBudgetUsd: options.maxTaskUsd,
            }),
          }),
        }),
      pushTo?.url,
    );
  } finally {
    await fetched?.remove();
  }
}

export async function planCommand(words: string[], options: PlanOptions): Promise<void> {
  const access = options.real
    ? await resolveModelAccess(process.env, modelFlags(options))
    : undefined;
  const named =
    options.repo !== undefined ? await resolveSource(options.repo, options.base) : undefined;
  const fetched = named ? await fetchSource(named, os.tmpdir()) : undefined;
  let made: Awaited<ReturnType<typeof makePlan>>;
  try {
    const codebase = fetched && access ? await describeCodebase(fetched.source) : undefined;
    made = await makePlan(words, { ...options, codebase }, access);
  } finally {
    await fetched?.remove();
  }
  const { plan, planner } = made;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    return;
  }
  // A simulated run draws each task's duration as `run` would: its own estimate is for real work.
  const simulated = access
    ? undefined
    : {
        estimate: await estimateSchedule(
          assignSimulatedDurations(plan, options.simTaskMs, options.seed).tasks,
          plan.executorBudget,
        ),
        simTaskMs: options.simTaskMs,
      };
  const text = formatPlan(plan, await estimateSchedule(plan.tasks, plan.executorBudget), simulated);
  const cost = planner.model
    ? `\n\nPlanned by ${planner.model}: ${formatUsage(planner.usage)}`
    : '';
  process.stdout.write(`${text}${cost}\n`);
}

export async function resumeCommand(
  runDir: string,
  options: ResumeCommandOptions,
): Promise<number> {
  const { plan, config, layout } = loadRun(runDir);
  await gitPreflight();
  // A real run needs its credentials again: they were never written down.
  const access =
    config.mode === 'real'
      ? await realModePreflight({
          bedrock: config.agent?.provider === 'bedrock',
          bedrockRegion: config.agent?.region,
        })
      : undefined;
  // The backend must still be there, as the run started with it.
  await backendKind(config.backend).preflight(backendSettings(config), {
    real: config.mode === 'real',
    allowedTools: config.agent?.allowedTools ?? [],
    toolsGiven: true,
    ...(config.verify && { verify: config.verify }),
    ...(config.setup && { setup: config.setup }),
    ...(config.agent && { agent: config.agent }),
  });
  const executors = options.executors ?? config.executors;
  // What the run did before: the progress counts, times and estimates the whole run.
  const history = readJournal(layout.journal).events;
  return drive(options.json ?? false, { plan, executors, history }, (hooks) =>
    resumeRun(runDir, {
      ...hooks,
      executors: options.executors,
      retryFailed: options.retryFailed,
      maxBudgetUsd: options.maxBudgetUsd,
      ...(access && { modelAccess: access }),
    }),
  );
}

/** A run's status as `status` prints it, and whether its orchestrator is still at work. */
function statusText(
  { layout, plan, config }: ReturnType<typeof loadRun>,
  json: boolean,
): { text: string; live: boolean } {
  const state = replay(
    plan.tasks.map((t) => t.id),
    readJournal(layout.journal).events,
  );
  const holder = lockHolder(layout);
  const runStatus = state.status ?? (holder ? `running (pid ${holder})` : 'interrupted');
  if (json) {
    const tasks = Object.fromEntries(state.tasks);
    return {
      text: JSON.stringify({ runId: config.runId, status: runStatus, tasks }, null, 2),
      live: holder !== undefined,
    };
  }
  const succeeded = [...state.tasks.values()].filter((t) => t.status === 'succeeded').length;
  const heading = `Run ${config.runId}: ${runStatus}, ${succeeded}/${plan.tasks.length} tasks succeeded`;
  const paint = paletteFor(process.stdout);
  return {
    text: formatStatus(plan, state, heading, Date.now(), paint),
    live: holder !== undefined,
  };
}

/**
 * `status <runDir>`; with `--watch`, again every second while the run's orchestrator holds it:
 * redrawn in place on a terminal, printed when it changes elsewhere.
 */
export async function statusCommand(
  runDir: string,
  options: { json?: boolean; watch?: boolean },
): Promise<void> {
  // What the run was set up with does not change; only its journal and lock do.
  const run = loadRun(runDir);
  let shown = statusText(run, options.json ?? false);
  process.stdout.write(`${shown.text}\n`);
  const redraw = process.stdout.isTTY && !options.json;
  while (options.watch && shown.live) {
    await sleep(1_000);
    const next = statusText(run, options.json ?? false);
    if (next.text !== shown.text) {
      // Home, clear below: the table is drawn over itself, not scrolled.
      process.stdout.write(redraw ? `\x1b[H\x1b[J${next.text}\n` : `${next.text}\n`);
    }
    shown = next;
  }
}

/**
 * `config`: every run option, its value as its flag takes it and where it came from (env, file or
 * default), under its `--help` group. Other backends' options left at their defaults are left
 * out unless `all`; `--json` has every option, with the value as the run takes it.
 */
export function configCommand(
  options: OptionSource[],
  flags: { json?: boolean; all?: boolean; backend: string },
): void {
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(options, null, 2)}\n`);
    return;
  }
  const hidden = new Set<string>();
  const groups = [...new Set(options.map((o) => o.group))];
  const shown = options
    .filter((o) => {
      const backend = backendOfGroup(o.group);
      const set = o.source !== 'default' && o.source !== 'unset';
      const show = flags.all || !backend || backend === flags.backend || set;
      if (!show && backend) hidden.add(backend);
      return show;
    })
    // Grouped as --help groups them: options join their group's first appearance.
    .sort((a, b) => groups.indexOf(a.group) - groups.indexOf(b.group));
  const cut = (text: string) => (text.length > 48 ? `${text.slice(0, 47)}…` : text);
  const rows = shown.map((o) => [`  ${o.option}`, cut(o.shown), o.source, o.env]);
  const lines = formatTable(['OPTION', 'VALUE', 'FROM', 'ENVIRONMENT'], rows).split('\n');
  // One heading over each group's rows, in --help's order.
  const out = [lines[0] as string];
  shown.forEach((o, i) => {
    if (i === 0 || shown[i - 1]?.group !== o.group) out.push(o.group);
    out.push(lines[i + 1] as string);
  });
  if (hidden.size > 0)
    out.push(
      '',
      `The ${[...hidden].join(' and ')} backend options are left out (the backend is ${flags.backend}): --all shows them.`,
    );
  process.stdout.write(`${out.join('\n')}\n`);
}

export interface DoctorOptions extends ModelFlags {
  json?: boolean;
  dockerImage: string;
  backend?: BackendName;
  backendConfig?: string;
  [backendFlag: string]: unknown;
}

/**
 * `doctor`: this machine's lines, then one backend's: a stack's (`--backend-config`), the one
 * `--backend` names, or the docker backend's engine and image. Exit 0 unless something is
 * `missing` (a warning or a note is not).
 */
export async function doctorCommand(
  flags: DoctorOptions,
  given: (option: string) => boolean,
): Promise<number> {
  const backend = chooseBackend({ ...flags, backend: flags.backend ?? 'docker' }, given);
  const { checks, ok } = await doctor(process.env, modelFlags(flags), backend);
  process.stdout.write(
    flags.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : `${formatChecks(checks)}\n`,
  );
  return ok ? EXIT.succeeded : EXIT.failed;
}

/**
 * `diff <runDir> [taskId]`: what one task changed (its commit; a failed task's last attempt's, which
 * is kept but never merged), or the whole run (base to main). A task with no change says why on
 * stderr: stdout stays a patch.
 */
export async function diffCommand(runDir: string, taskId: string | undefined): Promise<void> {
  const { layout, plan, config } = loadRun(runDir);
  const gitDir = path.join(layout.project, '.git');
  if (taskId === undefined) {
    const base = await runBase(gitDir, config.source);
    process.stdout.write(await diffOf(gitDir, base, 'main'));
    return;
  }
  if (!plan.tasks.some((task) => task.id === taskId))
    throw new UsageError(`no task ${taskId} in ${runDir}`);
  const state = replay(
    plan.tasks.map((t) => t.id),
    readJournal(layout.journal).events,
  );
  const record = state.tasks.get(taskId);
  const commit = record?.result.commit;
  if (!commit) {
    process.stderr.write(`${whyNoOutput(layout, plan, taskId, 'commit')}\n`);
    return;
  }
  const diff = await diffOf(gitDir, `${commit}^1`, commit);
  if (record.status === 'failed') {
    const reason = errorNote(record);
    const log = shownPath(layout.executorLog(taskId));
    process.stderr.write(
      diff
        ? `task ${taskId} failed on attempt ${record.attempts}${reason}; that attempt's change, never merged (commit ${commit.slice(0, 12)}):\n`
        : `task ${taskId} failed on attempt ${record.attempts}${reason}, and that attempt changed nothing; its log: ${log}\n`,
    );
  }
  process.stdout.write(diff);
}

/** `report <runDir>`: the run's report.html, written again from its records; `--open` shows it. */
export async function reportCommand(runDir: string, options: { open?: boolean }): Promise<void> {
  const { layout, plan, config } = loadRun(runDir);
  if (!existsSync(layout.summary))
    throw new UsageError(
      `${runDir} has not ended (no execution_summary.json): a run writes its report when it ends`,
    );
  const { writeReport } = await import('../report/report.js');
  const file = await writeReport(layout, config, plan);
  process.stdout.write(`${file}\n`);
  if (options.open) process.stdout.write(`${await openInBrowser(file)}\n`);
}

/** `export <runDir> --patch`: the run's change as a patch series in `output` (git am applies it). */
export async function exportCommand(runDir: string, output: string | undefined): Promise<void> {
  const { layout, config } = loadRun(runDir);
  const gitDir = path.join(layout.project, '.git');
  const dir = path.resolve(output ?? path.join(layout.root, 'patches'));
  const files = await writePatchSeries(gitDir, await runBase(gitDir, config.source), dir);
  process.stdout.write(
    `${files.length} patches in ${dir} (apply on the run's base with: git am ${dir}/*.patch)\n`,
  );
}
