import { appendFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  type BatchJobResult,
  BatchJobResultSchema,
  type StagedObject,
} from '../../contracts/batch-job.js';
import type { RemoteJob } from '../../contracts/events.js';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import type { RunConfig } from '../../contracts/run-config.js';
import { type RunLayout, TASK_FILES } from '../../contracts/run-layout.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';
import { VERIFY_LIMITS, type Verification } from '../../contracts/verify.js';
import { OutputRejectedError } from '../../trust/output-check.js';
import { applyJobBundle, BundleError } from '../../workspace/bundles.js';
import { deniedLine, isAccessDenied } from './aws-basics.js';
import { jobFailure } from './outcome.js';
import type { JobEnd } from './poll.js';
import { Staging, StagingError } from './staging.js';

/** The bucket refused the orchestrator a read: a permission to grant, not a job to run again. */
class ReadDeniedError extends Error {}

/** The most a job's result.json may weigh; its transcript has a bound of its own. */
const MAX_RESULT_BYTES = 2 ** 20;
const MAX_TRANSCRIPT_BYTES = 64 * 2 ** 20;
/** A bundle's git overhead on top of the files it carries. */
const BUNDLE_SLACK_BYTES = 16 * 2 ** 20;

/**
 * Reads what an ended job left in its attempt's prefix, as untrusted data: its result, then the
 * transcript and bundle it names, each checked against the size and SHA-256 the result gives;
 * the bundle's work is written into the slot's workspace through quarantine.
 */
export class JobCollector {
  constructor(
    private readonly staging: Staging,
    private readonly layout: RunLayout,
    private readonly config: RunConfig,
    private readonly redact: (text: string) => string,
  ) {}

  /** What an ended job leaves: its result, transcript and bundle, each checked before use. */
  async collect(
    spec: TaskSpec,
    workspace: string,
    job: RemoteJob,
    prefix: string,
    end: JobEnd,
  ): Promise<ExecutorOutcome & { verification?: Verification }> {
    if (end.kind === 'lost')
      return { status: 'failed', error: `job ${job.name}: ${end.reason}`, retryable: true };
    const { detail } = end;
    let result: BatchJobResult | undefined;
    try {
      result = await this.readResult(prefix);
    } catch (error) {
      return {
        status: 'failed',
        error: `job ${job.name}: ${(error as Error).message}`,
        retryable: !(error instanceof ReadDeniedError),
      };
    }
    if (!result) {
      const failure =
        detail.status === 'FAILED'
          ? jobFailure(detail)
          : { error: 'the job succeeded but staged no result', retryable: true };
      return {
        status: 'failed',
        error: `job ${job.name}: ${failure.error}`,
        retryable: failure.retryable,
      };
    }
    try {
      if (result.transcript) await this.copyTranscript(spec, result.transcript);
      if (result.outcome.status === 'failed')
        return {
          ...result.outcome,
          error: result.outcome.error ?? 'the job failed without a message',
        };
      // An outcome uploaded by a job that then failed (killed on its way out) is not taken.
      if (detail.status !== 'SUCCEEDED') return { status: 'failed', ...jobFailure(detail) };
      if (!result.bundle || !result.commit)
        return {
          status: 'failed',
          error: `job ${job.name} succeeded but staged no bundle`,
          retryable: true,
        };
      await this.takeBundle(spec, workspace, job, result.bundle, result.commit);
      if (!result.verification) return result.outcome;
      if (result.verifyLog)
        await this.copyVerifyLog(result.verifyLog, this.layout.verifyLog(spec.taskId));
      return { ...result.outcome, verification: result.verification };
    } catch (error) {
      if (error instanceof OutputRejectedError || error instanceof ReadDeniedError)
        return { status: 'failed', error: error.message, retryable: false };
      if (error instanceof BundleError || error instanceof StagingError)
        return { status: 'failed', error: `job ${job.name}: ${error.message}`, retryable: true };
      throw error;
    }
  }

  /**
   * What the job that ran `--verify` alone found, and its output appended to `logPath`; a job
   * that reported nothing is a verification that could not run.
   */
  async collectVerification(prefix: string, end: JobEnd, logPath: string): Promise<Verification> {
    const failed = (error: string): Verification => ({
      exitCode: null,
      timedOut: false,
      durationMs: 0,
      tail: '',
      error,
    });
    if (end.kind === 'lost') return failed(end.reason);
    try {
      const result = await this.readResult(prefix);
      if (!result?.verification)
        return failed(
          end.detail.status === 'FAILED'
            ? jobFailure(end.detail).error
            : 'the job reported no verification',
        );
      if (result.verifyLog) await this.copyVerifyLog(result.verifyLog, logPath);
      return result.verification;
    } catch (error) {
      if (error instanceof StagingError || error instanceof ReadDeniedError)
        return failed(error.message);
      throw error;
    }
  }

