import { describe, expect, it } from 'vitest';
import { priceOf } from '../../packages/runtime/src/models/pricing.js';
import {
  Account,
  type BudgetDecision,
  decide,
  MIN_OUTPUT_TOKENS,
} from '../../packages/runtime/src/proxy/budget.js';

// Opus 4.7: $5 input, $6.25 cache write, $25 output per million tokens.
const price = priceOf('claude-opus-4-7');
if (!price) throw new Error('claude-opus-4-7 has a price');

const call = (maxTokens: number, inputTokens = 100) => ({ price, inputTokens, maxTokens });

function forwarded(decision: BudgetDecision) {
  if (decision.verdict !== 'forward') throw new Error(`expected forward, got ${decision.verdict}`);
  return decision;
}

const tokens = (inputTokens: number, outputTokens: number) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
});

describe('the budget', () => {
  it('forwards a call as asked when no limit is set', () => {
    const decision = forwarded(decide([new Account('task'), new Account('run')], call(128_000)));
    expect(decision.maxTokens).toBe(128_000);
  });

  it('lowers max_tokens to what the room affords, reserving the worst case', () => {
    const task = new Account('task', 0.05);
    // 100 input tokens at the cache-write price: 625 micro-dollars; 49,375 left at 25 a token.
    const decision = forwarded(decide([task, new Account('run')], call(32_000)));
    expect(decision.maxTokens).toBe(1975);
    expect(task.room(true)).toBe(0);
    expect(task.room(false)).toBe(50_000);
  });

  it('asks to wait while calls in flight hold the room, and refuses for good once spent', () => {
    const task = new Account('task', 0.05);
    const run = new Account('run');
    const first = forwarded(decide([task, run], call(32_000)));
    expect(decide([task, run], call(32_000))).toEqual({ verdict: 'wait', account: task });
    // The first call used less than its worst case: the room comes back.
    first.reservation.settle(tokens(10, 500));
    expect(task.usage).toEqual({ ...tokens(10, 500), costUsd: 0.01255 });
    const second = forwarded(decide([task, run], call(32_000)));
    expect(second.maxTokens).toBe(1473);
    second.reservation.settle(tokens(10, 1473));
    expect(task.spentUsd).toBeLessThanOrEqual(0.05);
    expect(decide([task, run], call(32_000))).toEqual({ verdict: 'spent', account: task });
    expect(run.usage.outputTokens).toBe(1973);
  });

  it('counts a settlement once', () => {
    const task = new Account('task');
    const { reservation } = forwarded(decide([task], call(10)));
    reservation.settle(tokens(1, 1));
    reservation.settle(tokens(1, 1));
    expect(task.usage.outputTokens).toBe(1);
  });

  it("decides by the tighter budget, the run's counting what was spent before", () => {
    const task = new Account('task', 10);
    const run = new Account('run');
    run.setLimit(1, 0.99);
    // $0.01 left: 10,000 micro-dollars, 625 of them for input, 375 output tokens: under the minimum.
    expect(decide([task, run], call(32_000))).toEqual({ verdict: 'spent', account: run });
    // A call asking for less than the minimum is judged by what it asks.
    const small = forwarded(decide([task, run], call(300)));
    expect(small.maxTokens).toBe(300);
    expect(run.spentUsd).toBe(0.99);
  });

  it('never forwards under the minimum of output tokens', () => {
    const task = new Account('task', (MIN_OUTPUT_TOKENS * 25 + 625 - 1) / 1e6);
    expect(decide([task], call(32_000)).verdict).toBe('spent');
  });
});
