import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Need } from './needing.js';

export const notRoot = process.getuid?.() === 0 ? undefined : 'needs root';

/** What needs root (per-agent limits, giving files away): REQUIRE_ROOT=1 (CI) fails without it. */
export const rootNeed = (missing: string | undefined): Need => ({
  missing,
  enable: 'run the tests as root (CI does)',
  required: 'REQUIRE_ROOT',
});
export const MiB = 2 ** 20;
export const GiB = 2 ** 30;

/** A mountinfo line as the kernel writes it (proc(5)): only the fields the code reads vary. */
export const mountinfoLine = (
  id: number,
  root: string,
  point: string,
  type: string,
  options: string,
) => `${id} 1 0:${id} ${root} ${point} rw,relatime shared:${id} - ${type} ${type} ${options}`;

/** A run id no other test (or engineer) on this machine uses. */
export const testRunId = (what: string) => `test-${what}-${randomBytes(3).toString('hex')}`;

/** A child's exit, however it ended. */
export function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export function spawnArgv(argv: string[]): ChildProcess {
  const [file, ...args] = argv;
  return spawn(file as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The first line a child prints. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0] as string);
    });
  });
}

export async function until(condition: () => Promise<boolean> | boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(20);
  }
}

/** Writes MiB chunks to `file` up to `bytes` (or until the disk refuses); the error if any. */
export function fill(
  file: string,
  bytes = Number.POSITIVE_INFINITY,
): NodeJS.ErrnoException | undefined {
  const chunk = Buffer.alloc(MiB, 1);
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += MiB) writeSync(fd, chunk);
  } catch (error) {
    return error as NodeJS.ErrnoException;
  } finally {
    closeSync(fd);
  }
  return undefined;
}

/** Mount points below `dir`, from this process's mountinfo. */
export function mountedUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(`${dir}/`));
}
