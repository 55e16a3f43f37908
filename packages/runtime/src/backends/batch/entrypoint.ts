/**
 * The AWS Batch executor, the image's default command: one attempt of one task. It reads the
 * contract's environment (TASK_ID, S3_PREFIX, S3_INPUT_URL, OUTPUT_DIR), stages in the attempt's
 * input and base commit by the URLs the orchestrator presigned for them, runs the same executor
 * as the docker executor (simulated, or Claude Code), commits the work on its base and stages
 * out, each to its own presigned URL, a bundle of that commit, the transcript and, last,
 * `result.json` with every object's checksum. The job runs as root and keeps what the agent must
 * not reach to itself: Claude Code runs as an unprivileged user of its own, with no credential
 * in its environment, and reaches the model through a model proxy of this process that holds
 * the key (the job definition's secret, or the job role for Bedrock) and the task's budget. With `--verify` it runs the command on the committed
 * work and stages its log too; an input with `verifyOnly` runs the command alone on the base (the
 * run's final check); one with `setupOnly` runs `--setup` on the base as the agent's user and
 * stages out an archive of the ignored paths it made. An input with an `environment` has that
 * archive downloaded, checked and extracted into the workspace after each checkout, read-only to
 * the agent and never read by the job's own commit. Exit codes: 0 when the task succeeded and its
 * outcome is uploaded, 1 when it failed and that is uploaded, 2 for bad configuration, 3 when
 * staging failed, 143 on SIGTERM (so Batch marks a stopped job FAILED and its retry can fire).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  BATCH_INPUT_URL_ENV,
  BATCH_RESULT_REF,
  type BatchJobInput,
  BatchJobInputSchema,
  type BatchJobResult,
  FINAL_VERIFY_TASK_ID,
  type JobTransfer,
  SETUP_TASK_ID,
  type StagedObject,
} from '../../contracts/batch-job.js';
import { ENV } from '../../contracts/env.js';
import { OFFLINE_ENV, type SetupSettings } from '../../contracts/environment.js';
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
import {
  logLeftOut,
  MAX_PREPARED_PATHS,
  setupChanges,
  straysReason,
  tooManyPathsReason,
} from '../../environment/prepared-paths.js';
import { executeTask } from '../../executor/execute.js';
import { agentSettingsFor, resolveModelAccess } from '../../models/access.js';
import { countedByProxy } from '../../proxy/counted.js';
import type { GrantUsage, ModelProxy } from '../../proxy/model-proxy.js';
import {
  type AgentUser,
  agentUserFor,
  handOver,
  killEveryProcessOf,
  unconfinedArgs,
} from '../../sandbox/agent-user.js';
import { agentSpawn } from '../../sandbox/bubblewrap.js';
import { OutputCheck, OutputRejectedError } from '../../trust/output-check.js';
import { redactor, SecretScanner } from '../../trust/secret-scanner.js';
import { treeToCheck } from '../../verify/from-base.js';
import { runVerifyProcess } from '../../verify/process.js';
import { writeRules } from '../../workspace/ignore-rules.js';
import { Project } from '../../workspace/project.js';
import { Slots } from '../../workspace/slots.js';
import { archivePaths, WorkspaceEnvironment } from './job-environment.js';
import { fetchBytes, fetchFile, putBytes, putFile } from './job-transfer.js';
import { StagingError } from './staging.js';

const REQUIRED = [ENV.TASK_ID, ENV.S3_PREFIX, BATCH_INPUT_URL_ENV] as const;
const MAX_INPUT_BYTES = 8 * 2 ** 20;
/** Exit codes beyond the CLI's: staging failed; stopped by SIGTERM (128 + 15). */
const EXIT_STAGING = 3;
const EXIT_TERMINATED = 143;
/** How long a stopped job may take to wind down before it exits anyway. */
const TERMINATE_WITHIN_MS = 2_000;

function settings(env: NodeJS.ProcessEnv) {
  const missing = REQUIRED.filter((name) => !env[name]?.trim());
  if (missing.length > 0)
    fail(`the batch executor needs ${REQUIRED.join(', ')} (missing: ${missing.join(', ')})`);
  const prefix = env[ENV.S3_PREFIX] as string;
  if (!prefix.startsWith(S3_LAYOUT.runsRoot) || !prefix.endsWith('/'))
    fail(`S3_PREFIX must be an attempt's prefix under ${S3_LAYOUT.runsRoot}, ending in /`);
  return {
    taskId: env[ENV.TASK_ID] as string,
    prefix,
    inputUrl: env[BATCH_INPUT_URL_ENV] as string,
  };
}

