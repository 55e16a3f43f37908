import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Command, InvalidArgumentError, type Option } from 'commander';
import { UsageError } from '../errors.js';
import { optionText } from './options.js';

/** Found in the working directory, or named with `--config`. */
export const CONFIG_FILE = 'parallel-orchestrator.config.json';
const MAX_CONFIG_BYTES = 256 * 1024;

/** `executors` → `PO_EXECUTORS`, `dockerImage` → `PO_DOCKER_IMAGE`. */
export function envName(attribute: string): string {
  return `PO_${attribute.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * `PO_` names that are not options: the test suites' (`PO_TEST_CLI`, `PO_TEST_IMAGE`, …) and the
 * benchmarks' (`PO_BENCH_USAGE_FILE`), set around the CLI they run.
 */
export const RESERVED_ENV_PREFIXES = ['PO_TEST_', 'PO_BENCH_'] as const;

/** Edits that turn `a` into `b` (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(
        (row[j] as number) + 1,
        (next[j - 1] as number) + 1,
        (row[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    row = next;
  }
  return row[b.length] as number;
}

/**
 * `; did you mean X?` for the nearest of `names`, else nothing: within 3 edits, and fewer for a
 * short name (a third of its length, past the shared `PO_`), so that `PO_FOO` suggests nothing.
 */
function nearest(name: string, names: Iterable<string>): string {
  const own = name.replace(/^PO_/, '').toLowerCase();
  const most = Math.min(3, Math.max(1, Math.floor(own.length / 3)));
  let best: { name: string; edits: number } | undefined;
  for (const candidate of names) {
    const edits = distance(own, candidate.replace(/^PO_/, '').toLowerCase());
    if (edits <= most && (!best || edits < best.edits)) best = { name: candidate, edits };
  }
  return best ? `; did you mean ${best.name}?` : '';
}

/**
 * Refuses a `PO_` variable that names no option: a typo (`PO_EXECUTOR=3`) would otherwise be
 * ignored without a word. `known` are the options' attribute names.
 */
export function checkEnvironment(known: ReadonlySet<string>, env = process.env): void {
  const names = new Set([...known].map(envName));
  for (const name of Object.keys(env)) {
    if (!name.startsWith('PO_') || names.has(name)) continue;
    if (RESERVED_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const hint = nearest(name, names);
    throw new UsageError(
      `${name} is not a known variable${hint || ': PO_ and a run option in capitals, such as PO_EXECUTORS'}`,
    );
  }
}

/**
 * Options whose values are paths: a leading `~` in them, from the environment or the config file
 * (where no shell expands it), is the home directory.
 */
const PATH_OPTIONS: ReadonlySet<string> = new Set([
  'output',
  'cacheDir',
  'repo',
  'backendConfig',
  'file',
  'plan',
  'config',
  'push',
]);

/** `~` and `~/…` → the home directory (`~user` is left as it is). */
export function expandHome(value: string): string {
  return value === '~' || value.startsWith('~/') ? path.join(os.homedir(), value.slice(1)) : value;
}

export interface ConfigFile {
  file?: string;
  values: Record<string, unknown>;
}

/**
 * The config file: the one named (`--config`, else `PO_CONFIG`), else the working directory's if
 * there is one.
 */
export function readConfigFile(named?: string): ConfigFile {
  const fromEnv = process.env[envName('config')] || undefined;
  const file =
    named ??
    (fromEnv && expandHome(fromEnv)) ??
    (existsSync(CONFIG_FILE) ? CONFIG_FILE : undefined);
  if (!file) return { values: {} };
  const shown = path.relative(process.cwd(), file) || file;
  let parsed: unknown;
  try {
    const text = readFileSync(file);
    if (text.length > MAX_CONFIG_BYTES)
      throw new UsageError(`${shown} is over ${MAX_CONFIG_BYTES / 1024} KB`);
    parsed = JSON.parse(text.toString('utf8'));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not JSON';
    const flag = named === undefined && fromEnv ? envName('config') : '--config';
    throw new UsageError(`${flag} ${shown}: ${reason}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new UsageError(`${shown} must hold one JSON object of run options`);
  return { file: shown, values: parsed as Record<string, unknown> };
}

/** The output directory runs go to, as `run` would take it without flags: for `latest` and `runs`. */
export function configuredOutput(fallback: string): string {
  const fromEnv = process.env[envName('output')];
  if (fromEnv) return expandHome(fromEnv);
  const { values } = readConfigFile();
  return typeof values.output === 'string' ? expandHome(values.output) : fallback;
}

