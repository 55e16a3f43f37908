import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { StagedObject } from '../../contracts/batch-job.js';
import { readCapped, StagingError, saveChecked, sha256 } from './staging.js';

/**
 * The job's side of the state bucket: nothing but the presigned URLs its input gives, one per
 * object and method, so the job needs no credentials for the bucket at all. A PUT says its
 * length up front (S3 refuses a presigned upload in chunks without one) and is a single request
 * (S3 takes up to 5 GiB so; an attempt's output is bounded far below).
 */

/** Tries of a transfer that met a network error or a 5xx (the SDK's standard mode also tries 3). */
const TRIES = 3;
const RETRY_BASE_MS = 500;
/** No answer, or no bytes, for this long: the connection is given up and tried again. */
const IDLE_MS = 60_000;

interface Answer {
  status: number;
  body: Readable;
}

/** Where an S3 error is said in its XML body: `<Code>` and `<Message>`. */
async function s3Error(answer: Answer): Promise<string> {
  const text = (await readCapped(answer.body, 'error', 64 * 1024).catch(() => Buffer.alloc(0)))
    .toString('utf8')
    .slice(0, 4096);
  const tag = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
  const code = tag('Code');
  const message = tag('Message');
  if (!code) return `${answer.status}`;
  return message ? `${answer.status} ${code}: ${message}` : `${answer.status} ${code}`;
}

function send(
  method: 'GET' | 'PUT',
  url: string,
  body?: { length: number; open: () => Readable | Buffer },
): Promise<Answer> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      target,
      {
        method,
        timeout: IDLE_MS,
        headers: body
          ? { 'content-length': String(body.length), 'content-type': 'application/octet-stream' }
          : {},
      },
      (response) => resolve({ status: response.statusCode ?? 0, body: response }),
    );
    request.on('timeout', () => request.destroy(new Error(`no answer in ${IDLE_MS / 1000} s`)));
    request.on('error', reject);
    if (!body) request.end();
    else {
      const source = body.open();
      if (Buffer.isBuffer(source)) request.end(source);
      else source.on('error', (error) => request.destroy(error)).pipe(request);
    }
  });
}

/** One transfer, tried again after a network error or a 5xx; `what` names it in errors. */
async function transfer<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (error) {
      const retryable = !(error instanceof StagingError) || error.retryable;
      if (!retryable || tried >= TRIES) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new StagingError(`cannot ${what}: ${reason}`);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_BASE_MS * 2 ** (tried - 1)));
    }
  }
}

async function expectOk(answer: Answer): Promise<void> {
  if (answer.status >= 200 && answer.status < 300) return;
  const error = new StagingError(`S3 answered ${await s3Error(answer)}`);
  error.retryable = answer.status >= 500;
  throw error;
}

/** The bytes at a GET URL, at most `maxBytes`. */
export function fetchBytes(url: string, maxBytes: number, what: string): Promise<Buffer> {
  return transfer(what, async () => {
    const answer = await send('GET', url);
    await expectOk(answer);
    return readCapped(answer.body, what, maxBytes);
  });
}

/** The object at a GET URL into `file`, checked against `expected`'s size and SHA-256. */
export function fetchFile(
  url: string,
  expected: StagedObject,
  file: string,
  what: string,
): Promise<void> {
  return transfer(what, async () => {
    const answer = await send('GET', url);
    await expectOk(answer);
    await saveChecked(answer.body, expected, file);
  });
}

/** Bytes to a PUT URL; the object as the host will check it (`key`, size, SHA-256). */
export async function putBytes(
  url: string,
  key: string,
  bytes: Buffer,
  what: string,
): Promise<StagedObject> {
  await transfer(what, async () => {
    const answer = await send('PUT', url, { length: bytes.length, open: () => bytes });
    await expectOk(answer);
    answer.body.resume();
  });
  return { key, sha256: sha256(bytes), bytes: bytes.length };
}

/** A file to a PUT URL, streamed. */
export async function putFile(
  url: string,
  key: string,
  file: string,
  what: string,
): Promise<StagedObject> {
  const { size } = await stat(file);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  await transfer(what, async () => {
    const answer = await send('PUT', url, { length: size, open: () => createReadStream(file) });
    await expectOk(answer);
    answer.body.resume();
  });
  return { key, sha256: hash.digest('hex'), bytes: size };
}
