#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { type Plan, PlanValidationError } from '../contracts/plan.js';
import type { BackendName } from '../contracts/run-config.js';
import { assignSimulatedDurations, SimulatedPlanner } from '../planner/simulated.js';
import { JournalError, readJournal } from '../run/journal.js';
import {
  loadRun,
  type RunHooks,
  type RunOutcome,
  resumeRun,
  startRun,
} from '../run/orchestrator.js';
import { replay } from '../run/replay.js';
import { lockHolder, RunDirError } from '../run/run-dir.js';
import { estimateSchedule } from '../scheduler/estimate.js';
import { errorMessage } from '../scheduler/scheduler.js';
import { EXIT, UsageError } from './errors.js';
import { formatPlan, formatStatus, formatSummary } from './format.js';
import {
  DEFAULTS,
  intIn,
  loadPlanFile,
  loadRequirements,
  parseBackend,
  parseDuration,
  parseExecutors,
  parseMaxTasks,
  parseSimRange,
} from './options.js';
import { createReporter, progressMode } from './progress.js';

interface PlanningOptions {
  file?: string;
  executors: number;
  maxTasks: number;
  json?: boolean;
}

interface RunCommandOptions extends PlanningOptions {
  plan?: string;
  backend: BackendName;
  output: string;
  real?: boolean;
  taskTimeout: number;
  retries: number;
  retryDelay: number;
  simTaskMs: { min: number; max: number };
  seed: number;
}

const planner = new SimulatedPlanner();

async function planFor(words: string[], options: PlanningOptions & { plan?: string }) {
  if (options.plan !== undefined) {
    if (words.length > 0 || options.file !== undefined) {
      throw new UsageError('--plan replaces the requirements: do not give both');
    }
    return loadPlanFile(options.plan, options.maxTasks);
  }
  const requirements = loadRequirements(words, options.file);
  return planner.plan(requirements, { executors: options.executors, maxTasks: options.maxTasks });
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
  return outcome.status === 'succeeded'
    ? EXIT.succeeded
    : outcome.status === 'cancelled'
      ? EXIT.cancelled
      : EXIT.failed;
}

/** Runs (or resumes) with progress output and Ctrl-C handling; returns the exit code. */
async function drive(
  json: boolean,
  plan: Plan,
  executors: number,
  run: (hooks: Required<RunHooks>) => Promise<RunOutcome>,
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
    const { totals, usage } = outcome.summary;
    const result = {
      type: 'result',
      runDir: outcome.runDir,
      status: outcome.status,
      exitCode,
      totals,
      usage,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(`\n${formatSummary(outcome.summary, outcome.runDir)}\n`);
  }
  return exitCode;
}

/** An option whose default is written as the user would type it, e.g. `30m`. */
function parsed<T>(
  flags: string,
  description: string,
  parse: (value: string) => T,
  typed: string,
): Option {
  return new Option(flags, description).argParser(parse).default(parse(typed), typed);
}

