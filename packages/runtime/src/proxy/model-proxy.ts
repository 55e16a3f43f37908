import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ENV, MODEL_ENV } from '../contracts/env.js';
import { MODEL_PROXY } from '../contracts/model-proxy.js';
import type { ModelAccess } from '../models/access.js';
import { MODEL_DEFAULTS } from '../models/defaults.js';
import { passableHeaders, type Upstream } from './upstream.js';

const ANTHROPIC_API_URL = 'https://api.anthropic.com';

/** Largest request an agent may send (a long conversation with images stays far below). */
const MAX_REQUEST_BYTES = 32 * 2 ** 20;

interface Grant {
  label: string;
  requests: Set<AbortController>;
}

/** One error in the Messages API's shape, so Claude Code reports it as such. */
function reject(response: ServerResponse, status: number, type: string, message: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

function readBody(request: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, rejectRead) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.destroy();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', rejectRead);
  });
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * The credential-injecting proxy between agents and the model provider. It listens on a Unix
 * socket that sandboxes and containers mount (their only way out when they have no network),
 * accepts a request only with a token it issued for a running attempt, only on the provider's
 * model paths, and sends it on with the real credentials, which therefore never enter an
 * agent's environment. A token is revoked when its attempt ends, cutting off its requests.
 *
 * Agents address it as `http://model-proxy/<token>` (Claude Code's ANTHROPIC_BASE_URL or
 * ANTHROPIC_BEDROCK_BASE_URL) with ANTHROPIC_UNIX_SOCKET naming the socket.
 */
export class ModelProxy {
  private readonly grants = new Map<string, Grant>();

  private constructor(
    private readonly server: Server,
    private readonly upstream: Upstream,
    /** The directory holding the socket: what a sandbox mounts. */
    readonly socketDir: string,
  ) {}

  static async start(upstream: Upstream): Promise<ModelProxy> {
    // A short path outside the run: Unix socket paths are limited to 107 bytes.
    const socketDir = mkdtempSync(path.join(os.tmpdir(), 'po-model-'));
    const server = createServer();
    const proxy = new ModelProxy(server, upstream, socketDir);
    server.on('request', (request, response) => void proxy.handle(request, response));
    await new Promise<void>((resolve, rejectListen) => {
      server.once('error', rejectListen);
      server.listen(proxy.socketPath, resolve);
    });
    // Container users are not the orchestrator's user: the token, not the mode, keeps others out.
    chmodSync(socketDir, 0o711);
    chmodSync(proxy.socketPath, 0o666);
    return proxy;
  }

  get socketPath(): string {
    return path.join(this.socketDir, MODEL_PROXY.socketName);
  }

  /** A token for one attempt; `label` names it in errors. */
  issue(label: string): string {
    const token = randomBytes(32).toString('base64url');
    this.grants.set(digest(token), { label, requests: new Set() });
    return token;
  }

  /** Ends a token: later requests are refused and requests in flight are cut off. */
  revoke(token: string): void {
    const key = digest(token);
    const grant = this.grants.get(key);
    this.grants.delete(key);
    for (const controller of grant?.requests ?? []) controller.abort();
  }

  async close(): Promise<void> {
    for (const grant of this.grants.values()) for (const c of grant.requests) c.abort();
    this.grants.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    rmSync(this.socketDir, { recursive: true, force: true });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://proxy');
    const match = /^\/([A-Za-z0-9_-]{43})(\/.*)$/.exec(url.pathname);
    // Looked up by digest: comparing against the request's token takes no secret-dependent time.
    const grant = match && this.grants.get(digest(match[1] as string));
    if (!match || !grant) {
      reject(response, 403, 'permission_error', 'the model proxy does not know this token');
      return;
    }
    const route = match[2] as string;
    if (request.method !== 'POST' || !this.upstream.routes.test(route)) {
      reject(
        response,
        404,
        'not_found_error',
        `the model proxy forwards no ${request.method} ${route}`,
      );
      return;
    }
    if (Number(request.headers['content-length'] ?? 0) > MAX_REQUEST_BYTES) {
      // Not read at all: the connection ends with the answer.
      response.shouldKeepAlive = false;
      reject(response, 413, 'request_too_large', 'request over the model proxy limit');
      return;
    }
    const controller = new AbortController();
    grant.requests.add(controller);
    response.on('close', () => controller.abort());
    try {
      const body = await readBody(request, MAX_REQUEST_BYTES);
      if (!body) {
        reject(response, 413, 'request_too_large', 'request over the model proxy limit');
        return;
      }
      await this.upstream.forward(
        {
          path: route,
          search: url.search,
          headers: passableHeaders(request.headers),
          body,
          signal: controller.signal,
        },
        response,
      );
    } catch (error) {
      if (controller.signal.aborted) response.destroy();
      else {
        const reason = error instanceof Error ? error.message : String(error);
        reject(response, 502, 'api_error', `model proxy for ${grant.label}: ${reason}`);
      }
    } finally {
      grant.requests.delete(controller);
    }
  }
}

/** The proxy for the resolved model access; the Bedrock signer loads only when used. */
export async function startModelProxy(access: ModelAccess): Promise<ModelProxy> {
  if (access.provider === 'anthropic') {
    const { AnthropicUpstream } = await import('./anthropic-upstream.js');
    return ModelProxy.start(
      new AnthropicUpstream(access.baseURL ?? ANTHROPIC_API_URL, {
        apiKey: access.secrets[ENV.ANTHROPIC_API_KEY],
        authToken: access.secrets[MODEL_ENV.ANTHROPIC_AUTH_TOKEN],
      }),
    );
  }
  const { BedrockUpstream } = await import('./bedrock-upstream.js');
  const accessKeyId = access.secrets[ENV.AWS_ACCESS_KEY_ID];
  const secretAccessKey = access.secrets[ENV.AWS_SECRET_ACCESS_KEY];
  const sessionToken = access.secrets[ENV.AWS_SESSION_TOKEN];
  const credentials =
    accessKeyId && secretAccessKey
      ? async () => ({ accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) })
      : (await import('@aws-sdk/credential-providers')).fromNodeProviderChain({
          profile: access.awsEnv.AWS_PROFILE,
          filepath: access.awsEnv.AWS_SHARED_CREDENTIALS_FILE,
          configFilepath: access.awsEnv.AWS_CONFIG_FILE,
        });
  return ModelProxy.start(
    new BedrockUpstream({
      region: access.region ?? MODEL_DEFAULTS.bedrockRegion,
      credentials,
      endpoint: access.baseURL,
    }),
  );
}
