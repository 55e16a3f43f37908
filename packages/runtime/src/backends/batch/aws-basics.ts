/**
 * What both sides of a job use of the AWS SDK, the orchestrator and the job entrypoint: bounded
 * calls and one-line errors. Apart from the clients, so that the image, which ships only the S3
 * client, loads nothing else.
 */

/** Every call has a bound: connecting, and waiting on a silent socket. */
export const HTTP_TIMEOUTS = { connectionTimeout: 10_000, requestTimeout: 120_000 } as const;

/** An AWS error in one line: its code and message. */
export function awsErrorMessage(error: unknown): string {
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const message = (e.message ?? String(error)).split('\n')[0];
  return e.name && e.name !== 'Error' && !message?.startsWith(e.name)
    ? `${e.name}: ${message}`
    : (message ?? 'unknown error');
}

/**
 * IAM refused the caller the action: S3 answers AccessDenied (Forbidden to a HEAD, which has no
 * body), the other services AccessDeniedException. Other 403s (an expired token, a bad
 * signature) are not a missing permission.
 */
export function isAccessDenied(error: unknown): boolean {
  return /^(AccessDenied|Forbidden$)/.test((error as { name?: string }).name ?? '');
}

/**
 * An AccessDenied in one line that says which permission to grant: the action AWS names ("is
 * not authorized to perform: s3:GetObject on ..."), else the one the caller was attempting.
 */
export function deniedLine(error: unknown, attempted: string): string {
  const named = /perform: ([a-z0-9-]+:[A-Za-z0-9]+)/.exec((error as Error).message ?? '')?.[1];
  return `access denied: the orchestrator's AWS credentials lack ${named ?? attempted} (${awsErrorMessage(error)})`;
}
