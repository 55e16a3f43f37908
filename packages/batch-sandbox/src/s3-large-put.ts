import type { IncomingMessage, ServerResponse } from 'node:http';
import type { S3App } from './s3.js';

/**
 * S3 takes an object of up to 5 GiB in one PUT
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html), which is how a
 * job sends its work by a presigned URL. fauxqs reads every body whole, up to 11 MiB, so a
 * larger PUT is stored here as the multipart upload S3 would have made of it: the body is read
 * as it comes, in parts, each handed to fauxqs. The client sees one PUT and its answer.
 */
const PART_BYTES = 8 * 2 ** 20;

/** What fauxqs reads whole; above it a PUT goes in parts. */
export const LARGEST_WHOLE_PUT = 10 * 2 ** 20;

/** Whether a request is a PutObject too large for fauxqs to read whole. */
export function isLargePut(request: IncomingMessage): boolean {
  if (request.method !== 'PUT') return false;
  const length = Number(request.headers['content-length'] ?? 0);
  const url = new URL(request.url ?? '/', 'http://s3');
  const isPart = url.searchParams.has('uploadId') || url.searchParams.has('partNumber');
  const isObject = url.pathname.split('/').filter(Boolean).length >= 2;
  return length > LARGEST_WHOLE_PUT && isObject && !isPart && !request.headers['x-amz-copy-source'];
}

const tag = (xml: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

export async function largePut(
  app: S3App,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const objectPath = new URL(request.url ?? '/', 'http://s3').pathname;
  const fail = (status: number, body: string) => {
    response.writeHead(status, { 'content-type': 'application/xml' }).end(body);
  };
  const created = await app.inject({ method: 'POST', url: `${objectPath}?uploads` });
  const uploadId = tag(created.body, 'UploadId');
  if (created.statusCode !== 200 || !uploadId) return fail(created.statusCode, created.body);
  const query = (more: string) => `${objectPath}?uploadId=${encodeURIComponent(uploadId)}${more}`;
  const parts: { number: number; etag: string }[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const send = async () => {
    const number = parts.length + 1;
    const uploaded = await app.inject({
      method: 'PUT',
      url: query(`&partNumber=${number}`),
      payload: Buffer.concat(pending),
      headers: { 'content-type': 'application/octet-stream' },
    });
    const etag = uploaded.headers.etag;
    if (uploaded.statusCode !== 200 || typeof etag !== 'string')
      throw new Error(`part ${number}: ${uploaded.statusCode}`);
    parts.push({ number, etag });
    pending = [];
    pendingBytes = 0;
  };
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= PART_BYTES) await send();
    }
    if (pendingBytes > 0 || parts.length === 0) await send();
    const completed = await app.inject({
      method: 'POST',
      url: query(''),
      headers: { 'content-type': 'application/xml' },
      payload: `<CompleteMultipartUpload>${parts
        .map((p) => `<Part><PartNumber>${p.number}</PartNumber><ETag>${p.etag}</ETag></Part>`)
        .join('')}</CompleteMultipartUpload>`,
    });
    if (completed.statusCode !== 200) return fail(completed.statusCode, completed.body);
    response.writeHead(200, { etag: tag(completed.body, 'ETag') ?? '""' }).end();
  } catch (error) {
    await app.inject({ method: 'DELETE', url: query('') });
    fail(
      500,
      `<Error><Code>InternalError</Code><Message>${(error as Error).message}</Message></Error>`,
    );
  }
}
