import { describe, expect, it } from 'vitest';
import type { JournalEvent } from '../../packages/runtime/src/contracts/events.js';
import { buildTimeline, runBounds } from '../../packages/runtime/src/report/timeline.js';
import { plan, task } from '../support/plans.js';

const T0 = Date.parse('2026-11-27T10:00:00.000Z');
let seq = 0;
const at = (ms: number, body: Record<string, unknown>) =>
  ({ seq: ++seq, time: new Date(T0 + ms).toISOString(), ...body }) as JournalEvent;

describe('the report timeline', () => {
  const tasks = plan([task('a'), task('b', ['a']), task('c')], 1).tasks;
  const events = [
    at(0, {
      type: 'run-started',
      runId: 'r',
      tasks: 3,
      executors: 1,
      backend: 'local',
      mode: 'simulate',
    }),
    at(10, { type: 'task-started', taskId: 'a', attempt: 1, executor: 0 }),
    at(110, {
      type: 'task-retrying',
      taskId: 'a',
      attempt: 1,
      reason: 'transient',
      error: 'boom',
      durationMs: 100,
      delayMs: 50,
    }),
    at(120, { type: 'task-started', taskId: 'c', attempt: 1, executor: 0 }),
    at(220, {
      type: 'task-merging',
      taskId: 'c',
      attempt: 1,
      commit: 'c1',
      executedAt: new Date(T0 + 200).toISOString(),
    }),
    at(230, { type: 'task-succeeded', taskId: 'c', attempt: 1, durationMs: 110, result: {} }),
    at(240, { type: 'task-started', taskId: 'a', attempt: 2, executor: 0 }),
    at(340, { type: 'task-merging', taskId: 'a', attempt: 2, commit: 'a2' }),
    at(360, { type: 'task-succeeded', taskId: 'a', attempt: 2, durationMs: 120, result: {} }),
    at(400, { type: 'task-started', taskId: 'b', attempt: 1, executor: 0 }),
    at(500, { type: 'task-failed', taskId: 'b', attempt: 1, error: 'no', durationMs: 100 }),
    at(510, { type: 'run-finished', status: 'failed', durationMs: 510 }),
  ];

  it('gives every attempt its ready, start, commit, merge and end, on the run clock', () => {
    const timeline = buildTimeline(tasks, events);
    expect(timeline.durationMs).toBe(510);
    expect(timeline.attempts).toEqual([
      expect.objectContaining({
        taskId: 'a',
        attempt: 1,
        readyMs: 0,
        startMs: 10,
        endMs: 110,
        slotEndMs: 110,
        end: 'transient',
        error: 'boom',
      }),
      expect.objectContaining({
        taskId: 'c',
        attempt: 1,
        readyMs: 0,
        startMs: 120,
        executedMs: 200,
        mergingMs: 220,
        endMs: 230,
        slotEndMs: 220,
        end: 'succeeded',
      }),
      // Ready again once its retry delay was over, not when it failed.
      expect.objectContaining({
        taskId: 'a',
        attempt: 2,
        readyMs: 160,
        startMs: 240,
        end: 'succeeded',
      }),
      // Ready when its dependency's merge landed.
      expect.objectContaining({
        taskId: 'b',
        attempt: 1,
        readyMs: 360,
        startMs: 400,
        end: 'failed',
      }),
    ]);
    expect(timeline.inFlight).toEqual([
      { atMs: 10, count: 1 },
      { atMs: 110, count: 0 },
      { atMs: 120, count: 1 },
      { atMs: 220, count: 0 },
      { atMs: 240, count: 1 },
      { atMs: 340, count: 0 },
      { atMs: 400, count: 1 },
      { atMs: 500, count: 0 },
    ]);
  });

  it('bounds the run: the critical path of merged tasks, the work on the slots, utilisation', () => {
    const bounds = runBounds(tasks, buildTimeline(tasks, events), 1);
    // a's final attempt took 120 ms to merge; b never merged; c took 110.
    expect(bounds.criticalPath).toEqual(['a']);
    expect(bounds.criticalPathMs).toBe(120);
    expect(bounds.workMs).toBe(100 + 100 + 100 + 100);
    expect(bounds.lowerBoundMs).toBe(400);
    expect(bounds.utilisation).toBeCloseTo(400 / 510, 6);
  });
});
