/** Bad input or configuration, found before or during a run: one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes, as documented: the contract scripts rely on. */
export const EXIT = {
  succeeded: 0,
  failed: 1,
  usage: 2,
  /**
   * The orchestrator itself failed mid-run (its run directory removed, the disk full, git gone):
   * not the tasks' doing; `resume` continues once the cause is fixed. EX_SOFTWARE of sysexits.
   */
  internal: 70,
  cancelled: 130,
} as const;

/** The orchestrator could not go on with a run (exit 70): says which run and how to go on. */
export class RunStoppedError extends Error {
  constructor(
    readonly runDir: string,
    cause: unknown,
  ) {
    super(`run ${runDir} stopped: ${describeError(cause)}; resume it once that is fixed`, {
      cause,
    });
    this.name = 'RunStoppedError';
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EIO: 'input/output error',
};

/** What a system error code means, in words, where it is one a user can act on. */
export function errnoText(code: string | undefined): string | undefined {
  return code ? ERRNO_TEXT[code] : undefined;
}

/**
 * A system error (ENOSPC, EACCES...) as one line a person can act on: what happened and to
 * which path. Other errors keep their message.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, path } = error as NodeJS.ErrnoException;
  const text = errnoText(code);
  if (!text) return error.message;
  return path ? `${text}: ${path}` : text;
}

/**
 * The base a run starts from is not ready: its `--setup` failed, or its `--verify` fails before
 * any task (exit 1). Told in a few lines: what failed, the end of its output, where the whole of
 * it is and how to see it for oneself.
 */
export class BaseNotReadyError extends Error {
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
    this.name = 'BaseNotReadyError';
  }
}
