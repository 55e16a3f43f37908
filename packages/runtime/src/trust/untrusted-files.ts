import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lstat, open, readdir, rm } from 'node:fs/promises';
import { formatBytes } from '../util/bytes.js';

/** A file an agent could have written is not what the host expected: a link, a FIFO, too big. */
export class UntrustedFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UntrustedFileError';
  }
}

/**
 * Reads a file from a directory an agent can write, as data: the last component is never
 * followed if it is a link (O_NOFOLLOW), a FIFO or device is refused without blocking on it
 * (O_NONBLOCK), and more than `maxBytes` is refused without reading it. Returns undefined when
 * the file does not exist. The directory itself must be one the host created and the agent
 * cannot replace (a mount point, or a directory above the agent's reach).
 */
export async function readUntrusted(
  file: string | Buffer,
  maxBytes: number,
): Promise<Buffer | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new UntrustedFileError(`${file} is a symlink; not followed`);
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new UntrustedFileError(`${file} is not a regular file`);
    if (stats.size > maxBytes) {
      throw new UntrustedFileError(
        `${file} is ${formatBytes(stats.size)}, over ${formatBytes(maxBytes)}`,
      );
    }
    const content = await handle.readFile();
    if (content.length > maxBytes) throw new UntrustedFileError(`${file} grew while being read`);
    return content;
  } finally {
    await handle.close();
  }
}

const SLASH = Buffer.from('/');

/** `dir/name` for paths held as bytes (an agent's names need not be UTF-8). */
export function joinBytes(dir: Buffer, name: Buffer): Buffer {
  return dir.length === 0 ? name : Buffer.concat([dir, SLASH, name]);
}

/**
 * Deletes a tree an agent may have shaped, following no link. An agent can leave directories
 * without write or search permission (harmless to root, fatal to `rm` for anyone else), so
 * those are opened up first; chmod is applied only to entries seen as real directories. A tree
 * deeper than the kernel lets a path name (an agent can make one) goes through coreutils' `rm`,
 * which walks by file descriptor.
 */
export async function removeTree(target: string | Buffer): Promise<void> {
  try {
    await rm(target, { recursive: true, force: true });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENAMETOOLONG' && typeof target === 'string') return removeDeepTree(target);
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
  }
  await openUp(typeof target === 'string' ? Buffer.from(target) : target);
  await rm(target, { recursive: true, force: true });
}

async function openUp(target: Buffer): Promise<void> {
  const stats = await lstat(target).catch(() => undefined);
  if (!stats?.isDirectory()) return;
  // Seen as a directory by lstat, with no agent left to swap it: chmod cannot follow a link.
  await chmod(target, 0o700);
  for (const entry of await readdir(target, { withFileTypes: true, encoding: 'buffer' })) {
    if (entry.isDirectory()) await openUp(joinBytes(target, entry.name));
  }
}

function removeDeepTree(target: string): Promise<void> {
  const run = (command: string, args: string[]) =>
    new Promise<void>((resolve, reject) =>
      execFile(command, args, (error) => (error ? reject(error) : resolve())),
    );
  // Opening up first, as above: --one-file-system keeps both inside the tree's file system.
  return run('chmod', ['-R', 'u+rwx', '--', target])
    .catch(() => {})
    .then(() => run('rm', ['-rf', '--one-file-system', '--', target]));
}
