import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { VERIFY_LIMITS, type Verification } from '../contracts/verify.js';
import { CappedLog } from '../util/capped-log.js';

export interface VerifyProcessOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Appended to, capped at VERIFY_LIMITS.logBytes. */
  logPath: string;
  signal: AbortSignal;
}

/**
 * Runs a verify command (already wrapped in its sandbox by the caller) to its end: output to the
 * log, the whole process group killed on timeout or abort, and the end of what it printed kept
 * for the retry's prompt. Never throws for the command's own failures.
 */
export async function runVerifyProcess(
  file: string,
  args: readonly string[],
  options: VerifyProcessOptions,
): Promise<Verification> {
  const started = Date.now();
  const from = await sizeOf(options.logPath);
  const log = new CappedLog(options.logPath, VERIFY_LIMITS.logBytes);
  let timedOut = false;
  const ended = await new Promise<{ code: number | null; error?: string }>((resolve) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const kill = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    options.signal.addEventListener('abort', kill, { once: true });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const settle = (result: { code: number | null; error?: string }) => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', kill);
      resolve(result);
    };
    child.on('error', (error) => settle({ code: null, error: error.message }));
    child.on('close', (code) => settle({ code }));
  });
  await log.close();
  return {
    exitCode: ended.code,
    timedOut,
    durationMs: Date.now() - started,
    tail: await readTail(options.logPath, from),
    ...(ended.error && { error: ended.error }),
  };
}

/** The size of a log so far: where a new run's output starts (0 when there is none yet). */
export async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** The last VERIFY_LIMITS.tailBytes of `file` written after offset `from`, as text. */
export async function readTail(file: string, from: number): Promise<string> {
  const end = await sizeOf(file);
  const start = Math.max(from, end - VERIFY_LIMITS.tailBytes);
  if (end <= start) return '';
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(end - start);
    await handle.read(buffer, 0, buffer.length, start);
    // A cut may land inside a character: drop what precedes the first full line when cut.
    const text = buffer.toString('utf8');
    return start > from ? text.slice(text.indexOf('\n') + 1) : text;
  } finally {
    await handle.close();
  }
}