/**
 * Where the attempt works inside the job: everything under OUTPUT_DIR. What the agent must not
 * reach (the repository, the presigned URLs, the transcript being written) is root's alone;
 * the workspace and a HOME are the agent's.
 */
function jobPaths(output: string) {
  return {
    project: path.join(output, 'project'),
    workspace: path.join(output, 'workspace'),
    task: path.join(output, 'task'),
    staging: path.join(output, 'staging'),
    agentHome: path.join(output, 'agent-home'),
    verifyHome: path.join(output, 'verify-home'),
  };
}

type JobPaths = ReturnType<typeof jobPaths>;

/**
 * The places the job writes, made before anything is read. On Fargate a volume the image does
 * not declare starts as an empty directory owned by root, mode 0755
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html), so `/tmp` is
 * opened to every user here, sticky as usual.
 */
function prepareDirectories(paths: JobPaths): void {
  for (const dir of [paths.project, paths.task, paths.staging]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  for (const dir of [paths.agentHome, paths.verifyHome]) mkdirSync(dir, { recursive: true });
  try {
    chmodSync('/tmp', 0o1777);
  } catch (error) {
    consoleLog(`cannot open /tmp to the agent: ${(error as Error).message}`);
  }
}

/**
 * The spec as the job runs it: its own paths, and in real mode the model the job definition
 * provides, reached through this job's model proxy.
 */
async function jobSpec(inputSpec: TaskSpec, paths: JobPaths, env: NodeJS.ProcessEnv) {
  const spec: TaskSpec = {
    ...inputSpec,
    workspaceDir: paths.workspace,
    outputDir: paths.task,
    agentHome: paths.agentHome,
    modelProxy: undefined,
  };
  if (spec.mode !== 'real' || !spec.agent) return { spec, secrets: {} };
  const access = await resolveModelAccess(env);
  const agent = agentSettingsFor(access, spec.agent);
  if (access.provider === spec.agent.provider) agent.model = spec.agent.model;
  return { spec: { ...spec, agent }, secrets: access.secrets, access };
}

/** The model proxy of this job, and the attempt's token (limited to the task's budget). */
async function startProxy(
  access: Awaited<ReturnType<typeof resolveModelAccess>>,
  spec: TaskSpec,
): Promise<{ proxy: ModelProxy; token: string }> {
  const { startModelProxy } = await import('../../proxy/model-proxy.js');
  const proxy = await startModelProxy(access);
  const token = proxy.issue(`task ${spec.taskId} attempt ${spec.attempt}`, {
    maxUsd: spec.agent?.maxBudgetUsd,
  });
  return { proxy, token };
}

async function main(): Promise<void> {
  // First of all: the job's process is PID 1, which ignores a SIGTERM it has no handler for, so
  // a job stopped as it starts would otherwise run on until SIGKILL (137, not 143).
  const controller = new AbortController();
  process.on('SIGTERM', () => {
    consoleLog('SIGTERM: stopping the task');
    controller.abort(new Error('terminated'));
    // A step that does not watch the signal (a download, a checkout) must not outlast the stop's
    // grace: the exit code is what Batch's retry rules read, and a SIGKILL's is 137, not 143.
    setTimeout(() => process.exit(EXIT_TERMINATED), TERMINATE_WITHIN_MS).unref();
  });
  const env = process.env;
  const job = settings(env);
  const paths = jobPaths(outputDir(env));
  // Root drops every agent and check to an id of their own; without root they would share the
  // job's credentials, so only a simulated task (no agent) runs then.
  const agentUser = await agentUserFor().catch((error: Error) =>
    fail(`cannot run agents as another user: ${error.message}`),
  );
  prepareDirectories(paths);
  if (controller.signal.aborted) process.exit(EXIT_TERMINATED);

  const raw = await fetchBytes(job.inputUrl, MAX_INPUT_BYTES, 'read the attempt input');
  let parsed: ReturnType<typeof BatchJobInputSchema.safeParse>;
  try {
    parsed = BatchJobInputSchema.safeParse(JSON.parse(raw.toString('utf8')));
  } catch {
    fail(`${S3_LAYOUT.files.input} is not JSON`);
  }
  if (!parsed.success) fail(`${S3_LAYOUT.files.input} is not a valid attempt input`);
  const input = parsed.data;
  const inputTask = input.spec?.taskId ?? (input.setupOnly ? SETUP_TASK_ID : FINAL_VERIFY_TASK_ID);
  if (inputTask !== job.taskId)
    fail(`${S3_LAYOUT.files.input} is for task ${inputTask}, not TASK_ID ${job.taskId}`);
  if (input.spec?.mode === 'real' && !agentUser)
    fail('a real task runs its agent as another user: the job must run as root');
  const stageOut = (
    file: keyof typeof S3_LAYOUT.files & keyof JobTransfer['put'],
    what: string,
  ) => ({
    url: input.transfer.put[file],
    key: `${job.prefix}${S3_LAYOUT.files[file]}`,
    what,
  });

  const baseBundle = path.join(paths.staging, 'base.bundle');
  await fetchFile(input.transfer.base, input.base.bundle, baseBundle, 'download the base commit');
  const project = await Project.fromBundle(paths.project, baseBundle, input.base.commit);
  // The orchestrator's ignore rules: the repository's at the run's start, never an agent's.
  if (input.ignoreRules) await writeRules(project.gitDir, input.ignoreRules);
  const slots = new Slots(project);
  const environment =
    input.environment && (await downloadEnvironment(input.environment, paths, agentUser));
  /**
   * The workspace at `commit`, the agent's (or the check's) to write; with an environment, its
   * prepared paths in place (kept by the checkout, extracted by the first), read-only.
   */
  const checkOut = async (commit: string) => {
    await slots.prepare(paths.workspace, commit, { keep: environment?.paths ?? [] });
    if (agentUser) await handOver(paths.workspace, agentUser, environment?.skip);
    await environment?.install();
  };
  /** `--verify` on `commit`, checked out in the workspace as the host would check it. */
  const verifyHere = async (settings: VerifySettings, commit: string) => {
    await checkOut(settings.fromBase ? await treeToCheck(project, commit, settings) : commit);
    if (agentUser) await handOver(paths.verifyHome, agentUser);
    const log = stageOut('verifyLog', 'upload the verify log');
    return verifyInJob(settings, paths, agentUser, controller.signal, (file) =>
      putFile(log.url, log.key, file, log.what),
    );
  };
  const uploadResult = (result: BatchJobResult) => {
    const target = stageOut('result', 'upload the result');
    return putBytes(target.url, target.key, Buffer.from(JSON.stringify(result)), target.what);
  };

  if (input.setupOnly) {
    const prepared = await setupHere(input.setupOnly, input, paths, {
      checkOut,
      agentUser,
      signal: controller.signal,
      slots,
      put: (file, name, what) => {
        if (name === 'verifyLog') {
          const target = stageOut(name, what);
          return putFile(target.url, target.key, file, target.what);
        }
        const url = input.transfer.put.environment;
        if (!url) fail(`${S3_LAYOUT.files.input} gives no URL for the environment's archive`);
        // The host knows where the archive goes; the job reports only its digest and size.
        return putFile(url, 'environment.tar.gz', file, what);
      },
    });
    if (controller.signal.aborted) process.exit(EXIT_TERMINATED);
    await uploadResult(prepared);
    return;
  }

  if (input.verifyOnly) {
    consoleLog(`verifying ${input.base.commit.slice(0, 12)}: ${input.verifyOnly.command}`);
    const checked = await verifyHere(input.verifyOnly, input.base.commit);
    if (controller.signal.aborted) process.exit(EXIT_TERMINATED);
    const passed = verificationPassed(checked.verification);
    await uploadResult({
      version: 1,
      outcome: passed
        ? { status: 'succeeded' }
        : { status: 'failed', error: describeVerification(checked.verification) },
      ...checked,
    });
    consoleLog(`verification ${describeVerification(checked.verification)}`);
    return;
  }
  if (!input.spec) fail(`${S3_LAYOUT.files.input} holds no task`);

  await checkOut(input.base.commit);
  const { spec, secrets, access } = await jobSpec(input.spec, paths, env);
  if (agentUser) await handOver(paths.agentHome, agentUser);
  const redact = redactor(Object.values(secrets));
  const log = (line: string) => consoleLog(redact(line));
  log(
    `executor ${spec.executor} running task ${spec.taskId} (attempt ${spec.attempt}, ${spec.mode}) on AWS Batch`,
  );
  const model = access && (await startProxy(access, spec));
  const spawn = agentUser && agentSpawn(undefined, agentUser, log);
  let outcome: ExecutorOutcome;
  let counted: GrantUsage | undefined;
  try {
    outcome = await executeTask(
      model ? { ...spec, modelProxy: { socket: model.proxy.socketPath } } : spec,
      {
        signal: controller.signal,
        log,
        ...(model && { modelToken: model.token }),
        ...(spawn && { spawnAgent: spawn }),
      },
    );
  } finally {
    counted = model?.proxy.revoke(model.token);
    await model?.proxy.close();
    // Only a real task starts an agent; a simulated one has no process to end.
    if (agentUser && spec.mode === 'real') await killEveryProcessOf(agentUser);
  }
  // What the proxy counted, which the agent cannot change, is what the attempt spent.
  if (counted) outcome = countedByProxy(outcome, counted);
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
        // Ignored, and root's: never committed, never entered.
        ...(environment && { skip: environment.paths }),
      });
      const bundleFile = path.join(paths.staging, S3_LAYOUT.files.bundle);
      await project.writeBundle(bundleFile, BATCH_RESULT_REF, committed.commit, input.base.commit);
      result.commit = committed.commit;
      const bundle = stageOut('bundle', 'upload the work');
      result.bundle = await putFile(bundle.url, bundle.key, bundleFile, bundle.what);
      // The check runs on the work as committed, once the agent's processes are gone.
      if (spec.verify) Object.assign(result, await verifyHere(spec.verify, committed.commit));
    } catch (error) {
      if (!(error instanceof OutputRejectedError)) throw error;
      outcome = { status: 'failed', error: error.message, retryable: false };
      result.outcome = outcome;
    }
  }
  if (spec.mode === 'real') {
    const transcript = stageOut('transcript', 'upload the transcript');
    const file = path.join(paths.task, TASK_FILES.transcript);
    result.transcript = await putFile(transcript.url, transcript.key, file, transcript.what).catch(
      () => undefined,
    );
  }
  await uploadResult(result);
  log(
    outcome.status === 'succeeded'
      ? `task ${spec.taskId} succeeded`
      : `task ${spec.taskId} failed: ${outcome.error}`,
  );
  process.exitCode = outcome.status === 'succeeded' ? 0 : 1;
}