  /**
   * What a setup job reported: the setup's run (its output appended to `logPath`) and, when it
   * succeeded, the environment it archived; `error` says why there is none.
   */
  async collectSetup(
    prefix: string,
    end: JobEnd,
    logPath: string,
  ): Promise<{
    verification: Verification;
    environment?: NonNullable<BatchJobResult['environment']>;
    error?: string;
  }> {
    const failed = (error: string) => ({
      verification: { exitCode: null, timedOut: false, durationMs: 0, tail: '', error },
      error,
    });
    if (end.kind === 'lost') return failed(end.reason);
    let result: BatchJobResult | undefined;
    try {
      result = await this.readResult(prefix);
      if (result?.verifyLog) await this.copyVerifyLog(result.verifyLog, logPath);
    } catch (error) {
      if (error instanceof StagingError || error instanceof ReadDeniedError)
        return failed(error.message);
      throw error;
    }
    if (!result)
      return failed(
        end.detail.status === 'FAILED'
          ? jobFailure(end.detail).error
          : 'the job succeeded but staged no result',
      );
    const verification = result.verification ?? failed('the job ran no setup').verification;
    if (result.outcome.status === 'failed')
      return { verification, error: result.outcome.error ?? 'the job failed without a message' };
    if (end.detail.status !== 'SUCCEEDED')
      return { verification, error: jobFailure(end.detail).error };
    if (!result.environment) return { verification, error: 'the job reported no environment' };
    return { verification, environment: result.environment };
  }

  /** A job's verify log, checked, bounded and redacted, appended to the host's. */
  private async copyVerifyLog(log: StagedObject, logPath: string): Promise<void> {
    if (log.bytes > VERIFY_LIMITS.logBytes + 1024)
      throw new StagingError(`its verify log is over ${VERIFY_LIMITS.logBytes} bytes`);
    const raw = await this.read(log.key, () => this.staging.getBytes(log.key, log.bytes));
    if (!raw) throw new StagingError(`its verify log ${log.key} is missing`);
    Staging.verify(log, raw);
    appendFileSync(logPath, this.redact(raw.toString('utf8')));
  }

  private async readResult(prefix: string): Promise<BatchJobResult | undefined> {
    const key = `${prefix}${S3_LAYOUT.files.result}`;
    const raw = await this.read(key, () => this.staging.getBytes(key, MAX_RESULT_BYTES));
    if (!raw) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new StagingError('its result.json is not JSON');
    }
    const result = BatchJobResultSchema.safeParse(parsed);
    if (!result.success) throw new StagingError('its result.json is not a valid result');
    // The host reads what a result names with its own credentials: only the attempt's objects.
    const { bundle, transcript, verifyLog } = result.data;
    const named = { bundle, transcript, verifyLog };
    for (const [file, object] of Object.entries(named) as [keyof typeof named, StagedObject?][])
      if (object && object.key !== `${prefix}${S3_LAYOUT.files[file]}`)
        throw new StagingError(`its result.json names ${object.key} as its ${file}`);
    return result.data;
  }

  /**
   * A read of the bucket; a refusal says which permission is missing. A missing object reads as
   * missing (404) only to a caller with s3:ListBucket on its prefix; to any other S3 answers 403
   * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions), which
   * must not pass for a job that wrote nothing, nor be retried as one.
   */
  private async read<T>(key: string, reading: () => Promise<T>): Promise<T> {
    try {
      return await reading();
    } catch (error) {
      if (!isAccessDenied(error)) throw error;
      throw new ReadDeniedError(
        `cannot read s3://${this.staging.bucket}/${key}: ${deniedLine(error, 's3:GetObject on the runs prefix, or s3:ListBucket on it (without which a missing object reads as denied, not missing)')}`,
      );
    }
  }

  /** The job's transcript, checked, bounded and redacted, appended to the task's own. */
  private async copyTranscript(spec: TaskSpec, transcript: StagedObject): Promise<void> {
    if (transcript.bytes > MAX_TRANSCRIPT_BYTES)
      throw new StagingError(`its transcript is over ${MAX_TRANSCRIPT_BYTES} bytes`);
    const raw = await this.read(transcript.key, () =>
      this.staging.getBytes(transcript.key, transcript.bytes),
    );
    if (!raw) throw new StagingError(`its transcript ${transcript.key} is missing`);
    Staging.verify(transcript, raw);
    appendFileSync(
      path.join(spec.outputDir, TASK_FILES.transcript),
      this.redact(raw.toString('utf8')),
    );
  }

  /** Downloads the job's bundle, checks it, and writes its work into the slot's workspace. */
  private async takeBundle(
    spec: TaskSpec,
    workspace: string,
    job: RemoteJob,
    bundle: StagedObject,
    commit: string,
  ): Promise<void> {
    const { layout, config } = this;
    const limit = config.outputLimits.maxTaskBytes + BUNDLE_SLACK_BYTES;
    if (bundle.bytes > limit)
      throw new OutputRejectedError(
        `the job's bundle is ${bundle.bytes} bytes, more than its changes may weigh (--max-task-size)`,
      );
    const name = `${spec.taskId}-${spec.attempt}`;
    const file = path.join(layout.staging, `${name}.bundle`);
    try {
      await this.read(bundle.key, () => this.staging.getFile(bundle, file));
      await applyJobBundle(
        path.join(layout.project, '.git'),
        path.join(layout.staging, `${name}.quarantine`),
        workspace,
        { file, commit, base: job.base },
        config.outputLimits,
      );
    } finally {
      await rm(file, { force: true });
    }
  }
}
