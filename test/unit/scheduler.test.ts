import { describe, expect, it } from 'vitest';
import type { EventBody } from '../../packages/runtime/src/contracts/events.js';
import { VirtualClock } from '../../packages/runtime/src/scheduler/clock.js';
import {
  DEFAULT_RETRY_POLICY,
  decideRetry,
} from '../../packages/runtime/src/scheduler/retry-policy.js';
import {
  type AttemptContext,
  type AttemptOutcome,
  Scheduler,
  type SchedulerOptions,
  type TaskState,
} from '../../packages/runtime/src/scheduler/scheduler.js';
import { seededRandom } from '../../packages/runtime/src/util/random.js';
import { independent, plan, type TaskInput, task } from '../support/plans.js';

interface Trace {
  events: (EventBody & { at: number })[];
  starts: { id: string; attempt: number; at: number; executor: number }[];
  maxRunning: number;
}

type Behaviour = (context: AttemptContext, clock: VirtualClock) => Promise<AttemptOutcome>;

/** Succeeds after the task's simulated duration, in virtual time; honours abort. */
const sleepThenSucceed: Behaviour = async ({ task, signal }, clock) => {
  await clock.sleep(task.simulate?.durationMs ?? 0, signal).catch(() => {});
  return signal.aborted
    ? { ok: false, error: String(signal.reason.message), kind: 'transient' }
    : { ok: true, result: {} };
};

async function simulate(
  tasks: TaskInput[],
  concurrency: number,
  behaviour: Behaviour = sleepThenSucceed,
  options: Partial<SchedulerOptions> = {},
) {
  const clock = new VirtualClock();
  const trace: Trace = { events: [], starts: [], maxRunning: 0 };
  let running = 0;
  const scheduler = new Scheduler({
    tasks: plan(tasks).tasks,
    concurrency,
    clock,
    random: seededRandom(7),
    emit: (event) => {
      trace.events.push({ ...event, at: clock.now() });
    },
    runAttempt: async (context) => {
      running += 1;
      trace.maxRunning = Math.max(trace.maxRunning, running);
      trace.starts.push({
        id: context.task.id,
        attempt: context.attempt,
        at: clock.now(),
        executor: context.executor,
      });
      try {
        return await behaviour(context, clock);
      } finally {
        running -= 1;
      }
    },
    ...options,
  });
  const result = await clock.run(scheduler.run());
  return { result, trace, makespan: clock.now() };
}

const ofType = <T extends EventBody['type']>(trace: Trace, type: T) =>
  trace.events.filter(
    (e): e is Extract<EventBody, { type: T }> & { at: number } => e.type === type,
  );

