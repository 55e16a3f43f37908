import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { SDKResultMessage } from '@anthropic-ai/claude-agent-sdk';
import {
  AWS_CHAIN_ENV,
  ENV,
  INHERITED_HOST_ENV,
  MODEL_ENV,
  SECRET_ENV_NAMES,
} from '../contracts/env.js';
import type { AgentSettings, ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import { MODEL_PROXY } from '../contracts/model-proxy.js';
import { TASK_FILES } from '../contracts/run-layout.js';
import type { Usage } from '../contracts/usage.js';
import { readSecret } from '../models/access.js';
import { findClaudeBinary } from '../models/claude-binary.js';
import { redactor } from '../trust/secret-scanner.js';
import type { ExecutorIo } from './io.js';
import { taskPrompt } from './prompt.js';
import { NETWORK_TOOLS, pathGuard, toolPolicy } from './tool-policy.js';

/**
 * Claude Code's environment, built from scratch: the host basics, a HOME inside the sandbox, and
 * the route to the model. Through the model proxy (the orchestrator's runs) the agent gets the
 * proxy's socket and this attempt's token, and no credential at all; without one (the image run
 * by hand) it gets the credentials this process was given. Nothing else leaks through.
 */
export function agentEnv(
  spec: TaskSpec,
  agent: AgentSettings,
  from: NodeJS.ProcessEnv,
  modelToken?: string,
): Record<string, string> {
  const env: Record<string, string> = {};
  const copy = (names: readonly string[]) => {
    for (const name of names) if (from[name]) env[name] = from[name] as string;
  };
  copy(INHERITED_HOST_ENV);
  const home = spec.agentHome ?? path.join(spec.outputDir, 'home');
  Object.assign(env, {
    HOME: home,
    CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    [ENV.TASK_ID]: spec.taskId,
    [ENV.EXECUTOR_ID]: String(spec.executor),
  });
  if (spec.modelProxy) {
    if (!modelToken) throw new Error('the model proxy needs a token for this attempt');
    const proxyUrl = `http://${MODEL_PROXY.host}/${modelToken}`;
    env[MODEL_ENV.ANTHROPIC_UNIX_SOCKET] = spec.modelProxy.socket;
    if (agent.provider === 'bedrock') {
      Object.assign(env, {
        [MODEL_ENV.CLAUDE_CODE_USE_BEDROCK]: '1',
        [MODEL_ENV.CLAUDE_CODE_SKIP_BEDROCK_AUTH]: '1',
        [MODEL_ENV.ANTHROPIC_BEDROCK_BASE_URL]: proxyUrl,
        [ENV.AWS_REGION]: agent.region ?? '',
        [MODEL_ENV.ANTHROPIC_MODEL]: agent.model,
      });
    } else {
      // Claude Code wants a key to send; the proxy drops it and authenticates by the token.
      Object.assign(env, {
        [MODEL_ENV.ANTHROPIC_BASE_URL]: proxyUrl,
        [ENV.ANTHROPIC_API_KEY]: MODEL_PROXY.host,
      });
    }
    return env;
  }
  // In a container the secrets arrive as files (NAME_FILE); Claude Code reads them from env.
  for (const name of SECRET_ENV_NAMES) {
    const secret = readSecret(from, name);
    if (secret) env[name] = secret.value;
  }
  if (agent.provider === 'bedrock') {
    copy(AWS_CHAIN_ENV);
    Object.assign(env, {
      [MODEL_ENV.CLAUDE_CODE_USE_BEDROCK]: '1',
      [ENV.AWS_REGION]: agent.region ?? '',
      [MODEL_ENV.ANTHROPIC_MODEL]: agent.model,
    });
  } else {
    // The full gateway URL comes as environment (it may carry credentials); the spec's is redacted.
    const baseURL = from[MODEL_ENV.ANTHROPIC_BASE_URL] ?? agent.baseURL;
    if (baseURL) env[MODEL_ENV.ANTHROPIC_BASE_URL] = baseURL;
  }
  return env;
}

function usageOf(result: SDKResultMessage): Usage {
  const models = Object.values(result.modelUsage ?? {});
  const sum = (pick: (m: (typeof models)[number]) => number) =>
    models.reduce((total, m) => total + pick(m), 0);
  return {
    inputTokens: sum((m) => m.inputTokens),
    outputTokens: sum((m) => m.outputTokens),
    cacheReadTokens: sum((m) => m.cacheReadInputTokens),
    cacheCreationTokens: sum((m) => m.cacheCreationInputTokens),
    costUsd: Math.round(result.total_cost_usd * 1e6) / 1e6,
  };
}

function outcomeOf(result: SDKResultMessage | undefined, agent: AgentSettings): ExecutorOutcome {
  if (!result)
    return { status: 'failed', error: 'Claude Code ended without a result', retryable: true };
  const usage = usageOf(result);
  switch (result.subtype) {
    case 'success':
      return result.is_error
        ? {
            status: 'failed',
            error: `Claude Code failed: ${result.result.slice(0, 300)}`,
            retryable: true,
            usage,
          }
        : { status: 'succeeded', summary: result.result.slice(0, 2_000), usage };
    case 'error_max_budget_usd':
      return {
        status: 'failed',
        error: `task spent its budget of $${agent.maxBudgetUsd}`,
        retryable: false,
        usage,
      };
    case 'error_max_turns':
      return {
        status: 'failed',
        error: `task used all ${agent.maxTurns} turns`,
        retryable: false,
        usage,
      };
    default:
      return {
        status: 'failed',
        error: `Claude Code stopped: ${result.subtype}`,
        retryable: true,
        usage,
      };
  }
}

/**
 * Runs one attempt with Claude Code through the Agent SDK: the pinned binary, the workspace as
 * working directory, unattended permissions that keep file tools inside it, a turn limit, an
 * optional per-task budget, and abort wired to the task's signal. Every SDK message goes to the
 * task's transcript.
 */
export async function runClaudeCodeTask(spec: TaskSpec, io: ExecutorIo): Promise<ExecutorOutcome> {
  const { agent } = spec;
  if (!agent)
    return {
      status: 'failed',
      error: 'real mode needs agent settings in the task spec',
      retryable: false,
    };
  const env = agentEnv(spec, agent, process.env, io.modelToken);
  mkdirSync(env.HOME as string, { recursive: true });
  const controller = new AbortController();
  const abort = () => controller.abort();
  io.signal.addEventListener('abort', abort, { once: true });
  const transcript = openSync(path.join(spec.outputDir, TASK_FILES.transcript), 'a');
  // The agent may print its token; the transcript and log keep it out.
  const redact = redactor([io.modelToken]);
  let result: SDKResultMessage | undefined;
  try {
    io.log(`Claude Code (${agent.model}) on task ${spec.taskId}, attempt ${spec.attempt}`);
    // Loaded on demand, so that hosts of simulated tasks start fast.
    const { query } = await import('@anthropic-ai/claude-agent-sdk');
    const session = query({
      prompt: taskPrompt(spec),
      options: {
        cwd: spec.workspaceDir,
        pathToClaudeCodeExecutable: findClaudeBinary(),
        model: agent.model,
        maxTurns: agent.maxTurns,
        ...(agent.maxBudgetUsd !== undefined && { maxBudgetUsd: agent.maxBudgetUsd }),
        permissionMode: 'acceptEdits',
        hooks: { PreToolUse: [pathGuard(spec.workspaceDir)] },
        canUseTool: toolPolicy(spec.workspaceDir, agent.allowedTools),
        disallowedTools: [...NETWORK_TOOLS, 'Bash'].filter(
          (tool) => !agent.allowedTools.includes(tool),
        ),
        settingSources: [],
        env,
        abortController: controller,
        stderr: (data) => io.log(redact(data.trimEnd())),
        ...(io.spawnAgent && { spawnClaudeCodeProcess: io.spawnAgent }),
      },
    });
    for await (const message of session) {
      writeSync(transcript, `${redact(JSON.stringify(message))}\n`);
      if (message.type === 'result') result = message;
    }
  } catch (error) {
    if (io.signal.aborted) return { status: 'failed', error: 'aborted', retryable: true };
    // The SDK throws after an error result (budget, turns); the result says what happened.
    if (result) return outcomeOf(result, agent);
    const message = error instanceof Error ? error.message : String(error);
    io.log(`Claude Code error: ${message}`);
    return {
      status: 'failed',
      error: `Claude Code error: ${message.split('\n')[0]}`,
      retryable: true,
    };
  } finally {
    io.signal.removeEventListener('abort', abort);
    closeSync(transcript);
  }
  const outcome = outcomeOf(result, agent);
  io.log(
    outcome.status === 'succeeded'
      ? 'Claude Code finished'
      : `Claude Code failed: ${outcome.error}`,
  );
  return outcome;
}
