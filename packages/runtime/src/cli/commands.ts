import type { BackendConfig } from '../contracts/backend-config.js';
import { MODEL_ENV } from '../contracts/env.js';
import type { Plan } from '../contracts/plan.js';
import type {
  AgentNetwork,
  BackendName,
  DockerSettings,
  LocalSandbox,
  RunConfig,
} from '../contracts/run-config.js';
import { ZERO_USAGE } from '../contracts/usage.js';
import { EXIT, UsageError } from '../errors.js';
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
import { probeBubblewrap } from '../sandbox/bubblewrap.js';
import { estimateSchedule } from '../scheduler/estimate.js';
import { doctor, gitPreflight } from './doctor.js';
import { formatPlan, formatStatus, formatSummary, formatUsage } from './format.js';
import { loadPlanFile, loadRequirements } from './options.js';
import { createReporter, progressMode } from './progress.js';

export interface PlanningOptions extends ModelFlags {
  file?: string;
  executors: number;
  maxTasks: number;
  json?: boolean;
  real?: boolean;
  planRepairs: number;
}

export interface RunCommandOptions extends PlanningOptions {
  plan?: string;
  backendConfig?: string;
  backend: BackendName;
  output: string;
  taskTimeout: number;
  retries: number;
  retryDelay: number;
  simTaskMs: { min: number; max: number };
  seed: number;
  maxTurns: number;
  allowedTools: string[];
  maxFileSize: number;
  maxTaskSize: number;
  agentNetwork: AgentNetwork;
  maxTaskUsd?: number;
  maxBudgetUsd?: number;
  dockerImage: string;
  dockerNetwork?: string;
  dockerMemory: number;
  dockerCpus: number;
  dockerPids: number;
  dockerPlanner?: boolean;
}

/**
 * Settings from a stack's `runtimeConfig` (`--backend-config`): a docker stack names the image
 * and the network it made. Flags given on the command line still win.
 */
