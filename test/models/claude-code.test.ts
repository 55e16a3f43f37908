import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../packages/runtime/src/contracts/executor.js';
import { agentEnv } from '../../packages/runtime/src/executor/claude-code.js';
import { taskPrompt } from '../../packages/runtime/src/executor/prompt.js';
import { pathGuard, toolPolicy } from '../../packages/runtime/src/executor/tool-policy.js';
import { tempDir } from '../support/tmp.js';

const signal = new AbortController().signal;
const ask = (policy: ReturnType<typeof toolPolicy>, tool: string, input: Record<string, unknown>) =>
  policy(tool, input, { signal, toolUseID: 'toolu_1' } as Parameters<typeof policy>[2]);

describe('tool policy', () => {
  const root = tempDir('po-policy-');
  const workspace = path.join(root, 'executor-0');
  const outside = path.join(root, 'outside');
  mkdirSync(path.join(workspace, 'src'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.txt'), 'secret');
  // Links an agent made: a directory and a file that lead out of the workspace.
  symlinkSync(outside, path.join(workspace, 'link'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(workspace, 'notes.txt'));
  const policy = toolPolicy(workspace, ['Read', 'Write', 'Glob', 'Bash']);

  it('keeps path tools inside the workspace', async () => {
    expect(await ask(policy, 'Write', { file_path: `${workspace}/src/a.ts` })).toMatchObject({
      behavior: 'allow',
    });
    expect(await ask(policy, 'Write', { file_path: 'src/new/deep.ts' })).toMatchObject({
      behavior: 'allow',
    });
    expect(await ask(policy, 'Write', { file_path: '/etc/passwd' })).toMatchObject({
      behavior: 'deny',
      message: `/etc/passwd is outside this task's workspace (${workspace})`,
    });
    expect(await ask(policy, 'Read', { file_path: '../executor-1/secret' })).toMatchObject({
      behavior: 'deny',
    });
  });

  it('follows links before judging: no read or write through a link that leads out', async () => {
    for (const [tool, input] of [
      ['Write', { file_path: `${workspace}/link/x.txt` }],
      ['Write', { file_path: `${workspace}/link/new/dir/x.txt` }],
      ['Read', { file_path: `${workspace}/link/secret.txt` }],
      ['Read', { file_path: `${workspace}/notes.txt` }],
      ['Glob', { pattern: '*.txt', path: `${workspace}/link` }],
      ['Glob', { pattern: '/etc/**' }],
      ['Glob', { pattern: '../outside/*' }],
    ] as const) {
      expect(await ask(policy, tool, input), `${tool} ${JSON.stringify(input)}`).toMatchObject({
        behavior: 'deny',
      });
    }
  });

  it('denies the same calls in the PreToolUse hook, which runs whatever the permission mode', async () => {
    const [hook] = pathGuard(workspace).hooks;
    const call = (tool: string, input: Record<string, unknown>) =>
      hook?.(
        {
          hook_event_name: 'PreToolUse',
          tool_name: tool,
          tool_input: input,
          tool_use_id: 'toolu_1',
        } as unknown as Parameters<NonNullable<typeof hook>>[0],
        'toolu_1',
        { signal },
      );
    expect(await call('Write', { file_path: `${workspace}/link/x.txt` })).toMatchObject({
      hookSpecificOutput: { permissionDecision: 'deny' },
    });
    expect(await call('Write', { file_path: `${workspace}/src/fine.ts` })).toEqual({});
  });

  it('allows only the listed tools, path tools included', async () => {
    expect(await ask(policy, 'Bash', { command: 'npm test' })).toMatchObject({ behavior: 'allow' });
    expect(await ask(policy, 'WebFetch', { url: 'https://example.com' })).toMatchObject({
      behavior: 'deny',
      message: 'WebFetch is not allowed for this run (--allowed-tools)',
    });
    expect(await ask(policy, 'Edit', { file_path: 'src/a.ts' })).toMatchObject({
      behavior: 'deny',
    });
  });
});

const spec = (over: Partial<TaskSpec> = {}): TaskSpec => ({
  runId: 'r',
  taskId: 'api',
  attempt: 1,
  executor: 2,
  mode: 'real',
  requirements: 'Build a shop',
  task: {
    id: 'api',
    title: 'HTTP API',
    description: 'Expose the cart.',
    dependsOn: ['core'],
    files: ['src/api.ts'],
  },
  mergedDependencies: [{ id: 'core', title: 'Core model' }],
  workspaceDir: '/w',
  outputDir: '/runs/r/tasks/api',
  seed: 1,
  agentHome: '/runs/r/agent-home',
  planContext: [
    { id: 'core', title: 'Core model', dependsOn: [] },
    { id: 'api', title: 'HTTP API', dependsOn: ['core'], files: ['src/api.ts'] },
    {
      id: 'ui',
      title: 'UI',
      summary: 'Screens for the cart.',
      dependsOn: ['api'],
      files: ['src/ui.tsx'],
    },
  ],
  ...over,
});

describe('agent environment through the model proxy', () => {
  const host = { PATH: '/usr/bin', ANTHROPIC_API_KEY: 'sk-secret', AWS_SECRET_ACCESS_KEY: 'aws' };
  const proxied = spec({ modelProxy: { socket: '/run/model-proxy/model.sock' } });
  const token = 'T'.repeat(43);

  it('gives the agent the socket and its token, and no credential', () => {
    const env = agentEnv(
      proxied,
      { provider: 'anthropic', model: 'm', maxTurns: 5, allowedTools: [] },
      host,
      token,
    );
    expect(env).toMatchObject({
      ANTHROPIC_UNIX_SOCKET: '/run/model-proxy/model.sock',
      ANTHROPIC_BASE_URL: `http://model-proxy/${token}`,
      ANTHROPIC_API_KEY: 'model-proxy',
    });
    expect(JSON.stringify(env)).not.toContain('sk-secret');
  });

  it('sends Bedrock requests unsigned to the proxy, which signs them', () => {
    const env = agentEnv(
      proxied,
      { provider: 'bedrock', model: 'eu.x', region: 'eu-west-1', maxTurns: 5, allowedTools: [] },
      { ...host, AWS_PROFILE: 'team' },
      token,
    );
    expect(env).toMatchObject({
      CLAUDE_CODE_USE_BEDROCK: '1',
      CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
      ANTHROPIC_BEDROCK_BASE_URL: `http://model-proxy/${token}`,
      AWS_REGION: 'eu-west-1',
    });
    expect(env.AWS_PROFILE).toBeUndefined();
    expect(JSON.stringify(env)).not.toMatch(/sk-secret|"aws"/);
  });

  it('refuses to start an agent on the proxy without a token', () => {
    expect(() =>
      agentEnv(proxied, { provider: 'anthropic', model: 'm', maxTurns: 5, allowedTools: [] }, host),
    ).toThrow('the model proxy needs a token');
  });
});

describe('agent environment', () => {
  const host = {
    PATH: '/usr/bin',
    HOME: '/home/me',
    ANTHROPIC_API_KEY: 'sk-secret',
    AWS_PROFILE: 'team',
    GITHUB_TOKEN: 'ghp_unrelated',
    NODE_OPTIONS: '--inspect',
  };

  it('is built from scratch: basics, a HOME in the run, the contract names, the key', () => {
    const env = agentEnv(
      spec(),
      { provider: 'anthropic', model: 'm', baseURL: 'http://gw', maxTurns: 5, allowedTools: [] },
      host,
    );
    expect(env).toMatchObject({
      PATH: '/usr/bin',
      HOME: '/runs/r/agent-home',
      CLAUDE_CONFIG_DIR: '/runs/r/agent-home/.claude',
      ANTHROPIC_API_KEY: 'sk-secret',
      ANTHROPIC_BASE_URL: 'http://gw',
      TASK_ID: 'api',
      EXECUTOR_ID: '2',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    });
    expect(env.GITHUB_TOKEN).toBeUndefined();
    expect(env.NODE_OPTIONS).toBeUndefined();
    expect(env.AWS_PROFILE).toBeUndefined();
  });

  it('takes the full gateway URL from the environment, the redacted one from the spec otherwise', () => {
    const agent = {
      provider: 'anthropic' as const,
      model: 'm',
      baseURL: 'https://gw',
      maxTurns: 5,
      allowedTools: [],
    };
    expect(
      agentEnv(spec(), agent, { ...host, ANTHROPIC_BASE_URL: 'https://gw/?key=1' })
        .ANTHROPIC_BASE_URL,
    ).toBe('https://gw/?key=1');
    expect(agentEnv(spec(), agent, host).ANTHROPIC_BASE_URL).toBe('https://gw');
  });

  it('sets what Claude Code reads for Bedrock', () => {
    const env = agentEnv(
      spec(),
      {
        provider: 'bedrock',
        model: 'us.anthropic.x',
        region: 'us-west-2',
        maxTurns: 5,
        allowedTools: [],
      },
      host,
    );
    expect(env).toMatchObject({
      CLAUDE_CODE_USE_BEDROCK: '1',
      AWS_REGION: 'us-west-2',
      ANTHROPIC_MODEL: 'us.anthropic.x',
      AWS_PROFILE: 'team',
    });
  });
});

describe('task prompt', () => {
  it('carries the task, the requirement, merged dependencies and what the others own', () => {
    const prompt = taskPrompt(spec());
    expect(prompt).toContain('Build a shop');
    expect(prompt).toContain('Your task: api: HTTP API\n\nExpose the cart.');
    expect(prompt).toContain('Files your task owns:\n- src/api.ts');
    expect(prompt).toContain(
      'Already done and merged into your working directory:\n- core: Core model',
    );
    expect(prompt).toContain('- ui: UI: Screens for the cart. (owns src/ui.tsx) (after api)');
    expect(prompt).not.toContain('- api: HTTP API (owns');
    expect(prompt).toContain('Do not commit');
    expect(prompt).not.toContain('could not be merged');
  });

  it('tells a retry after a conflict whose work to keep, in which files', () => {
    const prompt = taskPrompt(
      spec({ attempt: 2, conflict: { attempt: 1, withTasks: ['ui'], files: ['src/shared.ts'] } }),
    );
    expect(prompt).toContain(
      'Your previous attempt (attempt 1) could not be merged: it conflicted with the work of task ui in:\n- src/shared.ts\nThat work is now merged into your working directory, and it is theirs to keep',
    );
  });

  it('names the check the work must pass, and gives a retry the end of its failing output', () => {
    const verify = { command: 'npm test', timeoutMs: 60_000 };
    expect(taskPrompt(spec({ verify }))).toContain(
      '- Your work is merged only if `npm test` passes on it: run it before you finish.',
    );
    const prompt = taskPrompt(
      spec({
        attempt: 2,
        verify,
        verifyFailure: {
          attempt: 1,
          command: 'npm test',
          exitCode: 1,
          timedOut: false,
          tail: 'not ok 2 - mul\n  error: 5 == 6\n',
        },
      }),
    );
    expect(prompt).toContain(
      "Your previous attempt (attempt 1) was not merged: the project's check `npm test` exited with code 1 on it. The end of its output:\n```\nnot ok 2 - mul\n  error: 5 == 6\n```",
    );
  });
});
