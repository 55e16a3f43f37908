import { appendFileSync, writeFileSync } from 'node:fs';
import type { Backend } from '../backends/backend.js';
import type { PreparedEnvironment } from '../contracts/environment.js';
import type { AttemptResult, EventBody } from '../contracts/events.js';
import type { ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import type { Plan, PlanTask } from '../contracts/plan.js';
import type { RunConfig } from '../contracts/run-config.js';
import {
  type RunLayout,
  type SandboxLayout,
  TASK_FILES,
  taskBranch,
} from '../contracts/run-layout.js';
import {
  describeVerification,
  type Verification,
  type VerifySettings,
  verificationPassed,
} from '../contracts/verify.js';
import { SetupFailedError } from '../environment/setup.js';
import type { ModelAccess } from '../models/access.js';
import { countedByProxy } from '../proxy/counted.js';
import type { GrantUsage, ModelProxy } from '../proxy/model-proxy.js';
import type { AttemptContext, AttemptOutcome } from '../scheduler/scheduler.js';
import { OutputCheck, OutputRejectedError } from '../trust/output-check.js';
import { SecretScanner } from '../trust/secret-scanner.js';
import { treeToCheck } from '../verify/from-base.js';
import type { Project } from '../workspace/project.js';
import type { Slots, TaskCommit } from '../workspace/slots.js';
import type { RunState } from './replay.js';
import { logLine } from './run-log.js';

/** Paths an attempt left out as ignored, named in its log; the rest are counted. */
const IGNORED_SHOWN = 10;

/** What an attempt needs of the run driving it. */
export interface AttemptHost {
  layout: RunLayout;
  config: RunConfig;
  plan: Plan;
  project: Project;
  slots: Slots;
  state: RunState;
  tasksById: ReadonlyMap<string, PlanTask>;
  modelAccess?: ModelAccess;
  emit(body: EventBody): void;
  /** Makes the task's directory, once. */
  ensureTaskDir(taskId: string): void;
  /** Counts what an attempt spent, as soon as it is known. */
  spend(usd: number): void;
  /** `--setup`: the environment of a tree the attempt works on or is checked on. */
  environmentFor(
    tree: string,
    who: { taskId: string; attempt: number },
    signal: AbortSignal,
  ): Promise<PreparedEnvironment | undefined>;
  /** `--allow-failing-base`: the check fails on the base, and no work has passed it since. */
  baseFailing: boolean;
}

type Failure = Extract<AttemptOutcome, { ok: false }>;

function abortReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'cancelled';
}

/**
 * One attempt of a task, from its slot's workspace to its merge: the workspace at the integration
 * commit, the executor, the trust checks and the commit, `--verify` on the merged work, the merge.
 */
export class Attempt {
  constructor(
    private readonly host: AttemptHost,
    private readonly backend: Backend,
    private readonly proxy: ModelProxy | undefined,
  ) {}

