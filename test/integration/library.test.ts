import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-lib-');

describe('the package as a library', () => {
  it('plans and runs through the published entry point, reporting every event', async () => {
    // The built entry, as `import '@parallel-orchestrator/runtime'` resolves it.
    const runtime = await import('../../packages/runtime/dist/index.js');
    const { plan, usage } = await new runtime.SimulatedPlanner().plan('Build a calculator', {
      executors: 2,
      maxTasks: 20,
    });
    expect(runtime.PlanSchema.safeParse(plan).success).toBe(true);
    const timed = runtime.assignSimulatedDurations(plan, { min: 1, max: 5 }, 1);
    const seen: string[] = [];
    const outcome = await runtime.startRun({
      outputDir: path.join(work, 'runs'),
      plan: timed,
      backend: 'local',
      mode: 'simulate',
      executors: 2,
      retries: 0,
      retryDelayMs: 10,
      taskTimeoutMs: 60_000,
      seed: 1,
      planner: { name: 'simulated', usage },
      onEvent: (event) => seen.push(event.type),
    });
    expect(outcome.status).toBe('succeeded');
    expect(seen[0]).toBe('run-started');
    expect(seen.at(-1)).toBe('run-finished');
    const summary = runtime.ExecutionSummarySchema.parse(
      JSON.parse(readFileSync(path.join(outcome.runDir, 'execution_summary.json'), 'utf8')),
    );
    expect(summary.totals.succeeded).toBe(plan.tasks.length);
    expect(runtime.ENV_NAMES).toContain('EXECUTOR_ID');
    const estimate = await runtime.estimateSchedule(timed.tasks, 2);
    expect(estimate.makespanMs).toBeGreaterThanOrEqual(estimate.lowerBoundMs);
  });
});
