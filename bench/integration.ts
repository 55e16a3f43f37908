/**
 * How integration scales: the same random DAGs of simulated tasks run through the CLI at growing
 * sizes, measured from the run's own journal (commit → merged, merge → dependent started), its
 * summary (duration, peak RSS) and its repository (`.git` on disk, sampled during the run).
 * The growth curve is what the next change to the merge path is compared against.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type PlanInput, parsePlan } from '../packages/runtime/src/contracts/plan.js';
import type { ExecutionSummary } from '../packages/runtime/src/contracts/results.js';
import { readJournal } from '../packages/runtime/src/run/journal.js';
import { estimateSchedule } from '../packages/runtime/src/scheduler/estimate.js';
import { seededInts } from '../packages/runtime/src/util/random.js';
import { CLI, median, type Result, round, runPlanArgs, task } from './common.js';

const execFileAsync = promisify(execFile);
const USAGE_HOOK = fileURLToPath(new URL('./process-usage.mjs', import.meta.url));
const GIT_FLOOR_SCRIPT = fileURLToPath(new URL('./git-floor.sh', import.meta.url));

/** A random DAG: each task depends on up to `maxDeps` earlier tasks, mostly nearby ones. */
export function randomDag(seed: number, size: number, maxDeps: number): PlanInput {
  const draw = seededInts(seed);
  const tasks = Array.from({ length: size }, (_, i) => {
    const deps = new Set<string>();
    const wanted = i === 0 ? 0 : draw(0, maxDeps);
    for (let k = 0; k < wanted; k++) deps.add(`t${Math.max(0, i - draw(1, Math.min(i, 20)))}`);
    return task(`t${i}`, [...deps], draw(1, 100) * 1000);
  });
  return { requirements: `random DAG ${seed}`, executorBudget: 8, tasks };
}

export interface MeasuredRun {
  tasks: number;
  durationMs: number;
  /** The orchestrator's peak RSS when its run ended (its summary's). */
  peakRssMb: number;
  /** The CLI process's peak RSS when it exited: the report it writes after the run included. */
  processPeakRssMb: number;
  /** CPU time of the CLI and every process it ran (git above all), start to exit. */
  cpuMs: number;
  gitMb: number;
  gitPeakMb: number;
  /** Per task: its commit journaled (task-merging) to its merge journaled (task-succeeded). */
  commitToMergedMs: number[];
  /** Per task with dependencies: its last dependency's merge journaled to its start. */
  dependentStartMs: number[];
}

async function diskMb(dir: string): Promise<number> {
  const { stdout } = await execFileAsync('du', ['-s', '-B1', dir]).catch(() => ({ stdout: '0' }));
  return Number(stdout.split('\t')[0]) / 2 ** 20;
}

const at = (time: string) => Date.parse(time);

/** How often `.git` is measured while a run goes. */
const GIT_SAMPLE_MS = 2000;

/**
 * Runs a plan through the CLI (`cli`, the built one unless another build is being compared) and
 * measures it.
 */
