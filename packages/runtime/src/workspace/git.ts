import { spawn, spawnSync } from 'node:child_process';
import { setPriority } from 'node:os';

/**
 * Configuration every git call runs with, given on the command line (GIT_CONFIG_COUNT), which
 * wins over any file: no hooks, no fsmonitor, no transport, no implicit bare repositories. The
 * run's repository is written only by the orchestrator, but this holds even if that ever broke.
 */
const HARDENED_CONFIG: readonly (readonly [string, string])[] = [
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['core.untrackedCache', 'false'],
  ['protocol.allow', 'never'],
  ['safe.bareRepository', 'explicit'],
  ['submodule.recurse', 'false'],
];

/**
 * The environment every git call runs with: no user or system configuration, so hooks, signing,
 * templates and aliases of the host cannot change what a run commits, and the hardened settings
 * above. There is deliberately no `safe.directory`: the repository is always named explicitly
 * (GIT_DIR), never discovered from a directory an agent could have written.
 */
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  LANG: 'C',
  LC_ALL: 'C',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ATTR_NOSYSTEM: '1',
  GIT_TERMINAL_PROMPT: '0',
  GIT_NO_REPLACE_OBJECTS: '1',
  GIT_OPTIONAL_LOCKS: '0',
  GIT_CONFIG_COUNT: String(HARDENED_CONFIG.length),
  ...Object.fromEntries(
    HARDENED_CONFIG.flatMap(([key, value], i) => [
      [`GIT_CONFIG_KEY_${i}`, key],
      [`GIT_CONFIG_VALUE_${i}`, value],
    ]),
  ),
  GIT_AUTHOR_NAME: 'parallel-orchestrator',
  GIT_AUTHOR_EMAIL: 'orchestrator@parallel-orchestrator.invalid',
  GIT_COMMITTER_NAME: 'parallel-orchestrator',
  GIT_COMMITTER_EMAIL: 'orchestrator@parallel-orchestrator.invalid',
};

/**
 * Where a git call works: always an explicit git directory; for a workspace, its work tree and
 * the index the orchestrator keeps for it inside the git directory.
 */
export interface GitTarget {
  gitDir: string;
  workTree?: string;
  indexFile?: string;
}

