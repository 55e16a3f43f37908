import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { StagedObject } from '../../contracts/batch-job.js';

/** An object that is missing, larger than allowed, or not what its checksum says. */
export class StagingError extends Error {
  /** Whether trying the same transfer again may succeed (a 5xx, not a wrong object). */
  retryable = false;

  constructor(message: string) {
    super(message);
    this.name = 'StagingError';
  }
}

/** Objects above this go up in parts (lib-storage's multipart upload). */
const MULTIPART_THRESHOLD = 16 * 2 ** 20;

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The state bucket, as both sides of a job use it: every object goes up with an S3 checksum
 * the service verifies, and its SHA-256 and size are handed to the reader, which checks them
 * again after download (so a corrupt or swapped object is caught whatever the server does).
 */
export class Staging {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async putBytes(key: string, body: Buffer | string, contentType: string): Promise<StagedObject> {
    const bytes = Buffer.from(body);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: bytes,
        ContentType: contentType,
        ChecksumAlgorithm: 'SHA256',
      }),
    );
    return { key, sha256: sha256(bytes), bytes: bytes.length };
  }

  /** Uploads a file, in parts when it is large. */
  async putFile(key: string, file: string): Promise<StagedObject> {
    const { size } = await stat(file);
    if (size < MULTIPART_THRESHOLD)
      return this.putBytes(key, await readFile(file), 'application/octet-stream');
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    await new Upload({
      client: this.s3,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: createReadStream(file),
        ContentType: 'application/octet-stream',
        ChecksumAlgorithm: 'SHA256',
      },
    }).done();
    return { key, sha256: hash.digest('hex'), bytes: size };
  }

  /** An object's bytes, at most `maxBytes`; undefined when it does not exist. */
  async getBytes(key: string, maxBytes: number): Promise<Buffer | undefined> {
    const body = await this.open(key, maxBytes);
    return body && readCapped(body, key, maxBytes);
  }

  /** An object's size, without reading it; undefined when it does not exist. */
  async head(key: string): Promise<{ bytes: number } | undefined> {
    try {
      const object = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: object.ContentLength ?? 0 };
    } catch (error) {
      // HEAD answers have no body: a missing key is a bare 404 (NotFound).
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404)
        return undefined;
      throw error;
    }
  }

  /** Downloads an object described by `expected` to `file`, checking its size and SHA-256. */
  async getFile(expected: StagedObject, file: string): Promise<void> {
    const body = await this.open(expected.key, expected.bytes);
    if (!body) throw new StagingError(`${expected.key} is missing`);
    await saveChecked(body, expected, file);
  }

  /** Checks bytes already read against what their writer said they are. */
  static verify(expected: StagedObject, data: Buffer): void {
    verify(expected, data.length, sha256(data));
  }

  private async open(key: string, maxBytes: number): Promise<AsyncIterable<Buffer> | undefined> {
    try {
      const object = await this.s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }),
      );
      if (object.ContentLength !== undefined && object.ContentLength > maxBytes)
        throw new StagingError(`${key} is ${object.ContentLength} bytes, more than ${maxBytes}`);
      return object.Body as AsyncIterable<Buffer>;
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey')
        return undefined;
      throw error;
    }
  }
}

/** A body's bytes, refused past `maxBytes`. */
export async function readCapped(
  body: AsyncIterable<Uint8Array | string>,
  key: string,
  maxBytes: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const piece of body) {
    const chunk = Buffer.from(piece);
    total += chunk.length;
    if (total > maxBytes) throw new StagingError(`${key} is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Writes a body to `file`, stopping past the expected size and checking its SHA-256. */
export async function saveChecked(
  body: AsyncIterable<Uint8Array | string>,
  expected: StagedObject,
  file: string,
): Promise<void> {
  const hash = createHash('sha256');
  let total = 0;
  await pipeline(
    body,
    async function* (source: AsyncIterable<Uint8Array | string>) {
      for await (const piece of source) {
        const chunk = Buffer.from(piece);
        total += chunk.length;
        if (total > expected.bytes)
          throw new StagingError(`${expected.key} is larger than its ${expected.bytes} bytes`);
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(file, { mode: 0o600 }),
  );
  verify(expected, total, hash.digest('hex'));
}

function verify(expected: StagedObject, bytes: number, digest: string): void {
  if (bytes !== expected.bytes || digest !== expected.sha256)
    throw new StagingError(
      `${expected.key} is corrupt: ${bytes} bytes with SHA-256 ${digest.slice(0, 12)}, expected ${expected.bytes} bytes with ${expected.sha256.slice(0, 12)}`,
    );
}
