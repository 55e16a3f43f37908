import { accessSync, appendFileSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ENV } from '../contracts/env.js';
import { logLine } from '../run/run-log.js';

/** Container entrypoints report bad configuration in one line and exit 2, like the CLI. */
export function fail(message: string, code = 2): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

/** OUTPUT_DIR of the contract, created if missing. */
export function outputDir(env: NodeJS.ProcessEnv): string {
  const dir = path.resolve(env[ENV.OUTPUT_DIR] ?? '/output');
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    fail(
      `OUTPUT_DIR ${dir} is not writable by uid ${process.getuid?.()}: ${(error as NodeJS.ErrnoException).code}; mount a directory this user can write (docker run --user "$(id -u):$(id -g)" ...)`,
    );
  }
  return dir;
}

export function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** A log line on the container's output (what `docker logs` shows). */
export function consoleLog(line: string): void {
  process.stdout.write(logLine(line));
}

/** A log that goes to the container's output and to a file in OUTPUT_DIR. */
export function fileAndConsoleLog(file: string): (line: string) => void {
  return (line) => {
    consoleLog(line);
    appendFileSync(file, logLine(line));
  };
}