/**
 * Runs `--verify` in the job's workspace as the agent's user, with an environment of its own
 * (no credential of the job's), its output to a log that goes up beside the result.
 */
async function verifyInJob(
  settings: VerifySettings,
  paths: JobPaths,
  agentUser: AgentUser | undefined,
  signal: AbortSignal,
  upload: (file: string) => Promise<StagedObject>,
): Promise<{ verification: Verification; verifyLog: StagedObject }> {
  const logPath = path.join(paths.staging, S3_LAYOUT.files.verifyLog);
  const [file, args] = unconfinedArgs(agentUser, '/bin/sh', ['-c', settings.command]);
  const verification = await runVerifyProcess(file, args, {
    cwd: paths.workspace,
    env: {
      PATH: process.env.PATH,
      LANG: process.env.LANG,
      HOME: paths.verifyHome,
      TMPDIR: '/tmp',
      CI: 'true',
      // What the setup did not install is not fetched by the check: it fails at once, saying so.
      ...OFFLINE_ENV,
    },
    timeoutMs: settings.timeoutMs,
    logPath,
    signal,
  });
  if (agentUser) await killEveryProcessOf(agentUser);
  return { verification, verifyLog: await upload(logPath) };
}

/**
 * The job's environment archive, downloaded once and checked against the digest the host gave;
 * laid into the workspace by each checkout.
 */
