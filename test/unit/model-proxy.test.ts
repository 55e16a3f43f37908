import { type IncomingHttpHeaders, request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type TokenCounts, ZERO_USAGE } from '../../packages/runtime/src/contracts/usage.js';
import { costOf, HIGHEST_PRICE } from '../../packages/runtime/src/models/pricing.js';
import { AnthropicUpstream } from '../../packages/runtime/src/proxy/anthropic-upstream.js';
import { BedrockUpstream } from '../../packages/runtime/src/proxy/bedrock-upstream.js';
import {
  ModelProxy,
  type ModelProxyOptions,
} from '../../packages/runtime/src/proxy/model-proxy.js';
import { type ModelServer, startModelServer, text, type Usage } from '../support/model-server.js';

interface Answer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** A request to the proxy over its socket, as Claude Code sends one. */
function send(
  proxy: ModelProxy,
  path: string,
  options: {
    method?: string;
    body?: string;
    headers?: Record<string, string>;
    /** Sees the answer's body as it arrives. */
    onBody?: (soFar: string) => void;
  } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: proxy.socketPath,
        path,
        method: options.method ?? 'POST',
        headers: { host: 'model-proxy', 'content-type': 'application/json', ...options.headers },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
          options.onBody?.(body);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.method === 'GET') req.end();
    else req.end(options.body ?? JSON.stringify({ model: 'm', max_tokens: 5, messages: [] }));
  });
}

let server: ModelServer;
beforeAll(async () => {
  server = await startModelServer(() => ({ content: [text('hello from upstream')] }));
});
afterAll(() => server.close());

describe('the model proxy', () => {
  let proxy: ModelProxy;
  beforeAll(async () => {
    proxy = await ModelProxy.start(
      new AnthropicUpstream(`${server.url}/gateway?tenant=t1`, { apiKey: 'sk-real-key' }),
    );
  });
  afterAll(() => proxy.close());

  it("forwards model calls with the real key, keeping the gateway's path and query, dropping the agent's query and credentials", async () => {
    const token = proxy.issue('task a attempt 1');
    const before = server.requests.length;
    const res = await send(proxy, `/${token}/v1/messages?beta=true`, {
      headers: {
        'x-api-key': 'model-proxy',
        authorization: 'Bearer agent-made-this-up',
        'anthropic-version': '2023-06-01',
        cookie: 'c=1',
      },
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).content[0].text).toBe('hello from upstream');
    const forwarded = server.requests[before];
    expect(forwarded?.path).toBe('/gateway/v1/messages?tenant=t1');
    expect(forwarded?.headers).toMatchObject({
      'x-api-key': 'sk-real-key',
      'anthropic-version': '2023-06-01',
    });
    expect(forwarded?.headers.authorization).toBeUndefined();
    expect(forwarded?.headers.cookie).toBeUndefined();
    expect(forwarded?.raw).not.toContain(token);
  });

  it('refuses unknown and revoked tokens, other paths and methods, and oversized bodies', async () => {
    const before = server.requests.length;
    const unknown = await send(proxy, `/${'A'.repeat(43)}/v1/messages`);
    expect(unknown.status).toBe(403);
    expect(JSON.parse(unknown.body).error.type).toBe('permission_error');
    expect((await send(proxy, '/v1/messages')).status).toBe(403);
    const token = proxy.issue('task b attempt 1');
    expect((await send(proxy, `/${token}/v1/models`, { method: 'GET' })).status).toBe(404);
    expect((await send(proxy, `/${token}/v1/files`)).status).toBe(404);
    expect((await send(proxy, `/${token}/../v1/messages`)).status).toBe(403);
    // Refused on the length it announces, before a byte of it is read.
    const huge = await send(proxy, `/${token}/v1/messages`, {
      headers: { 'content-length': String(33 * 2 ** 20) },
      body: '{}',
    });
    expect(huge.status).toBe(413);
    proxy.revoke(token);
    expect((await send(proxy, `/${token}/v1/messages`)).status).toBe(403);
    expect(server.requests.length).toBe(before);
  });

  it('cuts off a request in flight when its token is revoked', async () => {
    server.setScript(() => ({ content: [text('too late')], delayMs: 5_000 }));
    const token = proxy.issue('task c attempt 1');
    const pending = send(proxy, `/${token}/v1/messages`).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    proxy.revoke(token);
    const outcome = await pending;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(outcome instanceof Error || outcome.status !== 200).toBe(true);
    server.setScript(() => ({ content: [text('hello from upstream')] }));
  });
});

