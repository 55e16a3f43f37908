import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../packages/runtime/src/contracts/executor.js';
import { runSimulatedTask } from '../../packages/runtime/src/executor/simulated.js';
import { tempDir } from '../support/tmp.js';

const spec = (workspaceDir: string, durationMs: number, failAttempts = 0): TaskSpec => ({
  runId: 'run',
  taskId: 'feature',
  attempt: 1,
  executor: 0,
  mode: 'simulate',
  requirements: 'a feature',
  task: {
    id: 'feature',
    title: 'Feature',
    description: 'adds the feature',
    dependsOn: [],
    simulate: { durationMs, failAttempts },
  },
  mergedDependencies: [],
  workspaceDir,
  outputDir: workspaceDir,
  seed: 1,
});

const io = () => ({ signal: new AbortController().signal, log: () => {} });

describe('a simulated attempt', () => {
  // What a run adds to its plan's durations must be the orchestrator's: the attempt's own
  // writes are part of its planned time, as an agent's are, not added after it.
  it('writes its files first and takes its planned duration in all', async () => {
    const workspace = tempDir();
    const started = performance.now();
    const attempt = runSimulatedTask(spec(workspace, 400), io());
    await sleep(200);
    expect(existsSync(path.join(workspace, 'src', 'feature.ts'))).toBe(true);
    expect(await attempt).toMatchObject({ status: 'succeeded' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(399);
  });

  it('that fails writes nothing and still takes its planned duration', async () => {
    const workspace = tempDir();
    const started = performance.now();
    expect(await runSimulatedTask(spec(workspace, 200, 1), io())).toMatchObject({
      status: 'failed',
      retryable: true,
    });
    expect(performance.now() - started).toBeGreaterThanOrEqual(199);
    expect(existsSync(path.join(workspace, 'src'))).toBe(false);
  });
});
