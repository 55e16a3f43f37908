import { addUsage, type TokenCounts, type Usage, ZERO_USAGE } from '../contracts/usage.js';
import { microUsdAt, type Price } from '../models/pricing.js';

/**
 * Budgets the proxy enforces: an attempt's (`--max-task-usd`) and the run's (`--max-budget-usd`).
 * Amounts are kept in micro-dollars, integers, so sums and comparisons with a limit are exact.
 *
 * Every call forwarded reserves its worst case (its input estimate at the highest input price of
 * its model, plus `max_tokens` at the output price) until its real usage is known. A call is
 * forwarded only while spending plus the reservations of calls in flight leaves room for its
 * worst case; with less room, its `max_tokens` is lowered to what the room affords. The provider
 * never generates past `max_tokens`, so spending passes a limit only by input the estimate
 * missed (see `estimateInputTokens`) of the calls in flight when the limit is reached.
 */

export type BudgetScope = 'task' | 'run';

/** Below this many output tokens a call is not worth making: it is refused instead. */
export const MIN_OUTPUT_TOKENS = 1_000;

/**
 * Input tokens estimated from the request's size. Tokens average about 4 bytes of English or
 * code; a request's JSON, its tool schemas and its base64 images (about 1,600 tokens for any
 * image) are bytes that count for less, so Claude Code's requests hold fewer tokens than this.
 */
export function estimateInputTokens(bodyBytes: number): number {
  return Math.ceil(bodyBytes / 4);
}

const toMicro = (usd: number) => Math.round(usd * 1e6);
const toUsd = (micro: number) => micro / 1e6;

/** What one budget tracks: an attempt's grant, or the run. */
export class Account {
  private counted: Usage = ZERO_USAGE;
  private reservedMicro = 0;
  private limitMicro?: number;
  private beforeMicro = 0;

  constructor(
    readonly scope: BudgetScope,
    limitUsd?: number,
  ) {
    this.setLimit(limitUsd);
  }

  /** `alreadySpentUsd`: spent before the proxy counted (planning, earlier attempts on resume). */
  setLimit(limitUsd: number | undefined, alreadySpentUsd = 0): void {
    this.limitMicro = limitUsd === undefined ? undefined : toMicro(limitUsd);
    this.beforeMicro = toMicro(alreadySpentUsd);
  }

  /** What the proxy counted. */
  get usage(): Usage {
    return this.counted;
  }

  get limitUsd(): number | undefined {
    return this.limitMicro === undefined ? undefined : toUsd(this.limitMicro);
  }

  /** Spent in all, what was spent before included. */
  get spentUsd(): number {
    return toUsd(this.spentMicro());
  }

  get alreadySpentUsd(): number {
    return toUsd(this.beforeMicro);
  }

  /** What calls may still spend; `inFlight`: less what calls in flight may still cost. */
  room(inFlight: boolean): number {
    if (this.limitMicro === undefined) return Number.POSITIVE_INFINITY;
    return this.limitMicro - this.spentMicro() - (inFlight ? this.reservedMicro : 0);
  }

  reserve(micro: number): void {
    this.reservedMicro += micro;
  }

  settle(reservedMicro: number, usage: Usage): void {
    this.reservedMicro -= reservedMicro;
    this.counted = addUsage(this.counted, usage);
  }

  private spentMicro(): number {
    return this.beforeMicro + toMicro(this.counted.costUsd);
  }
}

/** A call's worst case, held on its accounts until its usage is known. */
export class Reservation {
  private settled = false;

  constructor(
    private readonly accounts: readonly Account[],
    private readonly price: Price,
    private readonly micro: number,
  ) {
    for (const account of accounts) account.reserve(micro);
  }

  /** Replaces the worst case with the call's usage; only the first settlement counts. */
  settle(tokens: TokenCounts): void {
    if (this.settled) return;
    this.settled = true;
    // Rounded up: many calls never add up to less than they cost.
    const usage = { ...tokens, costUsd: toUsd(Math.ceil(microUsdAt(this.price, tokens))) };
    for (const account of this.accounts) account.settle(this.micro, usage);
  }
}

export interface CallRequest {
  price: Price;
  inputTokens: number;
  maxTokens: number;
}

export type BudgetDecision =
  /** Forward with `maxTokens` (lowered when the budget is short). */
  | { verdict: 'forward'; maxTokens: number; reservation: Reservation }
  /** The budget's room is held by calls in flight: worth retrying once they end. */
  | { verdict: 'wait'; account: Account }
  /** Spent: no call can be afforded any more. */
  | { verdict: 'spent'; account: Account };

/** Decides a call against every account it is charged to. */
export function decide(accounts: readonly Account[], call: CallRequest): BudgetDecision {
  const { price } = call;
  const inputMicro = call.inputTokens * Math.max(price.input, price.cacheWrite);
  const affordable = (room: number) => Math.floor((room - inputMicro) / price.output);
  const minimum = Math.min(call.maxTokens, MIN_OUTPUT_TOKENS);
  const tightest = accounts.reduce((a, b) => (b.room(true) < a.room(true) ? b : a));
  const maxTokens = Math.min(call.maxTokens, affordable(tightest.room(true)));
  if (maxTokens >= minimum) {
    const micro = Math.ceil(inputMicro + maxTokens * price.output);
    return { verdict: 'forward', maxTokens, reservation: new Reservation(accounts, price, micro) };
  }
  const spent = accounts.find((account) => affordable(account.room(false)) < minimum);
  return spent ? { verdict: 'spent', account: spent } : { verdict: 'wait', account: tightest };
}
