import type { SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';

/** What an executor gets from the process hosting it. */
export interface ExecutorIo {
  /** Aborts when the task times out or the run is cancelled. */
  signal: AbortSignal;
  log(line: string): void;
  /** This attempt's token for the model proxy named in the spec; never written anywhere. */
  modelToken?: string;
  /** Starts Claude Code confined (the local backend's sandbox); the SDK's own spawn otherwise. */
  spawnAgent?: (options: SpawnOptions) => SpawnedProcess;
}
