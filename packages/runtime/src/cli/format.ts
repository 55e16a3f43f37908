import path from 'node:path';
import type { Plan } from '../contracts/plan.js';
import type { ExecutionSummary } from '../contracts/results.js';
import type { Usage } from '../contracts/usage.js';
import { describeVerification } from '../contracts/verify.js';
import type { RunState } from '../run/replay.js';
import { blockedCauses } from '../run/summary.js';
import type { ScheduleEstimate } from '../scheduler/estimate.js';
import { criticalPath, stages } from '../scheduler/ranking.js';
import { formatBytes } from '../util/bytes.js';
import { printable } from '../util/printable.js';
import { type Palette, PLAIN, visibleLength } from './colour.js';

/**
 * This CLI as the user can type it again here: through `pnpm start` when that is how it was
 * started, the installed command, or node and the script's path.
 */
export function selfCommand(
  env: NodeJS.ProcessEnv = process.env,
  script = process.argv[1] ?? '',
): string {
  if (env.npm_lifecycle_event === 'start') return 'pnpm -s start --';
  if (path.basename(script).startsWith('parallel-orchestrator')) return 'parallel-orchestrator';
  return `node ${path.relative(process.cwd(), script) || script}`;
}

/** A path as the user would type it from here: relative when below the working directory. */
export function shownPath(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative && !relative.startsWith('..') ? relative : dir;
}

/** Columns padded to their widest cell, two spaces apart (colour codes take no room). */
export function formatTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell + ' '.repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(cell))))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatSeconds(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  return h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s).padStart(2, '0')}s`;
}

/** `12,345 in / 678 out tokens (900 cached), $0.0512`. */
export function formatUsage(usage: Usage): string {
  const n = (value: number) => value.toLocaleString('en-US');
  const cached = usage.cacheReadTokens + usage.cacheCreationTokens;
  return `${n(usage.inputTokens)} in / ${n(usage.outputTokens)} out tokens${cached ? ` (${n(cached)} cached)` : ''}, $${usage.costUsd.toFixed(4)}`;
}

/**
 * The DAG as stages of tasks that can run side by side, with its estimated duration: the tasks'
 * own estimates are for real work; a simulated run (`simulated`) takes what its drawn durations
 * take, said first.
 */
export function formatPlan(
  plan: Plan,
  estimate: ScheduleEstimate,
  simulated?: { estimate: ScheduleEstimate; simTaskMs: { min: number; max: number } },
): string {
  const executors = `${plan.executorBudget} executors`;
  const parts = (e: ScheduleEstimate) =>
    `critical path ${formatSeconds(e.criticalPathMs)}, total work ${formatSeconds(e.totalWorkMs)}`;
  const range = simulated && [...new Set([simulated.simTaskMs.min, simulated.simTaskMs.max])];
  const lines = [
    `${plan.tasks.length} tasks for an executor budget of ${plan.executorBudget}`,
    `Critical path: ${criticalPath(plan.tasks)
      .map((t) => t.id)
      .join(' → ')}`,
    ...(simulated
      ? [
          `This simulation takes about ${formatSeconds(simulated.estimate.makespanMs)} with ${executors} ` +
            `(--sim-task-ms ${range?.join('-')}), plus each task's git work`,
          `Estimated for real agents: ${formatSeconds(estimate.makespanMs)} with ${executors} (${parts(estimate)})`,
        ]
      : [`Estimated ${formatSeconds(estimate.makespanMs)} with ${executors} (${parts(estimate)})`]),
    '',
  ];
  stages(plan.tasks).forEach((stage, i) => {
    lines.push(`Stage ${i + 1}${stage.length > 1 ? ` (${stage.length} in parallel)` : ''}`);
    for (const task of stage) {
      const after = task.dependsOn.length ? `  ← ${task.dependsOn.join(', ')}` : '';
      lines.push(`  ${task.id}: ${task.title}${after}`);
    }
  });
  if (plan.notes) lines.push('', plan.notes);
  return lines.join('\n');
}

