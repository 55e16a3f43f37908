import { constants } from 'node:fs';
import { chmod, lstat, open, readdir, readlink, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
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
export async function readUntrusted(file: string, maxBytes: number): Promise<Buffer | undefined> {
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

/** What `sanitizeTree` found and did. */
export interface TreeScan {
  /** Symlinks (relative path → target), never followed. */
  symlinks: Map<string, string>;
  /** Paths removed: git metadata and special files. */
  removed: string[];
}

/**
 * Clears a tree an agent worked in of everything host tools must never look into: every entry
 * named `.git` at any depth (a repository an agent made, with its config and hooks, would be
 * opened by git as an embedded repository) and special files (FIFOs, sockets, devices, which
 * hang or mislead readers). Lists the symlinks it saw. Runs only once no agent process is alive.
 */
export async function sanitizeTree(root: string): Promise<TreeScan> {
  const scan: TreeScan = { symlinks: new Map(), removed: [] };
  const pending = [''];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
      const relative = dir ? `${dir}/${entry.name}` : entry.name;
      const full = path.join(root, relative);
      if (entry.name === '.git') {
        await removeTree(full);
        scan.removed.push(relative);
      } else if (entry.isDirectory()) pending.push(relative);
      else if (entry.isSymbolicLink()) scan.symlinks.set(relative, await readlink(full));
      else if (!entry.isFile()) {
        await unlink(full);
        scan.removed.push(relative);
      }
    }
  }
  return scan;
}

/**
 * Deletes a tree an agent may have shaped, following no link. An agent can leave directories
 * without write or search permission (harmless to root, fatal to `rm` for anyone else), so
 * those are opened up first; chmod is applied only to entries seen as real directories.
 */
export async function removeTree(target: string): Promise<void> {
  try {
    await rm(target, { recursive: true, force: true });
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
  }
  await openUp(target);
  await rm(target, { recursive: true, force: true });
}

async function openUp(target: string): Promise<void> {
  const stats = await lstat(target).catch(() => undefined);
  if (!stats?.isDirectory()) return;
  // Seen as a directory by lstat, with no agent left to swap it: chmod cannot follow a link.
  await chmod(target, 0o700);
  for (const entry of await readdir(target, { withFileTypes: true })) {
    if (entry.isDirectory()) await openUp(path.join(target, entry.name));
  }
}
