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