function parsed(option: Option, raw: unknown, where: string): unknown {
  if (option.isBoolean()) {
    if (raw === true || raw === 'true' || raw === '1') return true;
    if (raw === false || raw === 'false' || raw === '0') return false;
    throw new UsageError(`${where}: expected true or false, not ${JSON.stringify(raw)}`);
  }
  const joined = Array.isArray(raw) ? raw.join(',') : String(raw);
  const text = PATH_OPTIONS.has(option.attributeName()) ? expandHome(joined) : joined;
  if (typeof raw === 'object' && !Array.isArray(raw))
    throw new UsageError(`${where}: expected a value, not an object`);
  try {
    return option.parseArg ? option.parseArg(text, undefined as never) : text;
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(`${where}: ${error.message}`);
    throw error;
  }
}

/**
 * Gives each option the command line left at its default a value from the environment
 * (`PO_<NAME>`) or else from the config file: flags > environment > file > defaults. Values are
 * parsed and checked like the flag's own, a leading `~` of a path expanded. Keys the file has that
 * no command knows are refused, naming the nearest known one.
 */
export function applySources(command: Command, config: ConfigFile, known: ReadonlySet<string>) {
  // A config file does not name another.
  const keys = [...known].filter((key) => key !== 'config');
  for (const key of Object.keys(config.values)) {
    if (!keys.includes(key))
      throw new UsageError(`${config.file}: no option ${key}${nearest(key, keys)}`);
  }
  for (const option of command.options) {
    const key = option.attributeName();
    if (key === 'config' || command.getOptionValueSource(key) === 'cli') continue;
    const name = envName(key);
    const fromEnv = process.env[name];
    if (fromEnv !== undefined && fromEnv !== '') {
      command.setOptionValueWithSource(key, parsed(option, fromEnv, name), 'env');
    } else if (key in config.values) {
      const value = parsed(option, config.values[key], `${config.file}: ${key}`);
      command.setOptionValueWithSource(key, value, 'config');
    }
  }
}

/** One option as `config` shows it. */
export interface OptionSource {
  option: string;
  env: string;
  /** As the run takes it (milliseconds, bytes, …). */
  value: unknown;
  /** As the flag takes it (`30m`, `4g`). */
  shown: string;
  source: string;
  /** Its `--help` group. */
  group: string;
}

/** Each option's value and where it came from: what `config` shows. */
export function optionSources(command: Command): OptionSource[] {
  return command.options
    .filter((option) => option.long && option.attributeName() !== 'config')
    .map((option) => {
      const key = option.attributeName();
      const source = command.getOptionValueSource(key) ?? 'unset';
      const value = command.getOptionValue(key);
      return {
        option: option.long as string,
        env: envName(key),
        value,
        shown: optionText(option, value),
        source: source === 'config' ? 'file' : source === 'cli' ? 'flag' : source,
        group: option.helpGroupHeading ?? 'Options:',
      };
    });
}

/** Headings of the option groups whose options only mean something in one mode. */
export const GROUPS = {
  real: 'Real mode (with --real):',
  simulation: 'Simulation (without --real):',
  backend: (name: string) => `${name} backend (with --backend ${name}):`,
} as const;

/** The backend an option group is for (`docker backend (with --backend docker):` → docker). */
export function backendOfGroup(group: string | undefined): string | undefined {
  return /^(\w+) backend \(/.exec(group ?? '')?.[1];
}

/**
 * Refuses a flag typed for another mode or backend than the one chosen, which would otherwise
 * be ignored without a word.
 */
export function checkModeFlags(command: Command, real: boolean, backend?: string): void {
  for (const option of command.options) {
    if (command.getOptionValueSource(option.attributeName()) !== 'cli') continue;
    const group = option.helpGroupHeading;
    if (group === GROUPS.real && !real)
      throw new UsageError(`${option.long} is for real runs: add --real, or leave it out`);
    if (group === GROUPS.simulation && real)
      throw new UsageError(`${option.long} is for simulated runs: leave it out with --real`);
    const backendOf = backendOfGroup(group);
    if (backendOf && backend !== undefined && backendOf !== backend)
      throw new UsageError(
        `${option.long} is for the ${backendOf} backend: add --backend ${backendOf}, or leave it out`,
      );
  }
}
