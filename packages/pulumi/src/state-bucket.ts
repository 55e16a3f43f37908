import { S3_LAYOUT } from '@parallel-orchestrator/contracts';
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { tlsOnlyBucketPolicy } from './policies.js';

export interface StateBucketArgs {
  /** Runs older than this many days are deleted. */
  expireRunsAfterDays: pulumi.Input<number>;
  /** Delete the bucket with its objects on destroy: for preview stacks only. */
  forceDestroy?: pulumi.Input<boolean>;
  /** Refuse to delete the bucket (prod). */
  protect?: boolean;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

/** The S3 bucket runs are staged in: encrypted, private, TLS only, old runs expired. */
export class StateBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;

  constructor(name: string, args: StateBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super('parallel-orchestrator:index:StateBucket', name, {}, opts);
    const parent = { parent: this };

    this.bucket = new aws.s3.Bucket(
      name,
      { forceDestroy: args.forceDestroy ?? false, tags: args.tags },
      { parent: this, ...(args.protect !== undefined && { protect: args.protect }) },
    );
    const bucket = this.bucket.id;

    new aws.s3.BucketOwnershipControls(
      name,
      { bucket, rule: { objectOwnership: 'BucketOwnerEnforced' } },
      parent,
    );
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      name,
      {
        bucket,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      parent,
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      name,
      {
        bucket,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' },
            bucketKeyEnabled: true,
          },
        ],
      },
      parent,
    );
    new aws.s3.BucketPolicy(
      name,
      {
        bucket,
        policy: this.bucket.arn.apply((arn) => JSON.stringify(tlsOnlyBucketPolicy(arn))),
      },
      // S3 rejects a bucket policy written while public access is still being blocked.
      { parent: this, dependsOn: [publicAccess] },
    );
    new aws.s3.BucketLifecycleConfiguration(
      name,
      {
        bucket,
        rules: [
          {
            id: 'expire-old-runs',
            status: 'Enabled',
            filter: { prefix: S3_LAYOUT.runsRoot },
            expiration: { days: args.expireRunsAfterDays },
            abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
          },
        ],
      },
      parent,
    );

    this.bucketName = this.bucket.bucket;
    this.bucketArn = this.bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName, bucketArn: this.bucketArn });
  }
}
