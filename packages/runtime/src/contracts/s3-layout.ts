/**
 * Where runs live in the state bucket. The Batch backend stages through these keys; the Pulumi
 * component scopes the job role and the expiry rule to the same prefix.
 */
export const S3_LAYOUT = {
  /** Every run's objects are under this prefix; nothing else in the bucket is the runtime's. */
  runsRoot: 'runs/',
} as const;
