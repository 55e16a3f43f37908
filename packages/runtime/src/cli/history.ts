import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStatus } from '../contracts/events.js';
import type { Plan } from '../contracts/plan.js';
import { ExecutionSummarySchema } from '../contracts/results.js';
import { RunConfigSchema } from '../contracts/run-config.js';
import { type RunLayout, runLayout } from '../contracts/run-layout.js';
import { UsageError } from '../errors.js';
import { readJournal } from '../run/journal.js';
import { loadRun } from '../run/orchestrator.js';
import { FINAL_TASK_STATUSES, replay, type TaskRecord } from '../run/replay.js';
import { lockHolder } from '../run/run-dir.js';
import { printable } from '../util/printable.js';
import { formatSeconds, formatTable, shownPath } from './format.js';

/** What `runs` says of one run directory. */
export interface RunListing {
  runId: string;
  runDir: string;
  createdAt: string;
  /** As its summary says once it ended; `running` while its lock is held; else `interrupted`. */
  status: string;
  tasks: number;
  succeeded?: number;
  durationMs?: number;
  costUsd?: number;
  /** `--setup`: the environment's key, and how long preparing it took (0 when it was cached). */
  environment?: { key: string; preparedMs: number; cached: boolean };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The runs under an output directory, newest first; directories that are not runs are skipped. */
export function listRuns(output: string): RunListing[] {
  if (!existsSync(output)) return [];
  const runs: RunListing[] = [];
  for (const entry of readdirSync(output, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const layout = runLayout(path.join(output, entry.name));
    const config = RunConfigSchema.safeParse(readJson(layout.config));
    if (!config.success) continue;
    const summary = ExecutionSummarySchema.safeParse(readJson(layout.summary));
    const plan = readJson(layout.plan) as { tasks?: unknown[] } | undefined;
    const running = lockHolder(layout) !== undefined;
    const listing: RunListing = {
      runId: config.data.runId,
      runDir: layout.root,
      createdAt: config.data.createdAt,
      status: running ? 'running' : 'interrupted',
      tasks: plan?.tasks?.length ?? 0,
    };
    if (summary.success && !running) {
      listing.status = summary.data.status;
      listing.succeeded = summary.data.totals.succeeded;
      listing.durationMs = summary.data.durationMs;
      listing.costUsd = summary.data.usage.costUsd;
      const environment = summary.data.environment;
      if (environment) {
        const { key, preparedMs, cached } = environment;
        listing.environment = { key, preparedMs, cached };
      }
    }
    runs.push(listing);
  }
  return runs.sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || b.runId.localeCompare(a.runId),
  );
}

/**
 * A run directory as commands take it: a path; `latest` for the newest run under the output
 * directory; `<dir>/latest` for the newest under `<dir>`. A directory that exists is taken as
 * it is, whatever its name.
 */
export function resolveRunDir(given: string, output: string): string {
  if (existsSync(given) || path.basename(given) !== 'latest') return given;
  const under = given === 'latest' ? output : path.dirname(given);
  const newest = listRuns(under)[0];
  if (!newest)
    throw new UsageError(
      `${given}: no run under ${under}${existsSync(under) ? '' : ' (no such directory)'}${given === 'latest' ? ': -o DIR names the output directory, or give DIR/latest' : ''}`,
    );
  return newest.runDir;
}

export function runsCommand(output: string, options: { json?: boolean }): void {
  const runs = listRuns(output);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(runs, null, 2)}\n`);
    return;
  }
  if (runs.length === 0) {
    process.stdout.write(`no runs under ${output}\n`);
    return;
  }
  const rows = runs.map((run) => [
    run.runId,
    run.createdAt.replace('T', ' ').slice(0, 19),
    run.status,
    run.succeeded === undefined ? `${run.tasks}` : `${run.succeeded}/${run.tasks}`,
    run.durationMs === undefined ? '' : formatSeconds(run.durationMs),
    run.costUsd ? `$${run.costUsd.toFixed(2)}` : '',
    run.environment
      ? `${run.environment.key.slice(0, 12)} ${run.environment.cached ? 'cached' : formatSeconds(run.environment.preparedMs)}`
      : '',
  ]);
  const header = ['RUN', 'STARTED (UTC)', 'STATUS', 'TASKS', 'TIME', 'COST', 'ENVIRONMENT'];
  process.stdout.write(`${formatTable(header, rows)}\n`);
}

/** ` (the error's first line)` of a task that failed, or nothing. */
export function errorNote(record: TaskRecord): string {
  return record.error ? ` (${printable(record.error.split('\n')[0] ?? '')})` : '';
}

/**
 * Why a task has no log or no commit, from the run's journal: never started (blocked by whom),
 * not reached (the run cancelled, stopped by its budget or interrupted), or not yet (its run is
 * at work).
 */
export function whyNoOutput(
  layout: RunLayout,
  plan: Plan,
  taskId: string,
  what: 'log' | 'commit',
): string {
  const state = replay(
    plan.tasks.map((t) => t.id),
    readJournal(layout.journal).events,
  );
  const record = state.tasks.get(taskId);
  const live = lockHolder(layout) !== undefined;
  if (record?.status === 'blocked')
    return `task ${taskId} never started: blocked by ${record.blockedBy?.join(', ')}`;
  if (!record?.attempts) {
    if (live) return `task ${taskId} has not started yet`;
    const why =
      state.stoppedBy === 'budget'
        ? 'the run stopped starting tasks once its budget was spent'
        : state.status === 'cancelled'
          ? 'the run was cancelled'
          : state.status
            ? `the run ended (${state.status})`
            : 'the run was interrupted (resume continues it)';
    return `task ${taskId} was not reached: ${why}`;
  }
  const attempt = `attempt ${record.attempts}`;
  if (live && !FINAL_TASK_STATUSES.has(record.status))
    return `task ${taskId} has no ${what} yet: ${attempt} is ${record.status}`;
  const reason = errorNote(record);
  const log = existsSync(layout.executorLog(taskId))
    ? `; its log: ${shownPath(layout.executorLog(taskId))}`
    : '';
  // Its run let go of it unfinished: interrupted, not ended.
  const ended = FINAL_TASK_STATUSES.has(record.status)
    ? `${record.status} on ${attempt}${reason}`
    : `was ${record.status === 'cancelled' ? 'cancelled' : 'interrupted'} on ${attempt} (resume continues it)`;
  return what === 'commit'
    ? `task ${taskId} ${ended} before committing anything${log}`
    : `task ${taskId} ${ended} and left no log`;
}

/** How often `logs --follow` looks for more. */
const FOLLOW_POLL_MS = 250;

/**
 * `logs <runDir> <task>`: the task's executor log; `--follow` keeps printing what is appended
 * until the task has ended and the run no longer holds its lock.
 */
export async function logsCommand(
  runDir: string,
  taskId: string,
  options: { follow?: boolean },
): Promise<void> {
  const { layout, plan } = loadRun(runDir);
  if (!plan.tasks.some((task) => task.id === taskId))
    throw new UsageError(`no task ${taskId} in ${runDir}`);
  const file = layout.executorLog(taskId);
  let offset = 0;
  const drain = async () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    if (size <= offset) return;
    const handle = await open(file, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      offset = size;
      process.stdout.write(buffer);
    } finally {
      await handle.close();
    }
  };
  await drain();
  if (!options.follow) {
    if (offset === 0) process.stderr.write(`${whyNoOutput(layout, plan, taskId, 'log')}\n`);
    return;
  }
  const ended = () =>
    FINAL_TASK_STATUSES.has(
      (readJson(layout.taskResult(taskId)) as { status?: TaskStatus } | undefined)?.status ??
        'pending',
    );
  while (lockHolder(layout) !== undefined && !ended()) {
    await sleep(FOLLOW_POLL_MS);
    await drain();
  }
  await drain();
}