async function downloadEnvironment(
  spec: NonNullable<BatchJobInput['environment']>,
  paths: JobPaths,
  agentUser: AgentUser | undefined,
): Promise<WorkspaceEnvironment> {
  const archive = path.join(paths.staging, 'environment.tar.gz');
  const started = Date.now();
  await fetchFile(
    spec.url,
    { key: spec.key, sha256: spec.sha256, bytes: spec.bytes },
    archive,
    'download the environment',
  );
  consoleLog(
    `environment: ${spec.bytes} bytes downloaded and checked in ${((Date.now() - started) / 1000).toFixed(2)} s (${spec.key})`,
  );
  return new WorkspaceEnvironment(spec, paths.workspace, archive, agentUser, consoleLog);
}

/** The job's environment variables a setup with the job's network keeps: proxies and trust. */
const SETUP_PASSED_ENV = [
  'LANG',
  'NODE_EXTRA_CA_CERTS',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
] as const;

/**
 * `--setup` on the base: run in the workspace as the agent's user (with the job's network, the
 * stack's), held to the rule every backend keeps (no tracked file changed, nothing written
 * outside ignored paths), and the ignored paths it made archived and staged out. What the job
 * reports is the setup's run, its output, and the archive's digest and size.
 */
async function setupHere(
  setup: SetupSettings,
  input: BatchJobInput,
  paths: JobPaths,
  job: {
    checkOut: (commit: string) => Promise<void>;
    agentUser: AgentUser | undefined;
    signal: AbortSignal;
    slots: Slots;
    put: (file: string, name: 'verifyLog' | 'environment', what: string) => Promise<StagedObject>;
  },
): Promise<BatchJobResult> {
  const { agentUser, signal } = job;
  consoleLog(`preparing the environment on ${input.base.commit.slice(0, 12)}: ${setup.command}`);
  await job.checkOut(input.base.commit);
  if (agentUser) await handOver(paths.verifyHome, agentUser);
  const logPath = path.join(paths.staging, S3_LAYOUT.files.verifyLog);
  const [file, args] = unconfinedArgs(agentUser, '/bin/sh', ['-c', setup.command]);
  const inherited = Object.fromEntries(
    SETUP_PASSED_ENV.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])),
  );
  const verification = await runVerifyProcess(file, args, {
    cwd: paths.workspace,
    env: {
      ...inherited,
      PATH: process.env.PATH,
      HOME: paths.verifyHome,
      TMPDIR: '/tmp',
      CI: 'true',
    },
    timeoutMs: setup.timeoutMs,
    logPath,
    signal,
  });
  if (agentUser) await killEveryProcessOf(agentUser);
  const passed = verificationPassed(verification);
  const changes = passed
    ? await setupChanges(job.slots.workspaceTarget(paths.workspace))
    : undefined;
  // Links, sockets and devices are no environment: left in the checkout, said in the log.
  logLeftOut(logPath, changes?.leftOut ?? []);
  const verifyLog = await job.put(logPath, 'verifyLog', 'upload the setup log');
  const failed = (error: string): BatchJobResult => {
    consoleLog(`setup failed: ${error}`);
    return { version: 1, outcome: { status: 'failed', error }, verification, verifyLog };
  };
  if (!changes) return failed(describeVerification(verification));
  if (changes.strays.length > 0) return failed(straysReason(changes.strays));
  if (changes.paths.length > MAX_PREPARED_PATHS)
    return failed(tooManyPathsReason(changes.paths.length));
  const archive = path.join(paths.staging, 'environment.tar.gz');
  const started = Date.now();
  const made = await archivePaths(paths.workspace, changes.paths, archive, agentUser);
  const archivedMs = Date.now() - started;
  await job.put(archive, 'environment', 'upload the environment');
  consoleLog(
    `environment prepared in ${(verification.durationMs / 1000).toFixed(1)} s: ${changes.paths.length} path(s) (${changes.paths.slice(0, 5).join(', ')}), ${made.diskBytes} bytes on disk, archive of ${made.bytes} bytes made in ${(archivedMs / 1000).toFixed(2)} s`,
  );
  return {
    version: 1,
    outcome: { status: 'succeeded' },
    verification,
    verifyLog,
    environment: {
      paths: changes.paths,
      bytes: made.diskBytes,
      archive: { sha256: made.sha256, bytes: made.bytes },
    },
  };
}

function nonEmpty(secrets: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secrets).filter((entry): entry is [string, string] => Boolean(entry[1])),
  );
}

try {
  await main();
} catch (error) {
  if (error instanceof StagingError) fail(error.message, EXIT_STAGING);
  fail(error instanceof Error ? error.message : String(error), 1);
}
