/** Bad input or configuration, found before or during a run: one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes, as documented: the contract scripts rely on. */
export const EXIT = {
  succeeded: 0,
  failed: 1,
  usage: 2,
  cancelled: 130,
} as const;
