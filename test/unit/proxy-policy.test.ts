import { describe, expect, it } from 'vitest';
import {
  checkBody,
  forwardedHeaders,
  type MessagesBody,
  withMaxTokens,
} from '../../packages/runtime/src/proxy/request-policy.js';

const CLAUDE_CODE_BETAS =
  'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24';

/** The shape of a request Claude Code 2.1.332 sends (its top-level keys, captured). */
const claudeCode = (extra: Record<string, unknown> = {}) => ({
  model: 'claude-opus-4-7',
  messages: [
    { role: 'user', content: [{ type: 'text', text: 'hi' }] },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: '...', signature: 's' },
        { type: 'tool_use', id: 't1', name: 'Read', input: { source: { type: 'url' } } },
      ],
    },
    {
      role: 'user',
      content: [
        {
          type: 'tool_result',
          tool_use_id: 't1',
          content: [
            { type: 'text', text: 'file' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } },
          ],
        },
      ],
    },
  ],
  system: [{ type: 'text', text: 'You are Claude Code', cache_control: { type: 'ephemeral' } }],
  tools: [
    { name: 'Read', description: 'reads', input_schema: { type: 'object' } },
    { name: 'Later', description: 'later', input_schema: {}, defer_loading: true },
  ],
  metadata: { user_id: 'u' },
  max_tokens: 128000,
  thinking: { type: 'adaptive' },
  context_management: { edits: [] },
  output_config: { effort: 'high' },
  stream: true,
  ...extra,
});

const bytes = (body: unknown) => Buffer.from(JSON.stringify(body));
const refusalOf = (body: unknown, dialect: 'anthropic' | 'bedrock' = 'anthropic') => {
  const outcome = checkBody(dialect, bytes(body));
  return 'refusal' in outcome ? outcome.refusal : undefined;
};

/** Puts `block` where Claude Code puts tool results: inside a tool_result's content. */
const inToolResult = (block: unknown) =>
  claudeCode({
    messages: [
      {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 't', content: [block] }],
      },
    ],
  });

describe('the request policy', () => {
  it("passes Claude Code's requests as they are", () => {
    const body = claudeCode({ tool_choice: { type: 'auto' }, temperature: 1, stop_sequences: [] });
    const outcome = checkBody('anthropic', bytes(body));
    expect(outcome).toEqual({ body, rewritten: false });
  });

  it('refuses fields that reach out, and any field it does not know, naming them', () => {
    expect(refusalOf(claudeCode({ mcp_servers: [{ type: 'url', url: 'https://x' }] }))).toBe(
      'the field "mcp_servers" is not forwarded',
    );
    expect(refusalOf(claudeCode({ container: 'c1' }))).toBe(
      'the field "container" is not forwarded',
    );
    expect(refusalOf(claudeCode({ betas: ['x'], service_tier: 'auto' }))).toBe(
      'the fields "betas", "service_tier" are not forwarded',
    );
  });

  it.each([
    'web_search_20250305',
    'web_fetch_20250910',
    'code_execution_20250825',
    'tool_search_tool_regex_20251119',
    'memory_20250818',
    'bash_20250124',
  ])('refuses the server tool %s', (type) => {
    const tools = [
      { name: 'Read', input_schema: {} },
      { type, name: 'server' },
    ];
    expect(refusalOf(claudeCode({ tools }))).toBe(
      `tools[1].type: the provider's own tool "${type}" is not forwarded`,
    );
  });

  it('passes tools typed custom', () => {
    expect(
      refusalOf(claudeCode({ tools: [{ type: 'custom', name: 'x', input_schema: {} }] })),
    ).toBe(undefined);
  });

  it('refuses sources the provider would fetch or read, wherever the block is', () => {
    const url = { type: 'image', source: { type: 'url', url: 'https://attacker.example/x.png' } };
    const file = { type: 'document', source: { type: 'file', file_id: 'file_1' } };
    expect(refusalOf(inToolResult(url))).toBe(
      'messages[0].content[0].content[0].source.type: a source of type "url" is not forwarded',
    );
    expect(refusalOf(claudeCode({ messages: [{ role: 'user', content: [file] }] }))).toBe(
      'messages[0].content[0].source.type: a source of type "file" is not forwarded',
    );
    expect(refusalOf(claudeCode({ system: [{ type: 'text', text: 's' }, url] }))).toBe(
      'system[1].source.type: a source of type "url" is not forwarded',
    );
    const nested = { type: 'document', source: { type: 'content', content: [url] } };
    expect(refusalOf(inToolResult(nested))).toBe(
      'messages[0].content[0].content[0].source.content[0].source.type: a source of type "url" is not forwarded',
    );
  });

  it('passes a search result, whose source is a citation', () => {
    const cited = {
      type: 'search_result',
      source: 'https://example.com/page',
      title: 'page',
      content: [{ type: 'text', text: 'quoted' }],
    };
    expect(refusalOf(inToolResult(cited))).toBe(undefined);
  });

  it.each([
    'container_upload',
    'mcp_tool_use',
    'mcp_tool_result',
    'server_tool_use',
    'web_fetch_tool_result',
  ])('refuses %s blocks', (type) => {
    const body = claudeCode({ messages: [{ role: 'user', content: [{ type, file_id: 'f' }] }] });
    expect(refusalOf(body)).toBe(
      `messages[0].content[0].type: blocks of type "${type}" are not forwarded`,
    );
  });

  it('refuses a body that is not JSON, or not a Messages request', () => {
    const outcome = checkBody('anthropic', Buffer.from('{"model":'));
    expect(outcome).toEqual({ refusal: 'the request body is not JSON' });
    expect(refusalOf({ model: 'm', messages: 'hi' })).toMatch(/^messages: /);
  });

  it('takes Bedrock bodies, their betas filtered, and no model or stream in them', () => {
    const bedrock = {
      anthropic_version: 'bedrock-2023-05-31',
      anthropic_beta: ['claude-code-20250219', 'files-api-2025-04-14', 'mcp-client-2025-04-04'],
      max_tokens: 10,
      messages: [],
    };
    expect(checkBody('bedrock', bytes(bedrock))).toEqual({
      body: { ...bedrock, anthropic_beta: ['claude-code-20250219'] },
      rewritten: true,
    });
    expect(refusalOf({ ...bedrock, model: 'm' }, 'bedrock')).toBe(
      'the field "model" is not forwarded',
    );
    expect(refusalOf({ ...bedrock, mcp_servers: [] }, 'bedrock')).toBe(
      'the field "mcp_servers" is not forwarded',
    );
  });

  it("checks the invoke body inside Bedrock's CountTokens", () => {
    const wrap = (inner: unknown) => ({
      input: { invokeModel: { body: bytes(inner).toString('base64') } },
    });
    const inner = { anthropic_version: 'bedrock-2023-05-31', messages: [], max_tokens: 1 };
    expect(checkBody('bedrock-count-tokens', bytes(wrap(inner)))).toEqual({
      body: wrap(inner),
      rewritten: false,
    });
    const server = { ...inner, tools: [{ type: 'web_search_20250305', name: 'web_search' }] };
    expect('refusal' in checkBody('bedrock-count-tokens', bytes(wrap(server)))).toBe(true);
    const betas = { ...inner, anthropic_beta: ['files-api-2025-04-14'] };
    expect(checkBody('bedrock-count-tokens', bytes(wrap(betas)))).toEqual({
      body: wrap({ ...inner, anthropic_beta: [] }),
      rewritten: true,
    });
    expect('refusal' in checkBody('bedrock-count-tokens', bytes({ input: { converse: {} } }))).toBe(
      true,
    );
  });
});