describe('the model proxy to Bedrock', () => {
  it('signs the unsigned request with SigV4 and the host credentials, model id encoded', async () => {
    const proxy = await ModelProxy.start(
      new BedrockUpstream({
        region: 'eu-west-1',
        credentials: async () => ({ accessKeyId: 'AKIDPROXY', secretAccessKey: 'proxy-secret' }),
        endpoint: server.url,
      }),
    );
    try {
      const token = proxy.issue('bedrock task');
      const before = server.requests.length;
      const res = await send(proxy, `/${token}/model/eu.anthropic.claude-x-v1:0/invoke`, {
        body: JSON.stringify({
          anthropic_version: 'bedrock-2023-05-31',
          max_tokens: 5,
          messages: [],
        }),
      });
      expect(res.status).toBe(200);
      const forwarded = server.requests[before];
      expect(forwarded?.path).toBe('/model/eu.anthropic.claude-x-v1%3A0/invoke');
      expect(forwarded?.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDPROXY\/\d{8}\/eu-west-1\/bedrock\/aws4_request, SignedHeaders=accept;content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
      );
      expect(forwarded?.raw).not.toContain('proxy-secret');
      expect((await send(proxy, `/${token}/v1/messages`)).status).toBe(404);
    } finally {
      await proxy.close();
    }
  });
});

const DEFAULT_REPLY = () => ({ content: [text('hello from upstream')] });

/** Proxies started by a test, closed after it. */
const started: ModelProxy[] = [];
afterEach(async () => {
  server.setScript(DEFAULT_REPLY);
  await Promise.all(started.splice(0).map((proxy) => proxy.close()));
});

async function anthropicProxy(options?: ModelProxyOptions): Promise<ModelProxy> {
  const proxy = await ModelProxy.start(
    new AnthropicUpstream(server.url, { apiKey: 'sk-real-key' }),
    options,
  );
  started.push(proxy);
  return proxy;
}

async function bedrockProxy(options?: ModelProxyOptions): Promise<ModelProxy> {
  const proxy = await ModelProxy.start(
    new BedrockUpstream({
      region: 'eu-west-1',
      credentials: async () => ({ accessKeyId: 'AKIDPROXY', secretAccessKey: 'proxy-secret' }),
      endpoint: server.url,
    }),
    options,
  );
  started.push(proxy);
  return proxy;
}

/** A Messages API call through the proxy. */
const call = (
  proxy: ModelProxy,
  token: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  onBody?: (soFar: string) => void,
) =>
  send(proxy, `/${token}/v1/messages`, {
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], ...body }),
    headers,
    onBody,
  });

/** Like Claude Code: a 429 is tried again after `retry-after`; anything else is final. */
async function callRetrying(
  proxy: ModelProxy,
  token: string,
  body: Record<string, unknown>,
): Promise<Answer> {
  for (;;) {
    const answer = await call(proxy, token, body);
    if (answer.status !== 429) return answer;
    await new Promise((resolve) =>
      setTimeout(resolve, Number(answer.headers['retry-after']) * 1000),
    );
  }
}

const usageOf = (reply: Usage): TokenCounts => ({
  inputTokens: reply.input_tokens,
  outputTokens: reply.output_tokens,
  cacheReadTokens: reply.cache_read_input_tokens ?? 0,
  cacheCreationTokens: reply.cache_creation_input_tokens ?? 0,
});

