/**
 * What a Batch run does on AWS as the one who starts it (the CLI's credentials), grouped by what
 * IAM authorizes each action on (Service Authorization Reference, under
 * https://docs.aws.amazon.com/service-authorization/latest/reference/: list_awsbatch.html,
 * list_amazons3.html, list_amazoncloudwatchlogs.html). The Pulumi component's submitter policy
 * grants exactly these; `doctor --backend-config` checks each. Constants only.
 */
export const BATCH_SUBMITTER_ACTIONS = {
  /**
   * No resource type: `*` is the only scope. DescribeJobQueues (preflight), DescribeJobs and
   * ListJobs (the poll), DescribeJobDefinitions (doctor's revision check).
   */
  unscoped: [
    'batch:DescribeJobQueues',
    'batch:DescribeJobDefinitions',
    'batch:DescribeJobs',
    'batch:ListJobs',
  ],
  /** On the job queue, the job definition and the new job. */
  submit: ['batch:SubmitJob'],
  /** On the job: tagging at submission, stopping. */
  jobs: ['batch:TagResource', 'batch:TerminateJob'],
  /** On the bucket: HeadBucket, and a missing object read as 404. */
  bucket: ['s3:ListBucket'],
  /** On the objects under the runs prefix: staging, collecting, aborting a multipart upload. */
  runObjects: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
  /** On the log streams of the stack's log group. */
  logStreams: ['logs:GetLogEvents'],
} as const;

export type BatchSubmitterAction =
  (typeof BATCH_SUBMITTER_ACTIONS)[keyof typeof BATCH_SUBMITTER_ACTIONS][number];
