import { execFile } from 'node:child_process';

/**
 * The environment every git call runs with: no user or system configuration, so hooks, signing,
 * templates and aliases of the host cannot change what a run commits.
 */
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  LANG: 'C',
  LC_ALL: 'C',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  // Executor containers may own worktree files (the orchestrator's repositories, not a user's).
  GIT_CONFIG_COUNT: '1',
  GIT_CONFIG_KEY_0: 'safe.directory',
  GIT_CONFIG_VALUE_0: '*',
  GIT_AUTHOR_NAME: 'parallel-orchestrator',
  GIT_AUTHOR_EMAIL: 'orchestrator@parallel-orchestrator.invalid',
  GIT_COMMITTER_NAME: 'parallel-orchestrator',
  GIT_COMMITTER_EMAIL: 'orchestrator@parallel-orchestrator.invalid',
};

export class GitError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim().split('\n')[0] ?? ''}`);
    this.name = 'GitError';
  }
}

export interface GitResult {
  stdout: string;
  exitCode: number;
}

function run(
  command: string,
  argv: readonly string[],
  cwd: string,
  label: string,
  okCodes: readonly number[],
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      argv,
      { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        if (exitCode !== null && okCodes.includes(exitCode)) resolve({ stdout, exitCode });
        else if (error && typeof error.code === 'string') {
          reject(new Error(`cannot run ${command}: ${error.message}`));
        } else reject(new GitError(label, exitCode, stderr));
      },
    );
  });
}

/** Runs git in `cwd`. Exit codes listed in `okCodes` (default: 0) resolve; others reject. */
export function git(
  cwd: string,
  args: readonly string[],
  okCodes: readonly number[] = [0],
): Promise<GitResult> {
  return run('git', args, cwd, `git ${args[0]}`, okCodes);
}

/**
 * Runs a fixed sequence of git commands through one `sh -c`, with the task's values passed as
 * positional parameters ($1, $2...), never spliced into the script. Starting a child process
 * blocks the orchestrator's event loop for milliseconds (a fork of a large process), so each
 * phase of a task (prepare, commit, merge) pays for one start instead of three or four.
 */
export function gitScript(
  cwd: string,
  name: string,
  script: string,
  args: readonly string[],
): Promise<GitResult> {
  return run('sh', ['-c', `set -e\n${script}`, name, ...args], cwd, name, [0]);
}
