#!/usr/bin/env node
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { type BatchSandbox, DEFAULT_IMAGE, startBatchSandbox } from './sandbox.js';

/** Bad input: one line on stderr, exit 2, as every command of this project does. */
class UsageError extends Error {}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError('a positive number');
  return number;
}

/** The model key jobs get through the definition's secret: the sandbox process's own, if any. */
function anthropicApiKey(): string | undefined {
  const file = process.env.ANTHROPIC_API_KEY_FILE;
  if (file) return readFileSync(file, 'utf8').trim();
  return process.env.ANTHROPIC_API_KEY || undefined;
}

async function main(): Promise<void> {
  const program = new Command('sandbox:batch')
    .description(
      'A local AWS Batch: Batch, S3 and CloudWatch Logs endpoints on this machine, each job a ' +
        'Docker container. Writes the backend config once ready; runs until Ctrl-C or SIGTERM.',
    )
    .requiredOption('--config-out <file>', 'where to write the backend config (--backend-config)')
    .option('--image <image>', 'the local image every job runs', DEFAULT_IMAGE)
    .option('--max-vcpus <n>', 'the compute environment ceiling', positiveNumber, 4)
    .option('--region <region>', 'the region the config names', 'us-east-1')
    .option('--bucket <name>', 'the state bucket', 'parallel-orchestrator-sandbox')
    .exitOverride()
    .configureOutput({ writeErr: () => {} });

  try {
    program.parse();
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    if (code === 'commander.helpDisplayed') return;
    throw new UsageError(message.replace(/^error: /, ''));
  }
  const options = program.opts<{
    configOut: string;
    image: string;
    maxVcpus: number;
    region: string;
    bucket: string;
  }>();

  let sandbox: BatchSandbox | undefined;
  let stopping = false;
  const shutDown = async (started: BatchSandbox) => {
    await started.close();
    process.exit(0);
  };
  // A signal during startup stops the sandbox as soon as it is up (close needs it whole).
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (sandbox) void shutDown(sandbox);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  const key = anthropicApiKey();
  try {
    sandbox = await startBatchSandbox({
      image: options.image,
      maxVcpus: options.maxVcpus,
      region: options.region,
      bucket: options.bucket,
      ...(key && { anthropicApiKey: key }),
    });
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error),
    );
  }
  if (stopping) {
    await shutDown(sandbox);
    return;
  }
  // Written whole, then renamed: a reader never sees half a config.
  const target = path.resolve(options.configOut);
  const partial = `${target}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(sandbox.config, null, 2)}\n`);
  renameSync(partial, target);
  process.stdout.write(
    `Batch sandbox ready: config in ${target} (Batch ${sandbox.config.sandbox?.batch}); Ctrl-C stops it\n`,
  );
  if (!key) {
    process.stderr.write(
      'ANTHROPIC_API_KEY is not set: jobs get a placeholder model key (simulated runs work; real runs need the key)\n',
    );
  }
}

main().catch(async (error: unknown) => {
  const message = error instanceof UsageError ? error.message : `batch sandbox failed: ${error}`;
  process.stderr.write(`${message.split('\n')[0]}\n`);
  process.exit(error instanceof UsageError ? 2 : 70);
});
