import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';

/**
 * A scripted server speaking the Anthropic Messages API (`POST /v1/messages`, streamed as
 * server-sent events when the request asks for it, plain JSON otherwise) and Bedrock's
 * `POST /model/<id>/invoke` and `invoke-with-response-stream` (AWS event stream). Each test gives it a script: a function from the request to the
 * reply. Every request is recorded so tests can assert on what was sent.
 */

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
}

export type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: Record<string, unknown>; id?: string };

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as the error body when `status` is not 2xx. */
  error?: { type: string; message: string };
  content?: Block[];
  stopReason?: 'end_turn' | 'tool_use' | 'max_tokens';
  usage?: Usage;
  /** Wait this long before answering (a slow model). */
  delayMs?: number;
  /** Streams only: the connection drops after this many events (a stream cut short). */
  cutAfterEvents?: number;
  /**
   * With `cutAfterEvents`: the connection drops only once this settles, so a test can wait for
   * the events to reach the client first (a cut right behind them may take them along).
   */
  cutWhen?: Promise<unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  // biome-ignore lint/suspicious/noExplicitAny: the request body is whatever the client sent.
  body: any;
  raw: string;
}

export type Script = (request: RecordedRequest) => Reply | Promise<Reply>;

export interface ModelServer {
  url: string;
  requests: RecordedRequest[];
  /** Requests that are conversations with a model (not other API calls). */
  messages(): RecordedRequest[];
  setScript(script: Script): void;
  close(): Promise<void>;
}

export const text = (value: string): Block => ({ type: 'text', text: value });
export const toolUse = (name: string, input: Record<string, unknown>): Block => ({
  type: 'tool_use',
  name,
  input,
});

/** The working directory Claude Code states (in its system prompt or an environment reminder). */
export function primaryWorkingDirectory(request: RecordedRequest): string | undefined {
  const pattern = /Primary working directory: (\S+)/;
  return pattern.exec(systemText(request))?.[1] ?? pattern.exec(conversationText(request))?.[1];
}

export function systemText(request: RecordedRequest): string {
  const system = request.body?.system;
  if (typeof system === 'string') return system;
  if (Array.isArray(system)) return system.map((b: { text?: string }) => b.text ?? '').join('\n');
  return '';
}

/** All text the request's messages carry, tool results included. */
export function conversationText(request: RecordedRequest): string {
  const parts: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === 'string') parts.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') for (const v of Object.values(value)) walk(v);
  };
  walk(request.body?.messages);
  return parts.join('\n');
}

/** How many tool results the conversation holds so far: the step a scripted agent is at. */
export function toolResults(request: RecordedRequest): number {
  let count = 0;
  for (const message of request.body?.messages ?? []) {
    if (Array.isArray(message.content)) {
      count += message.content.filter((b: { type: string }) => b.type === 'tool_result').length;
    }
  }
  return count;
}

