import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { excludeFromRepository } from '../../packages/runtime/src/run/output-dir.js';
import { tempDir } from '../support/tmp.js';

function repository(): string {
  const dir = tempDir('exclude-');
  execFileSync('git', ['init', '-q', dir]);
  writeFileSync(path.join(dir, '.git/info/exclude'), '# no trailing newline');
  return dir;
}

const excludes = (repo: string) => readFileSync(path.join(repo, '.git/info/exclude'), 'utf8');

describe("runs inside the user's checkout", () => {
  it('are excluded once, anchored, their pattern characters taken literally', () => {
    const repo = repository();
    const runs = path.join(repo, 'out', 'r[1]*');
    mkdirSync(runs, { recursive: true });
    expect(excludeFromRepository(runs)).toBe('/out/r\\[1\\]\\*/');
    expect(excludeFromRepository(runs)).toBeUndefined();
    expect(excludes(repo)).toBe('# no trailing newline\n/out/r\\[1\\]\\*/\n');
    // git reads the pattern as meant: the directory is ignored, its sibling is not.
    mkdirSync(path.join(repo, 'out', 'r1'));
    writeFileSync(path.join(repo, 'out', 'r1', 'x'), '');
    writeFileSync(path.join(runs, 'x'), '');
    const status = execFileSync('git', ['status', '--porcelain', '-uall'], { cwd: repo });
    expect(status.toString()).toBe('?? out/r1/x\n');
  });

  it('write nothing for a name that would add a second pattern, or outside any repository', () => {
    const repo = repository();
    const odd = path.join(repo, 'ru\n*');
    mkdirSync(odd);
    expect(excludeFromRepository(odd)).toBeUndefined();
    expect(excludes(repo)).toBe('# no trailing newline');
    expect(excludeFromRepository(tempDir('no-repo-'))).toBeUndefined();
  });
});
