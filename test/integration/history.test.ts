import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-history-');

/** Runs from `cwd` into its ./runs, as a user does. */
function cli(args: string[], cwd: string) {
  return runCli(args, cwd);
}

describe('run history and per-task views', () => {
  const cwd = path.join(work, 'project');
  mkdirSync(cwd);
  const plan = path.join(work, 'plan.json');
  writeFileSync(
    plan,
    JSON.stringify(
      planInput(
        [
          task('slow', [], 1_500),
          task('quick', [], 10),
          task('broken', [], undefined, { simulate: { failAttempts: 9, failure: 'permanent' } }),
        ],
        3,
      ),
    ),
  );

  it('says the run directory first, lists runs newest first, and takes latest for a run directory', async () => {
    const first = await cli(['run', 'Build a todo app', '--sim-task-ms', '10'], cwd);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.split('\n')[0]).toMatch(
      /^Run directory: runs\/\d{8}-\d{6}-build-a-todo-app-[0-9a-f]{6}$/,
    );
    const second = await cli(['run', '--plan', plan, '--json'], cwd);
    expect(second.code).toBe(1);
    const opening = JSON.parse(second.stdout.split('\n')[0] as string);
    expect(opening).toEqual({
      type: 'run-directory',
      runDir: expect.stringContaining(path.join(cwd, 'runs')),
    });

    const listed = await cli(['runs', '--json'], cwd);
    const runs = JSON.parse(listed.stdout);
    expect(runs.map((r: { status: string }) => r.status)).toEqual(['failed', 'succeeded']);
    expect(runs[0]).toMatchObject({ runDir: opening.runDir, tasks: 3, succeeded: 2 });
    expect(runs[1]).toMatchObject({ tasks: 6, succeeded: 6 });
    const table = (await cli(['runs'], cwd)).stdout.trim().split('\n');
    expect(table[0]).toMatch(/^RUN +STARTED \(UTC\) +STATUS +TASKS +TIME +COST +ENVIRONMENT$/);
    expect(table[1]).toMatch(/ failed +2\/3 /);
    expect(table).toHaveLength(3);

    // latest is the newest run, wherever a run directory is taken.
    const status = await cli(['status', 'latest'], cwd);
    expect(status.stdout).toContain(`Run ${path.basename(opening.runDir)}: failed, 2/3`);
    const logs = await cli(['logs', 'latest', 'quick'], cwd);
    expect(logs.stdout).toMatch(/simulating task quick attempt 1/);
    const diff = await cli(['diff', 'latest', 'quick'], cwd);
    expect(diff.stdout).toContain('+++ b/src/quick.ts');
    const none = await cli(['status', 'latest'], work);
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe('error: latest: no run under ./runs');
    expect((await cli(['logs', 'latest', 'nope'], cwd)).stderr.trim()).toMatch(
      /^error: no task nope in /,
    );
  });

  it('follows a running task log and watches the status until the run ends', async () => {
    const output = path.join(work, 'followed');
    const running = startCli(['run', '--plan', plan, '-o', output], work);
    // The run directory is said before anything runs: follow from that moment.
    const runDir = await new Promise<string>((resolve) => {
      running.child.stdout?.on('data', (chunk: Buffer) => {
        const match = /^Run directory: (.+)$/m.exec(chunk.toString());
        if (match?.[1]) resolve(path.resolve(work, match[1]));
      });
    });
    const [followed, watched] = await Promise.all([
      runCli(['logs', runDir, 'slow', '--follow'], work),
      runCli(['status', runDir, '--watch'], work),
    ]);
    await running.done;
    expect(followed.code, followed.stderr).toBe(0);
    // All of the task's log, written while it was followed, and then it stopped by itself.
    expect(followed.stdout).toMatch(
      /simulating task slow attempt 1 \(1500 ms\)[\s\S]*wrote docs\/tasks\/slow\.md/,
    );
    const frames = watched.stdout.split(/^Run /m).filter(Boolean);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.at(-1)).toMatch(/: failed, 2\/3 tasks succeeded/);
  });
});
