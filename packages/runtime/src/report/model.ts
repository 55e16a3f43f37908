import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Plan } from '../contracts/plan.js';
import { type ExecutionSummary, ExecutionSummarySchema } from '../contracts/results.js';
import type { RunConfig } from '../contracts/run-config.js';
import { type RunLayout, TASK_FILES } from '../contracts/run-layout.js';
import { readJournal } from '../run/journal.js';
import { blockedCauses } from '../run/summary.js';
import { printable } from '../util/printable.js';
import { git } from '../workspace/git.js';
import { diffOf } from '../workspace/history.js';
import { clip } from './svg.js';
import { type Bounds, buildTimeline, runBounds, type Timeline } from './timeline.js';

/** A report stays under a megabyte: diffs share this much, no task more than the most below. */
const DIFF_BUDGET_CHARS = 400_000;
const MAX_DIFF_CHARS = 16_000;
/** A failure's reason on the first screen: one line, cut to this. */
const REASON_CHARS = 240;
/** Beyond this many tasks a diff would get too few characters to read: `diff` shows them. */
export const DIFF_TASK_LIMIT = 300;

export interface ReportTask {
  id: string;
  title: string;
  dependsOn: string[];
  status: ExecutionSummary['tasks'][number]['status'];
  attempts: number;
  /** Wall time of every attempt together. */
  durationMs: number;
  files: number;
  added: number;
  removed: number;
  costUsd: number;
  tokens: number;
  error?: string;
  /** The error's first line, safe to show in one line. */
  reasonShort?: string;
  blockedBy?: string[];
  /** `tasks/<id>/executor.log` and `verify.log`, relative to the run directory, when they exist. */
  logPath?: string;
  verifyLogPath?: string;
  conflicts: number;
  verifyFailures: number;
  critical: boolean;
  /** The task's own change (its commit against its base), cut to a bound. */
  diff?: string;
  diffCut?: boolean;
}

/** Everything the report shows, taken from the run's own records and nothing else. */
export interface ReportData {
  runId: string;
  requirements: string;
  status: ExecutionSummary['status'];
  backend: string;
  mode: string;
  executors: number;
  models: { planner?: string; executor?: string };
  startedAt: string;
  durationMs: number;
  totals: ExecutionSummary['totals'];
  usage: ExecutionSummary['usage'];
  stoppedBy?: ExecutionSummary['stoppedBy'];
  verify?: ExecutionSummary['verify'];
  /** The spending limits the run was given (`--max-budget-usd`, the agent's per-task cap). */
  budget: { maxBudgetUsd?: number; maxTaskUsd?: number };
  /** What the run was quoted before it started, when `run.json` records a quote. */
  quote?: { usd: number };
  /** Blocked tasks grouped by what blocked them, the largest group first. */
  blockedCauses: { by: string[]; tasks: string[] }[];
  bounds: Bounds;
  timeline: Timeline;
  /** In the summary's (plan) order. */
  tasks: ReportTask[];
}

/** `run.json` may carry a quote made before the run; nothing else of it is read here. */
const QuotedSchema = z.object({ quote: z.object({ usd: z.number().min(0) }).optional() });

const quoteOf = (file: string) =>
  QuotedSchema.safeParse(JSON.parse(readFileSync(file, 'utf8'))).data?.quote;

/** A file of a task's directory, relative to the run directory, when it exists. */
function taskFile(layout: RunLayout, taskId: string, name: string): string | undefined {
  return existsSync(path.join(layout.taskDir(taskId), name))
    ? `tasks/${taskId}/${name}`
    : undefined;
}

const optional = <K extends string, V>(key: K, value: V | undefined) =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

