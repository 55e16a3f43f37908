import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-tty-');

describe('live progress on a terminal', () => {
  it('shows a line per running executor and an overall bar', () => {
    // `script` (util-linux) gives the CLI a real pseudo-terminal of a known size.
    const command = `stty rows 40 cols 120; ${process.execPath} ${CLI} run 'Build a todo list app with add, delete and complete' -e 3 --sim-task-ms 300 -o ${path.join(work, 'runs')}`;
    const output = execFileSync('script', ['-qec', command, '/dev/null'], {
      cwd: work,
      encoding: 'utf8',
    });
    expect(output).toMatch(/▶ executor 0 {2}scaffold +attempt 1 {2}\d+\.\ds/);
    expect(output).toMatch(/▶ executor 2 {2}feature-[a-z]+ +attempt 1/);
    expect(output).toMatch(/\[█+░+\] 2\/8 done · 0 failed · 0 blocked · \d+\.\ds · ETA \d+\.\ds/);
    expect(output).toMatch(/\[█{24}\] 8\/8 done · 0 failed · 0 blocked/);
    expect(output).toContain('task integration succeeded');
    expect(output).toMatch(/Run succeeded: 8\/8 tasks succeeded/);
  });
});
