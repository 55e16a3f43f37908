import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Iam, Principal } from './iam.js';
import { checkSignature, type SignatureFailure } from './sigv4.js';

/** An error as an AWS service answers it: its type (the SDK's error name), status and message. */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const clientError = (message: string) => new AwsError('ClientException', 400, message);

/** How the JSON protocols of AWS (Batch, CloudWatch Logs) answer a request they cannot authenticate. */
const SIGNATURE_ERRORS: Record<SignatureFailure, string> = {
  MissingAuthenticationToken: 'MissingAuthenticationTokenException',
  InvalidAccessKeyId: 'UnrecognizedClientException',
  SignatureDoesNotMatch: 'InvalidSignatureException',
  RequestTimeTooSkewed: 'InvalidSignatureException',
  RequestExpired: 'InvalidSignatureException',
  AuthorizationQueryParametersError: 'IncompleteSignatureException',
  // Checked for S3 only.
  HeadersNotSigned: 'InvalidSignatureException',
};

/** The principal that signed a Batch or Logs request, or the error AWS answers instead. */
export async function authenticate(
  req: http.IncomingMessage,
  body: Buffer,
  service: string,
  region: string,
  iam: Iam,
): Promise<Principal> {
  const signature = await checkSignature(
    { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, body },
    { service, region },
    (accessKeyId) => iam.principalOf(accessKeyId)?.secretAccessKey,
  );
  if (!signature.ok) {
    const message =
      signature.failure === 'InvalidAccessKeyId'
        ? 'The security token included in the request is invalid.'
        : signature.message;
    throw new AwsError(SIGNATURE_ERRORS[signature.failure], 403, message);
  }
  return iam.principalOf(signature.accessKeyId) as Principal;
}

/**
 * The whole body, up to `capBytes`: bodies past the cap are cut off (the caller refuses them by
 * `bytes`, which counts everything that arrived).
 */
export async function readBody(
  req: http.IncomingMessage,
  capBytes: number,
): Promise<{ body: Buffer; bytes: number }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= capBytes) chunks.push(chunk);
  }
  return { body: Buffer.concat(chunks), bytes };
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  contentType = 'application/json',
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(payload);
}

/** AWS's JSON error shape: the type in a header and in `__type`, which every AWS SDK reads. */
export function sendError(res: http.ServerResponse, error: AwsError, contentType?: string): void {
  res.setHeader('x-amzn-errortype', error.type);
  sendJson(res, error.status, { __type: error.type, message: error.message }, contentType);
}

/** A server reachable on several addresses: one node:http server per address, one handler. */
export interface ListeningServer {
  /** The port on each address, in the order given. */
  readonly ports: number[];
  close(): Promise<void>;
}

/**
 * Listens on each host with the same port where it can (the first host picks it), so an
 * endpoint differs between the host and the jobs only by address.
 */
export async function listenOn(
  hosts: string[],
  handler: http.RequestListener,
): Promise<ListeningServer> {
  const servers: http.Server[] = [];
  const ports: number[] = [];
  try {
    for (const host of hosts) {
      const server = http.createServer((req, res) => {
        // A client that goes away mid-request ends its own request, never the sandbox.
        Promise.resolve(handler(req, res)).catch(() => res.destroy());
      });
      servers.push(server);
      const port = await listen(server, host, ports[0] ?? 0).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || ports[0] === undefined)
          throw error;
        return listen(server, host, 0);
      });
      ports.push(port);
    }
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    throw error;
  }
  return { ports, close: () => Promise.all(servers.map(closeServer)).then(() => {}) };
}

function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Keep-alive connections of SDK clients would hold close() open.
    server.closeAllConnections();
  });
}
