import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ExecutionSummarySchema,
  TaskResultSchema,
} from '../../packages/runtime/src/contracts/results.js';
import { readEvents, readSummary, resultLine, runCli } from '../support/cli.js';
import { gitOut } from '../support/git.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-cli-');

function writePlan(name: string, tasks: Parameters<typeof planInput>[0]): string {
  const file = path.join(work, `${name}.json`);
  writeFileSync(file, JSON.stringify(planInput(tasks)));
  return file;
}

describe('run: a full simulated orchestration', () => {
  const output = path.join(work, 'runs-main');
  let runDir: string;
  let stdout: string;
  let code: number | null;

  beforeAll(async () => {
    const result = await runCli(
      [
        'run',
        'Build a todo list app with add, delete and complete',
        '-e',
        '3',
        '--sim-task-ms',
        '20-60',
        '-o',
        output,
      ],
      work,
    );
    ({ stdout, code } = result);
    runDir = path.join(output, readdirSync(output)[0] as string);
  });

  it('exits 0 and ends with the run directory and a summary', () => {
    expect(code).toBe(0);
    expect(stdout).toMatch(/Run succeeded: 8\/8 tasks succeeded/);
    expect(stdout).toContain(`Run directory: ${path.relative(work, runDir)}`);
  });

  it('prints one plain line per event that matters when not on a terminal', () => {
    // A task's merge is a moment before its success: orchestrator.log and --json have it.
    const events = readEvents(runDir).filter((e) => e.type !== 'task-merging');
    const lines = stdout.split('\n').filter((l) => /^\[\d\d:\d\d:\d\d\] /.test(l));
    expect(lines).toHaveLength(events.length);
    expect(lines.some((line) => line.includes('merging'))).toBe(false);
  });

  it('writes the run directory layout', () => {
    for (const file of [
      'run.json',
      'execution_plan.json',
      'events.jsonl',
      'orchestrator.log',
      'execution_summary.json',
    ]) {
      expect(existsSync(path.join(runDir, file)), file).toBe(true);
    }
    expect(existsSync(path.join(runDir, 'worktrees'))).toBe(false);
    const log = readFileSync(path.join(runDir, 'orchestrator.log'), 'utf8').trim().split('\n');
    expect(log.every((line) => /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \S/.test(line))).toBe(true);
  });

  it('commits every task on its branch and merges it into main, one merge per task', () => {
    const project = path.join(runDir, 'project');
    const plan = JSON.parse(readFileSync(path.join(runDir, 'execution_plan.json'), 'utf8'));
    const taskIds: string[] = plan.tasks.map((t: { id: string }) => t.id);
    const taskCommits = gitOut(project, ['log', '--no-merges', '--format=%s', 'main']).split('\n');
    expect(taskCommits).toHaveLength(taskIds.length + 1); // plus the run's initial commit
    const merges = gitOut(project, [
      'log',
      '--merges',
      '--first-parent',
      '--format=%s',
      'main',
    ]).split('\n');
    const mergedIds = merges.map((subject) => /^Merge task\/([a-z0-9-]+): /.exec(subject)?.[1]);
    expect(mergedIds.sort()).toEqual([...taskIds].sort());
    for (const id of taskIds) {
      const message = gitOut(project, ['log', '-1', '--format=%B', `task/${id}`]);
      expect(message).toContain(`Task-Id: ${id}`);
      expect(message).toContain('Attempt: 1');
      expect(gitOut(project, ['merge-base', '--is-ancestor', `task/${id}`, 'main'])).toBe('');
    }
    expect(gitOut(project, ['status', '--porcelain'])).toBe('');
    // Left packed: no loose object, the branches in packed-refs, and whole.
    expect(gitOut(project, ['count-objects', '-v'])).toMatch(/^count: 0$/m);
    expect(readFileSync(path.join(project, '.git', 'packed-refs'), 'utf8')).toContain(
      'refs/heads/task/',
    );
    expect(gitOut(project, ['fsck', '--no-dangling'])).toBe('');
  });

  it('leaves the merged project checked out, each task building on its dependencies', () => {
    const project = path.join(runDir, 'project');
    const files = gitOut(project, ['ls-files']).split('\n');
    expect(files).toContain('src/feature-add.ts');
    expect(files).toContain('test/integration.test.ts');
    expect(files).toContain('docs/tasks/docs.md');
    const integration = readFileSync(path.join(project, 'src/integration.ts'), 'utf8');
    for (const dep of ['feature-add', 'feature-delete', 'feature-complete']) {
      expect(integration).toContain(`from './${dep}.js'`);
    }
  });

  it('summarises every task', () => {
    const summary = ExecutionSummarySchema.parse(readSummary(runDir));
    expect(summary).toMatchObject({
      status: 'succeeded',
      backend: 'local',
      mode: 'simulate',
      executorBudget: 3,
      successRate: 1,
      totals: {
        tasks: 8,
        succeeded: 8,
        failed: 0,
        blocked: 0,
        unfinished: 0,
        attempts: 8,
        filesChanged: 24,
      },
      usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
    });
    expect(summary.integrationCommit).toBe(
      gitOut(path.join(runDir, 'project'), ['rev-parse', 'main']),
    );
    for (const t of summary.tasks) {
      const result = TaskResultSchema.parse(
        JSON.parse(readFileSync(path.join(runDir, 'tasks', t.taskId, 'result.json'), 'utf8')),
      );
      expect(result).toMatchObject({
        status: 'succeeded',
        attempts: 1,
        branch: `task/${t.taskId}`,
      });
      expect(result.files).toHaveLength(3);
      expect(readFileSync(path.join(runDir, 'tasks', t.taskId, 'executor.log'), 'utf8')).toContain(
        'wrote src/',
      );
    }
  });

  it('never had more than M executors busy at once', () => {
    // An executor is busy from task-started until its work is committed (task-merging).
    const releases = new Set(['task-merging', 'task-failed', 'task-retrying']);
    let busy = 0;
    let peak = 0;
    for (const event of readEvents(runDir)) {
      if (event.type === 'task-started') peak = Math.max(peak, ++busy);
      if (releases.has(event.type)) busy--;
    }
    expect(peak).toBe(3);
  });
});

