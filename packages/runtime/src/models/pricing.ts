import type { TokenCounts } from '../contracts/usage.js';

/**
 * List prices in USD per million tokens (input, output, cache write (5 min), cache read), which
 * is also micro-dollars per token.
 */
export interface Price {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

/**
 * List prices by model, matched on the id (Anthropic, Bedrock and gateway ids all contain the
 * family and version). Claude Code prices its own calls; this prices the planner's, with the
 * same figures as Claude Code 2.1.332 (read off its cost reports).
 */
const PRICES: readonly [RegExp, Price][] = [
  [/sonnet-5-5/, { input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.1 }],
  [/opus-5-5/, { input: 4, output: 20, cacheWrite: 5, cacheRead: 0.2 }],
  [/haiku-5-5/, { input: 0.5, output: 0.5, cacheWrite: 0.625, cacheRead: 0.05 }],
  [/opus-4-[5-8]/, { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  [/opus-4(-[01])?(\b|-\d{8})/, { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 }],
  [/sonnet-4/, { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
  [/haiku-4-5/, { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 }],
];

/** The model's list price, or undefined for a model whose price is unknown. */
export function priceOf(model: string): Price | undefined {
  return PRICES.find(([pattern]) => pattern.test(model))?.[1];
}

/** The highest known price of each kind: a model with no known price is never undercounted. */
export const HIGHEST_PRICE: Price = Object.freeze({
  input: Math.max(...PRICES.map(([, price]) => price.input)),
  output: Math.max(...PRICES.map(([, price]) => price.output)),
  cacheWrite: Math.max(...PRICES.map(([, price]) => price.cacheWrite)),
  cacheRead: Math.max(...PRICES.map(([, price]) => price.cacheRead)),
});

/** Cost of `usage` at `price` in micro-dollars, unrounded. */
export function microUsdAt(price: Price, usage: TokenCounts): number {
  return (
    usage.inputTokens * price.input +
    usage.outputTokens * price.output +
    usage.cacheCreationTokens * price.cacheWrite +
    usage.cacheReadTokens * price.cacheRead
  );
}

/** Cost of one model's usage in USD, or undefined for a model whose price is unknown. */
export function costOf(model: string, usage: TokenCounts): number | undefined {
  const price = priceOf(model);
  return price && Math.round(microUsdAt(price, usage)) / 1e6;
}
