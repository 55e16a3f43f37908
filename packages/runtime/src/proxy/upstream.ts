import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** One agent request, checked and read, on its way to the model provider. */
export interface ProxiedRequest {
  /** The provider's path, without the proxy's token prefix: `/v1/messages`. */
  path: string;
  /** The query string with its `?`, or ''. */
  search: string;
  headers: Record<string, string>;
  body: Buffer;
  signal: AbortSignal;
}

/** A model provider behind the proxy: which paths it serves and how a request reaches it. */
export interface Upstream {
  /** The only paths agents may call. */
  readonly routes: RegExp;
  /** Sends the request with the real credentials; resolves once the response is relayed. */
  forward(request: ProxiedRequest, response: ServerResponse): Promise<void>;
}

/** Headers of a hop, or that carry credentials: never passed from agent to provider or back. */
const DROPPED_HEADERS = new Set([
  'authorization',
  'x-api-key',
  'proxy-authorization',
  'cookie',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  // fetch decodes the body it receives, so the encoding no longer applies.
  'content-encoding',
]);

/** The agent's headers that may go on to the provider (the client's API version, betas...). */
export function passableHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name) || name.startsWith('x-amz-')) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** `https://gw.example/anthropic` + `/v1/messages` keeps the base's path, as SDKs do. */
export function joinUrl(base: URL, path: string, search: string): URL {
  const url = new URL(base.toString());
  url.pathname = `${url.pathname.replace(/\/$/, '')}${path}`;
  const params = new URLSearchParams(search);
  for (const [key, value] of params) url.searchParams.append(key, value);
  return url;
}

/**
 * Sends the checked request to the provider at `url` with `headers` (the real credentials among
 * them) and relays the answer to the agent.
 */
export async function forwardTo(
  url: URL,
  headers: Record<string, string>,
  request: ProxiedRequest,
  response: ServerResponse,
): Promise<void> {
  const upstream = await fetch(url, {
    method: 'POST',
    headers,
    body: request.body,
    signal: request.signal,
    redirect: 'manual',
  });
  await relay(upstream, response);
}

/** Relays a provider's response (status, safe headers, streamed body) to the agent. */
async function relay(upstream: Response, response: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  upstream.headers.forEach((value, name) => {
    if (!DROPPED_HEADERS.has(name) && name !== 'set-cookie') headers[name] = value;
  });
  response.writeHead(upstream.status, headers);
  if (!upstream.body) {
    response.end();
    return;
  }
  await pipeline(
    Readable.fromWeb(upstream.body as import('node:stream/web').ReadableStream),
    response,
  );
}
