import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { childCpuMs } from '../../bench/integration.js';
import { gitOut } from '../support/git.js';
import { tempDir } from '../support/tmp.js';

const SCRIPT = fileURLToPath(new URL('../../bench/git-floor.sh', import.meta.url));

// The bench states the growth no integration on git's commands can remove from this script's
// CPU: it holds only if the script does every task's git work, and no more.
describe('the git floor of the bench', () => {
  it('commits and merges every task into main, with its branch, and runs the upkeep', () => {
    const repo = path.join(tempDir('floor-'), 'repo.git');
    const output = execFileSync('sh', [SCRIPT, repo, '3', '4', '2'], { encoding: 'utf8' });
    const git = (...args: string[]) => gitOut(repo, args);

    const files = git('ls-tree', '-r', '--name-only', 'main').split('\n');
    for (const dir of ['src', 'test', 'docs/tasks']) {
      expect(files.filter((file) => file.startsWith(`${dir}/b`))).toHaveLength(3);
      expect(files.filter((file) => file.startsWith(`${dir}/t`))).toHaveLength(4);
    }
    expect(git('for-each-ref', '--format=%(refname)', 'refs/heads/task').split('\n')).toEqual([
      'refs/heads/task/t0',
      'refs/heads/task/t1',
      'refs/heads/task/t2',
      'refs/heads/task/t3',
    ]);
    // One merge commit per task, each with its task as second parent.
    const merges = git('rev-list', '--first-parent', '--merges', '--parents', 'main').split('\n');
    expect(merges).toHaveLength(4);
    for (const [i, line] of merges.reverse().entries())
      expect(line.split(' ')[2]).toBe(git('rev-parse', `task/t${i}`));
    // Two rounds of upkeep: packs beyond the base's, and task branches packed.
    expect(Number(/^packs: (\d+)$/m.exec(git('count-objects', '-v'))?.[1])).toBeGreaterThan(1);
    expect(readFileSync(path.join(repo, 'packed-refs'), 'utf8')).toContain('refs/heads/task/t1');
    expect(childCpuMs(output, 'after')).toBeGreaterThan(childCpuMs(output, 'before'));
  });
});
