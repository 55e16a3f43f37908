import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Iam, newPrincipal, type PolicyDocument } from '../../packages/batch-sandbox/src/iam.js';
import { SandboxRecord } from '../../packages/batch-sandbox/src/record.js';
import { type S3Server, startS3 } from '../../packages/batch-sandbox/src/s3.js';
import { s3Front } from '../../packages/batch-sandbox/src/s3-front.js';

/**
 * The sandbox's S3 endpoint against S3's own rules, with the real SDK client and presigner: the
 * real S3 protocol server (fauxqs) behind the sandbox's IAM and signature checks. No Docker.
 */
const region = 'us-east-1';
const Bucket = 'rules-bucket';
const policy = (...Statement: object[]): PolicyDocument => ({ Version: '2012-10-17', Statement });
const RUNS_ONLY = policy(
  {
    Effect: 'Allow',
    Action: ['s3:ListBucket'],
    Resource: [`arn:aws:s3:::${Bucket}`],
    Condition: { StringLike: { 's3:prefix': ['runs/*'] } },
  },
  {
    Effect: 'Allow',
    Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
    Resource: [`arn:aws:s3:::${Bucket}/runs/*`],
  },
);
const WITH_LIST = policy(
  { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${Bucket}`] },
  { Effect: 'Allow', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${Bucket}/runs/*`] },
);