describe('forwarded headers', () => {
  it("keeps Claude Code's, drops the rest, and filters the betas", () => {
    const headers = forwardedHeaders({
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': 'claude-cli/2.1.332',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': `${CLAUDE_CODE_BETAS},files-api-2025-04-14, mcp-client-2025-04-04,context-1m-2025-08-07`,
      'x-app': 'cli',
      'x-claude-code-session-id': 's1',
      'x-stainless-retry-count': '0',
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=10.0.0.1',
      via: '1.1 proxy',
      'x-real-ip': '10.0.0.1',
      authorization: 'Bearer agent',
      'x-api-key': 'agent',
      cookie: 'c=1',
      'anthropic-dangerous-direct-browser-access': 'true',
      'x-amz-security-token': 't',
    });
    expect(headers).toEqual({
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': 'claude-cli/2.1.332',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': `${CLAUDE_CODE_BETAS},context-1m-2025-08-07`,
      'x-app': 'cli',
      'x-claude-code-session-id': 's1',
      'x-stainless-retry-count': '0',
    });
  });

  it('drops the beta header when no beta is left', () => {
    expect(forwardedHeaders({ 'anthropic-beta': 'files-api-2025-04-14' })).toEqual({});
  });
});

describe('max_tokens lowered', () => {
  const body = (thinking?: MessagesBody['thinking']): MessagesBody => ({
    model: 'm',
    max_tokens: 32000,
    messages: [],
    ...(thinking && { thinking }),
  });

  it('leaves adaptive thinking and budgets below the new limit alone', () => {
    expect(withMaxTokens(body({ type: 'adaptive' }), 5000)).toEqual({
      ...body({ type: 'adaptive' }),
      max_tokens: 5000,
    });
    const small = body({ type: 'enabled', budget_tokens: 2000 });
    expect(withMaxTokens(small, 5000)).toEqual({ ...small, max_tokens: 5000 });
  });

  it('keeps a thinking budget below max_tokens, or drops thinking under the minimum', () => {
    const thinking = body({ type: 'enabled', budget_tokens: 16000 });
    expect(withMaxTokens(thinking, 5000)).toEqual({
      ...thinking,
      max_tokens: 5000,
      thinking: { type: 'enabled', budget_tokens: 4999 },
    });
    expect(withMaxTokens(thinking, 1024)).toEqual({ model: 'm', max_tokens: 1024, messages: [] });
  });
});
