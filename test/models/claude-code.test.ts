import { describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../packages/runtime/src/contracts/executor.js';
import { agentEnv, toolPolicy } from '../../packages/runtime/src/executor/claude-code.js';
import { taskPrompt } from '../../packages/runtime/src/executor/prompt.js';

const signal = new AbortController().signal;
const ask = (policy: ReturnType<typeof toolPolicy>, tool: string, input: Record<string, unknown>) =>
  policy(tool, input, { signal, toolUseID: 'toolu_1' } as Parameters<typeof policy>[2]);

describe('tool policy', () => {
  const policy = toolPolicy('/runs/r/worktrees/executor-0', ['Read', 'Write', 'Bash']);

  it('keeps path tools inside the workspace', async () => {
    expect(
      await ask(policy, 'Write', { file_path: '/runs/r/worktrees/executor-0/src/a.ts' }),
    ).toMatchObject({ behavior: 'allow' });
    expect(await ask(policy, 'Write', { file_path: 'src/relative.ts' })).toMatchObject({
      behavior: 'allow',
    });
    expect(await ask(policy, 'Write', { file_path: '/etc/passwd' })).toMatchObject({
      behavior: 'deny',
      message: "/etc/passwd is outside this task's workspace (/runs/r/worktrees/executor-0)",
    });
    expect(await ask(policy, 'Read', { file_path: '../executor-1/secret' })).toMatchObject({
      behavior: 'deny',
    });
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
  });
});
