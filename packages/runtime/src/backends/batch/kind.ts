import { Option } from 'commander';
import { durationIn, intIn, parseDurationRange, parsedOption } from '../../cli/options.js';
import { UsageError } from '../../errors.js';
import type { BackendKind } from '../backend.js';
import type { BatchSettings } from './settings.js';

export const BATCH_DEFAULTS = {
  runnableTimeout: '30m',
  submitsPerSecond: 10,
  /** AWS: jobs take seconds to minutes to change state. */
  poll: '2s-20s',
  /** The local sandbox: its jobs change state within a second. */
  sandboxPoll: '250ms-2s',
} as const;

interface BatchFlags {
  batchRegion?: string;
  batchJobQueue?: string;
  batchJobDefinition?: string;
  batchBucket?: string;
  batchLogGroup?: string;
  batchRunnableTimeout: number;
  batchSubmitRate: number;
  batchPoll?: { minMs: number; maxMs: number };
}

const parseRunnableTimeout = durationIn('1s', '7d');

/**
 * Each task attempt as one AWS Batch job of the project's image; work travels through the
 * stack's state bucket. The stack's runtimeConfig names the queue, definition, bucket and log
 * group; flags override them, or name them all when there is no config.
 */
export const batchKind: BackendKind<BatchSettings> = {
  name: 'batch',
  flags: [
    new Option('--batch-region <region>', 'AWS region of the Batch stack (batch backend)'),
    new Option('--batch-job-queue <arn>', "job queue (default: the backend config's)"),
    new Option('--batch-job-definition <arn>', "job definition (default: the backend config's)"),
    new Option('--batch-bucket <name>', "state bucket (default: the backend config's)"),
    new Option('--batch-log-group <name>', "log group of the jobs (default: the backend config's)"),
    parsedOption(
      '--batch-runnable-timeout <duration>',
      'terminate a job Batch reports blocked in RUNNABLE (nothing can place it) for this long',
      parseRunnableTimeout,
      BATCH_DEFAULTS.runnableTimeout,
    ),
    new Option('--batch-submit-rate <n>', 'most job submissions per second')
      .argParser(intIn(1, 50))
      .default(BATCH_DEFAULTS.submitsPerSecond),
    new Option(
      '--batch-poll <min-max>',
      `how often jobs are described, from busy to idle (default ${BATCH_DEFAULTS.poll})`,
    ).argParser(parseDurationRange),
  ],
  usesModelProxy: false,
  settings(values, given, config) {
    const flags = values as unknown as BatchFlags;
    if (config && config.backend !== 'batch')
      throw new UsageError(`the backend config is for ${config.backend}, not batch`);
    const pick = (flag: keyof BatchFlags, fromConfig: string | undefined) =>
      (given(flag) ? (flags[flag] as string | undefined) : undefined) ?? fromConfig;
    const named = {
      region: pick('batchRegion', config?.region),
      jobQueue: pick('batchJobQueue', config?.jobQueueArn),
      jobDefinition: pick('batchJobDefinition', config?.jobDefinitionArn),
      bucket: pick('batchBucket', config?.bucketName),
      logGroup: pick('batchLogGroup', config?.logGroupName),
    };
    const missing = Object.entries(named)
      .filter(([, value]) => !value)
      .map(([key]) => `--batch-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (missing.length > 0)
      throw new UsageError(
        `the batch backend needs --backend-config FILE (a Batch stack's runtimeConfig) or ${missing.join(', ')}`,
      );
    if (config && config.vcpusPerJob > config.maxVcpus)
      throw new UsageError(
        `the stack's jobs need ${config.vcpusPerJob} vCPUs and its compute environment has at most ${config.maxVcpus}: no job could ever start`,
      );
    const sandbox = config?.sandbox;
    const poll =
      flags.batchPoll ??
      parseDurationRange(sandbox ? BATCH_DEFAULTS.sandboxPoll : BATCH_DEFAULTS.poll);
    return {
      ...(named as Record<keyof typeof named, string>),
      runsPrefix: config?.runsPrefix ?? 'runs/',
      runnableTimeoutMs: flags.batchRunnableTimeout,
      submitsPerSecond: flags.batchSubmitRate,
      poll,
      ...(config && {
        capacity: { maxVcpus: config.maxVcpus, vcpusPerJob: config.vcpusPerJob },
        model:
          config.model.provider === 'bedrock'
            ? {
                provider: 'bedrock' as const,
                model: config.model.model,
                allowed: config.bedrockModels ?? [config.model.model],
              }
            : { provider: 'anthropic' as const },
      }),
      ...(sandbox && { sandbox }),
    };
  },
  async preflight(settings, { allowedTools, agent, setup }) {
    checkExecutorModel(settings, agent);
    if (setup?.network === 'none')
      throw new UsageError(
        "--setup-network none: a Batch job's network is its stack's (the compute environment's subnets), not one a run can turn off; leave --setup-network open",
      );
    const { checkBatch } = await import('./preflight.js');
    await checkBatch(settings);
    return { settings, allowedTools };
  },
  async doctor(settings, env) {
    const { batchDoctor } = await import('./doctor.js');
    return batchDoctor(settings, env);
  },
  async create(settings, { config, layout, secrets, force }) {
    const slots = jobSlots(settings);
    if (slots !== undefined && config.executors > slots)
      process.stderr.write(
        `note: -e ${config.executors}, but the compute environment runs at most ${slots} jobs at once (maxVcpus ${settings.capacity?.maxVcpus}, ${settings.capacity?.vcpusPerJob} vCPU a job): the others wait their turn in RUNNABLE, which costs no attempt\n`,
      );
    const { BatchBackend } = await import('./backend.js');
    return new BatchBackend({ settings, config, layout, secrets, ...(force && { force }) });
  },
};

/** How many jobs the stack's compute environment runs at once, when the stack says. */
function jobSlots(settings: Pick<BatchSettings, 'capacity'>): number | undefined {
  const { capacity } = settings;
  // A little slack: fractional vCPUs (0.25 a job on 0.5) must not lose a slot to rounding.
  return capacity && Math.floor(capacity.maxVcpus / capacity.vcpusPerJob + 1e-9);
}

/**
 * A job invokes the executor model the host names when it uses the same provider as the stack
 * (the entrypoint's rule); on Bedrock its role allows only the stack's models, so any other
 * would fail in every job: refused here, before any job.
 */
function checkExecutorModel(
  settings: Pick<BatchSettings, 'model'>,
  agent: { provider: string; model: string } | undefined,
): void {
  const stack = settings.model;
  if (stack?.provider !== 'bedrock' || agent?.provider !== 'bedrock') return;
  const allowed = stack.allowed ?? (stack.model ? [stack.model] : []);
  if (!allowed.includes(agent.model))
    throw new UsageError(
      `executor model ${agent.model} is not one the stack's job role may invoke on Bedrock: use ${allowed.join(', ')} (--executor-model), or add it to the stack's models`,
    );
}
