import type { ServerResponse } from 'node:http';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BodyDialect } from './request-policy.js';

/** One agent request, checked and read, on its way to the model provider. */
export interface ProxiedRequest {
  /** The provider's path, without the proxy's token prefix: `/v1/messages`. */
  path: string;
  /** The agent's headers that passed the policy. */
  headers: Record<string, string>;
  body: Buffer;
}

/** What a path of the provider's API is, for the proxy. */
export interface Route {
  /** Which body it takes. */
  dialect: BodyDialect;
  /** Model calls are counted and budgeted; token counts are free. */
  billed: boolean;
  /** The model, when the path names it (Bedrock); otherwise the body does. */
  model?: string;
  /** Whether the answer streams, when the path says (Bedrock); otherwise the body's `stream`. */
  streamed?: boolean;
}

/** Where a request goes, with which headers (the real credentials among them). */
export interface Destination {
  url: URL;
  headers: Record<string, string>;
}

/** A model provider behind the proxy: the paths agents may call and how a request reaches it. */
export interface Upstream {
  /** The route of `path`, or undefined for a path agents may not call. */
  route(path: string): Route | undefined;
  /** Adds the credentials (signing the request where the provider wants it signed). */
  prepare(request: ProxiedRequest): Promise<Destination>;
}

/** Headers of a hop, or that carry credentials: never passed from provider to agent. */
const DROPPED_HEADERS = new Set([
  'authorization',
  'x-api-key',
  'proxy-authorization',
  'cookie',
  'set-cookie',
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

/**
 * `https://gw.example/anthropic?tenant=t1` + `/v1/messages` keeps the base's path and query, as
 * SDKs do: the query is the user's own, the agent's is not forwarded.
 */
export function joinUrl(base: URL, path: string): URL {
  const url = new URL(base.toString());
  url.pathname = `${url.pathname.replace(/\/$/, '')}${path}`;
  return url;
}

/** Relays a provider's answer (status, safe headers, streamed body, through `watcher` if any). */
export async function relay(
  answer: Response,
  response: ServerResponse,
  watcher?: Transform,
): Promise<void> {
  const headers: Record<string, string> = {};
  answer.headers.forEach((value, name) => {
    if (!DROPPED_HEADERS.has(name)) headers[name] = value;
  });
  response.writeHead(answer.status, headers);
  if (!answer.body) {
    response.end();
    return;
  }
  const body = Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream);
  await (watcher ? pipeline(body, watcher, response) : pipeline(body, response));
}
