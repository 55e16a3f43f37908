import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError, type Option } from 'commander';
import { UsageError } from '../errors.js';

/** Found in the working directory, or named with `--config`. */
export const CONFIG_FILE = 'parallel-orchestrator.config.json';
const MAX_CONFIG_BYTES = 256 * 1024;

/** `executors` → `PO_EXECUTORS`, `dockerImage` → `PO_DOCKER_IMAGE`. */
export function envName(attribute: string): string {
  return `PO_${attribute.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

export interface ConfigFile {
  file?: string;
  values: Record<string, unknown>;
}

/** The config file: the one named, else the working directory's if there is one. */
export function readConfigFile(named?: string): ConfigFile {
  const file = named ?? (existsSync(CONFIG_FILE) ? CONFIG_FILE : undefined);
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
    throw new UsageError(`--config ${shown}: ${reason}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new UsageError(`${shown} must hold one JSON object of run options`);
  return { file: shown, values: parsed as Record<string, unknown> };
}

/** The output directory runs go to, as `run` would take it without flags: for `latest` and `runs`. */
export function configuredOutput(fallback: string): string {
  const fromEnv = process.env[envName('output')];
  if (fromEnv) return fromEnv;
  const { values } = readConfigFile();
  return typeof values.output === 'string' ? values.output : fallback;
}

/** Where an option's value came from, as commander records it. */

function parsed(option: Option, raw: unknown, where: string): unknown {
  if (option.isBoolean()) {
    if (raw === true || raw === 'true' || raw === '1') return true;
    if (raw === false || raw === 'false' || raw === '0') return false;
    throw new UsageError(`${where}: expected true or false, not ${JSON.stringify(raw)}`);
  }
  const text = Array.isArray(raw) ? raw.join(',') : String(raw);
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
 * parsed and checked like the flag's own. Keys the file has that no command knows are refused.
 */
export function applySources(command: Command, config: ConfigFile, known: ReadonlySet<string>) {
  for (const key of Object.keys(config.values)) {
    if (!known.has(key)) throw new UsageError(`${config.file}: no option ${key}`);
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

/** Each option's value and where it came from: what `config` shows. */
export function optionSources(
  command: Command,
): { option: string; env: string; value: unknown; source: string }[] {
  return command.options
    .filter((option) => option.long && option.attributeName() !== 'config')
    .map((option) => {
      const key = option.attributeName();
      const source = command.getOptionValueSource(key) ?? 'unset';
      return {
        option: option.long as string,
        env: envName(key),
        value: command.getOptionValue(key),
        source: source === 'config' ? 'file' : source === 'cli' ? 'flag' : source,
      };
    });
}

/** Headings of the option groups whose options only mean something in one mode. */
export const GROUPS = {
  real: 'Real mode (with --real):',
  simulation: 'Simulation (without --real):',
  backend: (name: string) => `${name} backend (with --backend ${name}):`,
} as const;

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
    const backendOf = /^(\w+) backend \(/.exec(group ?? '')?.[1];
    if (backendOf && backend !== undefined && backendOf !== backend)
      throw new UsageError(
        `${option.long} is for the ${backendOf} backend: add --backend ${backendOf}, or leave it out`,
      );
  }
}
