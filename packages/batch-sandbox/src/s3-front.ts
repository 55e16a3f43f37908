import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { readBody } from './http.js';
import { type Iam, notAuthorized, type Principal } from './iam.js';
import type { SandboxRecord } from './record.js';
import type { S3App } from './s3.js';
import { isLargePut, largePut } from './s3-large-put.js';
import { checkSignature, type SignatureFailure } from './sigv4.js';

/** One IAM check an S3 request needs: the action S3 authorizes it as, on one resource. */
interface Check {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

interface Classified {
  operation: string;
  checks: Check[];
  /** GetObject and HeadObject: a missing key answers 404 or 403 by the caller's ListBucket right. */
  readsKey?: string;
  /** DeleteObjects: authorized per key, from the body. */
  deletesMany?: boolean;
}

/** Query parameters that are arguments, not subresources naming another operation. */
const ARGUMENTS = new Set([
  'x-id',
  'list-type',
  'prefix',
  'delimiter',
  'max-keys',
  'continuation-token',
  'start-after',
  'encoding-type',
  'fetch-owner',
  'partNumber',
  'versionId',
]);

class S3Error extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const accessDenied = (message = 'Access Denied') => new S3Error('AccessDenied', 403, message);

const SIGNATURE_ERRORS: Record<SignatureFailure, [string, number]> = {
  // S3 treats an unsigned request as the anonymous principal, which the bucket does not allow.
  MissingAuthenticationToken: ['AccessDenied', 403],
  InvalidAccessKeyId: ['InvalidAccessKeyId', 403],
  SignatureDoesNotMatch: ['SignatureDoesNotMatch', 403],
  RequestTimeTooSkewed: ['RequestTimeTooSkewed', 403],
  RequestExpired: ['AccessDenied', 403],
  AuthorizationQueryParametersError: ['AuthorizationQueryParametersError', 400],
  HeadersNotSigned: ['AccessDenied', 403],
};

const xmlEscape = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string,
  );