describe('run: failures', () => {
  it('retries a transient failure and blocks the dependents of a permanent one', async () => {
    const plan = writePlan('failures', [
      task('flaky', [], 10, { simulate: { durationMs: 10, failAttempts: 1 } }),
      task('broken', [], 10, {
        simulate: { durationMs: 10, failAttempts: 1, failure: 'permanent' },
      }),
      task('after-broken', ['broken']),
      task('after-after', ['after-broken']),
      task('after-flaky', ['flaky']),
    ]);
    const { code, stdout } = await runCli(
      [
        'run',
        '--plan',
        plan,
        '--retry-delay',
        '10ms',
        '-o',
        path.join(work, 'runs-fail'),
        '--json',
      ],
      work,
    );
    expect(code).toBe(1);
    const { runDir, status } = resultLine(stdout);
    expect(status).toBe('failed');
    const summary = readSummary(runDir);
    const byId = Object.fromEntries(summary.tasks.map((t) => [t.taskId, t]));
    expect(byId.flaky).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(byId['after-flaky']?.status).toBe('succeeded');
    expect(byId.broken).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: 'simulated permanent failure on attempt 1',
    });
    expect(byId['after-broken']).toMatchObject({
      status: 'blocked',
      blockedBy: ['broken'],
      attempts: 0,
    });
    expect(byId['after-after']).toMatchObject({ status: 'blocked', blockedBy: ['broken'] });
    expect(summary.totals).toMatchObject({ succeeded: 2, failed: 1, blocked: 2 });
    const project = path.join(runDir, 'project');
    expect(gitOut(project, ['log', '-1', '--format=%s', 'task/broken'])).toBe(
      'task(broken): failed attempt, not merged',
    );
    expect(gitOut(project, ['branch', '--list', 'task/after-broken'])).toBe('');
  });

  it('times out a stuck task and kills its executor', async () => {
    const plan = writePlan('timeout', [task('sleepy', [], 60_000)]);
    const started = Date.now();
    const { code, stdout } = await runCli(
      [
        'run',
        '--plan',
        plan,
        '--task-timeout',
        '300ms',
        '--retries',
        '0',
        '-o',
        path.join(work, 'runs-timeout'),
        '--json',
      ],
      work,
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(code).toBe(1);
    const summary = readSummary(resultLine(stdout).runDir);
    expect(summary.tasks[0]).toMatchObject({ status: 'failed', error: 'timed out after 300 ms' });
  });
});

