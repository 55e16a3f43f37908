import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, HttpRequest, SourceData } from '@smithy/types';

/**
 * Signature Version 4 checked as AWS checks it, in both forms: the Authorization header and the
 * query string of a presigned URL. The request is signed again with the secret of its access
 * key by @smithy/signature-v4 (the AWS SDK's own signer) and the signatures compared, so a
 * request altered after signing (another key, another method, another header) fails.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 */

export type SignatureFailure =
  | 'MissingAuthenticationToken'
  | 'InvalidAccessKeyId'
  | 'SignatureDoesNotMatch'
  | 'RequestTimeTooSkewed'
  | 'RequestExpired'
  | 'AuthorizationQueryParametersError'
  | 'HeadersNotSigned';

export type SignatureCheck =
  | { ok: true; accessKeyId: string; presigned: boolean }
  | { ok: false; failure: SignatureFailure; message: string };

/** How far a header-signed request's time may be from the server's (AWS: 15 minutes). */
const MAX_SKEW_MS = 15 * 60_000;
/** The longest a presigned URL may be valid: seven days. */
const MAX_EXPIRES_SECONDS = 604_800;
const QUERY_AUTH = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
];
const ALGORITHM = 'AWS4-HMAC-SHA256';
const PAYLOAD_HASH = 'x-amz-content-sha256';

/** SHA-256 (or its HMAC) in the shape the signer takes, from node:crypto. */
class Sha256 implements Checksum {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined
      ? createHash('sha256')
      : createHmac('sha256', Buffer.from(this.secret as Uint8Array));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

export interface SignedRequest {
  method: string;
  /** The request target as received: path and query, encoded as the client sent them. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body, for services whose signature covers it (S3's covers x-amz-content-sha256 instead). */
  body?: Buffer;
}

const fail = (failure: SignatureFailure, message: string): SignatureCheck => ({
  ok: false,
  failure,
  message,
});

/** `20240102T030405Z` → a Date. */
function amzDate(value: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!m) return undefined;
  const [year, month, day, hours, minutes, seconds] = m.slice(1).map(Number) as number[];
  return new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day, hours, minutes, seconds));
}