function messageBody(request: RecordedRequest, reply: Reply) {
  const content = (reply.content ?? [text('Done.')]).map((block) =>
    block.type === 'tool_use'
      ? { ...block, id: block.id ?? `toolu_${randomUUID().replaceAll('-', '')}` }
      : block,
  );
  const hasToolUse = content.some((b) => b.type === 'tool_use');
  return {
    id: `msg_${randomUUID().replaceAll('-', '')}`,
    type: 'message',
    role: 'assistant',
    model: request.body?.model ?? 'scripted',
    content,
    stop_reason: reply.stopReason ?? (hasToolUse ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage: {
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      ...(reply.usage ?? { input_tokens: 10, output_tokens: 5 }),
    },
  };
}

type EventWriter = (type: string, data: unknown) => void;

/** Messages API events as server-sent events, as Anthropic streams them. */
function sseWriter(res: ServerResponse): EventWriter {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  return (type, data) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...(data as object) })}\n\n`);
}

const eventStream = new EventStreamCodec(toUtf8, fromUtf8);

/**
 * The same events as Bedrock's invoke-with-response-stream sends them: AWS event-stream
 * messages whose `chunk` events carry each event's JSON, base64-encoded.
 */
function bedrockWriter(res: ServerResponse): EventWriter {
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
  return (type, data) => {
    const json = JSON.stringify({ type, ...(data as object) });
    const payload = JSON.stringify({ bytes: Buffer.from(json).toString('base64') });
    res.write(
      eventStream.encode({
        headers: {
          ':event-type': { type: 'string', value: 'chunk' },
          ':content-type': { type: 'string', value: 'application/json' },
          ':message-type': { type: 'string', value: 'event' },
        },
        body: fromUtf8(payload),
      }),
    );
  };
}

/** Sends the message as events; `cutAfterEvents` ends the connection after that many. */
async function sendStream(
  res: ServerResponse,
  body: ReturnType<typeof messageBody>,
  write: EventWriter,
  cutAfterEvents = Number.POSITIVE_INFINITY,
  cutWhen?: Promise<unknown>,
): Promise<void> {
  let written = 0;
  const event: EventWriter = (type, data) => {
    if (written++ < cutAfterEvents) write(type, data);
  };
  const { usage } = body;
  event('message_start', {
    message: { ...body, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
  });
  body.content.forEach((block, index) => {
    if (block.type === 'text') {
      event('content_block_start', { index, content_block: { type: 'text', text: '' } });
      event('content_block_delta', { index, delta: { type: 'text_delta', text: block.text } });
    } else {
      event('content_block_start', {
        index,
        content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
      });
      event('content_block_delta', {
        index,
        delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) },
      });
    }
    event('content_block_stop', { index });
  });
  event('message_delta', {
    delta: { stop_reason: body.stop_reason, stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  });
  event('message_stop', {});
  // Ending the socket, not the response: the answer stops without its last chunk.
  if (written > cutAfterEvents) {
    await cutWhen;
    res.socket?.end();
  } else res.end();
}

/**
 * The Models API's list (`GET /v1/models`), which doctor probes: 401 as Anthropic answers it to a
 * key not in `apiKeys` (x-api-key or a bearer token), when `apiKeys` is given; any key otherwise.
 * https://docs.anthropic.com/en/api/models-list
 */
function answerModels(req: IncomingMessage, res: ServerResponse, apiKeys?: readonly string[]) {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  const key = (req.headers['x-api-key'] as string | undefined) ?? bearer;
  const refused = apiKeys !== undefined && (key === undefined || !apiKeys.includes(key));
  const body = refused
    ? { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } }
    : {
        data: [
          {
            type: 'model',
            id: 'claude-sonnet-5-5',
            display_name: 'Claude Sonnet 5.5',
            created_at: '2026-01-01T00:00:00Z',
          },
        ],
        has_more: false,
        first_id: 'claude-sonnet-5-5',
        last_id: 'claude-sonnet-5-5',
      };
  res.writeHead(refused ? 401 : 200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startModelServer(
  script: Script,
  host = '127.0.0.1',
  options: { apiKeys?: readonly string[] } = {},
): Promise<ModelServer> {
  let current = script;
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', async () => {
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = undefined;
      }
      const path = req.url ?? '/';
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path,
        headers: req.headers,
        body,
        raw,
      };
      requests.push(request);
      const isMessages =
        req.method === 'POST' &&
        /^(\/[^?]*)?\/v1\/messages(\?|$)|^\/model\/[^/]+\/invoke(-with-response-stream)?$/.test(
          path,
        );
      if (req.method === 'GET' && /^(\/[^?]*)?\/v1\/models(\?|$)/.test(path)) {
        answerModels(req, res, options.apiKeys);
        return;
      }
      if (!isMessages) {
        // Anything else Claude Code may probe: answer politely and emptily.
        res.writeHead(path.includes('count_tokens') ? 200 : 404, {
          'content-type': 'application/json',
        });
        res.end(path.includes('count_tokens') ? '{"input_tokens":10}' : '{}');
        return;
      }
      const reply = await current(request);
      if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
      if (res.destroyed) return;
      const status = reply.status ?? 200;
      if (status >= 400) {
        res.writeHead(status, { 'content-type': 'application/json', ...reply.headers });
        res.end(
          JSON.stringify({
            type: 'error',
            error: reply.error ?? { type: 'api_error', message: `scripted ${status}` },
          }),
        );
        return;
      }
      const message = messageBody(request, reply);
      if (path.endsWith('/invoke-with-response-stream'))
        await sendStream(res, message, bedrockWriter(res), reply.cutAfterEvents, reply.cutWhen);
      else if ((body as { stream?: boolean } | undefined)?.stream)
        await sendStream(res, message, sseWriter(res), reply.cutAfterEvents, reply.cutWhen);
      else {
        res.writeHead(status, { 'content-type': 'application/json', ...reply.headers });
        res.end(JSON.stringify(message));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    requests,
    messages: () =>
      requests.filter(
        (r) =>
          r.method === 'POST' &&
          /\/messages|\/invoke/.test(r.path) &&
          !r.path.includes('count_tokens'),
      ),
    setScript: (next) => {
      current = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
