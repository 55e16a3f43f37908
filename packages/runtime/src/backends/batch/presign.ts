import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { JobTransfer } from '../../contracts/batch-job.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';

/**
 * SigV4 query authentication allows seven days at most, and a URL signed with temporary
 * credentials lapses with them whatever it says
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
 */
const MAX_SECONDS = 7 * 24 * 3600;
/** How long a job may wait for capacity on top of its own timeout before its URLs lapse. */
const QUEUE_ALLOWANCE_SECONDS = 24 * 3600;

/** How long an attempt's URLs stay valid: its timeout and a day of queueing, at most a week. */
export function presignedSeconds(taskTimeoutMs: number): number {
  return Math.min(MAX_SECONDS, Math.ceil(taskTimeoutMs / 1000) + QUEUE_ALLOWANCE_SECONDS);
}

/**
 * Signs, with the orchestrator's credentials, one URL per object a job moves: the job holds
 * these and nothing else of the bucket. `s3` must be configured with
 * `requestChecksumCalculation: 'WHEN_REQUIRED'`: otherwise the SDK signs a checksum of an empty
 * body into every PUT URL.
 */
export class Presigner {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly seconds: number,
  ) {}

  get(key: string): Promise<string> {
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: this.seconds,
    });
  }

  put(key: string): Promise<string> {
    return getSignedUrl(this.s3, new PutObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: this.seconds,
    });
  }

  /**
   * The URLs of an attempt at `prefix` starting from the bundle at `baseKey`; for a setup job,
   * a PUT of its environment's archive at `archiveKey` too.
   */
  async attempt(prefix: string, baseKey: string, archiveKey?: string): Promise<JobTransfer> {
    const { files } = S3_LAYOUT;
    const [base, bundle, transcript, verifyLog, result, environment] = await Promise.all([
      this.get(baseKey),
      this.put(`${prefix}${files.bundle}`),
      this.put(`${prefix}${files.transcript}`),
      this.put(`${prefix}${files.verifyLog}`),
      this.put(`${prefix}${files.result}`),
      archiveKey ? this.put(archiveKey) : undefined,
    ]);
    return {
      base,
      put: { bundle, transcript, verifyLog, result, ...(environment && { environment }) },
    };
  }
}