export function withBackendConfig(
  options: RunCommandOptions,
  config: BackendConfig,
  given: (option: keyof RunCommandOptions) => boolean,
): RunCommandOptions {
  if (config.backend === 'batch') {
    throw new UsageError(
      "the backend config is for AWS Batch, which this version cannot run yet; use a docker stack's config, or --backend local or docker",
    );
  }
  if (given('backend') && options.backend !== config.backend) {
    throw new UsageError(
      `--backend ${options.backend} contradicts the backend config (${config.backend})`,
    );
  }
  return {
    ...options,
    backend: config.backend,
    dockerImage: given('dockerImage') ? options.dockerImage : config.image,
    dockerNetwork: given('dockerNetwork') ? options.dockerNetwork : config.network,
  };
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

/**
 * What the docker planner (our code, not an agent) gets as environment: the credentials and AWS
 * chain settings, nothing else.
 */
function plannerEnv(access: ModelAccess): Record<string, string> {
  const env: Record<string, string> = { ...access.awsEnv };
  if (access.baseURL) env[MODEL_ENV.ANTHROPIC_BASE_URL] = access.baseURL;
  for (const [name, value] of Object.entries(access.secrets)) if (value) env[name] = value;
  return env;
}

function dockerSettings(options: RunCommandOptions): DockerSettings {
  return {
    image: options.dockerImage,
    ...(options.dockerNetwork && { network: options.dockerNetwork }),
    memoryBytes: options.dockerMemory,
    nanoCpus: options.dockerCpus,
    pidsLimit: options.dockerPids,
  };
}

/** The engine answers and has the image: checked before anything is written. */
async function dockerPreflight(image: string): Promise<void> {
  const docker = await import('../backends/docker.js');
  await docker.dockerPreflight(docker.dockerClient(), image);
}

/** Plans in a container; the image plans with the model when it is given credentials. */
async function planInContainer(
  requirements: string,
  options: RunCommandOptions,
  access: ModelAccess | undefined,
): Promise<{ plan: Plan; planner: RunConfig['planner'] }> {
  const { DockerPlanner } = await import('../planner/docker.js');
  prepareOutputDir(options.output);
  const planner = new DockerPlanner({
    settings: dockerSettings(options),
    scratchParent: options.output,
    executorEnv: access && plannerEnv(access),
    timeoutMs: MODEL_DEFAULTS.plannerTimeoutMs,
  });
  const planning = { executors: options.executors, maxTasks: options.maxTasks };
  const { plan, usage } = await planner.plan(requirements, planning);
  const name = planner.model ? 'docker-model' : 'docker-simulated';
  return { plan, planner: { name, model: planner.model, usage } };
}

/** The plan from `--plan`, the model (`--real`) or the simulated planner, and who made it. */
async function makePlan(
  words: string[],
  options: PlanningOptions & { plan?: string; dockerPlanner?: boolean },
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
  if (options.dockerPlanner)
    return planInContainer(requirements, options as RunCommandOptions, access);
  const planning = { executors: options.executors, maxTasks: options.maxTasks };
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

/** Cancels on SIGINT/SIGTERM; a second signal exits at once. */
function cancellation(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.cancelled);
    process.stderr.write(`\n${name}: stopping executors (again to force)\n`);
    controller.abort(new Error(`cancelled by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function exitCodeOf(outcome: RunOutcome): number {
  if (outcome.status === 'succeeded') return EXIT.succeeded;
  return outcome.status === 'cancelled' ? EXIT.cancelled : EXIT.failed;
}

/** Runs (or resumes) with progress output and Ctrl-C handling; returns the exit code. */
async function drive(
  json: boolean,
  plan: Plan,
  executors: number,
  run: (hooks: Required<Pick<RunHooks, 'signal' | 'onEvent'>>) => Promise<RunOutcome>,
): Promise<number> {
  const reporter = createReporter(progressMode(json), plan, executors);
  const { signal, dispose } = cancellation();
  let outcome: RunOutcome;
  try {
    outcome = await run({ signal, onEvent: (event) => reporter.onEvent(event) });
  } finally {
    reporter.close();
    dispose();
  }
  const exitCode = exitCodeOf(outcome);
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
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(`\n${formatSummary(outcome.summary, outcome.runDir)}\n`);
  }
  return exitCode;
}

/**
 * Real runs of the local backend confine each agent with bubblewrap. Where it cannot run, agents
 * get no Bash: dropped from the default tools with a note, refused when asked for by name.
 */
async function localSandbox(
  allowedTools: string[],
  toolsGiven: boolean,
): Promise<{ sandbox: LocalSandbox; allowedTools: string[] }> {
  const probe = await probeBubblewrap();
  if (probe.available) return { sandbox: 'bubblewrap', allowedTools };
  if (allowedTools.includes('Bash')) {
    const why = `${probe.reason}, so agents' commands cannot be confined to their workspace`;
    if (toolsGiven)
      throw new UsageError(
        `--allowed-tools names Bash, but ${why}: install bubblewrap, or use --backend docker`,
      );
    process.stderr.write(
      `note: agents get no Bash: ${why} (install bubblewrap, or use --backend docker)\n`,
    );
  }
  return { sandbox: 'none', allowedTools: allowedTools.filter((tool) => tool !== 'Bash') };
}

export async function runCommand(
  words: string[],
  options: RunCommandOptions,
  given: (option: keyof RunCommandOptions) => boolean,
) {
  // Everything that can be checked is checked before any work, or model spending, starts.
  checkOutputDir(options.output);
  await gitPreflight();
  const access = options.real ? await realModePreflight(modelFlags(options)) : undefined;
  const confinement =
    access && options.backend === 'local'
      ? await localSandbox(options.allowedTools, given('allowedTools'))
      : undefined;
  const dockerUsed = options.backend === 'docker' || options.dockerPlanner;
  const docker = dockerUsed ? dockerSettings(options) : undefined;
  if (docker) await dockerPreflight(docker.image);
  const made = await makePlan(words, options, access);
  // A plan file brings its own budget unless --executors overrides it.
  const executors =
    options.plan !== undefined && !given('executors')
      ? made.plan.executorBudget
      : options.executors;
  const budgeted = { ...made.plan, executorBudget: executors };
  const plan = access
    ? budgeted
    : assignSimulatedDurations(budgeted, options.simTaskMs, options.seed);
  return drive(options.json ?? false, plan, executors, (hooks) =>
    startRun({
      ...hooks,
      outputDir: options.output,
      plan,
      backend: options.backend,
      mode: access ? 'real' : 'simulate',
      executors,
      retries: options.retries,
      retryDelayMs: options.retryDelay,
      taskTimeoutMs: options.taskTimeout,
      seed: options.seed,
      planner: made.planner,
      ...(options.backend === 'docker' && { docker }),
      ...(options.maxBudgetUsd !== undefined && { maxBudgetUsd: options.maxBudgetUsd }),
      outputLimits: { maxFileBytes: options.maxFileSize, maxTaskBytes: options.maxTaskSize },
      agentNetwork: options.agentNetwork,
      ...(confinement && { localSandbox: confinement.sandbox }),
      ...(access && {
        modelAccess: access,
        agent: agentSettingsFor(access, {
          maxTurns: options.maxTurns,
          allowedTools: confinement?.allowedTools ?? options.allowedTools,
          maxBudgetUsd: options.maxTaskUsd,
        }),
      }),
    }),
  );
}

export async function planCommand(words: string[], options: PlanningOptions): Promise<void> {
  const access = options.real
    ? await resolveModelAccess(process.env, modelFlags(options))
    : undefined;
  const { plan, planner } = await makePlan(words, options, access);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    return;
  }
  const text = formatPlan(plan, await estimateSchedule(plan.tasks, plan.executorBudget));
  const cost = planner.model
    ? `\n\nPlanned by ${planner.model}: ${formatUsage(planner.usage)}`
    : '';
  process.stdout.write(`${text}${cost}\n`);
}

export async function resumeCommand(
  runDir: string,
  options: ResumeCommandOptions,
): Promise<number> {
  const { plan, config } = loadRun(runDir);
  await gitPreflight();
  // A real run needs its credentials again: they were never written down.
  if (config.docker) await dockerPreflight(config.docker.image);
  const access =
    config.mode === 'real'
      ? await realModePreflight({
          bedrock: config.agent?.provider === 'bedrock',
          bedrockRegion: config.agent?.region,
        })
      : undefined;
  if (config.localSandbox === 'bubblewrap') {
    const probe = await probeBubblewrap();
    if (!probe.available)
      throw new UsageError(`this run confines its agents with bubblewrap, but ${probe.reason}`);
  }
  return drive(options.json ?? false, plan, options.executors ?? config.executors, (hooks) =>
    resumeRun(runDir, {
      ...hooks,
      executors: options.executors,
      retryFailed: options.retryFailed,
      maxBudgetUsd: options.maxBudgetUsd,
      ...(access && { modelAccess: access }),
    }),
  );
}

export function statusCommand(runDir: string, options: { json?: boolean }): void {
  const { layout, plan, config } = loadRun(runDir);
  const state = replay(
    plan.tasks.map((t) => t.id),
    readJournal(layout.journal).events,
  );
  const holder = lockHolder(layout);
  const runStatus = state.status ?? (holder ? `running (pid ${holder})` : 'interrupted');
  if (options.json) {
    const tasks = Object.fromEntries(state.tasks);
    process.stdout.write(
      `${JSON.stringify({ runId: config.runId, status: runStatus, tasks }, null, 2)}\n`,
    );
    return;
  }
  const succeeded = [...state.tasks.values()].filter((t) => t.status === 'succeeded').length;
  const heading = `Run ${config.runId}: ${runStatus}, ${succeeded}/${plan.tasks.length} tasks succeeded`;
  process.stdout.write(`${formatStatus(plan, state, heading)}\n`);
}

export async function doctorCommand(flags: ModelFlags): Promise<number> {
  const { text, ok } = await doctor(process.env, modelFlags(flags));
  process.stdout.write(`${text}\n`);
  return ok ? EXIT.succeeded : EXIT.failed;
}