const xmlUnescape = (text: string) =>
  text.replace(
    /&(amp|lt|gt|quot|apos);/g,
    (_, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[name] as string,
  );

/** S3's REST error: an XML document (no body for HEAD). */
function sendS3Error(req: http.IncomingMessage, res: http.ServerResponse, error: S3Error): void {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const body =
    req.method === 'HEAD'
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${xmlEscape(error.message)}</Message><RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`;
  res.writeHead(error.status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
  });
  res.end(body);
}

/**
 * Which S3 operation a path-style request is, and what IAM must allow for it: the actions of
 * the Service Authorization Reference for S3, on the bucket or the object.
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
 */
function classify(
  method: string,
  path: string,
  query: URLSearchParams,
  headers: http.IncomingHttpHeaders,
): Classified {
  const [, bucket = '', ...rest] = path.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const bucketArn = `arn:aws:s3:::${decodeURIComponent(bucket)}`;
  const objectArn = `${bucketArn}/${key}`;
  const subresources = [...query.keys()].filter(
    (name) => !ARGUMENTS.has(name) && !name.startsWith('X-Amz-') && !name.startsWith('x-amz-'),
  );
  const sub = subresources.sort().join('&');
  const on = (action: string, resource = objectArn, context?: Record<string, string>) => ({
    action,
    resource,
    ...(context && { context }),
  });
  const copySource = headers['x-amz-copy-source'];
  const copied = () => {
    if (typeof copySource !== 'string') return [];
    const source = decodeURIComponent(copySource.replace(/^\//, '').split('?')[0] as string);
    return [on('s3:GetObject', `arn:aws:s3:::${source}`)];
  };

  if (!bucket) throw new S3Error('NotImplemented', 501, 'ListBuckets is not served');
  if (!key) {
    switch (`${method} ${sub}`) {
      case 'HEAD ':
        // HeadBucket is authorized as s3:ListBucket, with no prefix.
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
        return { operation: 'HeadBucket', checks: [on('s3:ListBucket', bucketArn)] };
      case 'GET ': {
        const context: Record<string, string> = {};
        for (const name of ['prefix', 'delimiter', 'max-keys']) {
          const value = query.get(name);
          if (value !== null) context[`s3:${name}`] = value;
        }
        return {
          operation: query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects',
          checks: [on('s3:ListBucket', bucketArn, context)],
        };
      }
      case 'GET uploads':
        return {
          operation: 'ListMultipartUploads',
          checks: [on('s3:ListBucketMultipartUploads', bucketArn)],
        };
      case 'GET location':
        return { operation: 'GetBucketLocation', checks: [on('s3:GetBucketLocation', bucketArn)] };
      case 'POST delete':
        return { operation: 'DeleteObjects', checks: [], deletesMany: true };
      case 'PUT ':
        return { operation: 'CreateBucket', checks: [on('s3:CreateBucket', bucketArn)] };
      case 'DELETE ':
        return { operation: 'DeleteBucket', checks: [on('s3:DeleteBucket', bucketArn)] };
    }
  } else {
    switch (`${method} ${sub}`) {
      case 'GET ':
        return { operation: 'GetObject', checks: [on('s3:GetObject')], readsKey: key };
      case 'HEAD ':
        return { operation: 'HeadObject', checks: [on('s3:GetObject')], readsKey: key };
      case 'GET uploadId':
        return { operation: 'ListParts', checks: [on('s3:ListMultipartUploadParts')] };
      case 'PUT ':
        return {
          operation: copySource ? 'CopyObject' : 'PutObject',
          checks: [on('s3:PutObject'), ...copied()],
        };
      case 'PUT uploadId':
        return {
          operation: copySource ? 'UploadPartCopy' : 'UploadPart',
          checks: [on('s3:PutObject'), ...copied()],
        };
      case 'POST uploads':
        return { operation: 'CreateMultipartUpload', checks: [on('s3:PutObject')] };
      case 'POST uploadId':
        return { operation: 'CompleteMultipartUpload', checks: [on('s3:PutObject')] };
      case 'DELETE ':
        return { operation: 'DeleteObject', checks: [on('s3:DeleteObject')] };
      case 'DELETE uploadId':
        return {
          operation: 'AbortMultipartUpload',
          checks: [on('s3:AbortMultipartUpload')],
        };
    }
  }
  throw new S3Error('NotImplemented', 501, `${method} ?${sub} is not served by the sandbox's S3`);
}

export interface S3FrontSettings {
  app: S3App;
  region: string;
  iam: Iam;
  record: SandboxRecord;
}

/**
 * The S3 endpoint: every request's signature checked and its operation authorized against the
 * identity policies of its signer (for a presigned URL, whoever signed it) before fauxqs serves it.
 */
export function s3Front({ app, region, iam, record }: S3FrontSettings): http.RequestListener {
  const authorize = async (principal: Principal, check: Check) => {
    if (!(await iam.allows(principal, check.action, check.resource, check.context)))
      throw accessDenied(notAuthorized(principal.arn, check.action, check.resource));
  };

  return async (req, res) => {
    const at = Date.now();
    const url = req.url ?? '/';
    const [path = '/', rawQuery = ''] = url.split(/\?(.*)/s);
    let operation = 'Unknown';
    let status = 200;
    let body: Buffer | undefined;
    try {
      const signature = await checkSignature(
        { method: req.method ?? 'GET', url, headers: req.headers },
        { service: 's3', region },
        (accessKeyId) => iam.principalOf(accessKeyId)?.secretAccessKey,
      );
      if (!signature.ok) {
        const [code, statusCode] = SIGNATURE_ERRORS[signature.failure];
        throw new S3Error(code, statusCode, signature.message);
      }
      const principal = iam.principalOf(signature.accessKeyId) as Principal;
      const request = classify(
        req.method ?? 'GET',
        path,
        new URLSearchParams(rawQuery),
        req.headers,
      );
      operation = request.operation;
      for (const check of request.checks) await authorize(principal, check);

      if (request.readsKey !== undefined) {
        const head = await app.inject({ method: 'HEAD', url: path });
        // GetObject on a key that is not there: 404 only to a caller allowed s3:ListBucket.
        // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html#API_GetObject_RequestSyntax
        if (head.statusCode === 404) {
          const bucketArn = `arn:aws:s3:::${decodeURIComponent(path.split('/')[1] ?? '')}`;
          await authorize(principal, { action: 's3:ListBucket', resource: bucketArn });
        }
      }
      if (request.deletesMany) {
        ({ body } = await readBody(req, 1 << 20));
        status = await deleteObjects(app, req, res, path, body, async (key) => {
          const resource = `arn:aws:s3:::${decodeURIComponent(path.split('/')[1] ?? '')}/${key}`;
          return iam.allows(principal, 's3:DeleteObject', resource);
        });
      } else {
        await new Promise<void>((resolve) => {
          res.on('close', resolve);
          if (isLargePut(req)) void largePut(app, req, res);
          else app.routing(req, res);
        });
        status = res.statusCode;
      }
    } catch (error) {
      const s3Error =
        error instanceof S3Error ? error : new S3Error('InternalError', 500, String(error));
      status = s3Error.status;
      if (!res.headersSent) sendS3Error(req, res, s3Error);
      else res.destroy();
    }
    record.calls.push({
      service: 's3',
      operation,
      at,
      requestBytes: Number(req.headers['content-length'] ?? 0),
      body: body?.toString('utf8') ?? '',
      throttled: false,
      status,
    });
  };
}

/**
 * DeleteObjects authorizes s3:DeleteObject per key: denied keys come back as errors in the
 * result, the others are deleted. https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
 */
async function deleteObjects(
  app: S3App,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  body: Buffer,
  allowed: (key: string) => Promise<boolean>,
): Promise<number> {
  const text = body.toString('utf8');
  const objects = [...text.matchAll(/<Object>([\s\S]*?)<\/Object>/g)].map((m) => m[0]);
  const kept: string[] = [];
  const denied: string[] = [];
  for (const object of objects) {
    const key = xmlUnescape(/<Key>([\s\S]*?)<\/Key>/.exec(object)?.[1] ?? '');
    if (await allowed(key)) kept.push(object);
    else denied.push(key);
  }
  const errors = denied
    .map(
      (key) =>
        `<Error><Key>${xmlEscape(key)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
    )
    .join('');
  const send = (status: number, xml: string) => {
    res.writeHead(status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(xml),
    });
    res.end(xml);
    return status;
  };
  if (kept.length === 0)
    return send(
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${errors}</DeleteResult>`,
    );
  const rest = text
    .replace(/<Object>[\s\S]*?<\/Object>/g, '')
    .replace(/<\/Delete>/, `${kept.join('')}</Delete>`);
  const headers = { ...req.headers };
  // The body changed: its checksums and length are fauxqs's to recompute.
  for (const name of Object.keys(headers))
    if (name.startsWith('x-amz-checksum') || name === 'content-md5' || name === 'content-length')
      delete headers[name];
  const answer = await app.inject({
    method: 'POST',
    url: req.url ?? path,
    headers: headers as Record<string, string>,
    payload: rest,
  });
  return send(
    answer.statusCode,
    answer.body.replace(/<\/DeleteResult>/, `${errors}</DeleteResult>`),
  );
}
