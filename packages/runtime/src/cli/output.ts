/**
 * Everything the CLI says goes through here. A reader that goes away (`| head`) closes the
 * output, not the run: Node ignores SIGPIPE, so a closed pipe is an EPIPE error on the stream;
 * from then on writes to it are dropped, and the run ends with its own exit code and records.
 */

const closed = new Set<NodeJS.WritableStream>();

/**
 * Watches stdout and stderr for a reader that has gone. Any other stream error stays fatal (it
 * reaches the process's uncaughtException handler).
 */
export function watchOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && !closed.has(stream)) throw error;
      closed.add(stream);
    });
  }
}

/** False once the stream's reader has gone. */
export function isOpen(stream: NodeJS.WritableStream): boolean {
  return !closed.has(stream);
}

function write(stream: NodeJS.WritableStream, text: string): void {
  if (!closed.has(stream)) stream.write(text);
}

/** Writes to stdout, unless its reader has gone. */
export const out = (text: string): void => write(process.stdout, text);

/** Writes to stderr, unless its reader has gone. */
export const err = (text: string): void => write(process.stderr, text);
