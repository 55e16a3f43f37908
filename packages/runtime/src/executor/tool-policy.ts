import path from 'node:path';
import type {
  CanUseTool,
  HookCallbackMatcher,
  PreToolUseHookInput,
} from '@anthropic-ai/claude-agent-sdk';
import { resolvesInside } from '../trust/path-safety.js';

/** Fields of Claude Code's tools that name a file or directory to read or write. */
const PATH_FIELDS: Record<string, readonly string[]> = {
  Read: ['file_path'],
  Write: ['file_path'],
  Edit: ['file_path'],
  MultiEdit: ['file_path'],
  NotebookEdit: ['notebook_path'],
  Glob: ['path'],
  Grep: ['path'],
  LS: ['path'],
};

/** Fields that hold a glob: fine relative, never absolute or climbing out. */
const PATTERN_FIELDS: Record<string, readonly string[]> = {
  Glob: ['pattern'],
  Grep: ['glob'],
};

/** Tools that reach the network; off unless named in `allowedTools`. */
export const NETWORK_TOOLS = ['WebFetch', 'WebSearch'];

/**
 * Why a tool call must not run, or undefined when it may: every path it names must lead inside
 * the workspace once links are resolved (the nearest existing ancestor decides for a new file),
 * so a link the agent made cannot carry a read or a write out.
 */
export async function pathDenial(
  workspace: string,
  toolName: string,
  input: Record<string, unknown>,
): Promise<string | undefined> {
  for (const field of PATH_FIELDS[toolName] ?? []) {
    const value = input[field];
    if (typeof value !== 'string' || value === '') continue;
    if (!(await resolvesInside(workspace, path.resolve(workspace, value)))) {
      return `${value} is outside this task's workspace (${workspace})`;
    }
  }
  for (const field of PATTERN_FIELDS[toolName] ?? []) {
    const value = input[field];
    if (typeof value !== 'string') continue;
    if (path.isAbsolute(value) || value.split('/').includes('..')) {
      return `${value} reaches outside this task's workspace (${workspace})`;
    }
  }
  return undefined;
}

/**
 * The path rule as a PreToolUse hook: Claude Code calls it before every tool use, whatever its
 * permission mode would otherwise decide, so no auto-accepted edit goes around it. A hook that
 * fails blocks the call.
 */
export function pathGuard(workspace: string): HookCallbackMatcher {
  return {
    onFailure: 'block',
    hooks: [
      async (input) => {
        const { tool_name: toolName, tool_input: toolInput } = input as PreToolUseHookInput;
        const reason = await pathDenial(
          workspace,
          toolName,
          (toolInput ?? {}) as Record<string, unknown>,
        );
        if (!reason) return {};
        return {
          hookSpecificOutput: {
            hookEventName: 'PreToolUse',
            permissionDecision: 'deny',
            permissionDecisionReason: reason,
          },
        };
      },
    ],
  };
}

/**
 * Unattended permissions: edits inside the workspace are accepted by Claude Code itself
 * (`acceptEdits`); every other request comes here. A tool is allowed only when listed, and a
 * path tool only inside the workspace (checked again here, after the hook).
 */
export function toolPolicy(workspace: string, allowedTools: readonly string[]): CanUseTool {
  return async (toolName, input) => {
    const reason = await pathDenial(workspace, toolName, input);
    if (reason) return { behavior: 'deny', message: reason };
    if (allowedTools.includes(toolName)) return { behavior: 'allow', updatedInput: input };
    return {
      behavior: 'deny',
      message: `${toolName} is not allowed for this run (--allowed-tools)`,
    };
  };
}
