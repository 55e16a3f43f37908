import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { type RunLayout, runLayout } from '../contracts/run-layout.js';
import { prepareOutputDir } from './output-dir.js';

export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunDirError';
  }
}

function timestamp(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`
  );
}

/** Creates a new, never reused run directory under `outputDir`: `<utc time>-<hint>-<random>`. */
export function createRunDir(outputDir: string, hint: string, now = new Date()): RunLayout {
  prepareOutputDir(outputDir);
  const name = hint
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/, '');
  for (let tries = 0; tries < 10; tries++) {
    const dir = path.join(
      outputDir,
      `${timestamp(now)}-${name || 'run'}-${randomBytes(3).toString('hex')}`,
    );
    try {
      mkdirSync(dir); // not recursive: fails if another run took the name
      return runLayout(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  throw new RunDirError(`cannot create a unique run directory in ${outputDir}`);
}

/** Checks that `dir` holds a run (plan, config and journal) and returns its layout. */
export function openRunDir(dir: string): RunLayout {
  const layout = runLayout(dir);
  if (!existsSync(layout.root)) throw new RunDirError(`${dir} does not exist`);
  const missing = [layout.config, layout.plan, layout.journal].filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new RunDirError(
      `${dir} is not a run directory (missing ${missing.map((f) => path.basename(f)).join(', ')})`,
    );
  }
  return layout;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process driving the run right now, if any. */
export function lockHolder(layout: RunLayout): number | undefined {
  let holder: number;
  try {
    holder = Number.parseInt(readFileSync(layout.lock, 'utf8'), 10);
  } catch {
    return undefined;
  }
  return Number.isInteger(holder) && isAlive(holder) ? holder : undefined;
}

/**
 * Takes the run's lock so two orchestrators never drive one run. A lock left by a process that
 * no longer exists (a killed orchestrator) is taken over.
 */
export function acquireRunLock(layout: RunLayout): () => void {
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(layout.lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(layout.lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = lockHolder(layout);
      if (holder !== undefined && holder !== process.pid) {
        throw new RunDirError(`run ${layout.root} is in use by process ${holder}`);
      }
      rmSync(layout.lock, { force: true });
    }
  }
  throw new RunDirError(`cannot lock run ${layout.root}`);
}

/**
 * Processes other than this one whose working directory is inside `dir` (every git the
 * orchestrator starts works in its run directory), or undefined where the system does not say
 * (no /proc).
 */
export function processesWorkingIn(dir: string): number[] | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const root = path.resolve(dir);
  return pids.map(Number).filter((pid) => {
    if (pid === process.pid) return false;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      return cwd === root || cwd.startsWith(`${root}/`);
    } catch {
      return false;
    }
  });
}
