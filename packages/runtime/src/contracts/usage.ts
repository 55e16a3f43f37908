import { z } from 'zod';

/** Tokens and cost of model calls; simulated work leaves every field at zero. */
export const UsageSchema = z.object({
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  cacheReadTokens: z.number().int().min(0),
  cacheCreationTokens: z.number().int().min(0),
  costUsd: z.number().min(0),
});

export type Usage = z.infer<typeof UsageSchema>;

/** The tokens of a usage, before they are priced. */
export type TokenCounts = Omit<Usage, 'costUsd'>;

export const ZERO_TOKENS: TokenCounts = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
});

export const ZERO_USAGE: Usage = Object.freeze({ ...ZERO_TOKENS, costUsd: 0 });

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheCreationTokens: a.cacheCreationTokens + b.cacheCreationTokens,
    costUsd: Math.round((a.costUsd + b.costUsd) * 1e6) / 1e6,
  };
}