describe('scheduler', () => {
  it('never runs more than M attempts and uses the M slots', async () => {
    const { result, trace } = await simulate(independent(20, 100), 3);
    expect(result.status).toBe('succeeded');
    expect(trace.maxRunning).toBe(3);
    expect(new Set(trace.starts.map((s) => s.executor))).toEqual(new Set([0, 1, 2]));
  });

  it('runs independent tasks M at a time', async () => {
    const { makespan } = await simulate(independent(16, 1000), 8);
    expect(makespan).toBe(2000);
  });

  it('starts a task only after all its dependencies succeeded', async () => {
    const tasks = [
      task('a', [], 300),
      task('b', [], 100),
      task('c', ['a', 'b'], 100),
      task('d', ['c'], 50),
    ];
    const { trace } = await simulate(tasks, 4);
    const startOf = (id: string) => trace.starts.find((s) => s.id === id)?.at;
    const endOf = (id: string) => ofType(trace, 'task-succeeded').find((e) => e.taskId === id)?.at;
    expect(startOf('c')).toBe(300);
    expect(startOf('c')).toBeGreaterThanOrEqual(
      Math.max(endOf('a') ?? Infinity, endOf('b') ?? Infinity),
    );
    expect(startOf('d')).toBe(endOf('c'));
  });

  it('keeps a slot let go mid-merge for the dependent the merge makes ready', async () => {
    // Work done at its duration, the slot let go, then 50 ms of merging before success.
    const mergeAfterRelease: Behaviour = async ({ task, releaseExecutor }, clock) => {
      await clock.sleep(task.simulate?.durationMs ?? 0);
      releaseExecutor();
      await clock.sleep(50);
      return { ok: true, result: {} };
    };
    const startOf = (trace: Trace, id: string) => trace.starts.find((s) => s.id === id)?.at;
    // a leads the critical path (a, c); b is ready all along but ranks lower.
    const chain = [task('a', [], 100), task('b', [], 100), task('c', ['a'], 1000)];
    const { trace } = await simulate(chain, 1, mergeAfterRelease);
    expect(startOf(trace, 'c')).toBe(150);
    expect(startOf(trace, 'b')).toBeGreaterThan(150);
    // With no dependent waiting on the merge, the slot goes at once.
    const apart = await simulate([task('x', [], 100), task('y', [], 100)], 1, mergeAfterRelease);
    expect(startOf(apart.trace, 'y')).toBe(100);
  });

  it('starts a task once when its dependencies succeed together', async () => {
    const tasks = [
      task('a', [], 100),
      task('b', [], 100),
      task('c', [], 100),
      task('join', ['a', 'b', 'c']),
    ];
    // The journal holds the three success events until all are written, so their handlers
    // resume together, each seeing every dependency succeeded.
    const held: (() => void)[] = [];
    const emit = (event: EventBody) =>
      event.type === 'task-succeeded' && event.taskId !== 'join'
        ? new Promise<void>((resolve) => {
            held.push(resolve);
            if (held.length === 3) for (const release of held) release();
          })
        : undefined;
    const { trace } = await simulate(tasks, 3, sleepThenSucceed, { emit });
    expect(trace.starts.filter((s) => s.id === 'join')).toHaveLength(1);
  });

  it('starts the task with the longest remaining path first, then priority, then id', async () => {
    const tasks = [
      task('short', [], 100),
      task('head', [], 100),
      task('tail', ['head'], 500),
      task('p-low', [], 100, { priority: 5 }),
      task('p-high', [], 100, { priority: 1 }),
      task('b-tie', [], 100),
      task('a-tie', [], 100),
    ];
    const { trace } = await simulate(tasks, 1);
    expect(trace.starts.map((s) => s.id)).toEqual([
      'head',
      'tail',
      'p-high',
      'a-tie',
      'b-tie',
      'short',
      'p-low',
    ]);
  });

  it('beats plan order when the critical path is listed last', async () => {
    const tasks = [
      ...independent(6, 100),
      task('x', [], 100),
      task('y', ['x'], 100),
      task('z', ['y'], 100),
    ];
    const critical = await simulate(tasks, 2);
    const fifo = await simulate(tasks, 2, sleepThenSucceed, { order: 'plan-order' });
    expect(critical.makespan).toBe(500);
    expect(fifo.makespan).toBe(600);
  });

  it('blocks everything downstream of a permanent failure and lets independent branches finish', async () => {
    const tasks = [
      task('a'),
      task('b', ['a']),
      task('c', ['b']),
      task('d', ['a', 'x']),
      task('x'),
      task('y', ['x']),
    ];
    const { result, trace } = await simulate(tasks, 2, async ({ task }) =>
      task.id === 'a'
        ? { ok: false, error: 'broken', kind: 'permanent' }
        : { ok: true, result: {} },
    );
    expect(result.status).toBe('failed');
    const status = Object.fromEntries([...result.tasks].map(([id, s]) => [id, s.status]));
    expect(status).toEqual({
      a: 'failed',
      b: 'blocked',
      c: 'blocked',
      d: 'blocked',
      x: 'succeeded',
      y: 'succeeded',
    });
    expect(result.tasks.get('c')?.blockedBy).toEqual(['a']);
    expect(trace.starts.filter((s) => s.id === 'a')).toHaveLength(1);
    expect(
      ofType(trace, 'task-blocked')
        .map((e) => e.taskId)
        .sort(),
    ).toEqual(['b', 'c', 'd']);
  });

  it('retries transient failures with growing, jittered backoff, then gives up', async () => {
    const { result, trace } = await simulate(
      [task('flaky'), task('after', ['flaky'])],
      1,
      async () => ({ ok: false, error: 'rate limited', kind: 'transient' }),
      { retry: { retries: 3, baseDelayMs: 1000, maxDelayMs: 3000 } },
    );
    expect(trace.starts.filter((s) => s.id === 'flaky').map((s) => s.attempt)).toEqual([
      1, 2, 3, 4,
    ]);
    const delays = ofType(trace, 'task-retrying').map((e) => e.delayMs);
    expect(delays).toHaveLength(3);
    // Equal jitter: half the capped exponential delay fixed, half random.
    expect(delays[0]).toBeGreaterThanOrEqual(500);
    expect(delays[0]).toBeLessThanOrEqual(1000);
    expect(delays[1]).toBeGreaterThanOrEqual(1000);
    expect(delays[1]).toBeLessThanOrEqual(2000);
    expect(delays[2]).toBeGreaterThanOrEqual(1500);
    expect(delays[2]).toBeLessThanOrEqual(3000);
    const starts = trace.starts.map((s) => s.at);
    for (let i = 1; i < starts.length; i++) {
      expect((starts[i] as number) - (starts[i - 1] as number)).toBe(delays[i - 1]);
    }
    expect(result.tasks.get('flaky')).toMatchObject({
      status: 'failed',
      attempts: 4,
      error: 'rate limited',
    });
    expect(result.tasks.get('after')?.status).toBe('blocked');
  });

  it('succeeds when a retry does', async () => {
    const { result } = await simulate([task('flaky')], 1, async ({ attempt }) =>
      attempt < 3 ? { ok: false, error: 'crash', kind: 'transient' } : { ok: true, result: {} },
    );
    expect(result.status).toBe('succeeded');
    expect(result.tasks.get('flaky')).toMatchObject({ attempts: 3, transientFailures: 2 });
  });

  it('retries a merge conflict once, at once, then fails', async () => {
    const { result, trace } = await simulate([task('clash')], 1, async () => ({
      ok: false,
      error: 'merge conflict in f',
      kind: 'conflict',
      result: { conflictFiles: ['f'] },
    }));
    expect(trace.starts.map((s) => [s.attempt, s.at])).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(ofType(trace, 'task-retrying')[0]).toMatchObject({ reason: 'conflict', delayMs: 0 });
    expect(ofType(trace, 'task-failed')[0]?.result?.conflictFiles).toEqual(['f']);
    expect(result.status).toBe('failed');
  });

  it('aborts an attempt that exceeds the task timeout and retries it', async () => {
    const { result, trace } = await simulate(
      [task('slow', [], 10_000)],
      1,
      async (context, clock) => {
        if (context.attempt === 1) return sleepThenSucceed(context, clock);
        return { ok: true, result: {} };
      },
      { taskTimeoutMs: 1000, retry: { baseDelayMs: 100 } },
    );
    const retry = ofType(trace, 'task-retrying')[0];
    expect(retry).toMatchObject({
      reason: 'transient',
      error: 'timed out after 1000 ms',
      durationMs: 1000,
    });
    expect(result.status).toBe('succeeded');
  });

  it('abandons an attempt that ignores its abort instead of hanging', async () => {
    const { result, trace } = await simulate(
      [task('stuck')],
      1,
      () => new Promise<AttemptOutcome>(() => {}),
      { taskTimeoutMs: 1000, abandonAfterMs: 500, retry: { retries: 0 } },
    );
    expect(result.status).toBe('failed');
    expect(ofType(trace, 'task-failed')[0]).toMatchObject({ durationMs: 1500 });
    expect(ofType(trace, 'task-failed')[0]?.error).toBe(
      'timed out after 1000 ms: executor did not stop within 500 ms of being aborted',
    );
  });

  it('cancels: running attempts are aborted, nothing new starts', async () => {
    const controller = new AbortController();
    const tasks = [...independent(4, 1000), task('later', ['t0'], 10)];
    const cancelMidway: Behaviour = (context, clock) => {
      if (context.task.id === 't1')
        void clock.sleep(500).then(() => controller.abort(new Error('cancelled')));
      return sleepThenSucceed(context, clock);
    };
    const { result, trace } = await simulate(tasks, 2, cancelMidway, { signal: controller.signal });
    expect(result.status).toBe('cancelled');
    expect(trace.starts).toHaveLength(2);
    expect(
      ofType(trace, 'task-cancelled')
        .map((e) => e.taskId)
        .sort(),
    ).toEqual(['t0', 't1']);
    expect(ofType(trace, 'task-succeeded')).toHaveLength(0);
  });

  it('resumes from carried state: finished tasks stay finished, counters continue', async () => {
    const carried = new Map<string, TaskState>([
      ['a', { status: 'succeeded', attempts: 1, transientFailures: 0, conflicts: 0 }],
      ['b', { status: 'running', attempts: 2, transientFailures: 1, conflicts: 0 }],
    ]);
    const { result, trace } = await simulate(
      [task('a'), task('b', ['a']), task('c', ['b'])],
      2,
      sleepThenSucceed,
      {
        initial: carried,
      },
    );
    expect(trace.starts.map((s) => [s.id, s.attempt])).toEqual([
      ['b', 3],
      ['c', 1],
    ]);
    expect(result.status).toBe('succeeded');
  });

  it('blocks the dependents of a task that failed before the resume', async () => {
    const carried = new Map<string, TaskState>([
      ['a', { status: 'failed', attempts: 1, transientFailures: 0, conflicts: 0, error: 'x' }],
    ]);
    const { result, trace } = await simulate(
      [task('a'), task('b', ['a']), task('c')],
      2,
      sleepThenSucceed,
      {
        initial: carried,
      },
    );
    expect(trace.starts.map((s) => s.id)).toEqual(['c']);
    expect(result.tasks.get('b')?.status).toBe('blocked');
  });

  it('stops and reports when the journal cannot be written', async () => {
    await expect(
      simulate(independent(3, 10), 2, sleepThenSucceed, {
        emit: (event) => {
          if (event.type === 'task-succeeded') throw new Error('disk full');
        },
      }),
    ).rejects.toThrow('disk full');
  });

  it('is deterministic in virtual time', async () => {
    const tasks = [
      task('a', [], 5),
      task('b', ['a'], 7),
      task('c', ['a'], 3),
      task('d', ['b', 'c'], 11),
    ];
    const flaky: Behaviour = async (context, clock) =>
      context.task.id === 'b' && context.attempt === 1
        ? { ok: false, error: 'x', kind: 'transient' }
        : sleepThenSucceed(context, clock);
    const one = await simulate(tasks, 2, flaky);
    const two = await simulate(tasks, 2, flaky);
    expect(one.trace.events).toEqual(two.trace.events);
  });
});