describe('the sandbox S3 endpoint enforces S3 and IAM rules', () => {
  const record = new SandboxRecord();
  const iam = new Iam('123456789012', record);
  const scoped = iam.add(
    newPrincipal('arn:aws:iam::123456789012:user/scoped', [RUNS_ONLY], 'AKIA'),
  );
  const lister = iam.add(
    newPrincipal('arn:aws:iam::123456789012:user/lister', [WITH_LIST], 'AKIA'),
  );
  let server: S3Server;
  let endpoint: string;
  const client = (p: { accessKeyId: string; secretAccessKey: string }) =>
    new S3Client({ endpoint, region, forcePathStyle: true, credentials: p, maxAttempts: 1 });
  let s3: S3Client;

  beforeAll(async () => {
    server = await startS3(['127.0.0.1'], Bucket, region, (app) =>
      s3Front({ app, region, iam, record }),
    );
    endpoint = `http://127.0.0.1:${server.ports[0]}`;
    s3 = client(scoped);
    await s3.send(new PutObjectCommand({ Bucket, Key: 'runs/r1/in.txt', Body: 'input' }));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a missing key 403 to a caller without s3:ListBucket on the bucket, 404 to one with it', async () => {
    // "If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code
    // 403"; with it, 404. https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
    const missing = { Bucket, Key: 'runs/r1/result.json' };
    await expect(s3.send(new GetObjectCommand(missing))).rejects.toMatchObject({
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    await expect(client(lister).send(new GetObjectCommand(missing))).rejects.toMatchObject({
      name: 'NoSuchKey',
      $metadata: { httpStatusCode: 404 },
    });
    await expect(client(lister).send(new HeadObjectCommand(missing))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
    // The ListBucket right S3 consulted is a decision of its own, without a prefix.
    expect(record.decisions).toContainEqual(
      expect.objectContaining({
        principal: scoped.arn,
        action: 's3:ListBucket',
        resource: `arn:aws:s3:::${Bucket}`,
        allowed: false,
      }),
    );
  });

  it('authorizes HeadBucket as s3:ListBucket with no prefix, so a prefix condition never matches it', async () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
    await expect(s3.send(new HeadBucketCommand({ Bucket }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
    await client(lister).send(new HeadBucketCommand({ Bucket }));
  });

  it("refuses a key outside the signer's policy with S3's AccessDenied, naming the action and resource", async () => {
    const error = await s3
      .send(new PutObjectCommand({ Bucket, Key: 'other/x.txt', Body: 'x' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    expect((error as Error).message).toBe(
      `User: ${scoped.arn} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::${Bucket}/other/x.txt because no identity-based policy allows the s3:PutObject action`,
    );
    expect(record.denied()).toContainEqual(
      expect.objectContaining({
        principal: scoped.arn,
        action: 's3:PutObject',
        resource: `arn:aws:s3:::${Bucket}/other/x.txt`,
      }),
    );
  });

  it('checks every signature: a wrong secret or an unknown key is refused', async () => {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html
    await expect(
      client({ accessKeyId: scoped.accessKeyId, secretAccessKey: 'guessed' }).send(
        new GetObjectCommand({ Bucket, Key: 'runs/r1/in.txt' }),
      ),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    await expect(
      client({ accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' }).send(
        new GetObjectCommand({ Bucket, Key: 'runs/r1/in.txt' }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } });
  });

  it('serves presigned URLs as their signer, and refuses one whose key or method was changed, or that expired', async () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket, Key: 'runs/r1/out.txt' }), {
      expiresIn: 60,
    });
    expect((await fetch(put, { method: 'PUT', body: 'from a job' })).status).toBe(200);
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'runs/r1/out.txt' }), {
      expiresIn: 60,
    });
    const read = await fetch(get);
    expect([read.status, await read.text()]).toEqual([200, 'from a job']);

    const otherKey = await fetch(put.replace('runs/r1/out.txt', 'runs/r2/out.txt'), {
      method: 'PUT',
      body: 'forged',
    });
    expect(otherKey.status).toBe(403);
    expect(await otherKey.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    const otherMethod = await fetch(get, { method: 'DELETE' });
    expect(otherMethod.status).toBe(403);
    expect(
      (await fetch(`${get.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=604800')}`)).status,
    ).toBe(403);

    const expired = await getSignedUrl(
      s3,
      new GetObjectCommand({ Bucket, Key: 'runs/r1/out.txt' }),
      { expiresIn: 1, signingDate: new Date(Date.now() - 5_000) },
    );
    const late = await fetch(expired);
    expect(late.status).toBe(403);
    expect(await late.text()).toMatch(/<Code>AccessDenied<\/Code><Message>Request has expired</);

    // A valid signature does not widen the signer's rights.
    const outside = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: 'other/x' }), {
      expiresIn: 60,
    });
    expect((await fetch(outside)).status).toBe(403);
    expect(record.denied()).toContainEqual(
      expect.objectContaining({ principal: scoped.arn, action: 's3:GetObject' }),
    );
  });

  it('refuses an x-amz-* header the presigned URL did not sign: a PUT URL is not a copy of another key', async () => {
    // S3 requires every x-amz-* header of a presigned request to be signed ("There were headers
    // present in the request which were not signed").
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    await s3.send(new PutObjectCommand({ Bucket, Key: 'runs/other/secret.txt', Body: 'theirs' }));
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket, Key: 'runs/r1/mine.txt' }), {
      expiresIn: 60,
    });
    const copy = await fetch(put, {
      method: 'PUT',
      headers: { 'x-amz-copy-source': `${Bucket}/runs/other/secret.txt` },
    });
    expect(copy.status).toBe(403);
    expect(await copy.text()).toContain('<Code>AccessDenied</Code>');
    // Nothing was written (404 to a caller that may list the bucket).
    const get = await getSignedUrl(
      client(lister),
      new GetObjectCommand({ Bucket, Key: 'runs/r1/mine.txt' }),
      { expiresIn: 60 },
    );
    expect((await fetch(get)).status).toBe(404);
  });

  it('authorizes DeleteObjects key by key, answering the denied ones as errors', async () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
    const answer = await s3.send(
      new DeleteObjectsCommand({
        Bucket,
        Delete: { Objects: [{ Key: 'runs/r1/in.txt' }, { Key: 'other/y.txt' }] },
      }),
    );
    expect(answer.Deleted?.map((d) => d.Key)).toEqual(['runs/r1/in.txt']);
    expect(answer.Errors).toEqual([
      { Key: 'other/y.txt', Code: 'AccessDenied', Message: 'Access Denied' },
    ]);
  });
});