const REPLY_USAGE: Usage = {
  input_tokens: 1200,
  output_tokens: 345,
  cache_read_input_tokens: 30_000,
  cache_creation_input_tokens: 2_000,
};
const COUNTED = usageOf(REPLY_USAGE);

describe('the model proxy counts what the provider answered', () => {
  it.each([
    ['a JSON answer', false],
    ['a stream of server-sent events', true],
  ])('from %s', async (_, stream) => {
    server.setScript(() => ({ usage: REPLY_USAGE }));
    const proxy = await anthropicProxy();
    const token = proxy.issue('task a attempt 1');
    const answer = await call(proxy, token, {
      model: 'claude-sonnet-4-5',
      max_tokens: 2000,
      stream,
    });
    expect(answer.status).toBe(200);
    const costUsd = costOf('claude-sonnet-4-5', COUNTED);
    expect(proxy.usage(token)).toEqual({
      label: 'task a attempt 1',
      usage: { ...COUNTED, costUsd },
    });
    expect(proxy.runUsage).toEqual({ ...COUNTED, costUsd });
    expect(proxy.revoke(token)?.usage).toEqual({ ...COUNTED, costUsd });
    expect(proxy.usage(token)).toBeUndefined();
  });

  it.each([
    ['invoke', 'a JSON answer'],
    ['invoke-with-response-stream', 'an AWS event stream'],
  ])('from Bedrock (%s: %s), priced by the model in the path', async (action) => {
    server.setScript(() => ({ usage: REPLY_USAGE }));
    const proxy = await bedrockProxy();
    const token = proxy.issue('bedrock task');
    const answer = await send(
      proxy,
      `/${token}/model/eu.anthropic.claude-opus-4-7-v1:0/${action}`,
      {
        body: JSON.stringify({
          anthropic_version: 'bedrock-2023-05-31',
          max_tokens: 2000,
          messages: [],
        }),
      },
    );
    expect(answer.status).toBe(200);
    const costUsd = costOf('claude-opus-4-7', COUNTED);
    expect(proxy.usage(token)?.usage).toEqual({ ...COUNTED, costUsd });
  });

  it('counts token counts as free and prices an unknown model at the highest known price', async () => {
    const proxy = await anthropicProxy();
    const token = proxy.issue('task');
    const counted = await send(proxy, `/${token}/v1/messages/count_tokens`, {
      body: JSON.stringify({ model: 'claude-opus-4-7', messages: [] }),
    });
    expect(counted).toMatchObject({ status: 200, body: '{"input_tokens":10}' });
    expect(proxy.usage(token)?.usage.costUsd).toBe(0);
    server.setScript(() => ({ usage: { input_tokens: 1000, output_tokens: 1000 } }));
    await call(proxy, token, { model: 'claude-unreleased-9', max_tokens: 2000 });
    const highest = 1000 * HIGHEST_PRICE.input + 1000 * HIGHEST_PRICE.output;
    expect(proxy.usage(token)?.usage.costUsd).toBe(highest / 1e6);
    expect(highest).toBeGreaterThanOrEqual(1000 * 75);
  });

  it('charges a stream the provider cut short for its input and the content relayed', async () => {
    // message_start, content_block_start, the text delta: then, once the agent has them, the
    // connection drops.
    let agentHasThem = () => {};
    const relayed = new Promise<void>((resolve) => {
      agentHasThem = resolve;
    });
    server.setScript(() => ({
      usage: REPLY_USAGE,
      content: [text('x'.repeat(100))],
      cutAfterEvents: 3,
      cutWhen: relayed,
    }));
    const proxy = await anthropicProxy();
    const token = proxy.issue('task');
    const stream = { model: 'claude-sonnet-4-5', max_tokens: 2000, stream: true };
    await call(proxy, token, stream, {}, (soFar) => {
      if (soFar.includes('x'.repeat(100))) agentHasThem();
    }).catch(() => undefined);
    await vi.waitFor(() => expect(proxy.usage(token)?.usage.outputTokens).toBe(50));
    expect(proxy.usage(token)?.usage).toMatchObject({ ...COUNTED, outputTokens: 50 });
  });

  // No answer yet: a stream stops generating when cut, so only its input is charged
  // (estimated); a call answered whole may have been generated all the same.
  it.each([
    [true, 0],
    [false, 900],
  ])(
    'settles a call in flight when its token is revoked (stream: %s), still counted for the run',
    async (stream, outputTokens) => {
      server.setScript(() => ({ delayMs: 5_000 }));
      const proxy = await anthropicProxy();
      const token = proxy.issue('task');
      const body = JSON.stringify({
        model: 'claude-haiku-4-5',
        max_tokens: 900,
        stream,
        messages: [],
      });
      const pending = send(proxy, `/${token}/v1/messages`, { body }).catch((error: Error) => error);
      await vi.waitFor(() => expect(server.requests.at(-1)?.raw).toBe(body));
      const final = proxy.revoke(token);
      expect(final?.usage).toMatchObject({ inputTokens: Math.ceil(body.length / 4), outputTokens });
      await pending;
      expect(proxy.runUsage).toEqual(final?.usage);
    },
  );

  it('charges nothing when the provider cannot be reached', async () => {
    const gone = await startModelServer(DEFAULT_REPLY);
    await gone.close();
    const proxy = await ModelProxy.start(new AnthropicUpstream(gone.url, {}));
    started.push(proxy);
    const token = proxy.issue('task');
    const answer = await call(proxy, token, { model: 'claude-opus-4-7', max_tokens: 32_000 });
    expect(answer.status).toBe(502);
    expect(proxy.usage(token)?.usage).toEqual(ZERO_USAGE);
  });
});

