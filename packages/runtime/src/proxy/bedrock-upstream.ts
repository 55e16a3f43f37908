import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  type Destination,
  joinUrl,
  type ProxiedRequest,
  type Route,
  type Upstream,
} from './upstream.js';

/**
 * Amazon Bedrock's runtime API. Claude Code sends its Bedrock requests unsigned
 * (`CLAUDE_CODE_SKIP_BEDROCK_AUTH`); they are signed here with SigV4 and the host's AWS
 * credentials, which agents never hold. Only the body and the content headers are sent on.
 */
export class BedrockUpstream implements Upstream {
  private readonly endpoint: URL;
  private readonly signer: SignatureV4;

  constructor(options: {
    region: string;
    credentials: ConstructorParameters<typeof SignatureV4>[0]['credentials'];
    /** `ANTHROPIC_BEDROCK_BASE_URL`: a VPC endpoint or gateway instead of the regional one. */
    endpoint?: string;
  }) {
    this.endpoint = new URL(
      options.endpoint ?? `https://bedrock-runtime.${options.region}.amazonaws.com`,
    );
    this.signer = new SignatureV4({
      service: 'bedrock',
      region: options.region,
      credentials: options.credentials,
      sha256: Sha256,
    });
  }

  route(path: string): Route | undefined {
    const match = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream|count-tokens)$/.exec(
      path,
    );
    const [, model = '', action] = match ?? [];
    if (action === 'count-tokens') return { dialect: 'bedrock-count-tokens', billed: false };
    if (!action) return undefined;
    return {
      dialect: 'bedrock',
      billed: true,
      // Priced by family and version, which encoding leaves as they are.
      model,
      streamed: action === 'invoke-with-response-stream',
    };
  }

  async prepare(request: ProxiedRequest): Promise<Destination> {
    // Model ids hold `:`; the path is sent percent-encoded and signed as AWS SDKs sign it.
    const path = request.path
      .split('/')
      .map((segment) => encodeURIComponent(decodeURIComponent(segment)))
      .join('/');
    const url = joinUrl(this.endpoint, path);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port && { port: Number(url.port) }),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: {
        host: url.host,
        'content-type': request.headers['content-type'] ?? 'application/json',
        accept: request.headers.accept ?? 'application/json',
      },
      body: request.body,
    });
    const { host: _host, ...headers } = signed.headers;
    return { url, headers };
  }
}