function program(): Command {
  const cli = new Command('parallel-orchestrator')
    .description('Plan a requirement into a task DAG and run up to M coding agents on it at once.')
    .exitOverride();

  const planning = (command: Command) =>
    command
      .option('-f, --file <file>', 'read the requirements from a file')
      .option(
        '-e, --executors <M>',
        'executor budget: tasks running at once (1-1000)',
        parseExecutors,
        DEFAULTS.executors,
      )
      .option('--max-tasks <n>', 'most tasks a plan may have', parseMaxTasks, DEFAULTS.maxTasks)
      .option('--json', 'machine-readable output');

  planning(
    cli
      .command('run')
      .description('plan the requirements and run every task, merging each into one git repository')
      .argument('[requirements...]', 'what to build (or use --file / --plan)'),
  )
    .option('--plan <file>', 'run this plan (execution_plan.json format) instead of planning')
    .addOption(
      new Option('-b, --backend <name>', 'where executors run')
        .default(DEFAULTS.backend)
        .argParser(parseBackend),
    )
    .option('-o, --output <dir>', 'directory that receives a new run directory', DEFAULTS.output)
    .addOption(
      new Option('--simulate', 'simulated executors and planner, no model (default)').conflicts(
        'real',
      ),
    )
    .option('--real', 'real models: Claude Code executors and a model planner')
    .addOption(
      parsed(
        '--task-timeout <duration>',
        'per-attempt time limit (500ms, 90s, 30m, 2h)',
        parseDuration,
        DEFAULTS.taskTimeout,
      ),
    )
    .option(
      '--retries <n>',
      'further attempts after a transient failure',
      intIn(0, 100),
      DEFAULTS.retries,
    )
    .addOption(
      parsed(
        '--retry-delay <duration>',
        'base of the exponential backoff between attempts',
        parseDuration,
        DEFAULTS.retryDelay,
      ),
    )
    .addOption(
      parsed(
        '--sim-task-ms <ms|min-max>',
        'duration of a simulated task, or a range drawn from with --seed',
        parseSimRange,
        DEFAULTS.simTaskMs,
      ),
    )
    .option(
      '--seed <n>',
      'seed for simulated durations and retry jitter',
      intIn(0, 2 ** 31 - 1),
      DEFAULTS.seed,
    )
    .action(async (words: string[], options: RunCommandOptions, command: Command) => {
      if (options.real) {
        throw new UsageError(
          '--real is not available yet: real planners and executors are not wired in this build; use --simulate',
        );
      }
      const planned = await planFor(words, options);
      // A plan file brings its own budget unless --executors overrides it.
      const executors =
        options.plan !== undefined && command.getOptionValueSource('executors') === 'default'
          ? planned.executorBudget
          : options.executors;
      const plan = assignSimulatedDurations(
        { ...planned, executorBudget: executors },
        options.simTaskMs,
        options.seed,
      );
      process.exitCode = await drive(options.json ?? false, plan, executors, (hooks) =>
        startRun({
          ...hooks,
          outputDir: options.output,
          plan,
          backend: options.backend,
          mode: 'simulate',
          executors,
          retries: options.retries,
          retryDelayMs: options.retryDelay,
          taskTimeoutMs: options.taskTimeout,
          seed: options.seed,
        }),
      );
    });

  planning(
    cli
      .command('plan')
      .description('plan only: print the task DAG')
      .argument('[requirements...]', 'what to build (or use --file)'),
  ).action(async (words: string[], options: PlanningOptions) => {
    const plan = await planFor(words, options);
    if (options.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    else
      process.stdout.write(
        `${formatPlan(plan, await estimateSchedule(plan.tasks, plan.executorBudget))}\n`,
      );
  });

  cli
    .command('resume')
    .description('continue an interrupted run from its journal')
    .argument('<runDir>', 'the run directory')
    .option('-e, --executors <M>', 'change the executor budget', parseExecutors)
    .option('--retry-failed', 'also retry tasks that failed or were blocked')
    .option('--json', 'machine-readable output')
    .action(
      async (
        runDir: string,
        options: { executors?: number; retryFailed?: boolean; json?: boolean },
      ) => {
        const { plan, config } = loadRun(runDir);
        process.exitCode = await drive(
          options.json ?? false,
          plan,
          options.executors ?? config.executors,
          (hooks) =>
            resumeRun(runDir, {
              ...hooks,
              executors: options.executors,
              retryFailed: options.retryFailed,
            }),
        );
      },
    );

  cli
    .command('status')
    .description('show the tasks of a run, live or finished')
    .argument('<runDir>', 'the run directory')
    .option('--json', 'machine-readable output')
    .action((runDir: string, options: { json?: boolean }) => {
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
    });

  return cli;
}

async function main(argv: string[]): Promise<number> {
  // `pnpm start -- run ...` passes the `--` through.
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  try {
    await program().parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message; help and version are not errors.
      return error.exitCode === 0 ? 0 : EXIT.usage;
    }
    const usage =
      error instanceof UsageError ||
      error instanceof PlanValidationError ||
      error instanceof RunDirError ||
      error instanceof JournalError;
    process.stderr.write(`error: ${errorMessage(error).split('\n')[0]}\n`);
    if (process.env.PARALLEL_ORCHESTRATOR_DEBUG && error instanceof Error)
      process.stderr.write(`${error.stack}\n`);
    return usage ? EXIT.usage : EXIT.failed;
  }
}

process.exitCode = await main(process.argv.slice(2));
