/**
 * The docker planner: plans REQUIREMENTS for MAX_EXECUTORS executors and writes
 * `planner_output.json` ({success, planner, num_tasks, plan, usage} or {success: false, error})
 * and `execution_plan.json` to OUTPUT_DIR. Plans with the model when credentials are given,
 * and says so; otherwise it plans with the simulated planner and says that.
 */
import path from 'node:path';
import { ENV, SECRET_ENV_NAMES } from '../contracts/env.js';
import { MAX_PLAN_TASKS } from '../contracts/plan.js';
import { UsageError } from '../errors.js';
import { resolveModelAccess, truthyEnv } from '../models/access.js';
import { createMessagesClient } from '../models/client.js';
import { MODEL_DEFAULTS } from '../models/defaults.js';
import { ModelPlanner } from '../planner/model.js';
import type { Planner } from '../planner/planner.js';
import { SimulatedPlanner } from '../planner/simulated.js';
import { fail, outputDir, writeJson } from './common.js';

export const PLANNER_OUTPUT_FILE = 'planner_output.json';
export const PLAN_FILE = 'execution_plan.json';

/** Whether any model credential is configured at all (its values are checked later). */
function credentialsGiven(env: NodeJS.ProcessEnv): boolean {
  return (
    truthyEnv(env[ENV.USE_BEDROCK]) ||
    SECRET_ENV_NAMES.some((name) => env[name] || env[`${name}_FILE`])
  );
}

async function main(): Promise<void> {
  const env = process.env;
  const requirements = env[ENV.REQUIREMENTS]?.trim();
  if (!requirements) fail('REQUIREMENTS is empty: give the planner something to plan');
  const executors = Number(env[ENV.MAX_EXECUTORS] ?? '5');
  if (!Number.isInteger(executors) || executors < 1 || executors > 1000) {
    fail(`MAX_EXECUTORS must be an integer from 1 to 1000, got "${env[ENV.MAX_EXECUTORS]}"`);
  }
  const output = outputDir(env);
  const maxTasks = Math.min(MAX_PLAN_TASKS, Number(env.MAX_TASKS ?? 100) || 100);
  try {
    let planner: Planner;
    let model: string | undefined;
    if (credentialsGiven(env)) {
      const access = await resolveModelAccess(env);
      model = access.plannerModel;
      planner = new ModelPlanner({
        client: await createMessagesClient(access),
        model,
        repairs: MODEL_DEFAULTS.planRepairs,
        timeoutMs: MODEL_DEFAULTS.plannerTimeoutMs,
      });
    } else {
      planner = new SimulatedPlanner();
    }
    const { plan, usage } = await planner.plan(requirements, { executors, maxTasks });
    writeJson(path.join(output, PLAN_FILE), plan);
    writeJson(path.join(output, PLANNER_OUTPUT_FILE), {
      success: true,
      planner: model ? 'model' : 'simulated',
      ...(model && { model }),
      num_tasks: plan.tasks.length,
      plan,
      usage,
    });
    process.stdout.write(
      model
        ? `planned ${plan.tasks.length} tasks with ${model}\n`
        : `no model credentials: planned ${plan.tasks.length} tasks with the simulated planner\n`,
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    writeJson(path.join(output, PLANNER_OUTPUT_FILE), { success: false, error: message });
    fail(message, error instanceof UsageError ? 2 : 1);
  }
}

await main();
