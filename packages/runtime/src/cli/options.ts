import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { type BackendConfig, BackendConfigSchema } from '../contracts/backend-config.js';
import { MAX_PLAN_TASKS, MAX_REQUIREMENTS_CHARS, type Plan, parsePlan } from '../contracts/plan.js';
import { BACKEND_NAMES, type BackendName } from '../contracts/run-config.js';
import { UsageError } from '../errors.js';
import { errorMessage } from '../scheduler/scheduler.js';

export const DEFAULTS = {
  executors: 5,
  backend: 'local' as BackendName,
  output: './runs',
  maxTasks: 100,
  retries: 2,
  retryDelay: '1s',
  taskTimeout: '30m',
  simTaskMs: '250-1000',
  seed: 42,
  dockerImage: 'parallel-orchestrator:latest',
  dockerMemory: '4g',
  dockerCpus: '2',
  dockerPids: 512,
} as const;

const SIZE_UNITS: Record<string, number> = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };

/** A memory size as Docker writes it: `512m`, `4g`. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)([bkmg])?$/i.exec(value.trim());
  const bytes = match
    ? Math.round(Number(match[1]) * (SIZE_UNITS[(match[2] ?? 'b').toLowerCase()] as number))
    : 0;
  if (!match || bytes < 6 * 2 ** 20)
    throw new InvalidArgumentError('expected a size of at least 6m, such as 512m or 4g.');
  return bytes;
}

/** CPUs as a decimal (`1.5`), as Docker's NanoCpus. */
export function parseCpus(value: string): number {
  const cpus = Number(value);
  if (!Number.isFinite(cpus) || cpus <= 0 || cpus > 1024)
    throw new InvalidArgumentError('expected a number of CPUs, such as 2 or 0.5.');
  return Math.round(cpus * 1e9);
}

/** Commander argument parser for an integer within [min, max]. */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

export const parseExecutors = intIn(1, 1000);
export const parseMaxTasks = intIn(1, MAX_PLAN_TASKS);

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `1500ms`, `90s`, `30m`, `2h`; a bare number is seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('expected a duration such as 500ms, 90s, 30m or 2h.');
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? 's'] as number));
}

export function parseBackend(value: string): BackendName {
  if (!(BACKEND_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`unknown backend; choose from: ${BACKEND_NAMES.join(', ')}.`);
  }
  return value as BackendName;
}

/** `--sim-task-ms`: one duration (`500`) or a range (`200-800`) drawn from per task. */
export function parseSimRange(value: string): { min: number; max: number } {
  const match = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
  const min = Number(match?.[1]);
  const max = Number(match?.[2] ?? match?.[1]);
  if (!match || min > max || max > 86_400_000) {
    throw new InvalidArgumentError('expected milliseconds (500) or a range MIN-MAX (200-800).');
  }
  return { min, max };
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${what} ${file}: ${code ?? errorMessage(error)}`);
  }
}

/** The requirement text from the positional words or `--file`, checked for emptiness and size. */
export function loadRequirements(words: readonly string[], file: string | undefined): string {
  if (file !== undefined && words.length > 0) {
    throw new UsageError('give the requirements either as an argument or with --file, not both');
  }
  const text = file !== undefined ? readText(file, 'requirements file') : words.join(' ');
  if (file === undefined && words.length === 0) {
    throw new UsageError(
      'no requirements: pass them as an argument, or use --file FILE or --plan FILE',
    );
  }
  if (text.trim().length === 0) {
    throw new UsageError(`requirements${file ? ` in ${file}` : ''} are empty`);
  }
  if (text.length > MAX_REQUIREMENTS_CHARS) {
    throw new UsageError(
      `requirements are ${text.length} characters long; the limit is ${MAX_REQUIREMENTS_CHARS}`,
    );
  }
  return text.trim();
}

/** A positive amount of US dollars, e.g. `2.50`. */
export function parseUsd(value: string): number {
  const n = Number(value.trim().replace(/^\$/, ''));
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('expected a positive amount of US dollars, such as 2.50.');
  return n;
}

/** A comma-separated list of Claude Code tool names. */
export function parseToolList(value: string): string[] {
  const tools = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tools.length === 0 || tools.some((t) => !/^[A-Za-z][A-Za-z0-9_]*$/.test(t))) {
    throw new InvalidArgumentError(
      'expected tool names separated by commas, such as Read,Write,Edit,Bash.',
    );
  }
  return tools;
}

/** A model id as the provider spells it. */
export function parseModel(value: string): string {
  const model = value.trim();
  if (!/^[\w.:/@-]+$/.test(model))
    throw new InvalidArgumentError('expected a model id, such as claude-sonnet-4-5.');
  return model;
}

function readJson(file: string, what: string): unknown {
  const text = readText(file, what);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${file} is not JSON: ${errorMessage(error)}`);
  }
}

/** A plan file, validated like any plan. */
export function loadPlanFile(file: string, maxTasks: number): Plan {
  const json = readJson(file, 'plan file');
  try {
    return parsePlan(json, { maxTasks });
  } catch (error) {
    throw new UsageError(`invalid plan in ${file}: ${errorMessage(error)}`);
  }
}

/** `--backend-config`: a stack's `runtimeConfig` output (`pulumi stack output runtimeConfig --json`). */
export function loadBackendConfig(file: string): BackendConfig {
  const parsed = BackendConfigSchema.safeParse(readJson(file, 'backend config'));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new UsageError(`invalid backend config in ${file}: ${where}${issue?.message}`);
  }
  return parsed.data;
}
