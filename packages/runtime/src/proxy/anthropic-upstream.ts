import {
  type Destination,
  joinUrl,
  type ProxiedRequest,
  type Route,
  type Upstream,
} from './upstream.js';

/** Credentials of the Messages API: an API key, a gateway's bearer token, or both. */
export interface AnthropicCredentials {
  apiKey?: string;
  authToken?: string;
}

/**
 * Anthropic's Messages API, or a gateway that speaks it: the request goes on with the real key
 * added. A gateway URL may carry credentials of its own (user info, a query), which reach the
 * gateway and nobody else.
 */
export class AnthropicUpstream implements Upstream {
  private readonly base: URL;
  private readonly basicAuth?: string;

  constructor(
    baseURL: string,
    private readonly credentials: AnthropicCredentials,
  ) {
    this.base = new URL(baseURL);
    if (this.base.username || this.base.password) {
      const user = `${decodeURIComponent(this.base.username)}:${decodeURIComponent(this.base.password)}`;
      this.basicAuth = `Basic ${Buffer.from(user).toString('base64')}`;
      this.base.username = '';
      this.base.password = '';
    }
  }

  route(path: string): Route | undefined {
    const match = /^\/v1\/messages(\/count_tokens)?$/.exec(path);
    return match ? { dialect: 'anthropic', billed: !match[1] } : undefined;
  }

  async prepare(request: ProxiedRequest): Promise<Destination> {
    const headers = { ...request.headers };
    if (this.credentials.apiKey) headers['x-api-key'] = this.credentials.apiKey;
    const authorization = this.credentials.authToken
      ? `Bearer ${this.credentials.authToken}`
      : this.basicAuth;
    if (authorization) headers.authorization = authorization;
    return { url: joinUrl(this.base, request.path), headers };
  }
}