/** `status`: one row per task. */
export function formatStatus(
  plan: Plan,
  state: RunState,
  heading: string,
  now = Date.now(),
  paint: Palette = PLAIN,
): string {
  // Runs whose attempts are remote jobs show each task's latest job and the state it was seen in.
  const jobs = [...state.tasks.values()].some((record) => record.job);
  const header = [
    'TASK',
    'STATE',
    'ATTEMPTS',
    'DURATION',
    ...(jobs ? ['JOB', 'JOB STATE'] : []),
    'NOTE',
  ];
  const rows: string[][] = [];
  for (const task of plan.tasks) {
    const record = state.tasks.get(task.id);
    if (!record) continue;
    const duration =
      record.status === 'running' && record.startedAt
        ? now - Date.parse(record.startedAt)
        : record.totalDurationMs;
    const note =
      record.status === 'blocked'
        ? `blocked by ${record.blockedBy?.join(', ')}`
        : record.status === 'succeeded'
          ? ''
          : printable(record.error ?? '');
    rows.push([
      task.id,
      paintStatus(record.status, paint),
      String(record.attempts),
      record.attempts ? formatSeconds(duration) : '-',
      ...(jobs ? [record.job?.id ?? record.job?.name ?? '-', record.job?.state ?? '-'] : []),
      note.length > 80 ? `${note.slice(0, 77)}...` : note,
    ]);
  }
  const environment = state.environment && [
    environmentLine(state.environment.command, state.environment),
  ];
  return [heading, ...(environment ?? []), '', formatTable(header, rows)].join('\n');
}

/**
 * `--setup`'s environment in one line: the command, its key (what `runs` shows) and how long
 * preparing took, or that it came from the cache.
 */
export function environmentLine(
  command: string,
  environment: { key: string; cached: boolean; preparedMs: number; bytes: number },
): string {
  const how = environment.cached
    ? `from the cache (prepared in ${formatSeconds(environment.preparedMs)})`
    : `prepared in ${formatSeconds(environment.preparedMs)}`;
  return `Environment:   ${command} → ${environment.key.slice(0, 12)}, ${how}, ${formatBytes(environment.bytes)}`;
}

/** A run's or a task's status word, coloured by what it means. */
function paintStatus(status: string, paint: Palette): string {
  if (status === 'succeeded') return paint.ok(status);
  if (status === 'failed') return paint.fail(status);
  if (status === 'blocked' || status === 'cancelled' || status === 'retrying')
    return paint.warn(status);
  return status;
}

/** How many blocked ids a summary line names before it counts the rest. */
const BLOCKED_NAMED = 5;

/**
 * The blocked tasks, a line per failed task that blocked them: `9 blocked by api-auth: a, b, c,
 * d, e … (+4)`.
 */
function blockedLines(tasks: ExecutionSummary['tasks'], paint: Palette): string[] {
  const blocked = tasks.filter((t) => t.status === 'blocked').map((t) => ({ ...t, id: t.taskId }));
  return blockedCauses(blocked).map(({ by, tasks: ids }) => {
    const named = ids.slice(0, BLOCKED_NAMED);
    const more = ids.length - named.length;
    return `  ${ids.length} ${paint.warn('blocked')} by ${by.join(', ') || '?'}: ${named.join(', ')}${more ? ` … (+${more})` : ''}`;
  });
}

