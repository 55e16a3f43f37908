import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSummary, resultLine, runCli } from '../support/cli.js';
import { gitOut } from '../support/git.js';
import { expectIntegrity } from '../support/hostile.js';
import { planInput, type TaskInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

/**
 * Attacks that need no model: a plan's simulated tasks write exactly what they are told to,
 * which is all these attacks are.
 */

const work = tempDir('po-hostile-sim-');

async function simulatedRun(tasks: TaskInput[], flags: string[] = []) {
  const plan = path.join(work, `plan-${randomUUID()}.json`);
  writeFileSync(plan, JSON.stringify(planInput(tasks, 2)));
  const result = await runCli(
    ['run', '--plan', plan, '-o', path.join(work, 'runs'), '--json', ...flags],
    work,
  );
  return { ...result, runDir: resultLine(result.stdout).runDir };
}

const writes = (id: string, files: Record<string, string>, durationMs = 0) =>
  task(id, [], durationMs, { simulate: { durationMs, files } });

describe('output limits', () => {
  it('fails an attempt over --max-file-size or --max-task-size, naming the path and the size', async () => {
    const run = await simulatedRun(
      [
        writes('fat', { 'assets/blob.bin': 'x'.repeat(3000) }),
        writes('wide', { 'a.txt': 'x'.repeat(1500), 'b.txt': 'x'.repeat(1500) }),
        writes('fine', { 'ok.txt': 'ok' }),
      ],
      ['--max-file-size', '2k', '--max-task-size', '3k', '--retries', '0'],
    );
    expect(run.code).toBe(1);
    const summary = expectIntegrity(run.runDir, []);
    const byId = Object.fromEntries(summary.tasks.map((t) => [t.taskId, t]));
    expect(byId.fat).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'assets/blob.bin is 2.9 KiB, over the limit of 2 KiB per file (--max-file-size)',
    });
    // Each simulated task also writes its source, test and docs: the third file tips it over.
    expect(byId.wide?.error).toMatch(
      /^the task's changes reach 3\.\d KiB at \S+, over the limit of 3 KiB per task \(--max-task-size\)$/,
    );
    expect(byId.fine?.status).toBe('succeeded');
    const tree = gitOut(path.join(run.runDir, 'project'), ['ls-tree', '-r', '--name-only', 'main']);
    expect(tree).not.toMatch(/blob\.bin|a\.txt|b\.txt/);
  });
});

describe('merges', () => {
  it("keep git's text merge whatever .gitattributes the tasks commit, and record the conflict", async () => {
    const run = await simulatedRun([
      writes('left', { '.gitattributes': '* merge=union\n', 'config.txt': 'left=1\n' }, 100),
      writes('right', { '.gitattributes': '* merge=union\n', 'config.txt': 'right=1\n' }, 100),
    ]);
    expect(run.code).toBe(0);
    const summary = expectIntegrity(run.runDir, []);
    const conflicted = summary.tasks.find((t) => t.conflicts);
    expect(conflicted?.conflicts).toEqual([
      {
        attempt: 1,
        withTasks: [summary.tasks.find((t) => t !== conflicted)?.taskId],
        files: ['config.txt'],
        resolution: 'merged-on-retry',
      },
    ]);
    expect(readSummary(run.runDir).totals.conflicts).toBe(1);
    // The retry built on the other task's line (the simulated agent extends what it finds).
    const merged = readFileSync(path.join(run.runDir, 'project/config.txt'), 'utf8');
    expect(merged).toMatch(/^(left=1\nright=1|right=1\nleft=1)\n$/);
  });
});
