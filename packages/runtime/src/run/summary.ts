import type { RunStatus } from '../contracts/events.js';
import type { Plan, PlanTask } from '../contracts/plan.js';
import type { ConflictRecord, ExecutionSummary, TaskResult } from '../contracts/results.js';
import type { RunConfig } from '../contracts/run-config.js';
import { taskBranch } from '../contracts/run-layout.js';
import { addUsage } from '../contracts/usage.js';
import { verificationPassed } from '../contracts/verify.js';
import type { RunState, TaskRecord } from './replay.js';

function conflictResolution(record: TaskRecord): ConflictRecord['resolution'] {
  if (record.status === 'succeeded') return 'merged-on-retry';
  return record.status === 'failed' ? 'failed' : 'pending';
}

export function taskResult(task: PlanTask, record: TaskRecord): TaskResult {
  return {
    taskId: task.id,
    title: task.title,
    status: record.status,
    attempts: record.attempts,
    executor: record.executor,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    durationMs: record.durationMs,
    totalDurationMs: record.totalDurationMs,
    branch: taskBranch(task.id),
    commit: record.result.commit,
    mergeCommit: record.result.mergeCommit,
    files: record.result.files ?? [],
    conflictFiles: record.result.conflictFiles,
    ...(record.conflictLog.length > 0 && {
      conflicts: record.conflictLog.map((conflict) => ({
        ...conflict,
        resolution: conflictResolution(record),
      })),
    }),
    ...(record.verifyFailures > 0 && { verifyFailures: record.verifyFailures }),
    ...(record.result.verify && { verify: record.result.verify }),
    error: record.status === 'succeeded' ? undefined : record.error,
    blockedBy: record.blockedBy,
    usage: record.usage,
  };
}

export function buildSummary(
  plan: Plan,
  config: RunConfig,
  state: RunState,
  status: RunStatus,
  integrationCommit: string,
): ExecutionSummary {
  const results = plan.tasks.map((task) =>
    taskResult(task, state.tasks.get(task.id) as TaskRecord),
  );
  const count = (s: TaskResult['status']) => results.filter((r) => r.status === s).length;
  const startedAt = state.startedAt ?? config.createdAt;
  const finishedAt = state.finishedAt ?? new Date().toISOString();
  const succeeded = count('succeeded');
  return {
    runId: config.runId,
    requirements: plan.requirements,
    backend: config.backend,
    mode: config.mode,
    executorBudget: config.executors,
    status,
    startedAt,
    finishedAt,
    durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
    totals: {
      tasks: results.length,
      succeeded,
      failed: count('failed'),
      blocked: count('blocked'),
      unfinished: results.length - succeeded - count('failed') - count('blocked'),
      attempts: results.reduce((sum, r) => sum + r.attempts, 0),
      filesChanged: new Set(results.filter((r) => r.status === 'succeeded').flatMap((r) => r.files))
        .size,
      conflicts: results.reduce((sum, r) => sum + (r.conflicts?.length ?? 0), 0),
      verifyFailures: results.reduce((sum, r) => sum + (r.verifyFailures ?? 0), 0),
    },
    successRate: results.length ? succeeded / results.length : 0,
    usage: results.reduce((sum, r) => addUsage(sum, r.usage), config.planner.usage),
    planning: {
      planner: config.planner.name,
      model: config.planner.model,
      usage: config.planner.usage,
    },
    ...(state.stoppedBy && { stoppedBy: state.stoppedBy }),
    ...(config.verify && {
      verify: {
        command: config.verify.command,
        ...(state.verified && {
          final: {
            commit: state.verified.commit,
            ...state.verified.verification,
            passed: verificationPassed(state.verified.verification),
          },
        }),
      },
    }),
    ...(config.setup &&
      state.environment && {
        environment: {
          command: config.setup.command,
          key: state.environment.key,
          cached: state.environment.cached,
          preparedMs: state.environment.preparedMs,
          bytes: state.environment.bytes,
          paths: state.environment.paths,
          preparedForWork: state.environmentsForWork,
        },
      }),
    ...(state.baseCheck && {
      baseCheck: {
        commit: state.baseCheck.commit,
        ...state.baseCheck.verification,
        passed: verificationPassed(state.baseCheck.verification),
        allowed: state.baseCheck.allowed,
      },
    }),
    integrationCommit,
    orchestrator: { peakRssBytes: process.resourceUsage().maxRSS * 1024 },
    tasks: results,
  };
}

/**
 * Blocked tasks grouped by what blocked them (the failed tasks they wait on, sorted), the
 * largest group first: the terminal summary and the report say one line per group.
 */
export function blockedCauses(
  blocked: Iterable<{ id: string; blockedBy?: readonly string[] | undefined }>,
): { by: string[]; tasks: string[] }[] {
  const groups = new Map<string, { by: string[]; tasks: string[] }>();
  for (const task of blocked) {
    const by = [...(task.blockedBy ?? [])].sort();
    const key = by.join('\n');
    const group = groups.get(key) ?? { by, tasks: [] };
    group.tasks.push(task.id);
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => b.tasks.length - a.tasks.length);
}