describe('the model proxy is the budget', () => {
  it.each([32_000, 800])(
    'lets 300 concurrent calls spend no more than the task budget, each answering up to %i tokens',
    async (generated) => {
      // Each call costs what the model generated, never past max_tokens.
      server.setScript((request) => ({
        usage: { input_tokens: 10, output_tokens: Math.min(generated, request.body.max_tokens) },
        delayMs: 50,
      }));
      const proxy = await anthropicProxy({
        limits: { maxRequestsPerToken: 300, maxRequests: 300 },
      });
      const token = proxy.issue('task greedy attempt 1', { maxUsd: 0.05 });
      const before = server.requests.length;
      const body = { model: 'claude-opus-4-7', max_tokens: 32_000, stream: true };
      const answers = await Promise.all(
        Array.from({ length: 300 }, () => callRetrying(proxy, token, body)),
      );
      const forwarded = server.requests.slice(before);
      const final = proxy.revoke(token);
      expect(final?.usage.costUsd).toBeLessThanOrEqual(0.05);
      expect(final?.stoppedBy).toBe('task');
      // The sum of the answers forwarded, no more, no less.
      const answered = forwarded.reduce(
        (sum, request) => sum + Math.min(generated, request.body.max_tokens),
        0,
      );
      expect(final?.usage).toMatchObject({
        inputTokens: 10 * forwarded.length,
        outputTokens: answered,
      });
      expect(final?.usage.costUsd).toBe((10 * forwarded.length * 5 + answered * 25) / 1e6);
      expect(forwarded.length).toBeGreaterThan(0);
      expect(forwarded.every((request) => request.body.max_tokens < 32_000)).toBe(true);
      const refused = answers.filter((answer) => answer.status === 400);
      expect(refused.length).toBe(300 - forwarded.length);
      expect(answers.filter((answer) => answer.status === 200).length).toBe(forwarded.length);
      expect(JSON.parse(refused[0]?.body ?? '{}').error).toEqual({
        type: 'invalid_request_error',
        message: expect.stringMatching(
          /^the task's budget of \$0\.05 is spent: \$0\.0\d+ counted by the model proxy \(task greedy attempt 1\)$/,
        ),
      });
    },
  );

  it('lowers max_tokens to what the budget affords, keeping extended thinking within it', async () => {
    server.setScript((request) => ({
      usage: { input_tokens: 10, output_tokens: request.body.max_tokens },
    }));
    const proxy = await anthropicProxy();
    // Sonnet 4.5: $15 output per million tokens; $0.10 affords about 6,600 tokens.
    const token = proxy.issue('task', { maxUsd: 0.1 });
    const before = server.requests.length;
    const thinking = { type: 'enabled', budget_tokens: 16_000 };
    const answer = await call(proxy, token, {
      model: 'claude-sonnet-4-5',
      max_tokens: 32_000,
      thinking,
    });
    expect(answer.status).toBe(200);
    const seen = server.requests[before]?.body;
    expect(seen.max_tokens).toBeGreaterThan(6_000);
    expect(seen.max_tokens).toBeLessThan(6_700);
    expect(seen.thinking).toEqual({ type: 'enabled', budget_tokens: seen.max_tokens - 1 });
    expect(proxy.usage(token)?.usage.costUsd).toBeLessThanOrEqual(0.1);
    // Spent: refused without reaching the provider, and recorded as stopped by its budget.
    expect(
      (await call(proxy, token, { model: 'claude-sonnet-4-5', max_tokens: 32_000 })).status,
    ).toBe(400);
    expect(server.requests.length).toBe(before + 1);
    expect(proxy.usage(token)).toMatchObject({ limitUsd: 0.1, stoppedBy: 'task' });
  });

  it("holds the run's budget across tokens, counting what the run spent before", async () => {
    server.setScript((request) => ({
      usage: { input_tokens: 10, output_tokens: request.body.max_tokens },
    }));
    // Haiku 4.5: $5 output per million tokens. $0.02 left: about 4,000 tokens.
    const proxy = await anthropicProxy({ maxBudgetUsd: 0.03, alreadySpentUsd: 0.01 });
    const first = proxy.issue('task a attempt 1');
    const second = proxy.issue('task b attempt 1');
    const body = { model: 'claude-haiku-4-5', max_tokens: 2_500 };
    expect((await call(proxy, first, body)).status).toBe(200);
    expect((await call(proxy, second, body)).status).toBe(200);
    const refused = await call(proxy, first, body);
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error.message).toMatch(
      /^the run's budget of \$0\.03 is spent: \$0\.02\d+ counted by the model proxy, \$0\.01 of it before the proxy started \(task a attempt 1\)$/,
    );
    expect(proxy.usage(first)?.stoppedBy).toBe('run');
    expect(proxy.usage(second)?.stoppedBy).toBeUndefined();
    const tokensOut = server
      .messages()
      .slice(-2)
      .map((request) => request.body.max_tokens);
    expect(tokensOut[0]).toBe(2_500);
    expect(tokensOut[1]).toBeLessThan(2_500);
    expect(proxy.runSpentUsd).toBeLessThanOrEqual(0.03);
    expect(proxy.runSpentUsd).toBeCloseTo(0.01 + proxy.runUsage.costUsd, 9);
    expect(proxy.runUsage.outputTokens).toBe(tokensOut[0] + tokensOut[1]);
    // A larger budget set later lets calls through again.
    proxy.setRunBudget(1, 0.01);
    expect((await call(proxy, first, body)).status).toBe(200);
  });

  it('asks a call to wait, not to stop, while calls in flight hold the budget', async () => {
    server.setScript(() => ({ usage: { input_tokens: 10, output_tokens: 10 }, delayMs: 300 }));
    const proxy = await anthropicProxy();
    const token = proxy.issue('task', { maxUsd: 0.05 });
    const body = { model: 'claude-opus-4-7', max_tokens: 32_000 };
    const first = call(proxy, token, body);
    await vi.waitFor(() => expect(server.requests.at(-1)?.body?.max_tokens).toBeDefined());
    const waiting = await call(proxy, token, body);
    expect(waiting.status).toBe(429);
    expect(waiting.headers['retry-after']).toBe('1');
    expect(JSON.parse(waiting.body).error.type).toBe('rate_limit_error');
    expect((await first).status).toBe(200);
    expect((await call(proxy, token, body)).status).toBe(200);
    expect(proxy.usage(token)?.stoppedBy).toBeUndefined();
  });

  it("lowers a Bedrock body's max_tokens and counts its event stream", async () => {
    server.setScript((request) => ({
      usage: { input_tokens: 10, output_tokens: request.body.max_tokens },
    }));
    const proxy = await bedrockProxy();
    // Opus 4.7: $25 output per million tokens; $0.05 affords about 2,000 tokens.
    const token = proxy.issue('bedrock task', { maxUsd: 0.05 });
    const before = server.requests.length;
    const path = `/${token}/model/global.anthropic.claude-opus-4-7-v1:0/invoke-with-response-stream`;
    const body = { anthropic_version: 'bedrock-2023-05-31', max_tokens: 32_000, messages: [] };
    expect((await send(proxy, path, { body: JSON.stringify(body) })).status).toBe(200);
    const lowered = server.requests[before]?.body.max_tokens;
    expect(lowered).toBeGreaterThan(1_900);
    expect(lowered).toBeLessThan(2_000);
    expect(proxy.usage(token)?.usage).toMatchObject({ inputTokens: 10, outputTokens: lowered });
    expect(proxy.usage(token)?.usage.costUsd).toBeLessThanOrEqual(0.05);
  });

  it('needs max_tokens on a model call', async () => {
    const proxy = await anthropicProxy();
    const answer = await call(proxy, proxy.issue('task'), { model: 'claude-opus-4-7' });
    expect(answer.status).toBe(400);
  });
});

