import { z } from 'zod';

/** `--verify`: the repository's own check, which every task's work must pass to be merged. */
export const VerifySettingsSchema = z.object({
  /** Run by `sh -c` in the tree being checked. */
  command: z.string().trim().min(1).max(4_000),
  timeoutMs: z.number().int().min(100),
  /**
   * `--verify-from-base`: the check's own files (tests, their configuration), taken as they were
   * at the run's start, whatever the work being checked did to them: an agent cannot weaken or
   * rig the check its work must pass.
   */
  fromBase: z
    .object({
      /** The commit the run started from. */
      commit: z.string().regex(/^[0-9a-f]{40,64}$/),
      /** Files and directories, relative to the top of the repository. */
      paths: z.array(z.string().min(1)).min(1),
    })
    .optional(),
});
export type VerifySettings = z.infer<typeof VerifySettingsSchema>;

export const VERIFY_LIMITS = {
  /** The most one verification writes to its log; output beyond is dropped with a note. */
  logBytes: 16 * 2 ** 20,
  /** The end of the output a retry's prompt and the journal carry. */
  tailBytes: 4 * 1024,
  defaultTimeoutMs: 10 * 60_000,
} as const;

/** How one run of the verify command ended. */
export const VerificationSchema = z.object({
  /** null when it was killed (timeout, cancellation) or could not start. */
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  durationMs: z.number().min(0),
  /** The end of its output, at most VERIFY_LIMITS.tailBytes: what a failure is told by. */
  tail: z.string().max(VERIFY_LIMITS.tailBytes * 4),
  /** Set when it could not be run at all (the sandbox failed), as opposed to failing. */
  error: z.string().optional(),
});
export type Verification = z.infer<typeof VerificationSchema>;

export const verificationPassed = (v: Verification) => v.exitCode === 0 && !v.timedOut;

/** A verification as the summary and the live view tell it. */
export function describeVerification(v: Verification): string {
  if (v.error) return `could not run: ${v.error}`;
  if (v.timedOut) return `timed out after ${Math.round(v.durationMs / 1000)} s`;
  return v.exitCode === 0 ? 'passed' : `failed (exit ${v.exitCode ?? 'killed'})`;
}

/** The failed verification a retry is told about, so the agent can fix what it broke. */
export const VerifyFailureSchema = z.object({
  attempt: z.number().int().min(1),
  command: z.string(),
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  tail: z.string(),
});
export type VerifyFailure = z.infer<typeof VerifyFailureSchema>;
