import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

/**
 * What an agent's request may carry to the model provider. The provider holds the real key and
 * can reach the internet: a server tool, an MCP server, a URL to fetch or a file of the account
 * would let a sandbox without network reach third parties or the account's data through it. So
 * only what Claude Code needs goes on, checked here with pure functions.
 */

/** Which body a route takes: the Messages API's, Bedrock's invoke body, or Bedrock's token count. */
export type BodyDialect = 'anthropic' | 'bedrock' | 'bedrock-count-tokens';

/**
 * Betas Claude Code 2.1.332 sends (`claude-code-20250219` ... `effort-2025-11-24`), and a few that
 * only change how tokens are counted or streamed. Others are dropped, not refused: a beta turns a
 * feature on, and the features that reach out (MCP, code execution, files) are refused by field.
 */
const ALLOWED_BETAS = new Set([
  'claude-code-20250219',
  'interleaved-thinking-2025-05-14',
  'context-management-2025-06-27',
  'per-turn-control-2026-07-01',
  'mid-conversation-tool-changes-2026-07-01',
  'thinking-token-count-2026-05-13',
  'advanced-tool-use-2025-11-20',
  'effort-2025-11-24',
  'fine-grained-tool-streaming-2025-05-14',
  'context-1m-2025-08-07',
  'prompt-caching-2024-07-31',
  'token-efficient-tools-2025-02-19',
]);

export function allowedBetas(betas: readonly string[]): string[] {
  return betas.filter((beta) => ALLOWED_BETAS.has(beta));
}

/** Request headers that go on; `anthropic-beta` goes on filtered, every other header is dropped. */
const FORWARDED_HEADERS = new Set([
  'accept',
  'content-type',
  'user-agent',
  'anthropic-version',
  'x-app',
  'x-claude-code-session-id',
]);

/** The agent's headers that go on to the provider. */
export function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const joined = Array.isArray(value) ? value.join(',') : value;
    if (name === 'anthropic-beta') {
      const betas = allowedBetas(joined.split(',').map((beta) => beta.trim()));
      if (betas.length > 0) out[name] = betas.join(',');
    } else if (FORWARDED_HEADERS.has(name) || name.startsWith('x-stainless-')) out[name] = joined;
  }
  return out;
}

/**
 * Blocks of the provider's own tools: server tools, MCP, uploads into a code-execution container.
 * `tool_result` is the agent's own tool's result and passes.
 */
function isProviderToolBlock(type: string): boolean {
  return (
    type === 'container_upload' ||
    type === 'server_tool_use' ||
    type.startsWith('mcp_') ||
    (type.endsWith('_tool_result') && type !== 'tool_result')
  );
}

/** Sources carried in the request itself; `url` and `file` would have the provider fetch or read. */
const INLINE_SOURCES = ['base64', 'text', 'content'] as const;

const Content = z.union([z.string(), z.array(z.lazy(() => Block))]);

const Source = z.looseObject({
  type: z.enum(INLINE_SOURCES, {
    error: (issue) => `a source of type ${JSON.stringify(issue.input)} is not forwarded`,
  }),
  content: Content.optional(),
});

/** A content block, and the blocks it holds (a tool result's content, a document's source). */
const Block: z.ZodType = z.looseObject({
  type: z.string().refine((type) => !isProviderToolBlock(type), {
    error: (issue) => `blocks of type ${JSON.stringify(issue.input)} are not forwarded`,
  }),
  // A search result's source is a citation, a string; an image's or document's is an object.
  source: z.union([z.string(), Source]).optional(),
  content: Content.optional(),
});

/** Claude Code's own tools carry no `type`; any other type is one the provider runs itself. */
const Tool = z.looseObject({
  type: z
    .literal('custom', {
      error: (issue) => `the provider's own tool ${JSON.stringify(issue.input)} is not forwarded`,
    })
    .optional(),
});

const Thinking = z.looseObject({
  type: z.string(),
  budget_tokens: z.number().int().optional(),
});

/** The fields Claude Code 2.1.332 sends, and the sampling controls. */
const MESSAGES_FIELDS = {
  messages: z.array(z.looseObject({ content: Content })),
  system: Content.optional(),
  tools: z.array(Tool).optional(),
  max_tokens: z.number().int().positive().optional(),
  thinking: Thinking.optional(),
  metadata: z.unknown().optional(),
  context_management: z.unknown().optional(),
  output_config: z.unknown().optional(),
  tool_choice: z.unknown().optional(),
  temperature: z.unknown().optional(),
  top_p: z.unknown().optional(),
  top_k: z.unknown().optional(),
  stop_sequences: z.unknown().optional(),
};

const AnthropicBody = z.strictObject({
  ...MESSAGES_FIELDS,
  model: z.string(),
  stream: z.boolean().optional(),
});