describe('the model proxy forwards only what Claude Code needs', () => {
  it.each([
    [
      'an MCP server',
      { mcp_servers: [{ type: 'url', url: 'https://attacker.example/mcp' }] },
      'the field "mcp_servers" is not forwarded',
    ],
    ['a container', { container: 'container_1' }, 'the field "container" is not forwarded'],
    [
      'web search',
      { tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
      'tools[0].type',
    ],
    ['web fetch', { tools: [{ type: 'web_fetch_20250910', name: 'web_fetch' }] }, 'tools[0].type'],
    [
      'code execution',
      { tools: [{ type: 'code_execution_20250825', name: 'code_execution' }] },
      'tools[0].type',
    ],
    [
      'an image by URL in a tool result',
      {
        messages: [
          {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: 't',
                content: [
                  {
                    type: 'image',
                    source: { type: 'url', url: 'https://attacker.example/?q=secret' },
                  },
                ],
              },
            ],
          },
        ],
      },
      'a source of type "url" is not forwarded',
    ],
    [
      'a file of the account',
      {
        messages: [
          {
            role: 'user',
            content: [{ type: 'document', source: { type: 'file', file_id: 'file_1' } }],
          },
        ],
      },
      'a source of type "file" is not forwarded',
    ],
    [
      'an upload into a container',
      { messages: [{ role: 'user', content: [{ type: 'container_upload', file_id: 'file_1' }] }] },
      'blocks of type "container_upload" are not forwarded',
    ],
  ])('refuses %s, naming it, before the provider sees it', async (_, fields, named) => {
    const proxy = await anthropicProxy();
    const before = server.requests.length;
    const answer = await call(proxy, proxy.issue('task'), {
      model: 'claude-opus-4-7',
      max_tokens: 10,
      ...fields,
    });
    expect(answer.status).toBe(400);
    const { error } = JSON.parse(answer.body);
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain(named);
    expect(server.requests.length).toBe(before);
  });

  it('forwards only allowed headers and betas, and no query of the agent', async () => {
    const proxy = await anthropicProxy();
    const before = server.requests.length;
    const answer = await send(
      proxy,
      `/${proxy.issue('task')}/v1/messages?beta=true&target=https://x`,
      {
        body: JSON.stringify({ model: 'claude-opus-4-7', max_tokens: 10, messages: [] }),
        headers: {
          'anthropic-beta': 'claude-code-20250219,mcp-client-2025-04-04,files-api-2025-04-14',
          'anthropic-version': '2023-06-01',
          'x-stainless-retry-count': '0',
          'x-forwarded-for': '10.0.0.1',
          'x-forwarded-host': 'attacker.example',
          forwarded: 'for=10.0.0.1;host=attacker.example',
          via: '1.1 agent',
          'x-real-ip': '10.0.0.1',
          'x-custom': 'anything',
        },
      },
    );
    expect(answer.status).toBe(200);
    const forwarded = server.requests[before];
    expect(forwarded?.path).toBe('/v1/messages');
    expect(forwarded?.headers['anthropic-beta']).toBe('claude-code-20250219');
    expect(forwarded?.headers['x-stainless-retry-count']).toBe('0');
    for (const dropped of [
      'x-forwarded-for',
      'x-forwarded-host',
      'forwarded',
      'via',
      'x-real-ip',
      'x-custom',
    ])
      expect(forwarded?.headers[dropped]).toBeUndefined();
  });

  it("filters the betas of a Bedrock body and refuses Bedrock's server tools", async () => {
    const proxy = await bedrockProxy();
    const token = proxy.issue('bedrock task');
    const before = server.requests.length;
    const path = `/${token}/model/eu.anthropic.claude-opus-4-7-v1:0/invoke?x=1`;
    const body = {
      anthropic_version: 'bedrock-2023-05-31',
      anthropic_beta: ['claude-code-20250219', 'mcp-client-2025-04-04'],
      max_tokens: 10,
      messages: [],
    };
    expect((await send(proxy, path, { body: JSON.stringify(body) })).status).toBe(200);
    expect(server.requests[before]?.body).toEqual({
      ...body,
      anthropic_beta: ['claude-code-20250219'],
    });
    expect(server.requests[before]?.path).toBe('/model/eu.anthropic.claude-opus-4-7-v1%3A0/invoke');
    const tools = [{ type: 'web_search_20250305', name: 'web_search' }];
    const refused = await send(proxy, path, { body: JSON.stringify({ ...body, tools }) });
    expect(refused.status).toBe(400);
    expect(server.requests.length).toBe(before + 1);
  });
});

