import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelAccess } from '../../packages/runtime/src/models/access.js';
import { createMessagesClient } from '../../packages/runtime/src/models/client.js';
import { MODEL_DEFAULTS } from '../../packages/runtime/src/models/defaults.js';
import {
  ModelPlanner,
  PLAN_TOOL,
  PlanningError,
  planToolSchema,
} from '../../packages/runtime/src/planner/model.js';
import {
  type ModelServer,
  type Reply,
  startModelServer,
  text,
  toolUse,
} from '../support/model-server.js';

const task = (id: string, dependsOn: string[] = [], files?: string[]) => ({
  id,
  title: `Build ${id}`,
  description: `Implement ${id}.`,
  dependsOn,
  ...(files && { files }),
});
const validPlan = {
  tasks: [task('core', [], ['src/core.ts']), task('api', ['core']), task('docs', ['api'])],
  strategy: 'chain',
};
const planReply = (input: unknown, usage = { input_tokens: 1000, output_tokens: 200 }): Reply => ({
  content: [toolUse(PLAN_TOOL, input as Record<string, unknown>)],
  usage,
});

let server: ModelServer;
let replies: Reply[] = [];
beforeAll(async () => {
  server = await startModelServer(() => replies.shift() ?? { status: 500 });
});
afterAll(() => server.close());

const anthropic = (): ModelAccess => ({
  provider: 'anthropic',
  plannerModel: MODEL_DEFAULTS.model,
  executorModel: MODEL_DEFAULTS.model,
  baseURL: server.url,
  credentials: ['ANTHROPIC_API_KEY'],
  secrets: { ANTHROPIC_API_KEY: 'sk-ant-test-planner' },
  awsEnv: {},
});

async function planner(access: ModelAccess, repairs = 2, maxRetries = 2) {
  return new ModelPlanner({
    client: await createMessagesClient(access, { maxRetries }),
    model: access.plannerModel,
    repairs,
    timeoutMs: 60_000,
    baseURL: access.baseURL,
  });
}

async function plan(access: ModelAccess, script: Reply[], repairs = 2, maxRetries = 2) {
  replies = [...script];
  const before = server.requests.length;
  const started = Date.now();
  const outcome = await (await planner(access, repairs, maxRetries))
    .plan('Build a thing', { executors: 3, maxTasks: 20 })
    .catch((error: unknown) => error);
  return { outcome, requests: server.requests.slice(before), elapsedMs: Date.now() - started };
}