describe('retry policy', () => {
  const always = () => 0.999;
  it('never retries permanent failures', () => {
    expect(
      decideRetry(
        'permanent',
        { transientFailures: 0, conflicts: 0 },
        DEFAULT_RETRY_POLICY,
        always,
      ),
    ).toEqual({
      retry: false,
    });
  });

  it('caps the delay', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, retries: 50, baseDelayMs: 1000, maxDelayMs: 5000 };
    const decision = decideRetry(
      'transient',
      { transientFailures: 40, conflicts: 0 },
      policy,
      always,
    );
    expect(decision).toMatchObject({ retry: true });
    expect(decision.retry && decision.delayMs).toBeLessThanOrEqual(5000);
  });

  it('retries work that failed --verify at once, as often as a crash, apart from crashes', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, retries: 1 };
    const history = { transientFailures: 1, conflicts: 0 };
    expect(decideRetry('verify', { ...history, verifyFailures: 1 }, policy, always)).toEqual({
      retry: true,
      reason: 'verify',
      delayMs: 0,
    });
    expect(decideRetry('verify', { ...history, verifyFailures: 2 }, policy, always)).toEqual({
      retry: false,
    });
  });

  it('with zero retries gives up on the first transient failure', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, retries: 0 };
    expect(
      decideRetry('transient', { transientFailures: 1, conflicts: 0 }, policy, always),
    ).toEqual({ retry: false });
  });
});

