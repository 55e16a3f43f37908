/**
 * The AWS Batch executor, the image's default command: one attempt of one task. It reads the
 * contract's environment (TASK_ID, S3_BUCKET, S3_PREFIX, AWS_REGION, OUTPUT_DIR), stages in the
 * attempt's input and base commit from the state bucket, runs the same executor as the docker
 * executor (simulated, or Claude Code with the credentials the job definition gives), commits
 * the work on its base and stages out a bundle of that commit, the transcript and, last,
 * `result.json` with every object's checksum. With `--verify` it runs the command on the committed
 * work and stages its log too; an input with `verifyOnly` runs the command alone on the base (the
 * run's final check). Exit codes: 0 when the task succeeded and its
 * outcome is uploaded, 1 when it failed and that is uploaded, 2 for bad configuration, 3 when
 * staging failed, 143 on SIGTERM (so Batch marks a stopped job FAILED and its retry can fire).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import {
  BATCH_RESULT_REF,
  BatchJobInputSchema,
  type BatchJobResult,
  FINAL_VERIFY_TASK_ID,
  type StagedObject,
} from '../../contracts/batch-job.js';
import { ENV } from '../../contracts/env.js';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import { TASK_FILES } from '../../contracts/run-layout.js';
import { S3_LAYOUT } from '../../contracts/s3-layout.js';
import {
  describeVerification,
  type Verification,
  type VerifySettings,
  verificationPassed,
} from '../../contracts/verify.js';
import { consoleLog, fail, outputDir } from '../../entrypoints/common.js';
import { executeTask } from '../../executor/execute.js';
import { agentSettingsFor, resolveModelAccess } from '../../models/access.js';
import { OutputCheck, OutputRejectedError } from '../../trust/output-check.js';
import { redactor, SecretScanner } from '../../trust/secret-scanner.js';
import { treeToCheck } from '../../verify/from-base.js';
import { runVerifyProcess } from '../../verify/process.js';
import { writeRules } from '../../workspace/ignore-rules.js';
import { Project } from '../../workspace/project.js';
import { Slots } from '../../workspace/slots.js';
import { awsErrorMessage, HTTP_TIMEOUTS } from './aws-basics.js';
import { Staging } from './staging.js';

const REQUIRED = [ENV.TASK_ID, ENV.S3_BUCKET, ENV.S3_PREFIX, ENV.AWS_REGION] as const;
const MAX_INPUT_BYTES = 8 * 2 ** 20;
/** Exit codes beyond the CLI's: staging failed; stopped by SIGTERM (128 + 15). */
const EXIT_STAGING = 3;
const EXIT_TERMINATED = 143;

/** A failure to move objects: the attempt cannot report, so the job fails (and is retried). */
class StageFailure extends Error {}

function settings(env: NodeJS.ProcessEnv) {
  const missing = REQUIRED.filter((name) => !env[name]?.trim());
  if (missing.length > 0)
    fail(`the batch executor needs ${REQUIRED.join(', ')} (missing: ${missing.join(', ')})`);
  const prefix = env[ENV.S3_PREFIX] as string;
  if (!prefix.startsWith(S3_LAYOUT.runsRoot) || !prefix.endsWith('/'))
    fail(`S3_PREFIX must be an attempt's prefix under ${S3_LAYOUT.runsRoot}, ending in /`);
  return {
    taskId: env[ENV.TASK_ID] as string,
    bucket: env[ENV.S3_BUCKET] as string,
    prefix,
    region: env[ENV.AWS_REGION] as string,
  };
}

/** Where the attempt works inside the job: everything under OUTPUT_DIR, git apart from the files. */
function jobPaths(output: string) {
  return {
    project: path.join(output, 'project'),
    workspace: path.join(output, 'workspace'),
    task: path.join(output, 'task'),
    staging: path.join(output, 'staging'),
  };
}

/**
 * The spec as the job runs it: its own paths, and in real mode the model the job definition
 * provides (its credentials come as the job's environment, never through the orchestrator).
 */
