import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL, Iam, newPrincipal } from '../../packages/batch-sandbox/src/iam.js';
import { SandboxRecord } from '../../packages/batch-sandbox/src/record.js';
import { type S3Server, startS3 } from '../../packages/batch-sandbox/src/s3.js';
import { s3Front } from '../../packages/batch-sandbox/src/s3-front.js';
import {
  fetchBytes,
  fetchFile,
  putBytes,
  putFile,
} from '../../packages/runtime/src/backends/batch/job-transfer.js';
import { Presigner, presignedSeconds } from '../../packages/runtime/src/backends/batch/presign.js';
import { StagingError } from '../../packages/runtime/src/backends/batch/staging.js';
import { tempDir } from '../support/tmp.js';

const BUCKET = 'state';
const PREFIX = 'runs/r1/tasks/t/attempt-1/';
let s3Server: S3Server;
const record = new SandboxRecord();
let s3: S3Client;
let presigner: Presigner;
beforeAll(async () => {
  // The sandbox's S3: signatures checked, the signer's policies evaluated.
  const iam = new Iam('000000000000', record);
  const { accessKeyId, secretAccessKey } = iam.add(
    newPrincipal('arn:aws:iam::000000000000:user/submitter', [ALLOW_ALL], 'AKIA'),
  );
  const credentials = { accessKeyId, secretAccessKey };
  s3Server = await startS3(['127.0.0.1'], BUCKET, 'us-east-1', (app) =>
    s3Front({ app, region: 'us-east-1', iam, record }),
  );
  const endpoint = `http://127.0.0.1:${s3Server.ports[0]}`;
  s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials });
  const signer = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  presigner = new Presigner(signer, BUCKET, 3600);
});
afterAll(async () => {
  s3.destroy();
  await s3Server.close();
});

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('a job moves its objects by presigned URLs alone', () => {
  it('reads its base and writes its outputs with no credentials, each object checked', async () => {
    const dir = tempDir('transfer-');
    const base = Buffer.from('a bundle of the base commit');
    const baseKey = 'runs/r1/bases/abc.bundle';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: baseKey, Body: base }));
    const transfer = await presigner.attempt(PREFIX, baseKey);

    const file = path.join(dir, 'base.bundle');
    await fetchFile(
      transfer.base,
      { key: baseKey, sha256: sha(base), bytes: base.length },
      file,
      'x',
    );
    expect(readFileSync(file)).toEqual(base);

    // 20 MiB: more than one part of a multipart upload, in one PUT of known length.
    const work = Buffer.alloc(20 * 2 ** 20, 7);
    const workFile = path.join(dir, 'output.bundle');
    writeFileSync(workFile, work);
    const bundleKey = `${PREFIX}output.bundle`;
    const staged = await putFile(transfer.put.bundle, bundleKey, workFile, 'upload the work');
    expect(staged).toEqual({ key: bundleKey, sha256: sha(work), bytes: work.length });
    const result = await putBytes(
      transfer.put.result,
      `${PREFIX}result.json`,
      Buffer.from('{}'),
      'r',
    );
    expect(result.bytes).toBe(2);

    const read = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: bundleKey }));
    expect(
      sha(
        Buffer.from(
          await (
            read.Body as { transformToByteArray(): Promise<Uint8Array> }
          ).transformToByteArray(),
        ),
      ),
    ).toBe(sha(work));
  });

  it('holds for its one key and method: a URL turned to another object is refused', async () => {
    const url = new URL(await presigner.put(`${PREFIX}result.json`));
    url.pathname = url.pathname.replace('attempt-1', 'attempt-2');
    const error = await putBytes(url.toString(), 'k', Buffer.from('{}'), 'forge').catch((e) => e);
    expect(error.message).toMatch(/^cannot forge: S3 answered 403 SignatureDoesNotMatch/);
  });

  it('signs no checksum into a PUT URL (the SDK would sign one of an empty body)', async () => {
    const url = new URL(await presigner.put(`${PREFIX}result.json`));
    const names = [...url.searchParams.keys()].map((name) => name.toLowerCase());
    expect(names.filter((name) => name.includes('checksum'))).toEqual([]);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('3600');
  });

  it('lasts the attempt and a day of queueing, never past the seven days SigV4 allows', () => {
    expect(presignedSeconds(30 * 60_000)).toBe(1800 + 86_400);
    expect(presignedSeconds(30 * 24 * 3600_000)).toBe(7 * 24 * 3600);
  });

  it('refuses a base that is not what the host staged, and says what S3 answered', async () => {
    const dir = tempDir('transfer-');
    const baseKey = 'runs/r1/bases/def.bundle';
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: baseKey, Body: 'swapped' }));
    const url = await presigner.get(baseKey);
    const expected = { key: baseKey, sha256: sha(Buffer.from('original')), bytes: 7 };
    await expect(fetchFile(url, expected, path.join(dir, 'b'), 'download')).rejects.toThrow(
      /corrupt/,
    );
    const missing = await presigner.get('runs/r1/bases/none.bundle');
    await expect(fetchBytes(missing, 100, 'read the attempt input')).rejects.toThrow(
      /^cannot read the attempt input: S3 answered 404 NoSuchKey/,
    );
  });

  it('tries a transfer again after a 5xx, and gives up on a 4xx at once', async () => {
    const seen: string[] = [];
    const flaky = createServer((req, res) => {
      seen.push(req.url ?? '');
      const status = req.url === '/slow' && seen.length < 3 ? 503 : req.url === '/slow' ? 200 : 403;
      res.writeHead(status).end(status === 200 ? 'ok' : '<Error><Code>Nope</Code></Error>');
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    const { port } = flaky.address() as AddressInfo;
    try {
      expect((await fetchBytes(`http://127.0.0.1:${port}/slow`, 10, 'x')).toString()).toBe('ok');
      expect(seen).toEqual(['/slow', '/slow', '/slow']);
      const error = await fetchBytes(`http://127.0.0.1:${port}/denied`, 10, 'y').catch((e) => e);
      expect(error).toBeInstanceOf(StagingError);
      expect(error.message).toBe('cannot y: S3 answered 403 Nope');
      expect(seen.filter((url) => url === '/denied')).toHaveLength(1);
    } finally {
      flaky.close();
    }
  });
});
