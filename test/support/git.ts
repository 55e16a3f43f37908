import { execFileSync } from 'node:child_process';

/**
 * Git in a test's repository. Some are another user's (a run made by the CLI as a plain user):
 * the suite trusts them all, as it made them.
 */
export function gitOut(cwd: string, args: string[]): string {
  return execFileSync('git', ['-c', 'safe.directory=*', ...args], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 512 * 2 ** 20,
  }).trim();
}

export function treeHash(project: string): string {
  return gitOut(project, ['rev-parse', 'main^{tree}']);
}

/** Makes `dir` a repository whose main holds every file in it: a user's project, for a test. */
export function commitAll(dir: string, message: string): void {
  execFileSync(
    'sh',
    ['-c', 'git init -q -b main && git add -A && git commit -qm "$1"', 'sh', message],
    {
      cwd: dir,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'u',
        GIT_AUTHOR_EMAIL: 'u@example.invalid',
        GIT_COMMITTER_NAME: 'u',
        GIT_COMMITTER_EMAIL: 'u@example.invalid',
      },
    },
  );
}