async function jobSpec(
  inputSpec: TaskSpec,
  paths: ReturnType<typeof jobPaths>,
  env: NodeJS.ProcessEnv,
) {
  const spec: TaskSpec = {
    ...inputSpec,
    workspaceDir: paths.workspace,
    outputDir: paths.task,
    agentHome: env.HOME ?? path.join(paths.task, 'home'),
    modelProxy: undefined,
  };
  if (spec.mode !== 'real' || !spec.agent) return { spec, secrets: {} };
  const access = await resolveModelAccess(env);
  const agent = agentSettingsFor(access, spec.agent);
  if (access.provider === spec.agent.provider) agent.model = spec.agent.model;
  return { spec: { ...spec, agent }, secrets: access.secrets };
}

async function main(): Promise<void> {
  const env = process.env;
  const job = settings(env);
  const output = outputDir(env);
  const paths = jobPaths(output);
  for (const dir of [paths.task, paths.staging]) mkdirSync(dir, { recursive: true });
  const staging = new Staging(
    new S3Client({ region: job.region, requestHandler: HTTP_TIMEOUTS }),
    job.bucket,
  );
  const controller = new AbortController();
  process.on('SIGTERM', () => {
    consoleLog('SIGTERM: stopping the task');
    controller.abort(new Error('terminated'));
  });

  const stage = async <T>(what: string, action: () => Promise<T>): Promise<T> => {
    try {
      return await action();
    } catch (error) {
      throw new StageFailure(`cannot ${what}: ${awsErrorMessage(error)}`);
    }
  };
  const raw = await stage('read the attempt input', () =>
    staging.getBytes(`${job.prefix}${S3_LAYOUT.files.input}`, MAX_INPUT_BYTES),
  );
  if (!raw)
    throw new StageFailure(`no ${S3_LAYOUT.files.input} under s3://${job.bucket}/${job.prefix}`);
  const parsed = BatchJobInputSchema.safeParse(JSON.parse(raw.toString('utf8')));
  if (!parsed.success) fail(`${S3_LAYOUT.files.input} is not a valid attempt input`);
  const input = parsed.data;
  const inputTask = input.spec?.taskId ?? FINAL_VERIFY_TASK_ID;
  if (inputTask !== job.taskId)
    fail(`${S3_LAYOUT.files.input} is for task ${inputTask}, not TASK_ID ${job.taskId}`);

  const baseBundle = path.join(paths.staging, 'base.bundle');
  await stage('download the base commit', () => staging.getFile(input.base.bundle, baseBundle));
  const project = await Project.fromBundle(paths.project, baseBundle, input.base.commit);
  // The orchestrator's ignore rules: the repository's at the run's start, never an agent's.
  if (input.ignoreRules) await writeRules(project.gitDir, input.ignoreRules);
  const slots = new Slots(project);
  await slots.prepare(paths.workspace, input.base.commit);
  /** `--verify` on `commit`, checked out in the workspace as the host would check it. */
  const verifyHere = async (settings: VerifySettings, commit: string) => {
    if (settings.fromBase)
      await slots.prepare(paths.workspace, await treeToCheck(project, commit, settings));
    return verifyInJob(settings, paths, controller.signal, (file) =>
      stage('upload the verify log', () =>
        staging.putFile(`${job.prefix}${S3_LAYOUT.files.verifyLog}`, file),
      ),
    );
  };

  if (input.verifyOnly) {
    consoleLog(`verifying ${input.base.commit.slice(0, 12)}: ${input.verifyOnly.command}`);
    const checked = await verifyHere(input.verifyOnly, input.base.commit);
    if (controller.signal.aborted) process.exit(EXIT_TERMINATED);
    const passed = verificationPassed(checked.verification);
    const result: BatchJobResult = {
      version: 1,
      outcome: passed
        ? { status: 'succeeded' }
        : { status: 'failed', error: describeVerification(checked.verification) },
      ...checked,
    };
    await stage('upload the result', () =>
      staging.putBytes(
        `${job.prefix}${S3_LAYOUT.files.result}`,
        JSON.stringify(result),
        'application/json',
      ),
    );
    consoleLog(`verification ${describeVerification(checked.verification)}`);
    return;
  }
  if (!input.spec) fail(`${S3_LAYOUT.files.input} holds no task`);

  const { spec, secrets } = await jobSpec(input.spec, paths, env);
  const redact = redactor(Object.values(secrets));
  const log = (line: string) => consoleLog(redact(line));
  log(
    `executor ${spec.executor} running task ${spec.taskId} (attempt ${spec.attempt}, ${spec.mode}) on AWS Batch`,
  );
  let outcome: ExecutorOutcome = await executeTask(spec, { signal: controller.signal, log });
  if (controller.signal.aborted) process.exit(EXIT_TERMINATED);

  const result: BatchJobResult = { version: 1, outcome };
  if (outcome.status === 'succeeded') {
    try {
      // The job holds the model credentials: its own work is checked for them before it leaves.
      const check = new OutputCheck(input.limits, new SecretScanner(nonEmpty(secrets)));
      const committed = await slots.commit(paths.workspace, {
        taskId: spec.taskId,
        base: input.base.commit,
        message: `task(${spec.taskId}): attempt ${spec.attempt} on AWS Batch`,
        check,
      });
      const bundleFile = path.join(paths.staging, S3_LAYOUT.files.bundle);
      await project.writeBundle(bundleFile, BATCH_RESULT_REF, committed.commit, input.base.commit);
      result.commit = committed.commit;
      result.bundle = await stage('upload the work', () =>
        staging.putFile(`${job.prefix}${S3_LAYOUT.files.bundle}`, bundleFile),
      );
      // The check runs on the work as committed, once the agent's processes are gone.
      if (spec.verify) Object.assign(result, await verifyHere(spec.verify, committed.commit));
    } catch (error) {
      if (!(error instanceof OutputRejectedError)) throw error;
      outcome = { status: 'failed', error: error.message, retryable: false };
      result.outcome = outcome;
    }
  }
  if (spec.mode === 'real')
    result.transcript = await uploadTranscript(staging, job.prefix, paths.task, stage);
  await stage('upload the result', () =>
    staging.putBytes(
      `${job.prefix}${S3_LAYOUT.files.result}`,
      JSON.stringify(result),
      'application/json',
    ),
  );
  log(
    outcome.status === 'succeeded'
      ? `task ${spec.taskId} succeeded`
      : `task ${spec.taskId} failed: ${outcome.error}`,
  );
  process.exitCode = outcome.status === 'succeeded' ? 0 : 1;
}

