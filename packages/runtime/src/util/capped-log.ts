import { createWriteStream, type WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { formatBytes } from './bytes.js';

/**
 * A log file that takes at most `maxBytes` and then one line saying the rest was dropped: output
 * an agent controls cannot fill the host's disk.
 */
export class CappedLog extends Writable {
  private readonly file: WriteStream;
  private written = 0;
  private full = false;

  constructor(
    path: string,
    private readonly maxBytes: number,
  ) {
    super();
    this.file = createWriteStream(path, { flags: 'a' });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    if (this.full) {
      done();
      return;
    }
    const room = this.maxBytes - this.written;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.written += part.length;
    if (part.length < chunk.length) {
      this.full = true;
      this.file.write(
        Buffer.concat([part, Buffer.from(`\n[log cut at ${formatBytes(this.maxBytes)}]\n`)]),
        done,
      );
    } else this.file.write(part, done);
  }

  /** Ends the log once everything written has reached the file. */
  close(): Promise<void> {
    return new Promise((resolve) => this.end(() => this.file.end(resolve)));
  }
}
