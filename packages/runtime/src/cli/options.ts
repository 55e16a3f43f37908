import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InvalidArgumentError, Option } from 'commander';
import { type BackendConfig, BackendConfigSchema } from '../contracts/backend-config.js';
import {
  MAX_PLAN_BYTES,
  MAX_PLAN_TASKS,
  MAX_REQUIREMENTS_CHARS,
  type Plan,
  parsePlan,
} from '../contracts/plan.js';
import {
  type AgentNetwork,
  AgentNetworkSchema,
  BACKEND_NAMES,
  type BackendName,
} from '../contracts/run-config.js';
import { UsageError } from '../errors.js';
import { errorMessage } from '../scheduler/scheduler.js';
import { formatBytes } from '../util/bytes.js';

export const DEFAULTS = {
  executors: 5,
  backend: 'local' as BackendName,
  output: './runs',
  maxTasks: 100,
  retries: 2,
  retryDelay: '1s',
  taskTimeout: '30m',
  verifyTimeout: '10m',
  simTaskMs: '250-1000',
  seed: 42,
  maxFileSize: '100m',
  maxTaskSize: '512m',
  agentNetwork: 'none' as AgentNetwork,
  setupNetwork: 'open' as SetupNetwork,
  setupTimeout: '30m',
} as const;

export type SetupNetwork = 'open' | 'none';

export function parseSetupNetwork(value: string): SetupNetwork {
  if (value !== 'open' && value !== 'none')
    throw new InvalidArgumentError('choose from: open, none.');
  return value;
}

/** An option whose default is written as the user would type it, e.g. `30m`. */
export function parsedOption<T>(
  flags: string,
  description: string,
  parse: (value: string) => T,
  typed: string,
): Option {
  return new Option(flags, description).argParser(parse).default(parse(typed), typed);
}

/**
 * How `config` writes back a parsed value in its flag's units: each parser of a value with units
 * (durations, sizes, CPUs, ranges, lists) registers its writer here, so a new flag built from
 * them is shown as typed without being listed anywhere.
 */
const WRITERS = new WeakMap<object, (value: never) => string>();

function writtenAs<T>(
  parse: (value: string) => T,
  write: (value: T) => string,
): (value: string) => T {
  WRITERS.set(parse, write);
  return parse;
}

/** A value as the option's flag takes it: `1800000` → `30m`, `4294967296` → `4g`. */
export function optionText(option: Option, value: unknown): string {
  if (value === undefined) return '';
  const write = option.parseArg && WRITERS.get(option.parseArg);
  if (write) return write(value as never);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `n` in the largest unit that writes it exactly: 90_000 ms is `90s`, 1_800_000 is `30m`. */
function inUnits(n: number, units: Record<string, number>, zero: string): string {
  if (n === 0) return zero;
  const [unit, size] = Object.entries(units)
    .sort(([, a], [, b]) => b - a)
    .find(([, size]) => n % size === 0) ?? ['', 1];
  return `${n / size}${unit}`;
}

const SIZE_UNITS: Record<string, number> = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };
const writeSize = (bytes: number) => inUnits(bytes, SIZE_UNITS, '0');

/** A size as Docker writes it (`512m`, `4g`), within [min, max] bytes. */
export function sizeIn(min: string, max: string): (value: string) => number {
  const bytes = (value: string) => {
    const match = /^(\d+(?:\.\d+)?)([bkmg])?$/i.exec(value.trim());
    return match
      ? Math.round(Number(match[1]) * (SIZE_UNITS[(match[2] ?? 'b').toLowerCase()] as number))
      : Number.NaN;
  };
  const [low, high] = [bytes(min), bytes(max)];
  return writtenAs((value: string) => {
    const n = bytes(value);
    if (!(n >= low && n <= high))
      throw new InvalidArgumentError(`expected a size from ${min} to ${max}, such as 512m or 4g.`);
    return n;
  }, writeSize);
}

/** Docker's memory limit: it refuses less than 6 MiB. */
export const parseMemory = sizeIn('6m', '1024g');
/** A slot's disk: ext4 needs some room of its own below 64 MiB. */
export const parseDiskLimit = sizeIn('64m', '65536g');
/** Output limits: from a kilobyte up; more than a terabyte is no limit at all. */
export const parseOutputSize = sizeIn('1k', '1024g');

/** CPUs as a decimal (`1.5`), as Docker's NanoCpus. */
export const parseCpus = writtenAs(
  (value: string): number => {
    const cpus = Number(value);
    if (!Number.isFinite(cpus) || cpus <= 0 || cpus > 1024)
      throw new InvalidArgumentError('expected a number of CPUs, such as 2 or 0.5.');
    return Math.round(cpus * 1e9);
  },
  (nanoCpus) => String(nanoCpus / 1e9),
);

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

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const writeDuration = (ms: number) => inUnits(ms, UNITS, '0s');

/** `1500ms`, `90s`, `30m`, `2h`, `7d`; a bare number is seconds. */
function durationMs(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  return match ? Math.round(Number(match[1]) * (UNITS[match[2] ?? 's'] as number)) : Number.NaN;
}

/**
 * A duration within [min, max], both written as durations. Every duration ends up in a timer,
 * and Node's timers overflow past 24.8 days (they then fire at once), so every flag is bounded.
 */
export function durationIn(min: string, max: string): (value: string) => number {
  const [low, high] = [durationMs(min), durationMs(max)];
  return writtenAs((value: string) => {
    const ms = durationMs(value);
    if (!(ms >= low && ms <= high))
      throw new InvalidArgumentError(
        `expected a duration from ${min} to ${max}, such as 500ms, 90s, 30m or 2h.`,
      );
    return ms;
  }, writeDuration);
}

