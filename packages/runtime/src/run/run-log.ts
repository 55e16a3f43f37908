import { closeSync, openSync, writeSync } from 'node:fs';

/** `[YYYY-mm-dd HH:MM:SS] message`, the original system's log line, in UTC. */
export function logLine(message: string, date = new Date()): string {
  return `[${date.toISOString().slice(0, 19).replace('T', ' ')}] ${message}\n`;
}

/** `orchestrator.log`: a human-readable line per state change. */
export class RunLog {
  private fd: number | undefined;

  constructor(path: string) {
    this.fd = openSync(path, 'a');
  }

  write(message: string, date?: Date): void {
    if (this.fd !== undefined) writeSync(this.fd, logLine(message, date));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