export class GitError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${gitReason(stderr)}`);
    this.name = 'GitError';
  }
}

/**
 * The advice git adds after a failed fetch, push or ls-remote of any repository, whatever the
 * cause: it would push the cause (`fatal: '...' does not appear to be a git repository`) out.
 */
const GIT_BOILERPLATE = new Set([
  'Please make sure you have the correct access rights',
  'and the repository exists.',
]);

/**
 * What a failed git call says went wrong, in one line: its last lines, without hints. Git ends
 * with the error (a push's `! [rejected] ...` comes after its `To <url>`, a fetch's `fatal:`
 * after its progress).
 */
export function gitReason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('hint:') && !GIT_BOILERPLATE.has(line));
  return lines.slice(-3).join('; ');
}

export interface GitResult {
  stdout: string;
  exitCode: number;
}

/**
 * How much CPU a git call may take from the others when the machine is busy: merges, which every
 * dependent waits for, run at the orchestrator's priority; the rest (work on slots' workspaces,
 * repository upkeep) yields to them. Not lower: at niceness 15 upkeep starved on a busy machine.
 */
export type GitPriority = 'merge' | 'background';

const NICENESS: Record<GitPriority, number> = { merge: 0, background: 5 };

/** More output than this from one call means something is wrong: the call is stopped. */
const MAX_OUTPUT_BYTES = 256 * 2 ** 20;

/** How one git call runs, beyond where and with what arguments. */
export interface GitCallOptions {
  priority?: GitPriority;
  /** What the call reads on stdin. */
  input?: string | Buffer;
  /** Ends the call (its whole process group) when aborted: an attempt's git ends with it. */
  signal?: AbortSignal;
}

/**
 * Every git process group alive: killed if the orchestrator exits first (a forced stop), so
 * that no git goes on under PID 1 writing into a run nobody drives.
 */
const alive = new Set<number>();
let reaping = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function track(pid: number): void {
  if (!reaping) {
    reaping = true;
    process.on('exit', () => {
      for (const group of alive) killGroup(group);
    });
  }
  alive.add(pid);
}

function run<Output extends string | Buffer>(
  command: string,
  argv: readonly string[],
  target: GitTarget | { cwd: string },
  label: string,
  okCodes: readonly number[],
  { priority = 'merge', input = '', signal }: GitCallOptions,
  encoding: Output extends Buffer ? 'buffer' : 'utf8',
): Promise<{ stdout: Output; exitCode: number }> {
  const env: NodeJS.ProcessEnv = { ...GIT_ENV };
  if ('gitDir' in target) {
    env.GIT_DIR = target.gitDir;
    if (target.workTree) env.GIT_WORK_TREE = target.workTree;
    if (target.indexFile) env.GIT_INDEX_FILE = target.indexFile;
  }
  const cwd = 'cwd' in target ? target.cwd : (target.workTree ?? target.gitDir);
  if (signal?.aborted)
    return Promise.reject(new GitError(label, null, 'stopped: the attempt ended'));
  return new Promise((resolve, reject) => {
    // A process group of its own: a script's git children end with it, and the terminal's
    // Ctrl-C reaches the orchestrator, which decides, not a merge half-way.
    const child = spawn(command, argv, { cwd, env, detached: true, stdio: 'pipe' });
    const stop = () => {
      if (child.pid !== undefined) killGroup(child.pid);
    };
    if (child.pid !== undefined) track(child.pid);
    signal?.addEventListener('abort', stop, { once: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_OUTPUT_BYTES) stop();
      else stdout.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const settle = (settled: () => void) => {
      if (child.pid !== undefined) alive.delete(child.pid);
      signal?.removeEventListener('abort', stop);
      settled();
    };
    child.on('error', (error) =>
      settle(() => reject(new Error(`cannot run ${command}: ${error.message}`))),
    );
    child.on('close', (exitCode) =>
      settle(() => {
        if (signal?.aborted) reject(new GitError(label, exitCode, 'stopped: the attempt ended'));
        else if (size > MAX_OUTPUT_BYTES)
          reject(new GitError(label, exitCode, `more than ${MAX_OUTPUT_BYTES} bytes of output`));
        else if (exitCode !== null && okCodes.includes(exitCode)) {
          const out = Buffer.concat(stdout);
          resolve({
            stdout: (encoding === 'buffer' ? out : out.toString('utf8')) as Output,
            exitCode,
          });
        } else reject(new GitError(label, exitCode, Buffer.concat(stderr).toString('utf8')));
      }),
    );
    // A call that exits without reading its input fails on its own; the write error says less.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    // A hint, set as the process starts (what it starts before this keeps the default): cheaper
    // than an exec of `nice` in front of every call.
    if (NICENESS[priority] > 0 && child.pid !== undefined) {
      try {
        setPriority(child.pid, NICENESS[priority]);
      } catch {
        // already exited
      }
    }
  });
}

/** A git call as its errors name it: `git push`, also when `-c` settings come first. */
function gitLabel(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c') i++;
    else if (!args[i]?.startsWith('-')) return `git ${args[i]}`;
  }
  return 'git';
}

/** Runs git on `target`. Exit codes listed in `okCodes` (default: 0) resolve; others reject. */
export function git(
  target: GitTarget,
  args: readonly string[],
  okCodes: readonly number[] = [0],
  priority?: GitPriority,
  options: Omit<GitCallOptions, 'priority'> = {},
): Promise<GitResult> {
  return run<string>(
    'git',
    args,
    target,
    gitLabel(args),
    okCodes,
    { ...options, priority },
    'utf8',
  );
}

/** The same, its output as bytes: for lists of paths, which need not be UTF-8. */
export function gitBytes(
  target: GitTarget,
  args: readonly string[],
  options: GitCallOptions = {},
): Promise<{ stdout: Buffer; exitCode: number }> {
  return run<Buffer>('git', args, target, gitLabel(args), [0], options, 'buffer');
}

/**
 * Runs git where no repository is named: to clone one, or to ask git which repository a
 * directory the user named belongs to.
 */
export function gitAt(
  cwd: string,
  args: readonly string[],
  okCodes: readonly number[] = [0],
): Promise<GitResult> {
  return run<string>('git', args, { cwd }, gitLabel(args), okCodes, {}, 'utf8');
}

/**
 * Runs a fixed sequence of git commands through one `sh -c`, with the task's values passed as
 * positional parameters ($1, $2...), never spliced into the script. Starting a child process
 * blocks the orchestrator's event loop for milliseconds (a fork of a large process), so each
 * phase of a task (prepare, commit, merge) pays for one start instead of three or four.
 */
export function gitScript(
  target: GitTarget,
  name: string,
  script: string,
  args: readonly string[],
  options: GitCallOptions = {},
): Promise<GitResult> {
  return run<string>(
    'sh',
    ['-c', `set -e\n${script}`, name, ...args],
    target,
    name,
    [0],
    options,
    'utf8',
  );
}

/**
 * A short git call that must finish before anything else (a run directory being made), with the
 * hardened configuration, in the repository found from `cwd` (the user's own, named by where
 * they write their runs). Undefined when git fails or finds no repository.
 */
export function gitSyncAt(cwd: string, args: readonly string[]): string | undefined {
  const result = spawnSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}
