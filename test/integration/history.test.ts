import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readEvents, runCli, startCli, startRunIn, waitFor } from '../support/cli.js';
import { commitAll } from '../support/git.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';
import { NODE_TEST, operation } from '../support/verify.js';

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
    expect(none.stderr.trim()).toBe(
      'error: latest: no run under ./runs (no such directory): -o DIR names the output directory, or give DIR/latest',
    );
    expect((await cli(['logs', 'latest', 'nope'], cwd)).stderr.trim()).toMatch(
      /^error: no task nope in /,
    );
  });

  it('finds latest under -o DIR and as DIR/latest, writing nothing outside the run directory', async () => {
    const output = path.join(work, 'elsewhere');
    const ran = await cli(['run', '--plan', plan, '-o', output], work);
    const runDir = /^Run directory: (.+)$/m.exec(ran.stdout)?.[1] as string;
    const before = readdirSync(output);
    for (const args of [
      ['status', 'latest', '-o', output],
      ['status', path.join(output, 'latest')],
    ]) {
      const status = await cli(args, work);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(`Run ${path.basename(runDir)}: failed, 2/3`);
    }
    expect((await cli(['logs', 'latest', 'quick', '-o', output], work)).stdout).toMatch(
      /simulating task quick attempt 1/,
    );
    expect(readdirSync(output)).toEqual(before);
    const missing = await cli(['status', path.join(work, 'nowhere', 'latest')], work);
    expect(missing.stderr.trim()).toBe(
      `error: ${path.join(work, 'nowhere', 'latest')}: no run under ${path.join(work, 'nowhere')} (no such directory)`,
    );
  });

  it("says why a task of an ended run has no log or change, and shows a failed attempt's change", async () => {
    const repo = path.join(work, 'calc');
    mkdirSync(path.join(repo, 'test'), { recursive: true });
    writeFileSync(
      path.join(repo, 'package.json'),
      JSON.stringify({ name: 'calc', private: true, scripts: { test: NODE_TEST } }),
    );
    // A passing test on the base: the shell leaves a glob that matches nothing as it is, and
    // Node 20's test runner (the machine's, which checks run on) does not expand it.
    writeFileSync(
      path.join(repo, 'test', 'base.test.mjs'),
      "import { test } from 'node:test';\ntest('base', () => {});\n",
    );
    commitAll(repo, 'calculator');
    const failing = path.join(work, 'failing.json');
    writeFileSync(
      failing,
      JSON.stringify(
        planInput(
          [
            task('broken', [], 10, { simulate: { failAttempts: 9, failure: 'permanent' } }),
            task('after', ['broken'], 10),
            // Its work fails the check on every attempt (2 + 3 is not 6): it fails with its change.
            operation('mul', 'a + b', 6),
          ],
          3,
        ),
      ),
    );
    const output = path.join(work, 'failing');
    const ran = await cli(
      [
        'run',
        '--plan',
        failing,
        '--repo',
        repo,
        '--verify',
        NODE_TEST,
        '--retries',
        '1',
        '-o',
        output,
      ],
      work,
    );
    expect(ran.code, ran.stderr).toBe(1);
    const runDir = path.join(output, 'latest');

    const blocked = await cli(['logs', runDir, 'after'], work);
    expect(blocked.code, blocked.stderr).toBe(0);
    expect(blocked.stderr).toBe('task after never started: blocked by broken\n');
    expect((await cli(['diff', runDir, 'after'], work)).stderr).toBe(
      'task after never started: blocked by broken\n',
    );

    const nothing = await cli(['diff', runDir, 'broken'], work);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe('');
    expect(nothing.stderr).toMatch(
      /^task broken failed on attempt 1 \(simulated permanent failure on attempt 1\), and that attempt changed nothing; its log: \S+\/tasks\/broken\/executor\.log\n$/,
    );

    const changed = await cli(['diff', runDir, 'mul'], work);
    expect(changed.code).toBe(0);
    expect(changed.stderr).toMatch(
      /^task mul failed on attempt 2 \(.+\); that attempt's change, never merged \(commit [0-9a-f]{12}\):\n$/,
    );
    expect(changed.stdout).toContain('+export const mul = (a, b) => a + b;');

    // Patches are the default format.
    const exported = await cli(['export', runDir], work);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^0 patches in /);
  });

  it('says a task was not reached when its run was cancelled', async () => {
    const slow = path.join(work, 'slow.json');
    writeFileSync(
      slow,
      JSON.stringify(planInput([task('wait', [], 60_000), task('next', ['wait'], 10)])),
    );
    const output = path.join(work, 'cancelled');
    const running = await startRunIn(['run', '--plan', slow], work, output);
    await waitFor(
      () => readEvents(running.runDir).some((e) => e.type === 'task-started') || undefined,
    );
    running.child.kill('SIGTERM');
    expect((await running.done).code).toBe(130);
    const logs = await cli(['logs', running.runDir, 'next'], work);
    expect(logs.stderr).toBe('task next was not reached: the run was cancelled\n');
    const diff = await cli(['diff', running.runDir, 'wait'], work);
    const log = path.join(running.runDir, 'tasks', 'wait', 'executor.log');
    expect(diff.stderr).toBe(
      `task wait was cancelled on attempt 1 (resume continues it) before committing anything${existsSync(log) ? `; its log: ${path.relative(work, log)}` : ''}\n`,
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
