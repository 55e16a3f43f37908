import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { type EventBody, type JournalEvent, JournalEventSchema } from '../contracts/events.js';

export class JournalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalError';
  }
}

/**
 * Reads `events.jsonl`. A torn last line (the orchestrator was killed mid-write) is dropped;
 * a bad line anywhere else means the journal was damaged and cannot be trusted.
 */
export function readJournal(path: string): { events: JournalEvent[]; validBytes: number } {
  const text = readFileSync(path, 'utf8');
  const events: JournalEvent[] = [];
  let offset = 0;
  while (offset < text.length) {
    const end = text.indexOf('\n', offset);
    if (end === -1) break; // torn tail
    const line = text.slice(offset, end);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new JournalError(`${path}: line ${events.length + 1} is not JSON`);
    }
    const event = JournalEventSchema.safeParse(parsed);
    if (!event.success)
      throw new JournalError(`${path}: line ${events.length + 1} is not a journal event`);
    events.push(event.data as JournalEvent);
    offset = end + 1;
  }
  return { events, validBytes: Buffer.byteLength(text.slice(0, offset)) };
}

/**
 * Append-only journal of state changes. Each event is written with one unbuffered `write`
 * before the caller acts on it, so a killed orchestrator loses nothing it acted upon.
 */
export class Journal {
  private constructor(
    private fd: number | undefined,
    private seq: number,
    private readonly now: () => number,
  ) {}

  static create(path: string, now: () => number = Date.now): Journal {
    return new Journal(openSync(path, 'wx'), 0, now);
  }

  /** Opens an existing journal for appending, cutting off a torn last line first. */
  static reopen(
    path: string,
    now: () => number = Date.now,
  ): { journal: Journal; events: JournalEvent[] } {
    const { events, validBytes } = readJournal(path);
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, validBytes);
    closeSync(fd);
    const last = events.at(-1)?.seq ?? 0;
    return { journal: new Journal(openSync(path, 'a'), last, now), events };
  }

  append(body: EventBody): JournalEvent {
    if (this.fd === undefined) throw new JournalError('journal is closed');
    const event = {
      seq: this.seq + 1,
      time: new Date(this.now()).toISOString(),
      ...body,
    } as JournalEvent;
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    this.seq = event.seq;
    return event;
  }

  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }
}