  /**
   * The rules this attempt's changes must pass: the run's size limits and, in real mode, no
   * secret the run handed out (the model credentials and the attempt's own proxy token).
   */
  private outputCheck(modelToken: string | undefined): OutputCheck {
    const secrets: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.host.modelAccess?.secrets ?? {})) {
      if (value) secrets[name] = value;
    }
    if (modelToken) secrets['the model proxy token'] = modelToken;
    return new OutputCheck(this.host.config.outputLimits, new SecretScanner(secrets));
  }

  private spec(
    task: PlanTask,
    attempt: number,
    executor: number,
    sandbox: SandboxLayout,
  ): TaskSpec {
    const { config, plan, layout, state, tasksById } = this.host;
    const record = state.tasks.get(task.id);
    const lastConflict = record?.conflictLog.at(-1);
    return {
      runId: config.runId,
      taskId: task.id,
      attempt,
      executor,
      mode: config.mode,
      requirements: plan.requirements,
      task,
      mergedDependencies: task.dependsOn.map((id) => ({
        id,
        title: tasksById.get(id)?.title ?? id,
      })),
      workspaceDir: sandbox.workspace,
      outputDir: layout.taskDir(task.id),
      seed: config.seed,
      ...(lastConflict?.attempt === attempt - 1 && { conflict: lastConflict }),
      ...(config.verify && { verify: config.verify }),
      ...(config.verify &&
        record?.verifyFailure?.attempt === attempt - 1 && {
          verifyFailure: {
            attempt: attempt - 1,
            command: config.verify.command,
            exitCode: record.verifyFailure.verification.exitCode,
            timedOut: record.verifyFailure.verification.timedOut,
            tail: record.verifyFailure.verification.tail,
          },
        }),
      ...(config.mode === 'real' && {
        agent: config.agent,
        agentHome: sandbox.home,
        planContext: plan.tasks.map(({ id, title, description, dependsOn, files }) => ({
          id,
          title,
          summary: description.split('\n')[0]?.slice(0, 200),
          dependsOn,
          files,
        })),
        ...(this.proxy && { modelProxy: { socket: this.proxy.socketPath } }),
      }),
    };
  }

  async run({
    task,
    attempt,
    executor,
    signal,
    releaseExecutor,
  }: AttemptContext): Promise<AttemptOutcome> {
    const { layout, config, state, project, slots } = this.host;
    const sandbox = layout.sandbox(executor);
    this.host.ensureTaskDir(task.id);
    const record = state.tasks.get(task.id);
    const adopt = record?.adopting?.attempt === attempt ? record.adopting : undefined;
    // Every dependency has succeeded, so it is merged: the head holds all the task builds on.
    // An adopted attempt keeps the base its job started from.
    const base = adopt?.base ?? project.head;
    await slots.prepare(sandbox.workspace, base);
    // The base's manifests are the merged work's: its environment was prepared when that merged.
    const environment = await this.host.environmentFor(base, { taskId: task.id, attempt }, signal);
    const spec = this.spec(task, attempt, executor, sandbox);
    writeFileSync(layout.taskSpec(task.id), `${JSON.stringify(spec, null, 2)}\n`);
    const modelToken = this.proxy?.issue(`task ${task.id} attempt ${attempt}`, {
      maxUsd: config.agent?.maxBudgetUsd,
    });
    let counted: GrantUsage | undefined;
    let outcome: ExecutorOutcome;
    try {
      outcome = await this.backend.execute(spec, {
        executor,
        signal,
        logPath: layout.executorLog(task.id),
        sandbox,
        modelToken,
        base,
        ...(environment && { environment }),
        recordJob: (job, jobState, reason) =>
          this.host.emit({
            type: 'task-job',
            taskId: task.id,
            attempt,
            job,
            state: jobState,
            ...(reason && { reason }),
          }),
        ...(adopt && {
          adopt: { name: adopt.name, base: adopt.base, ...(adopt.id && { id: adopt.id }) },
        }),
      });
    } finally {
      // The attempt is over: its token opens nothing any more.
      if (modelToken) counted = this.proxy?.revoke(modelToken);
    }
    if (counted) outcome = countedByProxy(outcome, counted);
    const executedAt = new Date().toISOString();
    this.host.spend(outcome.usage?.costUsd ?? 0);
    const usage = outcome.usage && { usage: outcome.usage };
    const trailer = `Task-Id: ${task.id}\nAttempt: ${attempt}\nRun-Id: ${config.runId}\n`;
    const commit = (message: string, onStaged?: () => void) =>
      slots.commit(sandbox.workspace, {
        taskId: task.id,
        base,
        message: `${message}\n\n${trailer}`,
        check: this.outputCheck(modelToken),
        signal,
        onStaged,
      });
    if (outcome.status === 'failed' || signal.aborted) {
      const permanent = outcome.retryable === false && !signal.aborted;
      let kept: TaskCommit | undefined;
      if (permanent) {
        // Keep what the failed attempt did on its branch for inspection, if it passes the
        // output rules; it is never merged.
        kept = await commit(`task(${task.id}): failed attempt, not merged`).catch(() => undefined);
      }
      return {
        ok: false,
        error: outcome.error ?? 'executor failed without a message',
        kind: permanent ? 'permanent' : 'transient',
        result: { ...(kept && { commit: kept.commit, files: kept.files }), ...usage },
      };
    }
    let committed: TaskCommit;
    try {
      // With nothing to verify in it, the workspace is free once the work is in git.
      committed = await commit(
        `task(${task.id}): ${task.title}`,
        config.verify ? undefined : releaseExecutor,
      );
    } catch (error) {
      if (signal.aborted) return { ok: false, error: abortReason(signal), kind: 'transient' };
      if (!(error instanceof OutputRejectedError)) throw error;
      return { ok: false, error: error.message, kind: 'permanent', result: usage };
    }
    this.logLeftOut(task.id, committed);
    const result: AttemptResult = { commit: committed.commit, files: committed.files, ...usage };
    if (config.verify) {
      const verified = await this.verify(task, attempt, committed, sandbox, signal);
      if (!verified.ok) return { ...verified, result: { ...result, ...verified.result } };
      result.verify = verified.verification;
    }
    this.host.emit({
      type: 'task-merging',
      taskId: task.id,
      attempt,
      commit: committed.commit,
      executedAt,
    });
    // The commit holds the work; the slot's workspace can serve the next task while this merges.
    releaseExecutor();
    const merge = await project.merge(
      committed.commit,
      `Merge ${taskBranch(task.id)}: ${task.title}\n\n${trailer}`,
    );
    if (!merge.merged) return this.conflict(task, merge.conflictFiles, result);
    // Merged work that passes the check makes the branch pass it: from now on it gates.
    if (result.verify && verificationPassed(result.verify)) this.host.baseFailing = false;
    return { ok: true, result: { ...result, mergeCommit: merge.mergeCommit } };
  }

  /** What the host removed from the workspace or left out of the commit, in the task's log. */
  private logLeftOut(taskId: string, committed: TaskCommit): void {
    const lines: string[] = [];
    if (committed.removed)
      lines.push(
        `removed what git must not read from the workspace: ${committed.removed.join(', ')}`,
      );
    if (committed.ignored) {
      const { ignored } = committed;
      const more =
        ignored.length > IGNORED_SHOWN ? ` and ${ignored.length - IGNORED_SHOWN} more` : '';
      lines.push(
        `not committed, as the repository's ignore rules leave them out: ${ignored.slice(0, IGNORED_SHOWN).join(', ')}${more}`,
      );
    }
    for (const line of lines) appendFileSync(this.host.layout.executorLog(taskId), logLine(line));
  }

  /** A task whose work conflicts with the integration branch: told whose work it met, where. */
  private async conflict(
    task: PlanTask,
    conflictFiles: string[],
    result: AttemptResult,
  ): Promise<Failure> {
    const conflictsWith = await this.host.project.tasksTouching(conflictFiles);
    const whose = conflictsWith.length
      ? `task ${conflictsWith.join(', ')}`
      : 'the integration branch';
    return {
      ok: false,
      kind: 'conflict',
      error: `merge conflict with ${whose} in ${conflictFiles.join(', ')}; the task's work is kept on ${taskBranch(task.id)}`,
      result: { ...result, conflictFiles, conflictsWith },
    };
  }

  /**
   * `--verify` on the tree the attempt's work would land as: its commit merged onto the
   * integration branch as it is now, checked out in the slot's workspace (the executor's slot is
   * held meanwhile) and checked with the backend's isolation. A failure is the agent's to fix:
   * the attempt fails as `verify`, and its retry is told the command's output.
   */
  private async verify(
    task: PlanTask,
    attempt: number,
    committed: TaskCommit,
    sandbox: SandboxLayout,
    signal: AbortSignal,
  ): Promise<{ ok: true; verification: Verification } | Failure> {
    const { config, project, slots, layout } = this.host;
    const settings = config.verify as VerifySettings;
    const preview = await project.previewMerge(committed.commit);
    if (!preview.merged) return this.conflict(task, preview.conflictFiles, {});
    await slots.prepare(sandbox.workspace, await treeToCheck(project, preview.tree, settings));
    const logPath = layout.verifyLog(task.id);
    const who = { taskId: task.id, attempt };
    let environment: PreparedEnvironment | undefined;
    try {
      // Work that changed the manifests is checked with what they now say, installed afresh.
      environment = await this.host.environmentFor(preview.tree, who, signal);
    } catch (error) {
      if (!(error instanceof SetupFailedError) || signal.aborted) throw error;
      return {
        ok: false,
        kind: 'verify',
        error: `${error.message} on the merged work (tasks/${task.id}/${TASK_FILES.setupLog})`,
        result: { verify: error.verification },
      };
    }
    appendFileSync(
      logPath,
      `== attempt ${attempt}: ${settings.command} (on the merge of ${committed.commit.slice(0, 12)} into ${project.head.slice(0, 12)}) ==\n`,
    );
    const verification = await this.backend.verify({
      settings,
      sandbox,
      commit: preview.tree,
      logPath,
      signal,
      attempt: who,
      ...(environment && { environment }),
    });
    appendFileSync(
      logPath,
      `\n== attempt ${attempt}: ${describeVerification(verification)} ==\n\n`,
    );
    if (signal.aborted)
      return { ok: false, kind: 'transient', error: abortReason(signal), result: {} };
    if (verification.error)
      return {
        ok: false,
        kind: 'transient',
        error: `--verify could not run: ${verification.error}`,
        result: { verify: verification },
      };
    if (!verificationPassed(verification)) {
      if (!this.host.baseFailing)
        return {
          ok: false,
          kind: 'verify',
          error: `--verify ${describeVerification(verification)} on the merged work (tasks/${task.id}/${TASK_FILES.verifyLog})`,
          result: { verify: verification },
        };
      // The base fails this check too (--allow-failing-base): the work is not held to it yet.
      appendFileSync(
        logPath,
        `== attempt ${attempt}: fails, as the base does (--allow-failing-base): not gating ==\n\n`,
      );
    }
    return { ok: true, verification };
  }
}
