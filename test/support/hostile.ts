import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { ExecutionSummary } from '../../packages/runtime/src/contracts/results.js';
import { readSummary } from './cli.js';
import { gitOut } from './git.js';
import {
  type Block,
  conversationText,
  type ModelServer,
  primaryWorkingDirectory,
  type RecordedRequest,
  type Reply,
  text,
  toolResults,
  toolUse,
} from './model-server.js';

/**
 * Scripted agents for the hostile suites: what a prompt-injected Claude Code would do, played
 * by the real binary against the scripted Messages API.
 */

/** The task an agent's request is for, from the prompt the orchestrator wrote. */
export const taskOf = (request: RecordedRequest) =>
  /Your task: ([a-z0-9-]+):/.exec(conversationText(request))?.[1];

export interface AgentTurn {
  taskId: string;
  /** The agent's working directory, as Claude Code states it. */
  cwd: string;
  request: RecordedRequest;
}

/**
 * An agent that makes the tool calls `steps` gives for its task, one per turn, then says it is
 * done. Requests that are no agent's turn (the planner, probes) get a short text.
 */
export function scripted(steps: (turn: AgentTurn) => Block[]): (request: RecordedRequest) => Reply {
  return (request) => {
    const taskId = taskOf(request);
    const cwd = primaryWorkingDirectory(request);
    if (!taskId || !cwd) return { content: [text('ok')] };
    const step = steps({ taskId, cwd, request })[toolResults(request)];
    return { content: [step ?? text(`Done with ${taskId}.`)] };
  };
}

export const bash = (command: string) => toolUse('Bash', { command });

/** What an innocent agent does: writes its own file. */
export const innocent = (cwd: string, taskId: string) => [
  toolUse('Write', { file_path: `${cwd}/src/${taskId}.txt`, content: `${taskId} was here\n` }),
];

/** A task's whole conversation, tool results included: what the model saw last. */
export function lastConversation(server: ModelServer, taskId: string): string {
  return server.requests
    .filter((r) => taskOf(r) === taskId)
    .map((r) => conversationText(r))
    .reduce((longest, t) => (t.length > longest.length ? t : longest), '');
}

/** Every regular file below `dir`. */
export function filesBelow(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    const stats = statSync(full, { throwIfNoEntry: false });
    if (stats?.isDirectory()) return filesBelow(full);
    return stats?.isFile() ? [full] : [];
  });
}

/** Every object of the run's repository, as one text: what any commit could hold. */
export function repositoryObjects(runDir: string): string {
  return gitOut(path.join(runDir, 'project'), ['cat-file', '--batch-all-objects', '--batch']);
}

/**
 * What must hold after any run, whatever its agents did: `main` is the integration commit the
 * summary names, and no secret is in the repository or any file of the run.
 */
export function expectIntegrity(runDir: string, secrets: readonly string[]): ExecutionSummary {
  const summary = readSummary(runDir);
  const project = path.join(runDir, 'project');
  expect(gitOut(project, ['rev-parse', 'main'])).toBe(summary.integrationCommit);
  const objects = repositoryObjects(runDir);
  for (const secret of secrets) {
    expect(objects.includes(secret), 'a secret in the repository').toBe(false);
    for (const file of filesBelow(runDir)) {
      expect(readFileSync(file).includes(secret), `a secret in ${file}`).toBe(false);
    }
  }
  return summary;
}

/** The pids of git processes at work on a run's repository (its GIT_DIR), from /proc. */
export function gitProcessesIn(runDir: string): number[] {
  const gitDir = `GIT_DIR=${path.join(runDir, 'project', '.git')}`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(gitDir);
      } catch {
        return false; // gone, or not ours to read
      }
    })
    .map(Number);
}