/**
 * Runs `--verify` in the job's workspace with an environment of its own (no credential of the
 * job's), its output to a log that goes up beside the result.
 */
async function verifyInJob(
  settings: VerifySettings,
  paths: ReturnType<typeof jobPaths>,
  signal: AbortSignal,
  upload: (file: string) => Promise<StagedObject>,
): Promise<{ verification: Verification; verifyLog: StagedObject }> {
  const home = path.join(paths.staging, 'verify-home');
  mkdirSync(home, { recursive: true });
  const logPath = path.join(paths.staging, S3_LAYOUT.files.verifyLog);
  const verification = await runVerifyProcess('/bin/sh', ['-c', settings.command], {
    cwd: paths.workspace,
    env: { PATH: process.env.PATH, LANG: process.env.LANG, HOME: home, CI: 'true' },
    timeoutMs: settings.timeoutMs,
    logPath,
    signal,
  });
  return { verification, verifyLog: await upload(logPath) };
}

async function uploadTranscript(
  staging: Staging,
  prefix: string,
  taskDir: string,
  stage: <T>(what: string, action: () => Promise<T>) => Promise<T>,
): Promise<StagedObject | undefined> {
  const file = path.join(taskDir, TASK_FILES.transcript);
  return stage('upload the transcript', () =>
    staging.putFile(`${prefix}${S3_LAYOUT.files.transcript}`, file),
  ).catch(() => undefined);
}

function nonEmpty(secrets: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secrets).filter((entry): entry is [string, string] => Boolean(entry[1])),
  );
}

try {
  await main();
} catch (error) {
  if (error instanceof StageFailure) fail(error.message, EXIT_STAGING);
  fail(error instanceof Error ? error.message : String(error), 1);
}