describe('the model proxy bounds what agents make it hold', () => {
  it('answers 429 past the requests in flight of a token, before reading the body', async () => {
    server.setScript(() => ({ delayMs: 400 }));
    const proxy = await anthropicProxy({ limits: { maxRequestsPerToken: 2, maxRequests: 3 } });
    const token = proxy.issue('task');
    const other = proxy.issue('other task');
    const body = { model: 'claude-haiku-4-5', max_tokens: 10 };
    const slow = [call(proxy, token, body), call(proxy, token, body)];
    await vi.waitFor(() =>
      expect(
        server.requests.filter((r) => r.body?.max_tokens === 10).length,
      ).toBeGreaterThanOrEqual(2),
    );
    const over = await call(proxy, token, body);
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toBe('1');
    expect(JSON.parse(over.body).error.type).toBe('rate_limit_error');
    // Another token still gets through, up to the overall limit.
    const third = call(proxy, other, body);
    await vi.waitFor(() =>
      expect(
        server.requests.filter((r) => r.body?.max_tokens === 10).length,
      ).toBeGreaterThanOrEqual(3),
    );
    expect((await call(proxy, other, body)).status).toBe(429);
    expect((await Promise.all([...slow, third])).map((answer) => answer.status)).toEqual([
      200, 200, 200,
    ]);
    expect((await call(proxy, token, body)).status).toBe(200);
  });
});
