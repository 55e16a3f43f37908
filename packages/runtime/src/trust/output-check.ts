import type { OutputLimits } from '../contracts/run-config.js';
import { formatBytes } from '../util/bytes.js';
import type { SecretScanner } from './secret-scanner.js';

/** An attempt's output breaks a rule of the trust boundary: the attempt fails for good. */
export class OutputRejectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputRejectedError';
  }
}

/**
 * The rules every file an agent adds or changes must pass before it may be committed, whatever
 * backend produced it: size limits, and no secret handed to agents in a file or a link's target
 * (where links lead is ingest.ts's to check). Fed one entry at a time; throws
 * OutputRejectedError naming the path at the first break.
 */
export class OutputCheck {
  private totalBytes = 0;

  constructor(
    private readonly limits: OutputLimits,
    private readonly secrets?: SecretScanner,
  ) {}

  /** Whether file contents must be read (there are secrets to look for). */
  get needsContent(): boolean {
    return this.secrets !== undefined && !this.secrets.empty;
  }

  file(file: string, size: number): void {
    if (size > this.limits.maxFileBytes) {
      throw new OutputRejectedError(
        `${file} is ${formatBytes(size)}, over the limit of ${formatBytes(this.limits.maxFileBytes)} per file (--max-file-size)`,
      );
    }
    this.totalBytes += size;
    if (this.totalBytes > this.limits.maxTaskBytes) {
      throw new OutputRejectedError(
        `the task's changes reach ${formatBytes(this.totalBytes)} at ${file}, over the limit of ${formatBytes(this.limits.maxTaskBytes)} per task (--max-task-size)`,
      );
    }
  }

  content(file: string, bytes: Buffer): void {
    const found = this.secrets?.find(bytes);
    if (found) {
      throw new OutputRejectedError(
        `${file} contains the value of ${found}, a secret handed to agents; the attempt is not committed`,
      );
    }
  }
}