describe('virtual clock', () => {
  it('reports a deadlock instead of hanging', async () => {
    const clock = new VirtualClock();
    await expect(clock.run(new Promise(() => {}))).rejects.toThrow(/deadlock/);
  });

  it('fires equal-time timers in creation order', async () => {
    const clock = new VirtualClock();
    const order: number[] = [];
    const all = Promise.all([1, 2, 3].map((n) => clock.sleep(10).then(() => order.push(n))));
    await clock.run(all);
    expect(order).toEqual([1, 2, 3]);
    expect(clock.now()).toBe(10);
  });
});

describe('the remaining-work estimate the live view shows', () => {
  it('schedules the rest of the DAG: a serial tail counts in full, parallel work is shared', async () => {
    const { estimateRemaining } = await import('../../packages/runtime/src/scheduler/estimate.js');
    const chain = plan([task('a'), task('b', ['a']), task('c', ['b']), task('d', ['c'])], 4).tasks;
    // Four tasks of 2 s left in a chain, one of them running for 0.5 s: 7.5 s, not 8 / M.
    const remaining = chain.map((t, i) => ({
      task: t,
      expectedMs: 2_000,
      ...(i === 0 && { elapsedMs: 500 }),
    }));
    expect(await estimateRemaining(remaining, 4)).toBe(7_500);
    const wide = plan(
      [task('done'), task('w'), task('x'), task('y'), task('z', ['done'])],
      4,
    ).tasks;
    // A dependency already finished is not waited for; four independent tasks share four slots.
    const left = wide.filter((t) => t.id !== 'done').map((t) => ({ task: t, expectedMs: 2_000 }));
    expect(await estimateRemaining(left, 4)).toBe(2_000);
  });
});
