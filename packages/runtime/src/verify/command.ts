import { execFile } from 'node:child_process';
import { UsageError } from '../errors.js';

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=\S*$/;
/** Words a shell reads as more than a program name: those commands are not second-guessed. */
const SHELL_SYNTAX = /[$`'"\\(){}<>|;&*?[\]~]/;

/**
 * The program a verify command starts, where it can be told without a shell: its first word
 * after any `NAME=value` assignments. Undefined for a path (the run may create it) or for a
 * word the shell would expand.
 */
export function verifyProgram(command: string): string | undefined {
  const words = command.trim().split(/\s+/);
  const first = words.find((word) => !ASSIGNMENT.test(word));
  if (!first || first.includes('/') || SHELL_SYNTAX.test(first)) return undefined;
  return first;
}

/** `command -v` in a POSIX shell: true for a builtin, a keyword or a program on PATH. */
export const SHELL_FINDS = 'command -v -- "$1" >/dev/null';

/** Whether this machine's shell finds `program` (the local backend's sandboxes see its PATH). */
export function hostFinds(program: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', SHELL_FINDS, 'sh', program], { timeout: 10_000 }, (error) =>
      resolve(!error),
    );
  });
}

/**
 * Refuses a verify command whose program is found nowhere, before the run writes anything:
 * otherwise every attempt would fail its check and be retried for nothing.
 */
export async function checkVerifyProgram(
  command: string,
  finds: (program: string) => Promise<boolean>,
  where: string,
  flag = '--verify',
): Promise<void> {
  const program = verifyProgram(command);
  if (program && !(await finds(program)))
    throw new UsageError(`${flag}: command not found: ${program} (looked ${where})`);
}
