import { appendFileSync } from 'node:fs';
import path from 'node:path';
import type { Backend } from '../backends/backend.js';
import { networkHint } from '../contracts/environment.js';
import type { RunConfig } from '../contracts/run-config.js';
import type { RunLayout } from '../contracts/run-layout.js';
import {
  describeVerification,
  type Verification,
  type VerifySettings,
  verificationPassed,
} from '../contracts/verify.js';
import { Environments, type RunEnvironment } from '../environment/environments.js';
import { SetupFailedError } from '../environment/setup.js';
import { BaseNotReadyError } from '../errors.js';
import { treeToCheck } from '../verify/from-base.js';
import type { Project } from '../workspace/project.js';
import type { Slots } from '../workspace/slots.js';

/** How many lines of a failed setup's or check's output the error shows. */
const TAIL_LINES = 10;

export interface ReadyBase {
  environments?: Environments;
  environment?: RunEnvironment;
  check?: { commit: string; verification: Verification; allowed: boolean };
}

/**
 * Readies the base before anything is planned or any task starts: its environment prepared (or
 * found in the cache) when the run has `--setup`, then `--verify` run on it, so that a base that
 * cannot pass stops the run in seconds rather than after every task's attempts. Throws
 * BaseNotReadyError with the reason, unless `--allow-failing-base` lets a failing check through.
 */
export async function readyBase(input: {
  backend: Backend;
  config: RunConfig;
  layout: RunLayout;
  project: Project;
  slots: Slots;
  signal: AbortSignal;
}): Promise<ReadyBase> {
  const { backend, config, layout, project, slots, signal } = input;
  const commit = project.head;
  const ready: ReadyBase = {};
  if (config.setup) {
    if (!backend.environments)
      throw new Error(`the ${backend.name} backend cannot prepare environments`);
    ready.environments = new Environments(backend.environments, config.setup, project.gitDir);
    try {
      ready.environment = await ready.environments.forCommit(commit, {
        logPath: layout.baseSetupLog,
        signal,
      });
    } catch (error) {
      if (!(error instanceof SetupFailedError) || signal.aborted) throw error;
      throw new BaseNotReadyError([
        `${error.message}, on the base (${baseName(config, commit)}), before planning or any task:`,
        ...indentedTail(error.verification.tail),
        `Its output: ${layout.baseSetupLog}`,
        reproduce(config, commit, [config.setup.command]),
      ]);
    }
  }
  if (config.verify) {
    const settings = config.verify as VerifySettings;
    const sandbox = layout.finalVerifySandbox;
    await slots.prepare(sandbox.workspace, await treeToCheck(project, commit, settings));
    appendFileSync(
      layout.finalVerifyLog,
      `== ${settings.command} on the base at ${commit.slice(0, 12)} ==\n`,
    );
    const verification = await backend.verify({
      settings,
      sandbox,
      commit,
      logPath: layout.finalVerifyLog,
      signal,
      ...(ready.environment && { environment: ready.environment.environment }),
    });
    appendFileSync(layout.finalVerifyLog, `\n== ${describeVerification(verification)} ==\n\n`);
    const passed = verificationPassed(verification);
    if (!passed && !signal.aborted && (verification.error || !config.allowFailingBase)) {
      const hint = networkHint(verification.tail);
      throw new BaseNotReadyError([
        `${settings.command} ${describeVerification(verification)} on the base (${baseName(config, commit)}), before planning or any task:`,
        ...indentedTail(verification.tail),
        ...(hint ? [`(${hint})`] : []),
        `Its output: ${layout.finalVerifyLog}`,
        reproduce(config, commit, [
          ...(config.setup ? [config.setup.command] : []),
          settings.command,
        ]),
        '--allow-failing-base runs anyway, when the requirement is to make it pass.',
      ]);
    }
    ready.check = { commit, verification, allowed: !passed };
  }
  return ready;
}

function baseName(config: RunConfig, commit: string): string {
  return config.source ? `main at ${commit.slice(0, 12)}` : commit.slice(0, 12);
}

function indentedTail(tail: string): string[] {
  const lines = tail.trimEnd().split('\n').slice(-TAIL_LINES);
  return lines.filter((line) => line.trim()).map((line) => `  ${line}`);
}

/** The commands that show the failure outside the orchestrator, in a fresh clone. */
function reproduce(config: RunConfig, commit: string, commands: readonly string[]): string {
  const repo = config.source?.repo;
  if (!repo) return `Reproduce: ${commands.join(' && ')}`;
  const scratch = path.join('/tmp', `po-base-${commit.slice(0, 8)}`);
  return `Reproduce: git clone -q ${quote(repo)} ${scratch} && cd ${scratch} && git checkout -q ${commit.slice(0, 12)} && ${commands.join(' && ')}`;
}

function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
