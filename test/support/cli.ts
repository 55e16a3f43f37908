import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JournalEvent } from '../../packages/runtime/src/contracts/events.js';
import type { ExecutionSummary } from '../../packages/runtime/src/contracts/results.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * The built CLI: tests run what users run (`pnpm test` builds first). `PO_TEST_CLI` names another
 * build's (a checkout of an earlier commit), to show a suite's attacks succeed against it.
 */
export const CLI = process.env.PO_TEST_CLI
  ? path.resolve(process.env.PO_TEST_CLI)
  : path.join(ROOT, 'packages/runtime/dist/cli/main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with a clean environment: PATH and HOME, plus `env`. `command` and `prefix` run it
 * through something else (a shell, `unshare`) whose own arguments come first.
 */
export function startCli(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  command = process.execPath,
  prefix: string[] = [CLI],
): { child: ChildProcess; done: Promise<CliResult>; stdout: () => string } {
  const child = spawn(command, [...prefix, ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c;
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c;
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, stdout: () => stdout };
}

export function runCli(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  command?: string,
  prefix?: string[],
): Promise<CliResult> {
  return startCli(args, cwd, env, command, prefix).done;
}

/** The `result` line `--json` ends with. */
export function resultLine(stdout: string): { runDir: string; status: string; exitCode: number } {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last);
}

export function readEvents(runDir: string): JournalEvent[] {
  return readFileSync(path.join(runDir, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

export function readSummary(runDir: string): ExecutionSummary {
  return JSON.parse(readFileSync(path.join(runDir, 'execution_summary.json'), 'utf8'));
}

/** Polls every `everyMs` (0: as often as the event loop allows) until `check` returns a value. */
export async function waitFor<T>(
  check: () => T | undefined,
  timeoutMs = 20_000,
  what = 'condition',
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = check();
    if (value !== undefined) return value;
    await new Promise((r) => (everyMs > 0 ? setTimeout(r, everyMs) : setImmediate(r)));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Starts `run` in the background with its output in `output`; resolves once the run directory
 * holds its journal, with the run's id.
 */
export async function startRunIn(
  args: string[],
  cwd: string,
  output: string,
  env: NodeJS.ProcessEnv = {},
): Promise<ReturnType<typeof startCli> & { runDir: string; runId: string }> {
  const started = startCli([...args, '-o', output, '--json'], cwd, env);
  const runDir = await waitFor(
    () => {
      const entries = existsSync(output)
        ? readdirSync(output).filter((e) => !e.startsWith('.'))
        : [];
      return entries[0] && existsSync(path.join(output, entries[0], 'events.jsonl'))
        ? path.join(output, entries[0])
        : undefined;
    },
    60_000,
    'the run directory',
  );
  return { ...started, runDir, runId: path.basename(runDir) };
}
