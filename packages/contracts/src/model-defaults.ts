/** Model defaults, defined once (the docs list them). */
export const MODEL_DEFAULTS = {
  /** Claude Code's own Sonnet default. */
  model: 'claude-sonnet-5-5',
  /**
   * Claude Code's Bedrock id for the same model, and a region that serves its `us.` profile. The
   * original's defaults (eu-central-1, Sonnet 4.5) retire with Sonnet 4.5 on 30 November 2026.
   */
  bedrockModel: 'us.anthropic.claude-sonnet-5-5',
  bedrockRegion: 'us-east-1',
  planRepairs: 2,
  /** Further tries of one planner request after 429, 529, 5xx or a dropped connection. */
  plannerRetries: 3,
  /** The whole planning step, repairs and retry waits included. */
  plannerTimeoutMs: 10 * 60_000,
  maxTurns: 80,
  allowedTools: [
    'Read',
    'Glob',
    'Grep',
    'Write',
    'Edit',
    'MultiEdit',
    'NotebookEdit',
    'Bash',
    'TodoWrite',
  ],
} as const;
