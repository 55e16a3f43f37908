import type { PreparedEnvironment, SetupSettings } from '../contracts/environment.js';
import { describeVerification, type Verification } from '../contracts/verify.js';

/** What a backend is asked for: the environment of `key`, prepared on `commit` if it has none. */
export interface EnvironmentRequest {
  key: string;
  commit: string;
  setup: SetupSettings;
  /** The run's repository, whose objects hold the commit. */
  gitDir: string;
  /** Where the setup's output goes: appended to, capped. */
  logPath: string;
  signal: AbortSignal;
  /** Set when the work of an attempt changed what the key covers. */
  attempt?: { taskId: string; attempt: number };
}

export interface EnvironmentResult {
  environment: PreparedEnvironment;
  /** Found ready, nothing run. */
  cached: boolean;
  /** Why it was prepared again, when a kept copy was broken. */
  note?: string;
}

/** A setup that failed, or did what a setup may not: the run (or the attempt) cannot go on. */
export class SetupFailedError extends Error {
  constructor(
    readonly setup: SetupSettings,
    readonly verification: Verification,
    readonly logPath: string,
    options: { reason?: string } = {},
  ) {
    super(options.reason ?? setupFailure(setup, verification));
    this.name = 'SetupFailedError';
  }
}

function setupFailure(setup: SetupSettings, verification: Verification): string {
  if (verification.timedOut)
    return `--setup "${setup.command}" did not end within --setup-timeout ${formatDuration(setup.timeoutMs)}`;
  return `--setup "${setup.command}" ${describeVerification(verification)}`;
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
