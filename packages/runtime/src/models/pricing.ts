import type { Usage } from '../contracts/usage.js';

/** List prices in USD per million tokens (input, output, cache write (5 min), cache read). */
interface Price {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

/**
 * Anthropic list prices by model family, matched on the model id (Anthropic, Bedrock and gateway
 * ids all contain the family). Claude Code prices its own calls; this prices the planner's.
 */
const PRICES: readonly [RegExp, Price][] = [
  [/opus-4-[5-9]|opus-4\.[5-9]/, { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }],
  [/opus/, { input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 }],
  [/haiku-4|haiku-4\./, { input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 }],
  [/haiku/, { input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 }],
  [/sonnet/, { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 }],
];

/** Cost of one model's usage in USD, or undefined for a model whose price is unknown. */
export function costOf(model: string, usage: Omit<Usage, 'costUsd'>): number | undefined {
  const price = PRICES.find(([pattern]) => pattern.test(model))?.[1];
  if (!price) return undefined;
  const usd =
    (usage.inputTokens * price.input +
      usage.outputTokens * price.output +
      usage.cacheCreationTokens * price.cacheWrite +
      usage.cacheReadTokens * price.cacheRead) /
    1_000_000;
  return Math.round(usd * 1e6) / 1e6;
}