export async function runMeasured(
  plan: PlanInput,
  executors: number,
  cli = CLI,
): Promise<MeasuredRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'po-bench-'));
  try {
    const file = path.join(dir, 'plan.json');
    writeFileSync(file, JSON.stringify(plan));
    const usageFile = path.join(dir, 'usage.json');
    const child = spawn(
      process.execPath,
      ['--import', USAGE_HOOK, cli, ...runPlanArgs(file, executors, dir)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PO_BENCH_USAGE_FILE: usageFile },
      },
    );
    let stdout = '';
    let runDir: string | undefined;
    let gitPeakMb = 0;
    let sampling: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      if (!runDir) return;
      const gitDir = path.join(runDir, 'project', '.git');
      sampling = sampling.then(async () => {
        gitPeakMb = Math.max(gitPeakMb, await diskMb(gitDir));
      });
    }, GIT_SAMPLE_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      runDir ??= /"runDir":"([^"]+)"/.exec(stdout)?.[1];
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    clearInterval(timer);
    await sampling;
    if (code !== 0) throw new Error(`benchmark run exited with ${code}: ${runDir ?? dir}`);
    const usage: { peakRssBytes: number; cpuMs: number } = JSON.parse(
      readFileSync(usageFile, 'utf8'),
    );
    return {
      ...(await measure(plan, runDir, stdout, gitPeakMb)),
      processPeakRssMb: round(usage.peakRssBytes / 2 ** 20, 1),
      cpuMs: usage.cpuMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measure(
  plan: PlanInput,
  runDir: string | undefined,
  stdout: string,
  sampledPeakMb: number,
): Promise<Omit<MeasuredRun, 'processPeakRssMb' | 'cpuMs'>> {
  if (!runDir) throw new Error(`benchmark run printed no run directory: ${stdout.slice(0, 200)}`);
  const summary: ExecutionSummary = JSON.parse(
    readFileSync(path.join(runDir, 'execution_summary.json'), 'utf8'),
  );
  if (summary.status !== 'succeeded') throw new Error(`benchmark run ${summary.status}: ${runDir}`);
  const { events } = readJournal(path.join(runDir, 'events.jsonl'));
  const committed = new Map<string, number>();
  const merged = new Map<string, number>();
  const started = new Map<string, number>();
  for (const event of events) {
    if (event.type === 'task-merging') committed.set(event.taskId, at(event.time));
    else if (event.type === 'task-succeeded') merged.set(event.taskId, at(event.time));
    else if (event.type === 'task-started' && !started.has(event.taskId))
      started.set(event.taskId, at(event.time));
  }
  const commitToMergedMs = [...merged].map(([id, time]) => time - (committed.get(id) ?? time));
  const dependentStartMs = plan.tasks
    .filter((t) => (t.dependsOn ?? []).length > 0)
    .map((t) => {
      const ready = Math.max(...(t.dependsOn ?? []).map((id) => merged.get(id) ?? 0));
      return (started.get(t.id) ?? ready) - ready;
    });
  const gitMb = await diskMb(path.join(runDir, 'project', '.git'));
  return {
    tasks: plan.tasks.length,
    durationMs: summary.durationMs,
    peakRssMb: round(summary.orchestrator.peakRssBytes / 2 ** 20, 1),
    gitMb: round(gitMb, 1),
    gitPeakMb: round(Math.max(sampledPeakMb, gitMb), 1),
    commitToMergedMs,
    dependentStartMs,
  };
}

const zeroLength = (plan: PlanInput): PlanInput => ({
  ...plan,
  tasks: plan.tasks.map((t) => ({ ...t, simulate: { durationMs: 0 } })),
});

export const GROWTH_SIZES = [250, 1000, 3000, 5000] as const;

/**
 * The growth curve: random DAGs of zero-length tasks at M=8, one size after another in one
 * bench run. The smallest size runs `repeat` times (it is the baseline every ratio divides by);
 * the larger ones take minutes each and run once. A point's other measures are those of its
 * slowest run.
 */
export async function growthCurve(
  sizes: readonly number[],
  repeat: number,
  cli?: string,
): Promise<Result[]> {
  const curve = [];
  for (const size of sizes) {
    const plan = zeroLength(randomDag(1, size, 2));
    const runs: MeasuredRun[] = [];
    for (let i = 0; i < (size === sizes[0] ? repeat : 1); i++)
      runs.push(await runMeasured(plan, 8, cli));
    const perTask = runs.map((r) => r.durationMs / size);
    const slowest = runs[perTask.indexOf(Math.max(...perTask))] as MeasuredRun;
    curve.push({
      tasks: size,
      msPerTask: round(median(perTask), 1),
      samples: perTask.map((s) => round(s, 1)),
      cpuMsPerTask: round(median(runs.map((r) => r.cpuMs / size)), 1),
      gitMb: slowest.gitMb,
      gitPeakMb: slowest.gitPeakMb,
      commitToMergedMedianMs: median(slowest.commitToMergedMs),
      commitToMergedP90Ms: percentile(slowest.commitToMergedMs, 0.9),
      dependentStartMedianMs: median(slowest.dependentStartMs),
      peakRssMb: slowest.peakRssMb,
      processPeakRssMb: slowest.processPeakRssMb,
    });
  }
  const smallest = curve[0];
  const largest = curve.at(-1);
  const results: Result[] = [
    {
      name: 'growth-curve',
      description:
        'zero-length tasks on random DAGs at M=8, per size: ms per task, .git at the end and at its peak, commit → merged, merge → dependent started, peak RSS',
      value: largest?.msPerTask ?? 0,
      unit: `ms/task at ${largest?.tasks} tasks`,
      target: 'printed, to compare the next change against',
      pass: true,
      curve,
    },
  ];
  if (smallest && largest && largest !== smallest) {
    const ratio = round(largest.msPerTask / smallest.msPerTask, 2);
    // A run's directories grow from empty, so its mean directory is half its size.
    const floor = await gitFloor([smallest.tasks / 2, largest.tasks / 2], repeat);
    const floorGrowth = (floor.at(-1)?.cpuMsPerTask ?? 0) - (floor[0]?.cpuMsPerTask ?? 0);
    results.push({
      name: 'growth-per-task',
      description: `zero-length tasks on random DAGs at M=8: per-task run time at ${largest.tasks} tasks over ${smallest.tasks}`,
      value: ratio,
      unit: 'ratio',
      target: '<= 1.3',
      pass: ratio <= 1.3,
      cpuRatio: round(largest.cpuMsPerTask / smallest.cpuMsPerTask, 2),
      // What the run would cost if nothing but git's own object work grew with it.
      floorRatio: round((smallest.cpuMsPerTask + floorGrowth) / smallest.cpuMsPerTask, 2),
    });
    results.push({
      name: 'git-floor',
      description: `CPU per task of the git work every task needs whatever the integration (bench/git-floor.sh: blobs, trees, commit, merge-tree, merge commit, refs, upkeep; no workspace), at the mean directory size of the ${smallest.tasks}- and ${largest.tasks}-task runs: how much of the growth no integration on git's commands can remove`,
      value: round(floorGrowth, 1),
      unit: `cpu-ms/task more at ${largest.tasks / 2} files a directory than at ${smallest.tasks / 2}`,
      target: 'printed, the bound of growth-per-task',
      pass: true,
      points: floor,
    });
  }
  const at3000 = curve.find((p) => p.tasks === 3000);
  if (at3000) {
    results.push({
      name: 'git-size-3000',
      description: '.git of a 3,000-task run when it ends (and its peak, sampled every 2 s)',
      value: at3000.gitMb,
      unit: 'MB',
      target: '< 100 at the end, < 250 at the peak',
      pass: at3000.gitMb < 100 && at3000.gitPeakMb < 250,
      peakMb: at3000.gitPeakMb,
    });
    results.push({
      name: 'commit-to-merged-3000',
      description: 'median time from a task commit to its merge at 3,000 tasks, M=8',
      value: at3000.commitToMergedMedianMs,
      unit: 'ms',
      target: '< 150',
      pass: at3000.commitToMergedMedianMs < 150,
      p90Ms: at3000.commitToMergedP90Ms,
    });
    results.push({
      name: 'dependent-start-3000',
      description:
        "median time from a task's last dependency merged to its start at 3,000 tasks, M=8",
      value: at3000.dependentStartMedianMs,
      unit: 'ms',
      target: '< 50',
      pass: at3000.dependentStartMedianMs < 50,
    });
  }
  const at5000 = curve.find((p) => p.tasks === 5000);
  if (at5000) {
    results.push({
      name: 'memory-5000',
      description: 'peak RSS of the CLI over a 5,000-task run, its report included',
      value: at5000.processPeakRssMb,
      unit: 'MB',
      target: '< 400',
      pass: at5000.processPeakRssMb < 400,
      orchestratorPeakRssMb: at5000.peakRssMb,
    });
  }
  return results;
}

/** Tasks per measurement of the git floor: one round of upkeep's worth. */
const FLOOR_TASKS = 200;

/**
 * Runs bench/git-floor.sh at each directory size, `repeat` times, alternating sizes so that the
 * machine's drift falls on all of them; returns the median CPU per task at each.
 */
async function gitFloor(
  filesPerDirectory: readonly number[],
  repeat: number,
): Promise<{ filesPerDirectory: number; cpuMsPerTask: number; samples: number[] }[]> {
  const samples = filesPerDirectory.map(() => [] as number[]);
  for (let i = 0; i < repeat; i++) {
    for (const [k, files] of filesPerDirectory.entries()) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'po-bench-floor-'));
      try {
        const { stdout } = await execFileAsync('sh', [
          GIT_FLOOR_SCRIPT,
          path.join(dir, 'repo.git'),
          String(files),
          String(FLOOR_TASKS),
        ]);
        samples[k]?.push(
          (childCpuMs(stdout, 'after') - childCpuMs(stdout, 'before')) / FLOOR_TASKS,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return filesPerDirectory.map((files, k) => ({
    filesPerDirectory: files,
    cpuMsPerTask: round(median(samples[k] ?? []), 1),
    samples: (samples[k] ?? []).map((s) => round(s, 1)),
  }));
}

/** The children's user and system time from the `times` printed after `marker`. */
export function childCpuMs(output: string, marker: string): number {
  const lines = output.split('\n');
  const children = lines[lines.indexOf(marker) + 2] ?? '';
  const seconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(
    ([, minutes, secs]) => Number(minutes) * 60 + Number(secs),
  );
  if (seconds.length !== 2) throw new Error(`git-floor.sh printed no times after ${marker}`);
  return ((seconds[0] as number) + (seconds[1] as number)) * 1000;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

/**
 * Real makespan over the scheduler's virtual one: random DAGs of short tasks (0.1-2 s) run at
 * M=8, each divided by the makespan the scheduler predicts for the same plan with no overhead.
 * What is left over is per-task work while a task holds its slot and merges dependents wait for.
 */
export async function makespanSuite(repeat: number, cli?: string) {
  const cases: { seed: number; tasks: number; ratios: number[]; dependentStartMs: number }[] = [];
  for (const [seed, size, maxDeps] of [
    [201, 40, 1],
    [202, 60, 2],
    [203, 100, 3],
  ] as const) {
    const plan = randomDag(seed, size, maxDeps);
    const draw = seededInts(seed);
    for (const t of plan.tasks) t.simulate = { durationMs: draw(1, 20) * 100 };
    const parsed = parsePlan(plan, { maxTasks: 5000 });
    const { makespanMs } = await estimateSchedule(parsed.tasks, 8, 'critical-path');
    const ratios: number[] = [];
    const waits: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const run = await runMeasured(plan, 8, cli);
      ratios.push(run.durationMs / makespanMs);
      waits.push(...run.dependentStartMs);
    }
    cases.push({
      seed,
      tasks: size,
      ratios: ratios.map((r) => round(r)),
      dependentStartMs: median(waits),
    });
  }
  const value = round(median(cases.map((c) => median(c.ratios))));
  return {
    name: 'real-over-virtual-makespan',
    description:
      'random DAGs of 0.1-2 s simulated tasks at M=8: run time over the scheduler’s predicted makespan (median of the cases’ medians)',
    value,
    unit: 'ratio',
    target: '<= 1.10',
    pass: value <= 1.1,
    dependentStartMedianMs: median(cases.map((c) => c.dependentStartMs)),
    cases,
  } satisfies Result;
}