/** Lines added and removed by each commit against its first parent, in one git call. */
async function lineCounts(
  gitDir: string,
  commits: readonly string[],
): Promise<Map<string, { added: number; removed: number }>> {
  const counts = new Map<string, { added: number; removed: number }>();
  if (commits.length === 0) return counts;
  const { stdout } = await git({ gitDir }, [
    'log',
    '--no-walk=unsorted',
    '--numstat',
    '--no-renames',
    '--format=@%H',
    ...commits,
  ]);
  let current: { added: number; removed: number } | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@')) {
      current = { added: 0, removed: 0 };
      counts.set(line.slice(1), current);
    } else if (current && line) {
      // Binary files count as `-`.
      const [added = '0', removed = '0'] = line.split('\t');
      current.added += Number(added) || 0;
      current.removed += Number(removed) || 0;
    }
  }
  return counts;
}

export async function reportData(
  layout: RunLayout,
  config: RunConfig,
  plan: Plan,
): Promise<ReportData> {
  const summary = ExecutionSummarySchema.parse(JSON.parse(readFileSync(layout.summary, 'utf8')));
  const { events } = readJournal(layout.journal);
  const timeline = buildTimeline(plan.tasks, events);
  const bounds = runBounds(plan.tasks, timeline, config.executors);
  const critical = new Set(bounds.criticalPath);
  const gitDir = path.join(layout.project, '.git');
  const commits = summary.tasks.flatMap((t) => (t.commit ? [t.commit] : []));
  const lines = await lineCounts(gitDir, commits).catch(() => new Map());
  const perTask = Math.min(MAX_DIFF_CHARS, Math.floor(DIFF_BUDGET_CHARS / plan.tasks.length));
  const byId = new Map(plan.tasks.map((t) => [t.id, t]));
  const tasks: ReportTask[] = [];
  for (const result of summary.tasks) {
    const counted = result.commit ? lines.get(result.commit) : undefined;
    let diff: string | undefined;
    if (result.commit && plan.tasks.length <= DIFF_TASK_LIMIT) {
      diff = await diffOf(gitDir, `${result.commit}^`, result.commit).catch(
        () => '(the diff could not be read)',
      );
    }
    tasks.push({
      id: result.taskId,
      title: result.title,
      dependsOn: byId.get(result.taskId)?.dependsOn ?? [],
      status: result.status,
      attempts: result.attempts,
      durationMs: result.totalDurationMs,
      files: result.files.length,
      added: counted?.added ?? 0,
      removed: counted?.removed ?? 0,
      costUsd: result.usage.costUsd,
      tokens: result.usage.inputTokens + result.usage.outputTokens,
      ...(result.error && {
        error: result.error,
        reasonShort: clip(printable(result.error.split('\n', 1)[0] ?? ''), REASON_CHARS),
      }),
      ...(result.blockedBy && { blockedBy: result.blockedBy }),
      ...optional('logPath', taskFile(layout, result.taskId, TASK_FILES.log)),
      ...optional('verifyLogPath', taskFile(layout, result.taskId, TASK_FILES.verifyLog)),
      conflicts: result.conflicts?.length ?? 0,
      verifyFailures: result.verifyFailures ?? 0,
      critical: critical.has(result.taskId),
      ...(diff !== undefined && {
        diff: diff.slice(0, perTask),
        diffCut: diff.length > perTask,
      }),
    });
  }
  return {
    runId: summary.runId,
    requirements: summary.requirements,
    status: summary.status,
    backend: summary.backend,
    mode: summary.mode,
    executors: summary.executorBudget,
    models: {
      ...(summary.planning.model && { planner: summary.planning.model }),
      ...(config.agent && { executor: config.agent.model }),
    },
    startedAt: summary.startedAt,
    durationMs: summary.durationMs,
    totals: summary.totals,
    usage: summary.usage,
    ...(summary.stoppedBy && { stoppedBy: summary.stoppedBy }),
    ...(summary.verify && { verify: summary.verify }),
    budget: {
      ...(config.maxBudgetUsd !== undefined && { maxBudgetUsd: config.maxBudgetUsd }),
      ...(config.agent?.maxBudgetUsd !== undefined && { maxTaskUsd: config.agent.maxBudgetUsd }),
    },
    ...optional('quote', quoteOf(layout.config)),
    blockedCauses: blockedCauses(tasks.filter((task) => task.status === 'blocked')),
    bounds,
    timeline,
    tasks,
  };
}