describe('model planner', () => {
  it('forces the plan tool, whose schema is the plan schema, and validates the answer', async () => {
    const { outcome, requests } = await plan(anthropic(), [planReply(validPlan)]);
    expect(outcome).toMatchObject({
      plan: { requirements: 'Build a thing', executorBudget: 3, strategy: 'chain' },
      // The default model's list price: $2 in, $10 out per million tokens.
      usage: { inputTokens: 1000, outputTokens: 200, costUsd: 0.004 },
    });
    const body = requests[0]?.body;
    expect(requests[0]?.path).toBe('/v1/messages');
    expect(requests[0]?.headers.authorization).toBe('Bearer sk-ant-test-planner');
    expect(body.tool_choice).toEqual({ type: 'tool', name: PLAN_TOOL });
    expect(body.tools[0].input_schema).toEqual(planToolSchema());
    expect(body.tools[0].input_schema.properties.tasks.items.properties.id.pattern).toBe(
      '^[a-z0-9][a-z0-9-]{0,62}$',
    );
    expect(body.tools[0].input_schema.properties.tasks.items.properties.simulate).toBeUndefined();
    expect(body.messages[0].content).toContain('Agents working at once: 3. At most 20 tasks.');
  });

  it('sends validation errors back and accepts the repaired plan', async () => {
    const cyclic = { tasks: [task('a', ['b']), task('b', ['a'])] };
    const { outcome, requests } = await plan(anthropic(), [
      planReply(cyclic),
      planReply(validPlan),
    ]);
    expect(outcome).toMatchObject({
      plan: { tasks: [{ id: 'core' }, { id: 'api' }, { id: 'docs' }] },
    });
    expect(requests).toHaveLength(2);
    const repair = requests[1]?.body.messages.at(-1).content[0];
    expect(repair).toMatchObject({ type: 'tool_result', is_error: true });
    expect(repair.content).toMatch(/dependency cycle: (a → b → a|b → a → b)/);
    expect((outcome as { usage: { inputTokens: number } }).usage.inputTokens).toBe(2000);
  });

  it('asks again when the answer is prose instead of a tool call', async () => {
    const { outcome, requests } = await plan(anthropic(), [
      { content: [text('Here is my plan: ...')] },
      planReply(validPlan),
    ]);
    expect(outcome).toMatchObject({
      plan: { tasks: [{ id: 'core' }, { id: 'api' }, { id: 'docs' }] },
    });
    expect(requests[1]?.body.messages.at(-1).content).toContain(`calling ${PLAN_TOOL}`);
  });

  it('gives up after the repairs with the last problems', async () => {
    const unknownDep = { tasks: [task('a', ['ghost'])] };
    const { outcome, requests } = await plan(
      anthropic(),
      [planReply(unknownDep), planReply(unknownDep)],
      1,
    );
    expect(requests).toHaveLength(2);
    expect(outcome).toBeInstanceOf(PlanningError);
    expect((outcome as Error).message).toBe(
      'the model gave no valid plan in 2 tries: task "a" depends on unknown task "ghost"',
    );
  });

  it('retries 429 honouring retry-after, 529 and 500', async () => {
    const { outcome, requests, elapsedMs } = await plan(
      anthropic(),
      [
        {
          status: 429,
          headers: { 'retry-after': '1' },
          error: { type: 'rate_limit_error', message: 'slow down' },
        },
        {
          status: 529,
          headers: { 'retry-after-ms': '50' },
          error: { type: 'overloaded_error', message: 'busy' },
        },
        {
          status: 500,
          headers: { 'retry-after-ms': '50' },
          error: { type: 'api_error', message: 'oops' },
        },
        planReply(validPlan),
      ],
      2,
      3,
    );
    expect(outcome).toMatchObject({ plan: { executorBudget: 3 } });
    expect(requests).toHaveLength(4);
    expect(elapsedMs).toBeGreaterThanOrEqual(1_000);
  });

  it('stops retrying after the bound and names the status', async () => {
    const busy: Reply = {
      status: 529,
      headers: { 'retry-after-ms': '10' },
      error: { type: 'overloaded_error', message: 'Overloaded' },
    };
    const { outcome, requests } = await plan(anthropic(), [busy, busy, busy, busy], 2, 2);
    expect(requests).toHaveLength(3);
    expect((outcome as Error).message).toMatch(
      /^planning failed: the model API answered 529: .*Overloaded/,
    );
  });

  it('reports an unreachable endpoint in one line after bounded retries', async () => {
    const access = { ...anthropic(), baseURL: 'http://127.0.0.1:9' };
    const { outcome, elapsedMs } = await plan(access, [], 0, 1);
    expect(outcome).toBeInstanceOf(PlanningError);
    expect((outcome as Error).message).toBe(
      'planning failed: cannot reach the model API at http://127.0.0.1:9: Connection error.',
    );
    expect(elapsedMs).toBeLessThan(10_000);
  });

  it('sends Bedrock requests signed with SigV4 to the invoke endpoint of the model', async () => {
    const access: ModelAccess = {
      provider: 'bedrock',
      plannerModel: MODEL_DEFAULTS.bedrockModel,
      executorModel: MODEL_DEFAULTS.bedrockModel,
      region: 'eu-central-1',
      credentials: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'],
      secrets: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG' },
      awsEnv: {},
    };
    replies = [planReply(validPlan)];
    const before = server.requests.length;
    const bedrock = new ModelPlanner({
      client: await createMessagesClient(access, { baseURL: server.url }),
      model: access.plannerModel,
      repairs: 0,
      timeoutMs: 30_000,
    });
    const { plan: made } = await bedrock.plan('Build a thing', { executors: 2, maxTasks: 10 });
    expect(made.tasks).toHaveLength(3);
    const [request] = server.requests.slice(before);
    expect(request?.path).toBe(`/model/${access.plannerModel}/invoke`);
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-central-1\/bedrock\/aws4_request, SignedHeaders=.*, Signature=[0-9a-f]{64}$/,
    );
    // Bedrock takes the API version in the body, not as a header.
    expect(request?.body.anthropic_version).toMatch(/^(bedrock-)?\d{4}-\d{2}-\d{2}$/);
    expect(request?.headers['anthropic-version']).toBeUndefined();
    expect(request?.body.model).toBeUndefined();
    expect(request?.body.tool_choice).toEqual({ type: 'tool', name: PLAN_TOOL });
    expect(request?.raw).not.toContain('wJalrXUtnFEMI');
  });
});
