import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ENV, MODEL_ENV } from '../contracts/env.js';
import { MODEL_PROXY } from '../contracts/model-proxy.js';
import type { Usage } from '../contracts/usage.js';
import type { ModelAccess } from '../models/access.js';
import { MODEL_DEFAULTS } from '../models/defaults.js';
import { HIGHEST_PRICE, priceOf } from '../models/pricing.js';
import {
  Account,
  type BudgetScope,
  decide,
  estimateInputTokens,
  MIN_OUTPUT_TOKENS,
} from './budget.js';
import { Admission, DEFAULT_LIMITS, type ProxyLimits, readBody } from './request-limits.js';
import { checkBody, forwardedHeaders, type MessagesBody, withMaxTokens } from './request-policy.js';
import { type ProxiedRequest, type Route, relay, type Upstream } from './upstream.js';
import { UsageMeter } from './usage-meter.js';

const ANTHROPIC_API_URL = 'https://api.anthropic.com';

export interface ModelProxyOptions {
  /** The run's limit (`--max-budget-usd`), counted by the proxy. */
  maxBudgetUsd?: number;
  /** What the run spent before the proxy counted (planning, earlier attempts on resume). */
  alreadySpentUsd?: number;
  limits?: Partial<ProxyLimits>;
}

/** What an attempt's token was used for, as the proxy counted it from the provider's answers. */
export interface GrantUsage {
  label: string;
  usage: Usage;
  /** The attempt's limit (`--max-task-usd`), if it has one. */
  limitUsd?: number;
  /** A call was refused because this budget was spent: the attempt is not worth retrying. */
  stoppedBy?: BudgetScope;
}

/** A request in flight: revoking its token settles its usage with what was seen, then cuts it. */
interface InFlight {
  controller: AbortController;
  settle: () => void;
}

interface Grant {
  label: string;
  account: Account;
  requests: Set<InFlight>;
  stoppedBy?: BudgetScope;
}

interface Refusal {
  status: number;
  type: string;
  message: string;
}

/** A model call the budgets let through: how far it may go, how it is counted and charged. */
interface Budgeted {
  maxTokens: number;
  meter: UsageMeter;
  /** Charges what the meter counted in place of the call's reservation. */
  settle: () => void;
}

/**
 * One error in the Messages API's shape, so Claude Code reports it as such. A 429 says when to
 * try again: Claude Code waits that long, and a 400 it does not retry at all.
 */
function reject(response: ServerResponse, status: number, type: string, message: string): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  response.writeHead(status, {
    'content-type': 'application/json',
    ...(status === 429 && { 'retry-after': '1' }),
  });
  response.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

/** Refused before a byte of the body is read: the connection ends with the answer. */
function rejectUnread(
  request: IncomingMessage,
  response: ServerResponse,
  ...error: [status: number, type: string, message: string]
): void {
  response.shouldKeepAlive = false;
  response.on('finish', () => request.destroy());
  reject(response, ...error);
}

/** Errors of connecting: the request never left, so the provider charged nothing. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function neverConnected(error: unknown): boolean {
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' && CONNECT_ERRORS.has(cause.code);
}

const usd = (amount: number) => `$${amount}`;

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

function report(grant: Grant): GrantUsage {
  const { limitUsd } = grant.account;
  return {
    label: grant.label,
    usage: grant.account.usage,
    ...(limitUsd !== undefined && { limitUsd }),
    ...(grant.stoppedBy && { stoppedBy: grant.stoppedBy }),
  };
}

/**
 * The credential-injecting proxy between agents and the model provider. It listens on a Unix
 * socket that sandboxes and containers mount (their only way out when they have no network),
 * accepts a request only with a token it issued for a running attempt, only on the provider's
 * model paths and only with what the request policy allows, and sends it on with the real
 * credentials, which therefore never enter an agent's environment. It is also the budget: it
 * counts every call from the provider's answers and refuses calls the task's or the run's limit
 * cannot afford. A token is revoked when its attempt ends, cutting off its requests.
 *
 * Agents address it as `http://model-proxy/<token>` (Claude Code's ANTHROPIC_BASE_URL or
 * ANTHROPIC_BEDROCK_BASE_URL) with ANTHROPIC_UNIX_SOCKET naming the socket.
 */
export class ModelProxy {
  private readonly grants = new Map<string, Grant>();
  private readonly run = new Account('run');
  private readonly admission: Admission;

  private constructor(
    private readonly server: Server,
    private readonly upstream: Upstream,
    /** The directory holding the socket: what a sandbox mounts. */
    readonly socketDir: string,
    private readonly limits: ProxyLimits,
  ) {
    this.admission = new Admission(limits);
  }

