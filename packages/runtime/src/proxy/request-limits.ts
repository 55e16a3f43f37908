import type { IncomingMessage } from 'node:http';

/**
 * Bounds on what agents can make the proxy hold. A body is read whole before it goes on (the
 * policy and the budget need it parsed), so it is bounded instead: in size, in the bytes all
 * bodies hold together, in the time it may take to arrive, and in requests in flight.
 */
export interface ProxyLimits {
  /** Largest request body (a long conversation with images stays far below). */
  maxRequestBytes: number;
  /** Requests in flight for one token. */
  maxRequestsPerToken: number;
  /** Requests in flight for all tokens. */
  maxRequests: number;
  /** Body bytes held at once by requests in flight, each counted at its announced length. */
  maxBodyBytesHeld: number;
  /** A body must arrive within this... */
  bodyTimeoutMs: number;
  /** ...and never pause longer than this. */
  bodyIdleMs: number;
  /** Headers must arrive within this. */
  headersTimeoutMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = Object.freeze({
  maxRequestBytes: 32 * 2 ** 20,
  maxRequestsPerToken: 8,
  maxRequests: 64,
  maxBodyBytesHeld: 256 * 2 ** 20,
  bodyTimeoutMs: 60_000,
  bodyIdleMs: 15_000,
  headersTimeoutMs: 10_000,
});

/** Requests in flight and the body bytes they hold, against the limits. */
export class Admission {
  private requests = 0;
  private bytesHeld = 0;

  constructor(private readonly limits: ProxyLimits) {}

  /**
   * Admits a request that may hold `bytes` from a token with `tokenRequests` in flight: the
   * function to call when it ends, or which limit it is over.
   */
  admit(tokenRequests: number, bytes: number): { release: () => void } | { over: string } {
    if (tokenRequests >= this.limits.maxRequestsPerToken)
      return { over: `${this.limits.maxRequestsPerToken} requests in flight for this token` };
    if (this.requests >= this.limits.maxRequests)
      return { over: `${this.limits.maxRequests} requests in flight` };
    if (this.bytesHeld + bytes > this.limits.maxBodyBytesHeld)
      return { over: `${this.limits.maxBodyBytesHeld} bytes of requests held` };
    this.requests += 1;
    this.bytesHeld += bytes;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.requests -= 1;
      this.bytesHeld -= bytes;
    };
    return { release };
  }
}

/**
 * Reads a request's body within the limits, or drops it (undefined) with its connection, which
 * frees what it had sent: over the size, too slow, stalled, or abandoned by the agent.
 */
export function readBody(
  request: IncomingMessage,
  limits: ProxyLimits,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (body?: Buffer) => {
      settled = true;
      clearTimeout(deadline);
      clearTimeout(idle);
      resolve(body);
    };
    const drop = () => {
      if (settled) return;
      chunks.length = 0;
      finish();
      request.destroy();
    };
    const deadline = setTimeout(drop, limits.bodyTimeoutMs);
    const idle = setTimeout(drop, limits.bodyIdleMs);
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxRequestBytes) drop();
      else {
        chunks.push(chunk);
        idle.refresh();
      }
    });
    request.on('end', () => finish(Buffer.concat(chunks, size)));
    request.on('close', drop);
  });
}