/** Bedrock names the model in the path and streams by path, and takes the betas in the body. */
const BedrockBody = z.strictObject({
  ...MESSAGES_FIELDS,
  anthropic_version: z.string(),
  anthropic_beta: z.array(z.string()).optional(),
});

/** Bedrock's CountTokens wraps an invoke body, base64-encoded. */
const BedrockCountTokens = z.strictObject({
  input: z.strictObject({ invokeModel: z.strictObject({ body: z.string() }) }),
});

/** A checked body: the fields the proxy reads, typed; every other field as the agent sent it. */
export interface MessagesBody {
  model?: string;
  max_tokens?: number;
  stream?: boolean;
  thinking?: { type: string; budget_tokens?: number };
  [field: string]: unknown;
}

export type PolicyOutcome =
  | { refusal: string }
  /** `rewritten`: the body differs from what the agent sent (betas dropped). */
  | { body: MessagesBody; rewritten: boolean };

/** The agent's request body, checked against the policy; the bytes are the agent's. */
export function checkBody(dialect: BodyDialect, bytes: Buffer): PolicyOutcome {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { refusal: 'the request body is not JSON' };
  }
  return dialect === 'bedrock-count-tokens' ? checkCountTokens(body) : checkMessages(dialect, body);
}

function checkMessages(dialect: 'anthropic' | 'bedrock', body: unknown): PolicyOutcome {
  const checked = (dialect === 'anthropic' ? AnthropicBody : BedrockBody).safeParse(body);
  if (!checked.success) return { refusal: describe(checked.error) };
  const forwarded = body as MessagesBody;
  const betas = 'anthropic_beta' in checked.data ? checked.data.anthropic_beta : undefined;
  if (!betas) return { body: forwarded, rewritten: false };
  const kept = allowedBetas(betas);
  if (kept.length === betas.length) return { body: forwarded, rewritten: false };
  return { body: { ...forwarded, anthropic_beta: kept }, rewritten: true };
}

function checkCountTokens(body: unknown): PolicyOutcome {
  const checked = BedrockCountTokens.safeParse(body);
  if (!checked.success) return { refusal: describe(checked.error) };
  const inner = checkBody('bedrock', Buffer.from(checked.data.input.invokeModel.body, 'base64'));
  if ('refusal' in inner) return inner;
  if (!inner.rewritten) return { body: body as MessagesBody, rewritten: false };
  const encoded = Buffer.from(JSON.stringify(inner.body)).toString('base64');
  return { body: { input: { invokeModel: { body: encoded } } }, rewritten: true };
}

/** The first problem, named by where it is: `messages[3].content[0].source.type: ...`. */
function describe(error: z.ZodError): string {
  const first = error.issues[0];
  if (!first) return 'the request body is refused';
  const { issue, path } = deepest(first, []);
  if (issue.code === 'unrecognized_keys') {
    const names = issue.keys.map((key) => JSON.stringify(key)).join(', ');
    return issue.keys.length > 1
      ? `the fields ${names} are not forwarded`
      : `the field ${names} is not forwarded`;
  }
  const where = path
    .map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`))
    .join('')
    .replace(/^\./, '');
  return `${where || 'body'}: ${issue.message}`;
}

type Issue = z.core.$ZodIssue;

/** Content is a string or blocks: of a union's failures, the one that got furthest says why. */
function deepest(issue: Issue, base: PropertyKey[]): { issue: Issue; path: PropertyKey[] } {
  const path = [...base, ...issue.path];
  if (issue.code !== 'invalid_union') return { issue, path };
  const options = issue.errors.flat().map((nested) => deepest(nested, path));
  return options.reduce(
    (best, option) => (option.path.length > best.path.length ? option : best),
    options[0] ?? { issue, path },
  );
}

/** The API wants 1,024 <= `budget_tokens` < `max_tokens` when extended thinking is on. */
const MIN_THINKING_BUDGET = 1024;

/** The body with `max_tokens` lowered to `maxTokens`, and extended thinking kept within it. */
export function withMaxTokens(body: MessagesBody, maxTokens: number): MessagesBody {
  const { thinking } = body;
  const budget = thinking?.type === 'enabled' ? thinking.budget_tokens : undefined;
  if (!thinking || budget === undefined || budget < maxTokens) {
    return { ...body, max_tokens: maxTokens };
  }
  if (maxTokens > MIN_THINKING_BUDGET) {
    return {
      ...body,
      max_tokens: maxTokens,
      thinking: { ...thinking, budget_tokens: maxTokens - 1 },
    };
  }
  const { thinking: _dropped, ...withoutThinking } = body;
  return { ...withoutThinking, max_tokens: maxTokens };
}
