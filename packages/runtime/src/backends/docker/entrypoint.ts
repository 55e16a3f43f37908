/**
 * The docker executor: runs one task inside the container. With a task spec in OUTPUT_DIR (the
 * Docker backend writes one) it runs that task in the mounted workspace; without one it treats
 * REQUIREMENTS as a single task whose code goes to OUTPUT_DIR/project, as the original image did.
 * Leaves `outcome.json` (and in real mode `transcript.jsonl`) in OUTPUT_DIR; run by hand also
 * `result.json` and `executor.log`. Run by the backend, a real task reaches models through the
 * model proxy's socket with the token in MODEL_PROXY_TOKEN_FILE, and holds no credential.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV, MODEL_PROXY_TOKEN_ENV } from '../../contracts/env.js';
import { type TaskSpec, TaskSpecSchema } from '../../contracts/executor.js';
import { TASK_FILES } from '../../contracts/run-layout.js';
import {
  consoleLog,
  fail,
  fileAndConsoleLog,
  outputDir,
  writeJson,
} from '../../entrypoints/common.js';
import { UsageError } from '../../errors.js';
import { executeTask } from '../../executor/execute.js';
import { agentSettingsFor, resolveModelAccess, truthyEnv } from '../../models/access.js';
import { MODEL_DEFAULTS } from '../../models/defaults.js';

async function standaloneSpec(env: NodeJS.ProcessEnv, output: string): Promise<TaskSpec> {
  const requirements = env[ENV.REQUIREMENTS]?.trim();
  if (!requirements)
    fail(`no task: put ${TASK_FILES.spec} in OUTPUT_DIR (${output}) or set REQUIREMENTS`);
  const taskId =
    (env[ENV.TASK_ID] ?? 'task')
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .slice(0, 63) || 'task';
  const real = truthyEnv(env[ENV.USE_REAL_EXECUTORS]);
  const workspace = path.join(output, 'project');
  mkdirSync(workspace, { recursive: true });
  const spec: TaskSpec = {
    runId: 'standalone',
    taskId,
    attempt: 1,
    executor: Number.parseInt(env[ENV.EXECUTOR_ID] ?? '0', 10) || 0,
    mode: real ? 'real' : 'simulate',
    requirements,
    task: {
      id: taskId,
      title: requirements.split('\n')[0]?.slice(0, 200) ?? taskId,
      description: requirements,
      dependsOn: [],
    },
    mergedDependencies: [],
    workspaceDir: workspace,
    outputDir: output,
    seed: 1,
  };
  if (!real) return spec;
  const access = await resolveModelAccess(env);
  return {
    ...spec,
    agentHome: env.HOME,
    agent: agentSettingsFor(access, MODEL_DEFAULTS),
  };
}

function readToken(env: NodeJS.ProcessEnv): string {
  const file = env[`${MODEL_PROXY_TOKEN_ENV}_FILE`];
  try {
    if (file) return readFileSync(file, 'utf8').trim();
  } catch (error) {
    fail(
      `cannot read ${MODEL_PROXY_TOKEN_ENV}_FILE (${file}): ${(error as NodeJS.ErrnoException).code}`,
    );
  }
  fail(`the task names a model proxy but ${MODEL_PROXY_TOKEN_ENV}_FILE is not set`);
}

function filesBelow(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? filesBelow(path.join(dir, entry.name), `${prefix}${entry.name}/`)
      : [`${prefix}${entry.name}`],
  );
}

async function main(): Promise<void> {
  const env = process.env;
  const output = outputDir(env);
  const specFile = path.join(output, TASK_FILES.spec);
  const standalone = !existsSync(specFile);
  let spec: TaskSpec;
  try {
    spec = standalone
      ? await standaloneSpec(env, output)
      : TaskSpecSchema.parse(JSON.parse(readFileSync(specFile, 'utf8')));
  } catch (error) {
    fail(
      error instanceof UsageError
        ? error.message
        : `cannot read ${specFile}: ${(error as Error).message}`,
    );
  }
  // Run by the Docker backend, the container's output is the log (the backend streams it into
  // executor.log); run by hand, the log also goes to OUTPUT_DIR.
  const log = standalone ? fileAndConsoleLog(path.join(output, TASK_FILES.log)) : consoleLog;
  const controller = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => controller.abort());
  log(
    `executor ${spec.executor} running task ${spec.taskId} (attempt ${spec.attempt}, ${spec.mode})`,
  );
  // The model proxy's token for this attempt, from the file the backend mounted.
  const modelToken = spec.modelProxy ? readToken(env) : undefined;
  const outcome = await executeTask(spec, { signal: controller.signal, log, modelToken });
  writeJson(path.join(output, TASK_FILES.outcome), outcome);
  if (standalone) {
    writeJson(path.join(output, TASK_FILES.result), {
      taskId: spec.taskId,
      status: outcome.status,
      ...(outcome.error && { error: outcome.error }),
      files: filesBelow(spec.workspaceDir).map((f) => `project/${f}`),
      usage: outcome.usage,
    });
  }
  log(
    outcome.status === 'succeeded'
      ? `task ${spec.taskId} succeeded`
      : `task ${spec.taskId} failed: ${outcome.error}`,
  );
  process.exitCode = outcome.status === 'succeeded' ? 0 : 1;
}

await main();