  static async start(upstream: Upstream, options: ModelProxyOptions = {}): Promise<ModelProxy> {
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    // A short path outside the run: Unix socket paths are limited to 107 bytes.
    const socketDir = mkdtempSync(path.join(os.tmpdir(), 'po-model-'));
    const server = createServer({
      headersTimeout: limits.headersTimeoutMs,
      // Node's own bound on a whole request; the body's own limits apply as it is read.
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs,
    });
    const proxy = new ModelProxy(server, upstream, socketDir, limits);
    proxy.setRunBudget(options.maxBudgetUsd, options.alreadySpentUsd);
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

  /** A token for one attempt; `label` names it in errors, `maxUsd` limits what it may spend. */
  issue(label: string, options: { maxUsd?: number } = {}): string {
    const token = randomBytes(32).toString('base64url');
    const account = new Account('task', options.maxUsd);
    this.grants.set(digest(token), { label, account, requests: new Set() });
    return token;
  }

  /** What a token's calls used so far, or undefined for a token the proxy does not know. */
  usage(token: string): GrantUsage | undefined {
    const grant = this.grants.get(digest(token));
    return grant && report(grant);
  }

  /**
   * Ends a token: later requests are refused and requests in flight are cut off, charged for
   * what they used until then. Returns what the token's calls used in all.
   */
  revoke(token: string): GrantUsage | undefined {
    const key = digest(token);
    const grant = this.grants.get(key);
    if (!grant) return undefined;
    this.grants.delete(key);
    for (const request of grant.requests) {
      request.settle();
      request.controller.abort();
    }
    return report(grant);
  }

  /** The run's limit (undefined: none) and what it spent before the proxy counted. */
  setRunBudget(limitUsd: number | undefined, alreadySpentUsd = 0): void {
    this.run.setLimit(limitUsd, alreadySpentUsd);
  }

  /** Everything the proxy counted, for every token. */
  get runUsage(): Usage {
    return this.run.usage;
  }

  /** What counts against the run's limit: what was spent before, and what the proxy counted. */
  get runSpentUsd(): number {
    return this.run.spentUsd;
  }

  /**
   * Whether the run's budget still affords the smallest call the proxy lets through to `model`:
   * once it does not, an attempt started now could not make a single call.
   */
  runAffords(model: string): boolean {
    const price = priceOf(model) ?? HIGHEST_PRICE;
    return this.run.room(false) >= MIN_OUTPUT_TOKENS * price.output;
  }

  async close(): Promise<void> {
    for (const grant of this.grants.values())
      for (const request of grant.requests) request.controller.abort();
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
    const providerPath = match[2] as string;
    const route = request.method === 'POST' ? this.upstream.route(providerPath) : undefined;
    if (!route) {
      const what = `${request.method} ${providerPath}`;
      reject(response, 404, 'not_found_error', `the model proxy forwards no ${what}`);
      return;
    }
    // A body without a length may grow to the limit: it is counted at the limit.
    const length = Number(request.headers['content-length'] ?? this.limits.maxRequestBytes);
    if (length > this.limits.maxRequestBytes) {
      rejectUnread(
        request,
        response,
        413,
        'request_too_large',
        'request over the model proxy limit',
      );
      return;
    }
    const admitted = this.admission.admit(grant.requests.size, length);
    if ('over' in admitted) {
      const message = `the model proxy holds ${admitted.over}; retry shortly`;
      rejectUnread(request, response, 429, 'rate_limit_error', message);
      return;
    }
    const inFlight: InFlight = { controller: new AbortController(), settle: () => {} };
    grant.requests.add(inFlight);
    response.on('close', () => inFlight.controller.abort());
    try {
      await this.serve(grant, route, providerPath, request, response, inFlight);
    } catch (error) {
      if (inFlight.controller.signal.aborted) response.destroy();
      else {
        const reason = error instanceof Error ? error.message : String(error);
        reject(response, 502, 'api_error', `model proxy for ${grant.label}: ${reason}`);
      }
    } finally {
      inFlight.settle();
      grant.requests.delete(inFlight);
      admitted.release();
    }
  }

  /** Reads, checks and budgets an admitted request, then forwards it. */
  private async serve(
    grant: Grant,
    route: Route,
    providerPath: string,
    request: IncomingMessage,
    response: ServerResponse,
    inFlight: InFlight,
  ): Promise<void> {
    const received = await readBody(request, this.limits);
    if (!received || inFlight.controller.signal.aborted) return;
    const checked = checkBody(route.dialect, received);
    if ('refusal' in checked) {
      const message = `the model proxy refuses this request: ${checked.refusal}`;
      reject(response, 400, 'invalid_request_error', message);
      return;
    }
    let { body, rewritten } = checked;
    let meter: UsageMeter | undefined;
    if (route.billed) {
      const budgeted = this.budget(grant, route, body, received.length);
      if ('status' in budgeted) {
        reject(response, budgeted.status, budgeted.type, budgeted.message);
        return;
      }
      ({ meter } = budgeted);
      inFlight.settle = budgeted.settle;
      if (budgeted.maxTokens !== body.max_tokens) {
        body = withMaxTokens(body, budgeted.maxTokens);
        rewritten = true;
      }
    }
    const bytes = rewritten ? Buffer.from(JSON.stringify(body)) : received;
    const headers = forwardedHeaders(request.headers);
    await this.forward({ path: providerPath, headers, body: bytes }, response, inFlight, meter);
  }

  /** Sends the request with the credentials and relays the answer, counting it if `meter`. */
  private async forward(
    request: ProxiedRequest,
    response: ServerResponse,
    inFlight: InFlight,
    meter: UsageMeter | undefined,
  ): Promise<void> {
    const destination = await this.upstream.prepare(request);
    // Revoked or abandoned while it was being signed: it never leaves.
    if (inFlight.controller.signal.aborted) return;
    meter?.sending();
    const answer = await fetch(destination.url, {
      method: 'POST',
      headers: destination.headers,
      body: request.body,
      signal: inFlight.controller.signal,
      redirect: 'manual',
    }).catch((error: unknown) => {
      if (neverConnected(error)) meter?.notDelivered();
      throw error;
    });
    await relay(answer, response, meter?.watch(answer.status, answer.headers.get('content-type')));
  }

  /** Decides a model call against the attempt's and the run's budgets. */
  private budget(
    grant: Grant,
    route: Route,
    body: MessagesBody,
    bodyBytes: number,
  ): Budgeted | Refusal {
    if (body.max_tokens === undefined) {
      const message = 'the model proxy needs max_tokens to budget the call';
      return { status: 400, type: 'invalid_request_error', message };
    }
    const inputTokens = estimateInputTokens(bodyBytes);
    const price = priceOf(route.model ?? body.model ?? '') ?? HIGHEST_PRICE;
    const decision = decide([grant.account, this.run], {
      price,
      inputTokens,
      maxTokens: body.max_tokens,
    });
    if (decision.verdict === 'spent') grant.stoppedBy ??= decision.account.scope;
    if (decision.verdict !== 'forward') return refusal(decision.verdict, decision.account, grant);
    const { maxTokens, reservation } = decision;
    const streamed = route.streamed ?? body.stream === true;
    const meter = new UsageMeter({ inputTokens, maxTokens, streamed });
    return { maxTokens, meter, settle: () => reservation.settle(meter.tokens()) };
  }
}

/**
 * A call the budget cannot afford. While calls in flight hold the room, a 429: they may cost
 * less than their worst case, and Claude Code retries. Once spent, a 400, which it does not
 * retry: the budget will not come back.
 */
function refusal(verdict: 'wait' | 'spent', account: Account, grant: Grant): Refusal {
  const scope = account.scope === 'task' ? "the task's" : "the run's";
  const whose = `${scope} budget of ${usd(account.limitUsd ?? 0)}`;
  if (verdict === 'wait') {
    const message = `calls in flight may spend the rest of ${whose}; retry when they end`;
    return { status: 429, type: 'rate_limit_error', message };
  }
  const before = account.alreadySpentUsd
    ? `, ${usd(account.alreadySpentUsd)} of it before the proxy started`
    : '';
  const spent = `${usd(account.spentUsd)} counted by the model proxy${before}`;
  const message = `${whose} is spent: ${spent} (${grant.label})`;
  return { status: 400, type: 'invalid_request_error', message };
}

/** The proxy for the resolved model access; the Bedrock signer loads only when used. */
export async function startModelProxy(
  access: ModelAccess,
  options: ModelProxyOptions = {},
): Promise<ModelProxy> {
  if (access.provider === 'anthropic') {
    const { AnthropicUpstream } = await import('./anthropic-upstream.js');
    return ModelProxy.start(
      new AnthropicUpstream(access.baseURL ?? ANTHROPIC_API_URL, {
        apiKey: access.secrets[ENV.ANTHROPIC_API_KEY],
        authToken: access.secrets[MODEL_ENV.ANTHROPIC_AUTH_TOKEN],
      }),
      options,
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
    options,
  );
}