export function formatSummary(
  summary: ExecutionSummary,
  runDir: string,
  report?: { file: string } | { error: string },
  paint: Palette = PLAIN,
): string {
  const { totals } = summary;
  const shown = shownPath(runDir);
  const lines = [
    `Run ${paintStatus(summary.status, paint)}: ${totals.succeeded}/${totals.tasks} tasks succeeded` +
      `${totals.failed ? `, ${totals.failed} failed` : ''}${totals.blocked ? `, ${totals.blocked} blocked` : ''}` +
      `${totals.unfinished ? `, ${totals.unfinished} unfinished` : ''}` +
      ` in ${formatSeconds(summary.durationMs)} (${totals.attempts} attempts, ${summary.executorBudget} executors, ${summary.backend} backend, ${summary.mode})`,
    `Run directory: ${shown}`,
    `Project:       ${path.join(shown, 'project')} (git log --graph main)`,
  ];
  if (report)
    lines.push(
      'file' in report
        ? `Report:        ${path.join(shown, path.basename(report.file))} (open it in a browser)`
        : `Report:        not written: ${report.error}`,
    );
  if (summary.mode === 'real') lines.push(`Model usage:   ${formatUsage(summary.usage)}`);
  if (summary.environment) {
    const again = summary.environment.preparedForWork;
    lines.push(
      `${environmentLine(summary.environment.command, summary.environment)}${again ? `; prepared again for ${again} task${again === 1 ? "'s" : "s'"} changed manifests` : ''}`,
    );
  }
  if (summary.baseCheck && !summary.baseCheck.passed)
    lines.push(
      `Base check:    ${describeVerification(summary.baseCheck)} on the base, allowed by --allow-failing-base`,
    );
  if (summary.verify) {
    const { command, final } = summary.verify;
    const retried = totals.verifyFailures
      ? `; ${totals.verifyFailures} attempt${totals.verifyFailures === 1 ? '' : 's'} failed it and ${totals.verifyFailures === 1 ? 'was' : 'were'} retried or failed`
      : '';
    lines.push(
      `Verify:        ${command}: ${final ? `${describeVerification(final)} on main (${path.join(shown, 'verify.log')})` : 'not run on main'}${retried}`,
    );
  }
  if (summary.stoppedBy === 'budget') {
    lines.push(
      'Stopped by the spending limit (--max-budget-usd): tasks not started are left for resume.',
    );
  }
  for (const task of summary.tasks.filter((t) => t.status === 'failed'))
    lines.push(`  ${task.taskId}: ${paint.fail('failed')}: ${printable(task.error ?? '')}`);
  lines.push(...blockedLines(summary.tasks, paint));
  if (summary.status === 'cancelled' || totals.unfinished) {
    lines.push(`Resume with: ${selfCommand()} resume ${shown}`);
  }
  return lines.join('\n');
}

/** What became of a run's delivery into its source repository, or where a run from a URL left it. */
export interface Delivered {
  /** The repository the branch is in: the source's, or the run's own (`inRun`). */
  repo: string;
  branch: string;
  /** The commit the run started from. */
  base: string;
  /**
   * A run from a URL: nothing was fetched into the source, the result is `branch` (main) of the
   * run's own repository, and it goes anywhere else only by `--push`.
   */
  inRun?: boolean;
  /** The remote (or, from a URL, the repository as shown) the branch was pushed to. */
  pushed?: string;
  /** The branch it was pushed as. */
  pushedBranch?: string;
  /** The push was asked for and failed: git's reason. */
  pushError?: string;
  /** The run did not succeed, and `--deliver-partial` was not given. */
  skipped?: boolean;
  error?: string;
  /** Where a push was asked to go (set with `skipped` and `pushError`). */
  pushTo?: string;
}

/** What the user does next with a delivered run: the branch, how to review it, how to merge. */
export function formatDelivery(delivered: Delivered): string {
  const { repo, branch, base } = delivered;
  const range = `${base.slice(0, 12)}..${branch}`;
  if (delivered.inRun) {
    const lines = [
      `Result:        branch ${branch} of ${repo} (git -C ${repo} log --graph --stat ${range})`,
    ];
    if (delivered.pushed)
      lines.push(`Pushed:        as branch ${delivered.pushedBranch} to ${delivered.pushed}`);
    else if (delivered.pushError)
      lines.push(`Not pushed to ${delivered.pushTo}: ${delivered.pushError}`);
    else if (delivered.skipped)
      lines.push(
        `Not pushed to ${delivered.pushTo}: the run did not succeed (--deliver-partial pushes it anyway)`,
      );
    return lines.join('\n');
  }
  if (delivered.error) return `Not delivered to ${repo}: ${delivered.error}`;
  if (delivered.skipped)
    return `Not delivered to ${repo}: the run did not succeed (--deliver-partial delivers it anyway)`;
  return [
    `Delivered:     branch ${branch} in ${repo}${delivered.pushed ? `, pushed to ${delivered.pushed}` : ''}`,
    `Review:        git -C ${repo} log --graph --stat ${range}`,
    `Merge:         git -C ${repo} merge ${branch}`,
    ...(delivered.pushError ? [`Not pushed to ${delivered.pushTo}: ${delivered.pushError}`] : []),
  ].join('\n');
}
