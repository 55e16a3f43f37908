import { createWriteStream, type WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { formatBytes } from './bytes.js';

/** A line longer than this is written out even before its end arrives. */
const MAX_PENDING = 64 * 1024;

/**
 * A log file that takes at most `maxBytes` and then one line saying the rest was dropped: output
 * an agent controls cannot fill the host's disk. Whole lines pass through `redact`, so a value
 * split across two chunks is still caught.
 */
export class CappedLog extends Writable {
  private readonly file: WriteStream;
  private written = 0;
  private full = false;
  private pending = '';

  constructor(
    path: string,
    private readonly maxBytes: number,
    private readonly redact: (text: string) => string = (text) => text,
  ) {
    super();
    this.file = createWriteStream(path, { flags: 'a' });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    this.pending += chunk.toString('utf8');
    const end =
      this.pending.length > MAX_PENDING ? this.pending.length : this.pending.lastIndexOf('\n') + 1;
    const lines = this.pending.slice(0, end);
    this.pending = this.pending.slice(end);
    this.append(lines, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.append(this.pending, done);
    this.pending = '';
  }

  private append(text: string, done: (error?: Error | null) => void): void {
    if (this.full || text === '') {
      done();
      return;
    }
    const chunk = Buffer.from(this.redact(text));
    const room = this.maxBytes - this.written;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.written += part.length;
    if (part.length < chunk.length) {
      this.full = true;
      const note = Buffer.from(`\n[log cut at ${formatBytes(this.maxBytes)}]\n`);
      this.file.write(Buffer.concat([part, note]), done);
    } else this.file.write(part, done);
  }

  /** Ends the log once everything written has reached the file. */
  close(): Promise<void> {
    return new Promise((resolve) => this.end(() => this.file.end(resolve)));
  }
}