describe('run --json', () => {
  it('streams NDJSON: the run directory, the events, then the outcome', async () => {
    const plan = writePlan('json', [task('a', [], 5), task('b', ['a'], 5)]);
    const { code, stdout } = await runCli(
      ['run', '--plan', plan, '--json', '-o', path.join(work, 'runs-json')],
      work,
    );
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ type: 'run-directory', runDir: lines.at(-1).runDir });
    // A plan file brings its executor budget (4) unless --executors overrides it.
    expect(lines[1]).toMatchObject({ type: 'run-started', tasks: 2, executors: 4 });
    expect(lines.at(-2)).toMatchObject({ type: 'run-finished', status: 'succeeded' });
    expect(lines.at(-1)).toMatchObject({ type: 'result', status: 'succeeded', exitCode: 0 });
    expect(readEvents(lines.at(-1).runDir)).toEqual(lines.slice(1, -1));
  });
});

describe('plan and status', () => {
  it('plan prints the DAG by stage, or the plan as JSON', async () => {
    const text = await runCli(
      ['plan', 'Build a todo list app with add, delete and complete'],
      work,
    );
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Stage 3 (3 in parallel)');
    expect(text.stdout).toContain(
      '  integration: Integrate the todo list app  ← feature-add, feature-delete, feature-complete',
    );
    const json = await runCli(['plan', '--json', '-e', '4', 'Build a calculator'], work);
    expect(JSON.parse(json.stdout)).toMatchObject({
      executorBudget: 4,
      requirements: 'Build a calculator',
    });
    expect(existsSync(path.join(work, 'runs'))).toBe(false);
  });

  it("plan says how long a simulated run takes, and keeps the tasks' estimates for real work", async () => {
    const args = ['plan', '-e', '2', 'Build a todo list app with add, delete and complete'];
    const lines = (await runCli([...args, '--sim-task-ms', '100'], work)).stdout.split('\n');
    // Stages of 1, 1, 3, 1, 2 tasks of 100 ms on 2 executors: the third of stage 3 waits a slot.
    expect(lines[2]).toBe(
      "This simulation takes about 0.6s with 2 executors (--sim-task-ms 100), plus each task's git work",
    );
    expect(lines[3]).toMatch(/^Estimated for real agents: \dh\d\dm with 2 executors \(/);
    // From the environment as run takes it; the seed draws the same durations run draws.
    const configured = await runCli(args, work, { PO_SIM_TASK_MS: '2000' });
    expect(configured.stdout.split('\n')[2]).toMatch(/^This simulation takes about 12\.0s /);
  });

  it('plans requirements of any shape within the plan bounds: one 199,000-character line, 5,000 items', async () => {
    writeFileSync(path.join(work, 'long.md'), `Build ${'a'.repeat(199_000)}`);
    const items = Array.from({ length: 5000 }, (_, i) => `feature number ${i} with some words`);
    writeFileSync(path.join(work, 'many.md'), `Build a todo app with ${items.join(', ')}`);
    for (const [file, tasks] of [
      ['long.md', 6],
      ['many.md', 100],
    ] as const) {
      const { code, stdout, stderr } = await runCli(
        ['plan', '--json', '--file', path.join(work, file)],
        work,
      );
      expect(code, stderr).toBe(0);
      const plan = JSON.parse(stdout);
      expect(plan.tasks).toHaveLength(tasks);
      for (const t of plan.tasks) {
        expect(t.title.length).toBeLessThanOrEqual(200);
        expect(t.description.length).toBeLessThanOrEqual(20_000);
      }
    }
  });

  it('status shows a table of tasks, states, attempts and durations', async () => {
    const plan = writePlan('status', [
      task('one', [], 5),
      task('two', ['one'], 5, { simulate: { durationMs: 5, failAttempts: 1 } }),
    ]);
    const run = await runCli(
      [
        'run',
        '--plan',
        plan,
        '--json',
        '--retry-delay',
        '5ms',
        '-o',
        path.join(work, 'runs-status'),
      ],
      work,
    );
    const { runDir } = resultLine(run.stdout);
    const { code, stdout } = await runCli(['status', runDir], work);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Run .*: succeeded, 2\/2 tasks succeeded$/);
    expect(lines[2]).toMatch(/^TASK\s+STATE\s+ATTEMPTS\s+DURATION\s+NOTE$/);
    expect(lines[3]).toMatch(/^one\s+succeeded\s+1\s+\d+\.\ds$/);
    expect(lines[4]).toMatch(/^two\s+succeeded\s+2\s+\d+\.\ds$/);
  });
});