function parseQuery(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    const seen = query[key];
    query[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  return query;
}

const headerValue = (headers: IncomingHttpHeaders, name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

const sameSignature = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Checks a request's signature for `service` in `region`: the key must be known, the signature
 * the one its secret makes of this request, a header-signed request within 15 minutes of now,
 * a presigned one within its X-Amz-Expires.
 */
export async function checkSignature(
  request: SignedRequest,
  expected: { service: string; region: string },
  secretOf: (accessKeyId: string) => string | undefined,
  now = Date.now(),
): Promise<SignatureCheck> {
  const queryAt = request.url.indexOf('?');
  const path = queryAt < 0 ? request.url : request.url.slice(0, queryAt);
  let query: Record<string, string | string[]>;
  try {
    query = parseQuery(queryAt < 0 ? '' : request.url.slice(queryAt + 1));
  } catch {
    return fail('SignatureDoesNotMatch', 'the query string is not valid percent-encoding');
  }
  const authorization = headerValue(request.headers, 'authorization');
  const presigned = typeof query['X-Amz-Signature'] === 'string';
  if (!authorization && !presigned)
    return fail('MissingAuthenticationToken', 'Request is missing Authentication Token');

  let credential: string;
  let signedHeaders: string[];
  let signature: string;
  let date: Date | undefined;
  if (presigned) {
    const param = (name: string) => {
      const value = query[name];
      return typeof value === 'string' ? value : '';
    };
    if (param('X-Amz-Algorithm') !== ALGORITHM)
      return fail('AuthorizationQueryParametersError', `X-Amz-Algorithm must be ${ALGORITHM}`);
    credential = param('X-Amz-Credential');
    signedHeaders = param('X-Amz-SignedHeaders').split(';');
    signature = param('X-Amz-Signature');
    date = amzDate(param('X-Amz-Date'));
  } else {
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/.exec(
        authorization as string,
      );
    if (!m) return fail('SignatureDoesNotMatch', 'the Authorization header is not SigV4');
    [, credential = '', , signature = ''] = m;
    signedHeaders = (m[2] as string).split(';');
    date = amzDate(headerValue(request.headers, 'x-amz-date'));
  }
  const [accessKeyId = '', scopeDate, region, service, terminator] = credential.split('/');
  const secretAccessKey = secretOf(accessKeyId);
  if (!secretAccessKey)
    return fail(
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  if (
    !date ||
    scopeDate !== date.toISOString().slice(0, 10).replaceAll('-', '') ||
    terminator !== 'aws4_request'
  )
    return fail('SignatureDoesNotMatch', 'the credential scope or the request date is malformed');
  if (service !== expected.service || region !== expected.region)
    return fail(
      'SignatureDoesNotMatch',
      `the credential is scoped to ${service} in ${region}; this endpoint is ${expected.service} in ${expected.region}`,
    );

  // S3 takes no x-amz-* header its signature does not cover: unsigned, one could turn a
  // presigned PUT into a copy of another key (x-amz-copy-source).
  const unsignedAmz = Object.keys(request.headers).filter(
    (name) => name.startsWith('x-amz-') && !signedHeaders.includes(name),
  );
  if (service === 's3' && unsignedAmz.length > 0)
    return fail(
      'HeadersNotSigned',
      `There were headers present in the request which were not signed: ${unsignedAmz.join(', ')}`,
    );

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = headerValue(request.headers, name);
    if (value !== undefined && name !== 'x-amz-date') headers[name] = value;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region: region as string,
    service: service as string,
    sha256: Sha256,
    // S3 signs the path as sent; every other service normalises and escapes it again.
    uriEscapePath: service !== 's3',
  });
  const host = headerValue(request.headers, 'host') ?? '';
  const unsigned: HttpRequest = {
    method: request.method,
    protocol: 'http:',
    hostname: host.replace(/:\d+$/, ''),
    path,
    query: {},
    headers,
    ...(request.body && { body: request.body }),
  };

  if (presigned) {
    const expires = Number(query['X-Amz-Expires']);
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_SECONDS)
      return fail(
        'AuthorizationQueryParametersError',
        'X-Amz-Expires must be between 1 and 604800 seconds',
      );
    // The presigner hoisted x-amz-* headers into the query; it does so again here.
    for (const [key, value] of Object.entries(query)) {
      if (QUERY_AUTH.includes(key)) continue;
      // Hoisted again under the same name: the canonical query keeps its case.
      if (key.toLowerCase().startsWith('x-amz-')) headers[key] = String(value);
      else (unsigned.query as Record<string, string | string[]>)[key] = value;
    }
    // S3 signs no payload in a presigned URL.
    if (service === 's3' && !Object.keys(headers).some((h) => h.toLowerCase() === PAYLOAD_HASH))
      headers[PAYLOAD_HASH] = 'UNSIGNED-PAYLOAD';
    const resigned = await signer.presign(unsigned, {
      signingDate: date,
      expiresIn: expires,
      signableHeaders: new Set(signedHeaders),
      unhoistableHeaders: new Set(signedHeaders.filter((h) => h.startsWith('x-amz-'))),
    });
    if (!sameSignature(String(resigned.query?.['X-Amz-Signature']), signature))
      return signatureMismatch();
    if (now > date.getTime() + expires * 1000) return fail('RequestExpired', 'Request has expired');
    return { ok: true, accessKeyId, presigned: true };
  }

  unsigned.query = query;
  const resigned = await signer.sign(unsigned, {
    signingDate: date,
    signableHeaders: new Set(signedHeaders),
  });
  const expectedSignature = /Signature=([0-9a-f]+)$/.exec(
    String(resigned.headers.authorization),
  )?.[1];
  if (!expectedSignature || !sameSignature(expectedSignature, signature))
    return signatureMismatch();
  if (Math.abs(now - date.getTime()) > MAX_SKEW_MS)
    return fail(
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
    );
  return { ok: true, accessKeyId, presigned: false };
}

const signatureMismatch = () =>
  fail(
    'SignatureDoesNotMatch',
    'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
  );
