import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JournalEvent } from '../../packages/runtime/src/contracts/events.js';
import { processesWorkingIn } from '../../packages/runtime/src/run/run-dir.js';
import { readEvents, readSummary, resultLine, runCli, startCli, waitFor } from '../support/cli.js';
import { gitOut, treeHash } from '../support/git.js';
import { planInput, type TaskInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-rel-');
let runs = 0;

function writePlan(tasks: TaskInput[]): string {
  const file = path.join(work, `plan-${runs++}.json`);
  writeFileSync(file, JSON.stringify(planInput(tasks)));
  return file;
}

/** Starts `run` and resolves its run directory as soon as it exists. */
async function startRun(args: string[]) {
  const output = path.join(work, `runs-${runs++}`);
  const started = startCli(['run', ...args, '-o', output, '--json'], work);
  const runDir = await waitFor(
    () => {
      const entries = existsSync(output) ? readdirSync(output) : [];
      return entries[0] && existsSync(path.join(output, entries[0], 'events.jsonl'))
        ? path.join(output, entries[0])
        : undefined;
    },
    20_000,
    'the run directory',
  );
  return { ...started, runDir };
}

function eventsSoFar(runDir: string): JournalEvent[] {
  const text = readFileSync(path.join(runDir, 'events.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.endsWith('}'))
    .map((line) => JSON.parse(line));
}

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A layered DAG: 4 roots, then each task depends on one task of the layer above. */
const layered = (durationMs: number) =>
  Array.from({ length: 24 }, (_, i) => task(`t${i}`, i >= 4 ? [`t${i - 4}`] : [], durationMs));

describe('reliability', () => {
  it('resumes after the orchestrator is SIGKILLed: no finished task runs twice, same project', async () => {
    const plan = writePlan(layered(150));
    const reference = await runCli(
      ['run', '--plan', plan, '-e', '4', '-o', path.join(work, 'reference'), '--json'],
      work,
    );
    expect(reference.code).toBe(0);
    const referenceTree = treeHash(path.join(resultLine(reference.stdout).runDir, 'project'));

    const { child, done, runDir } = await startRun(['--plan', plan, '-e', '4']);
    await waitFor(
      () =>
        eventsSoFar(runDir).filter((e) => e.type === 'task-succeeded').length >= 6
          ? true
          : undefined,
      20_000,
      'six finished tasks',
    );
    const executors = childPids(child.pid as number);
    expect(executors.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await done;
    // Executors notice their orchestrator is gone and exit rather than keep writing.
    await waitFor(
      () => (executors.every((pid) => !isAlive(pid)) ? true : undefined),
      5_000,
      'executors to exit',
    );

    const beforeKill = readEvents(runDir);
    const finishedBefore = new Set(
      beforeKill.filter((e) => e.type === 'task-succeeded').map((e) => e.taskId),
    );
    const killedAt = beforeKill.at(-1)?.seq ?? 0;

    const resumed = await runCli(['resume', runDir, '--json'], work);
    expect(resumed.code).toBe(0);
    const after = readEvents(runDir).filter((e) => e.seq > killedAt);
    const rerun = after.filter((e) => e.type === 'task-started' && finishedBefore.has(e.taskId));
    expect(rerun).toEqual([]);
    expect(after.some((e) => e.type === 'run-resumed')).toBe(true);
    const succeeded = readEvents(runDir).filter((e) => e.type === 'task-succeeded');
    expect(succeeded).toHaveLength(24);
    expect(new Set(succeeded.map((e) => 'taskId' in e && e.taskId)).size).toBe(24);
    expect(treeHash(path.join(runDir, 'project'))).toBe(referenceTree);
    expect(readSummary(runDir).totals).toMatchObject({ succeeded: 24, unfinished: 0 });
  });

  it('does not run a task again whose merge landed just before the orchestrator died', async () => {
    const plan = writePlan([task('a', [], 5), task('b', ['a'], 5), task('c', ['b'], 5)]);
    const run = await runCli(
      ['run', '--plan', plan, '-e', '1', '-o', path.join(work, 'recover'), '--json'],
      work,
    );
    const { runDir } = resultLine(run.stdout);
    // Rewind to the moment b's merge was published but not yet journaled as a success.
    const events = readEvents(runDir);
    const cut = events.findIndex((e) => e.type === 'task-merging' && e.taskId === 'b');
    const bDone = events.find((e) => e.type === 'task-succeeded' && e.taskId === 'b');
    const bMerge = bDone?.type === 'task-succeeded' ? bDone.result.mergeCommit : undefined;
    const journal = events.slice(0, cut + 1).map((e) => `${JSON.stringify(e)}\n`);
    writeFileSync(path.join(runDir, 'events.jsonl'), journal.join(''));
    execFileSync('git', ['update-ref', 'refs/heads/main', bMerge as string], {
      cwd: path.join(runDir, 'project'),
    });

    const resumed = await runCli(['resume', runDir, '--json'], work);
    expect(resumed.code).toBe(0);
    const after = readEvents(runDir).slice(cut + 1);
    expect(after.find((e) => e.type === 'task-succeeded' && e.taskId === 'b')).toMatchObject({
      recovered: true,
      result: { files: ['docs/tasks/b.md', 'src/b.ts', 'test/b.test.ts'] },
    });
    expect(
      after.filter((e) => e.type === 'task-started').map((e) => 'taskId' in e && e.taskId),
    ).toEqual(['c']);
    expect(
      gitOut(path.join(runDir, 'project'), ['log', '--first-parent', '--format=%s', 'main']).split(
        '\n',
      ),
    ).toHaveLength(4);
  });

  it('retries the tasks of a killed executor host, and the run succeeds', async () => {
    const plan = writePlan([
      task('victim', [], 1500),
      task('bystander', [], 300),
      task('after', ['victim'], 10),
    ]);
    const { child, done, runDir } = await startRun([
      '--plan',
      plan,
      '-e',
      '2',
      '--retry-delay',
      '10ms',
    ]);
    // Kill the host while the victim runs in it (not before: a new host would just take it).
    const victimLog = path.join(runDir, 'tasks/victim/executor.log');
    await waitFor(
      () =>
        existsSync(victimLog) && readFileSync(victimLog, 'utf8').includes('simulating')
          ? true
          : undefined,
      20_000,
      'the victim to run in the executor host',
    );
    const host = await waitFor(() =>
      childPids(child.pid as number).find((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('local/host.js'),
      ),
    );
    process.kill(host, 'SIGKILL');
    const result = await done;
    expect(result.code).toBe(0);
    const events = readEvents(runDir);
    expect(events.find((e) => e.type === 'task-retrying' && e.taskId === 'victim')).toMatchObject({
      reason: 'transient',
      error: 'executor host killed by SIGKILL',
    });
    expect(readSummary(runDir).tasks.find((t) => t.taskId === 'victim')).toMatchObject({
      status: 'succeeded',
      attempts: 2,
    });
  });

  it('reports a merge conflict and loses neither side', async () => {
    const plan = writePlan([
      task('left', [], 200, {
        simulate: { durationMs: 200, files: { 'config/settings.txt': 'left=1\n' } },
      }),
      task('right', [], 200, {
        simulate: { durationMs: 200, files: { 'config/settings.txt': 'right=1\n' } },
      }),
    ]);
    const { code, stdout } = await runCli(
      ['run', '--plan', plan, '-e', '2', '-o', path.join(work, 'conflict'), '--json'],
      work,
    );
    expect(code).toBe(0);
    const { runDir } = resultLine(stdout);
    const conflict = readEvents(runDir).find((e) => e.type === 'task-retrying');
    expect(conflict).toMatchObject({
      reason: 'conflict',
      result: { conflictFiles: ['config/settings.txt'] },
    });
    expect(conflict?.type === 'task-retrying' && conflict.error).toMatch(
      /merge conflict .* in config\/settings\.txt/,
    );
    const merged = readFileSync(path.join(runDir, 'project/config/settings.txt'), 'utf8');
    expect(merged).toContain('left=1');
    expect(merged).toContain('right=1');
  });

  it('fails a task that still conflicts after its retry, with a report listing the files', async () => {
    const writes = (id: string) =>
      task(id, [], 300, {
        simulate: { durationMs: 300, files: { 'shared.txt': `${id}\n`, [`${id}.txt`]: id } },
      });
    const plan = writePlan([writes('one'), writes('two'), writes('three')]);
    const { code, stdout } = await runCli(
      ['run', '--plan', plan, '-e', '3', '-o', path.join(work, 'conflict3'), '--json'],
      work,
    );
    expect(code).toBe(1);
    const { runDir } = resultLine(stdout);
    const summary = readSummary(runDir);
    const failed = summary.tasks.filter((t) => t.status === 'failed');
    expect(failed).toHaveLength(1);
    const loser = failed[0];
    expect(loser?.conflictFiles).toEqual(['shared.txt']);
    expect(loser?.error).toMatch(
      /merge conflict .* in shared\.txt; the task's work is kept on task\//,
    );
    expect(loser?.attempts).toBe(2);
    const project = path.join(runDir, 'project');
    // The loser's work is on its branch, not lost; main holds the two winners.
    expect(gitOut(project, ['show', `task/${loser?.taskId}:shared.txt`])).toContain(loser?.taskId);
    const shared = readFileSync(path.join(project, 'shared.txt'), 'utf8');
    for (const t of summary.tasks) {
      if (t.status === 'succeeded') expect(shared).toContain(t.taskId);
    }
  });

  it('stops on SIGINT with exit 130, then resume finishes the run', async () => {
    const plan = writePlan(layered(400).slice(0, 8));
    const { child, done, runDir } = await startRun(['--plan', plan, '-e', '2']);
    await waitFor(
      () => (eventsSoFar(runDir).some((e) => e.type === 'task-started') ? true : undefined),
      20_000,
      'a task to start',
    );
    const executors = childPids(child.pid as number);
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    const events = readEvents(runDir);
    expect(events.at(-1)).toMatchObject({ type: 'run-finished', status: 'cancelled' });
    expect(events.some((e) => e.type === 'task-cancelled')).toBe(true);
    expect(readSummary(runDir).status).toBe('cancelled');
    expect(executors.filter(isAlive)).toEqual([]);
    expect(existsSync(path.join(runDir, '.lock'))).toBe(false);

    const resumed = await runCli(['resume', runDir], work);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/Run succeeded: 8\/8 tasks succeeded/);
  });

  it('resumes after SIGKILL at many points around merges, to the tree of an uninterrupted run', async () => {
    // Many short independent tasks on four slots: merges are queued and batched all the time.
    const plan = writePlan(Array.from({ length: 10 }, (_, i) => task(`m${i}`, [], 0)));
    const reference = await runCli(
      ['run', '--plan', plan, '-e', '4', '-o', path.join(work, 'merge-reference'), '--json'],
      work,
    );
    const referenceTree = treeHash(path.join(resultLine(reference.stdout).runDir, 'project'));
    const killPoints = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => ({ after: 'task-merging', n }));
    for (const { after, n } of [...killPoints, { after: 'task-succeeded', n: 5 }]) {
      const { child, done, runDir } = await startRun(['--plan', plan, '-e', '4']);
      // Poll the journal as fast as the loop allows and kill at once: inside a merge's git.
      await waitFor(
        () => (eventsSoFar(runDir).filter((e) => e.type === after).length >= n ? true : undefined),
        20_000,
        `${after} #${n}`,
        0,
      );
      child.kill('SIGKILL');
      await done;
      // A killed orchestrator's git finishes its own work; resume refuses until it has, and
      // says so: the user waits, then resumes.
      let resumed = await runCli(['resume', runDir, '--json'], work);
      for (let tries = 0; tries < 20 && /still works in/.test(resumed.stderr); tries++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        resumed = await runCli(['resume', runDir, '--json'], work);
      }
      expect(resumed.code, `killed after ${after} #${n}: ${resumed.stderr}`).toBe(0);
      expect(treeHash(path.join(runDir, 'project'))).toBe(referenceTree);
      const project = path.join(runDir, 'project');
      // Each task merged exactly once.
      const merges = gitOut(project, ['log', '--first-parent', '--merges', '--format=%s', 'main']);
      expect(merges.split('\n')).toHaveLength(10);
      expect(readSummary(runDir).totals).toMatchObject({ succeeded: 10, unfinished: 0 });
      expect(gitOut(project, ['rev-parse', 'main'])).toBe(readSummary(runDir).integrationCommit);
    }
  });

  it('removes the lock files a killed git left, once it has proved no git is running', async () => {
    const plan = writePlan(Array.from({ length: 6 }, (_, i) => task(`l${i}`, [], 0)));
    const { child, done, runDir } = await startRun(['--plan', plan, '-e', '2']);
    await waitFor(() =>
      eventsSoFar(runDir).filter((e) => e.type === 'task-succeeded').length >= 2 ? true : undefined,
    );
    child.kill('SIGKILL');
    await done;
    // The killed orchestrator's git may still finish a ref update, taking a lock of its own name
    // (HEAD.lock) with it: the planted locks come once nothing of the run is at work.
    await waitFor(() => (processesWorkingIn(runDir)?.length === 0 ? true : undefined), 20_000);
    const gitDir = path.join(runDir, 'project/.git');
    // What a git killed mid-upkeep leaves too: with it, every later round of upkeep fails.
    mkdirSync(path.join(gitDir, 'objects/pack'), { recursive: true });
    for (const lock of [
      'HEAD.lock',
      'refs/heads/main.lock',
      'index.lock',
      'objects/maintenance.lock',
      'objects/pack/tmp_pack_Ab12Cd',
    ])
      writeFileSync(path.join(gitDir, lock), '');
    // A process still working in the run directory: its locks might be live, so resume waits.
    const busy = spawn('sleep', ['30'], { cwd: path.join(runDir, 'project') });
    const refused = await runCli(['resume', runDir], work);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      new RegExp(
        `^error: process ${busy.pid} still works in .*; wait for it to end or stop it, then resume\n$`,
      ),
    );
    busy.kill('SIGKILL');
    await new Promise((resolve) => busy.once('exit', resolve));
    const resumed = await runCli(['resume', runDir, '--json'], work);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readEvents(runDir).find((e) => e.type === 'run-resumed')).toMatchObject({
      recoveredLocks: [
        'HEAD.lock',
        'index.lock',
        'objects/maintenance.lock',
        'objects/pack/tmp_pack_Ab12Cd',
        'refs/heads/main.lock',
      ],
    });
    expect(readFileSync(path.join(runDir, 'orchestrator.log'), 'utf8')).toContain(
      'removed what a killed git left: HEAD.lock, index.lock, objects/maintenance.lock',
    );
    expect(readSummary(runDir).totals.succeeded).toBe(6);
    // Upkeep ran again: the run's objects ended in packs, none left loose.
    expect(gitOut(path.join(runDir, 'project'), ['count-objects', '-v'])).toMatch(/^count: 0$/m);
  });

  it('cleans up on resume when the orchestrator died after its last task, before cleanup', async () => {
    const plan = writePlan([task('only', [], 0)]);
    const run = await runCli(
      ['run', '--plan', plan, '-o', path.join(work, 'late'), '--json'],
      work,
    );
    const { runDir } = resultLine(run.stdout);
    // The moment between the last success and the cleanup: no run-finished, sandboxes left.
    const events = readEvents(runDir).filter((e) => e.type !== 'run-finished');
    writeFileSync(
      path.join(runDir, 'events.jsonl'),
      events.map((e) => `${JSON.stringify(e)}\n`).join(''),
    );
    mkdirSync(path.join(runDir, 'sandboxes/executor-0/workspace'), { recursive: true });
    writeFileSync(path.join(runDir, 'sandboxes/executor-0/workspace/leftover.txt'), 'x');
    const resumed = await runCli(['resume', runDir, '--json'], work);
    expect(resumed.code).toBe(0);
    expect(existsSync(path.join(runDir, 'sandboxes'))).toBe(false);
    expect(readEvents(runDir).at(-1)).toMatchObject({ type: 'run-finished', status: 'succeeded' });
  });

  it('stops in one line with exit 70 when its run directory is deleted mid-run', async () => {
    const plan = writePlan(layered(200).slice(0, 12));
    const { done, runDir } = await startRun(['--plan', plan, '-e', '2']);
    await waitFor(() =>
      eventsSoFar(runDir).some((e) => e.type === 'task-succeeded') ? true : undefined,
    );
    // At once (a rename), then removed: the orchestrator writes on meanwhile.
    renameSync(runDir, `${runDir}.deleted`);
    rmSync(`${runDir}.deleted`, { recursive: true, force: true, maxRetries: 50, retryDelay: 10 });
    const result = await done;
    expect(result.code).toBe(70);
    expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
    expect(existsSync(runDir), 'the run directory made again').toBe(false);
  });

  it('refuses to resume a run another orchestrator is driving', async () => {
    const plan = writePlan([task('long', [], 3000)]);
    const { child, done, runDir } = await startRun(['--plan', plan]);
    const second = await runCli(['resume', runDir], work);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/^error: run .* is in use by process \d+\n$/);
    child.kill('SIGTERM');
    expect((await done).code).toBe(130);
  });
});
