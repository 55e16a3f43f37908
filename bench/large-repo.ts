/**
 * A run from a large repository (`--repo`): how long until the first task starts, and the disk a
 * run adds on top of the source, for its repository and for each executor slot's workspace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, independent, median, type Result, round } from './common.js';

const FILES = 20_000;
const BYTES = 200 * 2 ** 20;
export const SLOTS = 4;

/** 20,000 files of incompressible content, 200 MB in all, in one commit. */
export function largeRepository(root: string): string {
  const repo = path.join(root, 'source');
  const size = BYTES / FILES;
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(repo, `pkg${i % 100}`, `mod${i % 7}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `file${i}.bin`), randomBytes(size));
  }
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo });
  commitAll(repo, 'large');
  return repo;
}

/** Commits everything in `repo` as the bench's author. */
export function commitAll(repo: string, message: string): void {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'bench',
    GIT_AUTHOR_EMAIL: 'bench@example.invalid',
    GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@example.invalid',
  };
  execFileSync('git', ['add', '-A'], { cwd: repo, env });
  execFileSync('git', ['commit', '-qm', message], { cwd: repo, env });
}

/** Bytes the paths take on disk together, a file linked from several of them counted once. */
export function diskBytes(...paths: string[]): number {
  const out = execFileSync('du', ['-s', '-B1', '--total', ...paths], { encoding: 'utf8' });
  return Number(out.trim().split('\n').at(-1)?.split('\t')[0]);
}

export interface StartSample {
  startMs: number;
  projectBytes: number;
  slotBytes: number[];
  /** The whole run directory once every slot is at work, less what it shares with the source. */
  runBytes: number;
  /** Where the run was written: removed unless kept. */
  output: string;
}

/** Whether the task's executor is at work (its workspace was ready before it started). */
function working(run: string, taskId: string): boolean {
  try {
    return readFileSync(path.join(run, 'tasks', taskId, 'executor.log'), 'utf8').includes(
      'simulating task',
    );
  } catch {
    return false;
  }
}

/**
 * One run by `cli` with `args`: timed from the command to the first executor at work in its
 * checkout, and measured once every slot's executor is. The run's output is kept when asked.
 */
export async function sampleStart(
  root: string,
  repo: string,
  plan: string,
  cli = CLI,
  args: readonly string[] = [],
  keep = false,
): Promise<StartSample> {
  const output = mkdtempSync(path.join(root, 'runs-'));
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [cli, 'run', '--plan', plan, '--repo', repo, '-e', String(SLOTS), '-o', output, ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const closed = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  try {
    let startMs: number | undefined;
    let measured: StartSample | undefined;
    const taskIds = Array.from({ length: SLOTS }, (_, i) => `t${i}`);
    while (!measured && child.exitCode === null) {
      await sleep(25);
      const [runDir] = readdirSync(output);
      if (!runDir) continue;
      const run = path.join(output, runDir);
      const at = taskIds.filter((id) => working(run, id)).length;
      if (at > 0) startMs ??= Date.now() - started;
      if (at < SLOTS || startMs === undefined) continue;
      const source = diskBytes(repo);
      measured = {
        startMs,
        projectBytes: diskBytes(repo, path.join(run, 'project')) - source,
        slotBytes: taskIds.map((_, k) => diskBytes(path.join(run, 'sandboxes', `executor-${k}`))),
        // The run's repository shares the source's objects (hard links): counted once.
        runBytes: diskBytes(repo, run) - source,
        output,
      };
    }
    const code = await closed;
    if (code !== 0 || !measured)
      throw new Error(`large-repository run exited ${code} before every slot was at work`);
    return measured;
  } finally {
    if (!keep) rmSync(output, { recursive: true, force: true });
  }
}

export async function largeRepoScenarios(repeat: number): Promise<Result[]> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'po-bench-repo-'));
  try {
    const repo = largeRepository(root);
    const plan = path.join(root, 'plan.json');
    // Long enough that every slot's task runs at once, and short enough to end soon.
    writeFileSync(plan, JSON.stringify({ ...independent(SLOTS, 8_000), executorBudget: SLOTS }));
    const samples: StartSample[] = [];
    for (let i = 0; i < repeat; i++) samples.push(await sampleStart(root, repo, plan));
    const mb = (bytes: number) => round(bytes / 2 ** 20, 1);
    const startS = round(median(samples.map((s) => s.startMs)) / 1000, 2);
    const perSlot = median(samples.flatMap((s) => s.slotBytes));
    // The user's own checkout of the same tree, measured the same way (blocks, not bytes).
    const checkout = Number(
      execFileSync('du', ['-s', '-B1', '--exclude=.git', repo], { encoding: 'utf8' }).split(
        '\t',
      )[0],
    );
    const repository = diskBytes(repo);
    return [
      {
        name: 'large-repo-start',
        description: `--repo of ${FILES} files, ${BYTES / 2 ** 20} MB: from the command to the first executor at work in its checkout`,
        value: startS,
        unit: 's',
        target: '<= 10',
        pass: startS <= 10,
        samples: samples.map((s) => round(s.startMs / 1000, 2)),
      },
      {
        name: 'large-repo-disk-per-slot',
        description: `disk each of ${SLOTS} executor slots takes while its task runs, over the source's own checkout of the same tree: one checkout of files, no copy of the repository`,
        value: round(perSlot / checkout, 3),
        unit: 'x checkout',
        target: '<= 1.05',
        pass: perSlot / checkout <= 1.05,
        slotMb: mb(perSlot),
        checkoutMb: mb(checkout),
        samples: samples.map((s) => round(median(s.slotBytes) / checkout, 3)),
      },
      {
        name: 'large-repo-disk-project',
        description: "disk the run's repository adds over the source's (objects hard-linked)",
        value: round(median(samples.map((s) => s.projectBytes)) / repository, 3),
        unit: 'x repository',
        target: '<= 0.05',
        pass: median(samples.map((s) => s.projectBytes)) / repository <= 0.05,
        projectMb: mb(median(samples.map((s) => s.projectBytes))),
        repositoryMb: mb(repository),
      },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
