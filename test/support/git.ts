import { execFileSync } from 'node:child_process';

export function gitOut(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();
}

export function treeHash(project: string): string {
  return gitOut(project, ['rev-parse', 'main^{tree}']);
}
