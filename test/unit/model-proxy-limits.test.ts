import { type ClientRequest, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AnthropicUpstream } from '../../packages/runtime/src/proxy/anthropic-upstream.js';
import { ModelProxy } from '../../packages/runtime/src/proxy/model-proxy.js';
import { type ModelServer, startModelServer } from '../support/model-server.js';

/**
 * Slow and stalled uploads, measured in a process of their own (vitest runs each file in one):
 * the proxy must not hold more than its bound of request bodies, and must drop what stalls.
 */

const MiB = 2 ** 20;

interface Upload {
  request: ClientRequest;
  /** The proxy's status, if it answered. */
  status?: number;
  /** The proxy ended the connection. */
  closed: boolean;
  /** Every byte written was taken by the proxy. */
  sent: boolean;
}

/** Announces `length` bytes and sends `bytes` of them, then stalls. */
function upload(proxy: ModelProxy, token: string, length: number, bytes: Buffer): Upload {
  const req = request({
    socketPath: proxy.socketPath,
    path: `/${token}/v1/messages`,
    method: 'POST',
    headers: { host: 'model-proxy', 'content-type': 'application/json', 'content-length': length },
  });
  const state: Upload = { request: req, closed: false, sent: false };
  req.on('response', (res) => {
    state.status = res.statusCode;
    res.resume();
  });
  req.on('error', () => {});
  req.on('close', () => {
    state.closed = true;
  });
  req.write(bytes, () => {
    state.sent = true;
  });
  return state;
}

const simpleCall = (proxy: ModelProxy, token: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request(
      {
        socketPath: proxy.socketPath,
        path: `/${token}/v1/messages`,
        method: 'POST',
        headers: { host: 'model-proxy', 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [] }));
  });

let server: ModelServer;
let proxy: ModelProxy;
beforeAll(async () => {
  server = await startModelServer(() => ({}));
  proxy = await ModelProxy.start(new AnthropicUpstream(server.url, { apiKey: 'sk-real-key' }), {
    limits: { bodyIdleMs: 1_500, bodyTimeoutMs: 4_000 },
  });
});
afterAll(async () => {
  await proxy.close();
  await server.close();
});

describe('the model proxy under slow and stalled uploads', () => {
  it('holds at most its bound of bodies from 40 stalled 30 MiB uploads, and drops them', async () => {
    const length = 30 * MiB;
    // All but the last byte: the body never ends.
    const bytes = Buffer.alloc(length - 1, 'a');
    const baseline = process.memoryUsage().rss;
    const uploads = Array.from({ length: 40 }, (_, i) =>
      upload(proxy, proxy.issue(`task ${i}`), length, bytes),
    );
    // 256 MiB of bodies held at most: 8 of 30 MiB are read, the rest refused unread.
    await vi.waitFor(
      () => {
        expect(uploads.filter((u) => u.status === 429).length).toBe(32);
        expect(uploads.filter((u) => u.sent && u.status === undefined).length).toBe(8);
      },
      { timeout: 10_000 },
    );
    const held = process.memoryUsage().rss - baseline;
    expect(held).toBeLessThan(300 * MiB);
    // Stalled: dropped after the idle limit, with no answer.
    const stalledAt = Date.now();
    await vi.waitFor(() => expect(uploads.every((u) => u.closed)).toBe(true), { timeout: 5_000 });
    expect(Date.now() - stalledAt).toBeLessThan(3_000);
    expect(uploads.filter((u) => u.status === undefined).length).toBe(8);
    // The bodies' room is free again.
    expect(await simpleCall(proxy, proxy.issue('task after'))).toBe(200);
  });

  it('drops a body that trickles in slower than its deadline', async () => {
    const trickle = upload(proxy, proxy.issue('slow task'), 1000, Buffer.from('{'));
    const started = Date.now();
    const timer = setInterval(() => trickle.request.write(' '), 200);
    try {
      await vi.waitFor(() => expect(trickle.closed).toBe(true), { timeout: 8_000 });
    } finally {
      clearInterval(timer);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_900);
    expect(trickle.status).toBeUndefined();
  });
});
