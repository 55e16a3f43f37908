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
      'terminate a job that waits this long for capacity',
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
        model:
          config.model.provider === 'bedrock'
            ? { provider: 'bedrock' as const, model: config.model.model }
            : { provider: 'anthropic' as const },
      }),
      ...(sandbox && { sandbox }),
    };
  },
  async preflight(settings, { allowedTools }) {
    const { checkBatch } = await import('./preflight.js');
    await checkBatch(settings);
    return { settings, allowedTools };
  },
  async create(settings, { config, layout, secrets }) {
    const { BatchBackend } = await import('./backend.js');
    return new BatchBackend({ settings, config, layout, secrets });
  },
};
