import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicUpstream } from '../../packages/runtime/src/proxy/anthropic-upstream.js';
import { BedrockUpstream } from '../../packages/runtime/src/proxy/bedrock-upstream.js';
import { ModelProxy } from '../../packages/runtime/src/proxy/model-proxy.js';
import { type ModelServer, startModelServer, text } from '../support/model-server.js';

/** A request to the proxy over its socket, as Claude Code sends one. */
function send(
  proxy: ModelProxy,
  path: string,
  options: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
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
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
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

  it('forwards model calls with the real key, keeping the path and query, dropping what the agent sent', async () => {
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
    expect(forwarded?.path).toBe('/gateway/v1/messages?tenant=t1&beta=true');
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
