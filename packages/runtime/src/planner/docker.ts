import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { lchown } from 'node:fs/promises';
import path from 'node:path';
import {
  CONTAINER,
  dockerClient,
  hardenedHostConfig,
  LABELS,
  removeSecrets,
  runContainer,
  stageSecrets,
} from '../backends/docker/backend.js';
import { dockerPreflight, dockerSettings } from '../backends/docker/kind.js';
import type { DockerSettings } from '../backends/docker/settings.js';
import { ENV, MODEL_ENV } from '../contracts/env.js';
import { MAX_PLAN_BYTES, type Plan, parsePlan } from '../contracts/plan.js';
import type { BackendName, RunConfig } from '../contracts/run-config.js';
import { UsageSchema, ZERO_USAGE } from '../contracts/usage.js';
import type { ModelAccess } from '../models/access.js';
import { MODEL_DEFAULTS } from '../models/defaults.js';
import { readUntrusted } from '../trust/untrusted-files.js';
import { PlanningError } from './model.js';
import type { Planner, PlannerOptions, PlanResult } from './planner.js';

/** What the image's docker planner writes to OUTPUT_DIR. */
const PLANNER_OUTPUT = 'planner_output.json';

export interface DockerPlannerOptions {
  settings: DockerSettings;
  /** A directory for the planner's output while it runs (removed afterwards). */
  scratchParent: string;
  /** Model credentials and settings; without any the planner in the container simulates. */
  executorEnv?: Record<string, string>;
  timeoutMs: number;
}

/**
 * Plans in a container, as the original's `--docker-planner-in-docker` did: the image's docker
 * planner gets REQUIREMENTS and MAX_EXECUTORS, plans with the model when credentials are given
 * (as read-only secret files) or with the simulated planner otherwise, and its plan is validated
 * here like any other.
 */
export class DockerPlanner implements Planner {
  readonly name = 'docker';
  /** Whether the container planned with a model, and which, once `plan` has run. */
  model: string | undefined;

  constructor(private readonly options: DockerPlannerOptions) {}

  async plan(requirements: string, options: PlannerOptions): Promise<PlanResult> {
    const { settings, executorEnv = {}, timeoutMs } = this.options;
    const scratch = mkdtempSync(path.join(this.options.scratchParent, '.planner-'));
    const secrets = stageSecrets(executorEnv);
    try {
      if (process.getuid?.() === 0) await lchown(scratch, CONTAINER.uid, CONTAINER.uid);
      const run = await runContainer(
        dockerClient(),
        {
          Image: settings.image,
          Cmd: [CONTAINER.planner],
          User:
            process.getuid?.() === 0
              ? `${CONTAINER.uid}:${CONTAINER.uid}`
              : `${process.getuid?.()}:${process.getgid?.()}`,
          Env: [
            `${ENV.REQUIREMENTS}=${requirements}`,
            `${ENV.MAX_EXECUTORS}=${options.executors}`,
            `MAX_TASKS=${options.maxTasks}`,
            `${ENV.OUTPUT_DIR}=${CONTAINER.output}`,
            ...secrets.env,
          ],
          Labels: { [LABELS.role]: 'planner' },
          HostConfig: hardenedHostConfig(settings, [
            `${scratch}:${CONTAINER.output}:rw`,
            ...(secrets.env.length ? [`${secrets.dir}:${CONTAINER.secrets}:ro`] : []),
          ]),
        },
        path.join(scratch, 'planner.log'),
        AbortSignal.timeout(timeoutMs),
      );
      let output: {
        success?: boolean;
        error?: string;
        plan?: unknown;
        model?: string;
        usage?: unknown;
      };
      try {
        // Written in a directory the container could write: read as data, bounded.
        const raw = await readUntrusted(path.join(scratch, PLANNER_OUTPUT), MAX_PLAN_BYTES);
        output = JSON.parse(raw?.toString('utf8') ?? '');
      } catch {
        const log = readFileSync(path.join(scratch, 'planner.log'), 'utf8')
          .trim()
          .split('\n')
          .at(-1);
        throw new PlanningError(
          `the planner container exited with code ${run.statusCode}: ${log ?? 'no output'}`,
        );
      }
      if (!output.success) throw new PlanningError(`the planner container failed: ${output.error}`);
      this.model = output.model;
      const usage = UsageSchema.safeParse(output.usage);
      return {
        plan: parsePlan(output.plan, { maxTasks: options.maxTasks }),
        usage: usage.success ? usage.data : ZERO_USAGE,
      };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      removeSecrets(secrets.dir);
    }
  }
}

/**
 * What the docker planner (our code, not an agent) gets as environment: the credentials and AWS
 * chain settings, nothing else.
 */
function plannerEnv(access: ModelAccess): Record<string, string> {
  const env: Record<string, string> = { ...access.awsEnv };
  if (access.baseURL) env[MODEL_ENV.ANTHROPIC_BASE_URL] = access.baseURL;
  for (const [name, value] of Object.entries(access.secrets)) if (value) env[name] = value;
  return env;
}

/** Where `--docker-planner` plans: a container of these settings, its output under a directory. */
export interface PlannerContainer {
  settings: DockerSettings;
  scratchParent: string;
}

/**
 * The container `--docker-planner` runs in: the docker backend's settings when that is the run's
 * backend (already checked), otherwise the `--docker-*` flags, with the engine and image checked.
 */
export async function plannerContainer(
  options: Readonly<Record<string, unknown>> & { output: string },
  backend: BackendName,
  backendSettings: unknown,
): Promise<PlannerContainer> {
  if (backend === 'docker')
    return { settings: backendSettings as DockerSettings, scratchParent: options.output };
  const settings = dockerSettings(options);
  await dockerPreflight(settings.image);
  return { settings, scratchParent: options.output };
}

/** `--docker-planner`: plans in a container; the image plans with the model when given access. */
export async function planInContainer(
  requirements: string,
  options: PlannerContainer & {
    executors: number;
    maxTasks: number;
    access: ModelAccess | undefined;
  },
): Promise<{ plan: Plan; planner: RunConfig['planner'] }> {
  const planner = new DockerPlanner({
    settings: options.settings,
    scratchParent: options.scratchParent,
    executorEnv: options.access && plannerEnv(options.access),
    timeoutMs: MODEL_DEFAULTS.plannerTimeoutMs,
  });
  const planning = { executors: options.executors, maxTasks: options.maxTasks };
  const { plan, usage } = await planner.plan(requirements, planning);
  const name = planner.model ? 'docker-model' : 'docker-simulated';
  return { plan, planner: { name, model: planner.model, usage } };
}