export const parseTaskTimeout = durationIn('100ms', '7d');

/** `MIN-MAX` durations, such as `2s-20s`: each from 50ms to 10m, the first at most the second. */
export const parseDurationRange = writtenAs(
  (value: string): { minMs: number; maxMs: number } => {
    const parse = durationIn('50ms', '10m');
    const [low, high, ...rest] = value.split('-');
    const range = { minMs: parse(low ?? ''), maxMs: parse(high ?? low ?? '') };
    if (rest.length > 0 || range.minMs > range.maxMs)
      throw new InvalidArgumentError('expected MIN-MAX durations, such as 2s-20s.');
    return range;
  },
  ({ minMs, maxMs }) => `${writeDuration(minMs)}-${writeDuration(maxMs)}`,
);
export const parseRetryDelay = durationIn('0s', '1h');

export function parseAgentNetwork(value: string): AgentNetwork {
  if (!(AgentNetworkSchema.options as readonly string[]).includes(value))
    throw new InvalidArgumentError(`choose from: ${AgentNetworkSchema.options.join(', ')}.`);
  return value as AgentNetwork;
}

export function parseBackend(value: string): BackendName {
  if (!(BACKEND_NAMES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`unknown backend; choose from: ${BACKEND_NAMES.join(', ')}.`);
  }
  return value as BackendName;
}

/** `--sim-task-ms`: one duration (`500`) or a range (`200-800`) drawn from per task. */
export const parseSimRange = writtenAs(
  (value: string): { min: number; max: number } => {
    const match = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
    const min = Number(match?.[1]);
    const max = Number(match?.[2] ?? match?.[1]);
    if (!match || min > max || max > 86_400_000) {
      throw new InvalidArgumentError('expected milliseconds (500) or a range MIN-MAX (200-800).');
    }
    return { min, max };
  },
  ({ min, max }) => (min === max ? `${min}` : `${min}-${max}`),
);

/** The most an input file may hold: far above any real one, low enough never to exhaust memory. */
export const INPUT_LIMITS = {
  /** Requirements are capped in characters; UTF-8 takes at most 4 bytes for one. */
  requirements: MAX_REQUIREMENTS_CHARS * 4,
  plan: MAX_PLAN_BYTES,
  backendConfig: 2 ** 20,
} as const;

/**
 * Reads an input file of at most `maxBytes`: a regular file (its size checked first) or a pipe
 * (read up to the limit). A device such as /dev/zero, a directory or a socket is refused before
 * anything is read, so no input can make the CLI read forever.
 */
function readText(file: string, what: string, maxBytes: number): string {
  const tooBig = () => new UsageError(`${what} ${file} is larger than ${formatBytes(maxBytes)}`);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${what} ${file}: ${code ?? errorMessage(error)}`);
  }
  try {
    const stats = fstatSync(fd);
    if (stats.isFile()) {
      if (stats.size > maxBytes) throw tooBig();
    } else if (!stats.isFIFO()) {
      throw new UsageError(`${what} ${file} is not a regular file or a pipe`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.alloc(64 * 1024);
    while (true) {
      const read = readSync(fd, chunk);
      if (read === 0) break;
      total += read;
      if (total > maxBytes) throw tooBig();
      chunks.push(Buffer.from(chunk.subarray(0, read)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** The requirement text from the positional words or `--file`, checked for emptiness and size. */
export function loadRequirements(words: readonly string[], file: string | undefined): string {
  if (file !== undefined && words.length > 0) {
    throw new UsageError('give the requirements either as an argument or with --file, not both');
  }
  const text =
    file !== undefined
      ? readText(file, 'requirements file', INPUT_LIMITS.requirements)
      : words.join(' ');
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
export const parseToolList = writtenAs(toolList, (tools) => tools.join(','));
function toolList(value: string): string[] {
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

/**
 * Paths inside a repository, comma-separated (`test/,package.json`): relative, without `..`, as
 * git names them.
 */
export const parseRepositoryPaths = writtenAs(repositoryPaths, (paths) => paths.join(','));
function repositoryPaths(value: string): string[] {
  const paths = value
    .split(',')
    .map((p) => p.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  const bad = paths.find(
    (p) => p.startsWith('/') || p.split('/').some((part) => part === '..' || part === '.git'),
  );
  if (paths.length === 0 || bad !== undefined)
    throw new InvalidArgumentError(
      `expected paths inside the repository separated by commas, such as test/,package.json${bad ? ` (not ${bad})` : ''}.`,
    );
  return paths;
}

/** A model id as the provider spells it. */
export function parseModel(value: string): string {
  const model = value.trim();
  if (!/^[\w.:/@-]+$/.test(model))
    throw new InvalidArgumentError('expected a model id, such as claude-sonnet-5-5.');
  return model;
}

function readJson(file: string, what: string, maxBytes: number): unknown {
  const text = readText(file, what, maxBytes);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${file} is not JSON: ${errorMessage(error)}`);
  }
}

/** A plan file, validated like any plan. */
export function loadPlanFile(file: string, maxTasks: number): Plan {
  const json = readJson(file, 'plan file', INPUT_LIMITS.plan);
  try {
    return parsePlan(json, { maxTasks });
  } catch (error) {
    throw new UsageError(`invalid plan in ${file}: ${errorMessage(error)}`);
  }
}

/** `--backend-config`: a stack's `runtimeConfig` output (`pulumi stack output runtimeConfig --json`). */
export function loadBackendConfig(file: string): BackendConfig {
  const parsed = BackendConfigSchema.safeParse(
    readJson(file, 'backend config', INPUT_LIMITS.backendConfig),
  );
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new UsageError(`invalid backend config in ${file}: ${where}${issue?.message}`);
  }
  return parsed.data;
}
