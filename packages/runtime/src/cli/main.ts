#!/usr/bin/env node
import './heap.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { BACKEND_KINDS } from '../backends/kinds.js';
import { PlanValidationError } from '../contracts/plan.js';
import { BaseNotReadyError, describeError, EXIT, UsageError } from '../errors.js';
import { MODEL_DEFAULTS } from '../models/defaults.js';
import { JournalError } from '../run/journal.js';
import { RunDirError } from '../run/run-dir.js';
import {
  configCommand,
  type DoctorOptions,
  diffCommand,
  doctorCommand,
  exportCommand,
  type PlanOptions,
  planCommand,
  type ResumeCommandOptions,
  type RunCommandOptions,
  reportCommand,
  resumeCommand,
  runCommand,
  statusCommand,
} from './commands.js';
import {
  applySources,
  CONFIG_FILE,
  checkEnvironment,
  checkModeFlags,
  configuredOutput,
  GROUPS,
  optionSources,
  readConfigFile,
} from './config.js';
import { logsCommand, resolveRunDir, runsCommand } from './history.js';
import {
  DEFAULTS,
  intIn,
  loadBackendConfig,
  parseAgentNetwork,
  parseBackend,
  parsedOption,
  parseExecutors,
  parseMaxTasks,
  parseModel,
  parseOutputSize,
  parseRepositoryPaths,
  parseRetryDelay,
  parseSetupNetwork,
  parseSimRange,
  parseTaskTimeout,
  parseToolList,
  parseUsd,
} from './options.js';
import { err, watchOutput } from './output.js';

/** The runtime's version, from its package manifest (beside dist/ in the workspace and the image). */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Whether the user set an option (a flag, the environment or the config file), not a default. */
function setBy(command: Command, option: string): boolean {
  const source = command.getOptionValueSource(option);
  return source !== undefined && source !== 'default';
}

const RUN_DIR = `the run directory, or latest (the newest under the output directory), or <dir>/latest`;

/**
 * A run directory argument: `latest` is the newest run under `-o DIR`, else the configured output
 * directory; `<dir>/latest` the newest under `<dir>`.
 */
const runDirOf = (given: string, output?: string) =>
  resolveRunDir(given, output ?? configuredOutput(DEFAULTS.output));

/** `-o, --output <dir>` of the commands that take a run directory: where `latest` is looked for. */
const withOutput = (command: Command) =>
  command.option(
    '-o, --output <dir>',
    `where latest is looked for (default: ${DEFAULTS.output}, or PO_OUTPUT, or the config file's)`,
  );

/** `--sim-task-ms`, of `run` and of `plan` (which says how long a simulated run takes). */
const simTaskMsOption = () =>
  parsedOption(
    '--sim-task-ms <ms|min-max>',
    'duration of a simulated task, or a range drawn from with --seed',
    parseSimRange,
    DEFAULTS.simTaskMs,
  );

const seedOption = (description: string) =>
  new Option('--seed <n>', description).argParser(intIn(0, 2 ** 31 - 1)).default(DEFAULTS.seed);

/** Provider and planner model: what planning (and doctor) needs; flags win over the environment. */
function withModelOptions(command: Command): Command {
  return command
    .optionsGroup(GROUPS.real)
    .option('--bedrock', 'use Amazon Bedrock (as USE_BEDROCK=1)')
    .option(
      '--bedrock-region <region>',
      `Bedrock region (BEDROCK_REGION, default ${MODEL_DEFAULTS.bedrockRegion})`,
    )
    .option(
      '--planner-model <id>',
      `planner model (default ${MODEL_DEFAULTS.model}, or BEDROCK_MODEL)`,
      parseModel,
    );
}

function withPlanningOptions(command: Command): Command {
  command
    .optionsGroup('Planning:')
    .option('-f, --file <file>', 'read the requirements from a file')
    .option(
      '-e, --executors <M>',
      'executor budget: tasks running at once (1-1000)',
      parseExecutors,
      DEFAULTS.executors,
    )
    .option('--max-tasks <n>', 'most tasks a plan may have', parseMaxTasks, DEFAULTS.maxTasks)
    .addOption(
      new Option('--simulate', 'simulated planner and executors, no model (default)').conflicts(
        'real',
      ),
    )
    .option('--real', 'plan with a model and run Claude Code executors')
    .option('--json', 'machine-readable output')
    .option('--config <file>', `options from this file (default: ./${CONFIG_FILE} if there is one)`)
    .optionsGroup('Starting from a repository:')
    .option('--repo <path|url>', 'start from this repository (a local clone, or a URL git clones)')
    .option(
      '--base <ref>',
      'with --repo: the branch, tag or commit to start from (default: its HEAD)',
    );
  return withModelOptions(command).option(
    '--plan-repairs <n>',
    'more tries when the model plan is invalid',
    intIn(0, 10),
    MODEL_DEFAULTS.planRepairs,
  );
}

/**
 * Before a run or plan command acts: options the command line left at their defaults take the
 * environment's (PO_*) or the config file's values, and flags typed for another mode or backend
 * are refused.
 */
function withSources(
  command: Command,
  known: () => ReadonlySet<string>,
  { modes = true } = {},
): Command {
  return command.hook('preAction', (_, action) => {
    applySources(action, readConfigFile(action.opts().config), known());
    const { real, backend, backendConfig } = action.opts() as {
      real?: boolean;
      backend?: string;
      backendConfig?: string;
    };
    // A stack's config names its backend: its flags are that backend's.
    const chosen = backendConfig ? loadBackendConfig(backendConfig).backend : backend;
    if (modes) checkModeFlags(action, real ?? false, chosen);
  });
}

function program(): Command {
  const cli = new Command('parallel-orchestrator')
    .description('Plan a requirement into a task DAG and run up to M coding agents on it at once.')
    .version(VERSION, '-V, --version')
    .exitOverride();

  const run = withPlanningOptions(
    cli
      .command('run')
      .description('plan the requirements and run every task, merging each into one git repository')
      .argument('[requirements...]', 'what to build (or use --file / --plan)'),
  );
  run
    .optionsGroup('Planning:')
    .option('--plan <file>', 'run this plan (execution_plan.json format) instead of planning')
    .optionsGroup('Running:')
    .addOption(
      new Option('-b, --backend <name>', 'where executors run')
        .default(DEFAULTS.backend)
        .argParser(parseBackend),
    )
    .option(
      '--backend-config <file>',
      "a stack's runtimeConfig (pulumi stack output runtimeConfig --json)",
    )
    .option('-o, --output <dir>', 'directory that receives a new run directory', DEFAULTS.output)
    .addOption(
      parsedOption(
        '--task-timeout <duration>',
        'per-attempt time limit, 100ms to 7d (500ms, 90s, 30m, 2h)',
        parseTaskTimeout,
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
      parsedOption(
        '--retry-delay <duration>',
        'base of the exponential backoff between attempts (up to 1h)',
        parseRetryDelay,
        DEFAULTS.retryDelay,
      ),
    )
    .addOption(seedOption('seed for simulated durations and retry jitter'))
    .addOption(
      parsedOption(
        '--max-file-size <size>',
        'largest file a task may add or change (1k to 1024g)',
        parseOutputSize,
        DEFAULTS.maxFileSize,
      ),
    )
    .addOption(
      parsedOption(
        '--max-task-size <size>',
        'most a task may add or change in all (1k to 1024g)',
        parseOutputSize,
        DEFAULTS.maxTaskSize,
      ),
    )
    .option('--docker-planner', 'run the planner in a container of the image')
    .optionsGroup('Starting from a repository:')
    .option(
      '--verify <command>',
      "the repository's check (sh -c, in the backend's sandbox): each task's work merges only if it passes on the merged result, and it runs once more at the end",
    )
    .option(
      '--verify-from-base <paths>',
      "files and directories of the check (comma-separated: test/,package.json) taken as they were at the run's start, whatever a task's work did to them",
      parseRepositoryPaths,
    )
    .addOption(
      parsedOption(
        '--verify-timeout <duration>',
        'time limit of one --verify run, 100ms to 7d',
        parseTaskTimeout,
        DEFAULTS.verifyTimeout,
      ),
    )
    .option(
      '--setup <command|auto>',
      'what prepares the repository to run (sh -c, e.g. "npm ci"): once per base, in the backend\'s sandbox; what it leaves in ignored paths (node_modules/, .venv/) is shown read-only to every agent and check, and kept by a key of the manifests. auto: the lockfiles say',
    )
    .addOption(
      new Option('--setup-network <open|none>', 'network of the --setup command')
        .argParser(parseSetupNetwork)
        .default(DEFAULTS.setupNetwork),
    )
    .addOption(
      parsedOption(
        '--setup-timeout <duration>',
        'time limit of one --setup run, 100ms to 7d',
        parseTaskTimeout,
        DEFAULTS.setupTimeout,
      ),
    )
    .option(
      '--allow-failing-base',
      'run even though --verify fails on the base (the requirement is to make it pass): work is not held to it until it passes',
    )
    .option(
      '--cache-dir <dir>',
      'where prepared environments are kept (default: $XDG_CACHE_HOME/parallel-orchestrator, or ~/.cache/parallel-orchestrator)',
    )
    .option(
      '--into <branch>',
      'with --repo: the new branch the result goes to (default: parallel-orchestrator/<run id>)',
    )
    .option('--deliver-partial', 'deliver the result even when some tasks failed')
    .option(
      '--push <remote>',
      'push the delivered branch to this remote of the repository (from a URL: origin, meaning that URL, or another URL or path)',
    )
    .optionsGroup(GROUPS.simulation)
    .addOption(simTaskMsOption())
    .optionsGroup(GROUPS.real)
    .option(
      '--executor-model <id>',
      `executor model (default ${MODEL_DEFAULTS.model}, or BEDROCK_MODEL)`,
      parseModel,
    )
    .option(
      '--max-turns <n>',
      'most agent turns per task',
      intIn(1, 10_000),
      MODEL_DEFAULTS.maxTurns,
    )
    .addOption(
      parsedOption(
        '--allowed-tools <list>',
        'tools agents may use',
        parseToolList,
        MODEL_DEFAULTS.allowedTools.join(','),
      ),
    )
    .addOption(
      new Option(
        '--agent-network <none|open>',
        'no network but the model (none), or the network (open)',
      )
        .argParser(parseAgentNetwork)
        .default(DEFAULTS.agentNetwork),
    )
    .option('--max-task-usd <usd>', 'stop a task once it has spent this much', parseUsd)
    .option('--max-budget-usd <usd>', 'start no task once the run has spent this much', parseUsd)
    .action(async (words: string[], options: RunCommandOptions, command: Command) => {
      process.exitCode = await runCommand(words, options, (option) => setBy(command, option));
    });
  for (const kind of Object.values(BACKEND_KINDS)) {
    run.optionsGroup(GROUPS.backend(kind.name));
    for (const flag of kind.flags) run.addOption(flag);
  }
  const runOptions = () => new Set(run.options.map((option) => option.attributeName()));
  withSources(run, runOptions);
  // A PO_ typo is refused by every command, as the options would otherwise go without it.
  cli.hook('preAction', () => checkEnvironment(runOptions()));

  withSources(
    withPlanningOptions(
      cli
        .command('plan')
        .description('plan only: print the task DAG')
        .argument('[requirements...]', 'what to build (or use --file)'),
    )
      // What a simulated run of the plan would take.
      .optionsGroup(GROUPS.simulation)
      .addOption(simTaskMsOption())
      .addOption(seedOption('seed for simulated durations')),
    runOptions,
  ).action((words: string[], options: PlanOptions) => planCommand(words, options));

  cli
    .command('config')
    .description(
      'show the options a run would take from the environment (PO_*) and the config file',
    )
    .option('--config <file>', `the config file (default: ./${CONFIG_FILE} if there is one)`)
    .option('--json', 'machine-readable output (every option; values as the run takes them)')
    .option('--all', "also the other backends' options")
    .action((options: { config?: string; json?: boolean; all?: boolean }) => {
      applySources(run, readConfigFile(options.config), runOptions());
      const { backend, backendConfig } = run.opts() as { backend: string; backendConfig?: string };
      configCommand(optionSources(run), {
        ...options,
        backend: backendConfig ? loadBackendConfig(backendConfig).backend : backend,
      });
    });

  withOutput(cli.command('resume'))
    .description('continue an interrupted run from its journal')
    .argument('<runDir>', RUN_DIR)
    .option('-e, --executors <M>', 'change the executor budget', parseExecutors)
    .option('--retry-failed', 'also retry tasks that failed or were blocked')
    .option('--max-budget-usd <usd>', 'change the spending limit', parseUsd)
    .option('--json', 'machine-readable output')
    .action(async (runDir: string, options: ResumeCommandOptions & { output?: string }) => {
      process.exitCode = await resumeCommand(runDirOf(runDir, options.output), options);
    });

  withOutput(cli.command('status'))
    .description('show the tasks of a run, live or finished')
    .argument('<runDir>', RUN_DIR)
    .option('--json', 'machine-readable output')
    .option('-w, --watch', 'show it again as it changes, until the run ends')
    .action((runDir: string, options: { json?: boolean; watch?: boolean; output?: string }) =>
      statusCommand(runDirOf(runDir, options.output), options),
    );

  cli
    .command('runs')
    .description('list the runs under an output directory, newest first')
    .option(
      '-o, --output <dir>',
      `the output directory (default: ${DEFAULTS.output}, or PO_OUTPUT, or the config file's)`,
    )
    .option('--json', 'machine-readable output')
    .action((options: { output?: string; json?: boolean }) =>
      runsCommand(options.output ?? configuredOutput(DEFAULTS.output), options),
    );

  withOutput(cli.command('logs'))
    .description("print a task's executor log")
    .argument('<runDir>', RUN_DIR)
    .argument('<taskId>', 'the task')
    .option('-f, --follow', 'keep printing what is added until the task ends')
    .action((runDir: string, taskId: string, options: { follow?: boolean; output?: string }) =>
      logsCommand(runDirOf(runDir, options.output), taskId, options),
    );

  withOutput(cli.command('diff'))
    .description(
      "show a task's change (a failed task's last attempt's, if it kept one), or the whole run's (from its base to main)",
    )
    .argument('<runDir>', RUN_DIR)
    .argument('[taskId]', 'one task')
    .action((runDir: string, taskId: string | undefined, options: { output?: string }) =>
      diffCommand(runDirOf(runDir, options.output), taskId),
    );

  // Its -o is where the patches go: its latest is the configured output's, or <dir>/latest.
  cli
    .command('export')
    .description("write the run's change as a patch series (git am applies it on the base)")
    .argument('<runDir>', RUN_DIR)
    .option('--patch', 'as patches, one per merged task (the default, and so far the only format)')
    .option('-o, --output <dir>', 'where the patches go (default: <runDir>/patches)')
    .action((runDir: string, options: { output?: string }) =>
      exportCommand(runDirOf(runDir), options.output),
    );

  withOutput(cli.command('report'))
    .description(
      "write the run's report.html: summary, DAG, timeline per executor, tasks and changes",
    )
    .argument('<runDir>', RUN_DIR)
    .option('--open', 'open it in a browser, where one is available')
    .action((runDir: string, options: { open?: boolean; output?: string }) =>
      reportCommand(runDirOf(runDir, options.output), options),
    );

  const doctorCli = withModelOptions(
    cli
      .command('doctor')
      .description(
        "check what runs need here: Node, git, Claude Code and model credentials (probed), the sandbox, and a backend: Docker and its image, or a Batch stack's credentials, queue, definition, bucket, log group and permissions",
      ),
  )
    .optionsGroup('Backend:')
    .addOption(
      new Option('-b, --backend <name>', 'the backend to check (default: docker)').argParser(
        parseBackend,
      ),
    )
    .option(
      '--backend-config <file>',
      "a stack's runtimeConfig to check (pulumi stack output runtimeConfig --json)",
    );
  // A backend's settings come from its flags as for run (a stack's config under them).
  for (const kind of Object.values(BACKEND_KINDS)) {
    doctorCli.optionsGroup(GROUPS.backend(kind.name));
    for (const flag of kind.flags) doctorCli.addOption(flag);
  }
  doctorCli
    .optionsGroup('Output:')
    .option('--json', 'machine-readable output')
    .option('--config <file>', `the config file (default: ./${CONFIG_FILE} if there is one)`)
    .action(async (options: DoctorOptions, command: Command) => {
      process.exitCode = await doctorCommand(options, (option) => setBy(command, option));
    });
  // doctor checks what real runs need: its model flags need no --real.
  withSources(doctorCli, runOptions, { modes: false });

  return cli;
}

/**
 * `pnpm -C <checkout> start` runs the CLI in the checkout; the project's start script names the
 * directory the user stood in, so that `--repo .` and relative paths mean theirs.
 */
const CALLER_DIR_ENV = 'PARALLEL_ORCHESTRATOR_CWD';

async function main(argv: string[]): Promise<number> {
  // `pnpm start -- run ...` passes the `--` through.
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  try {
    const callerDir = process.env[CALLER_DIR_ENV];
    delete process.env[CALLER_DIR_ENV];
    if (callerDir) process.chdir(callerDir);
    await program().parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message; help and version are not errors.
      return error.exitCode === 0 ? 0 : EXIT.usage;
    }
    if (error instanceof BaseNotReadyError) {
      process.stderr.write(`error: ${error.lines.join('\n')}\n`);
      return EXIT.failed;
    }
    const usage =
      error instanceof UsageError ||
      error instanceof PlanValidationError ||
      error instanceof RunDirError ||
      error instanceof JournalError;
    return report(error, usage ? EXIT.usage : EXIT.internal);
  }
}

/** One line on stderr (the stack too with PARALLEL_ORCHESTRATOR_DEBUG=1); returns `code`. */
function report(error: unknown, code: number): number {
  err(`error: ${describeError(error).split('\n')[0]}\n`);
  if (process.env.PARALLEL_ORCHESTRATOR_DEBUG && error instanceof Error) {
    err(`${error.stack}\n`);
  }
  return code;
}

// `| head` ends the output, not the run.
watchOutput();

// A failure outside the awaited path (a stream or timer callback) ends the run the same way: one
// line and the internal-failure code, never a stack trace.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => process.exit(report(error, EXIT.internal)));
}

process.exitCode = await main(process.argv.slice(2));
