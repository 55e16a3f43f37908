import { constants } from 'node:fs';
import { chmod, lstat, open, readdir, rm } from 'node:fs/promises';
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

/**
 * Lists what of a tree an agent worked in host tools must never look into, run from the tree's
 * root: every entry named `.git` at any depth, never entered (a repository an agent made, with
 * its config and hooks, would be opened by git as an embedded repository; one whose HEAD is a
 * FIFO hangs git), special files (FIFOs, sockets, devices, which hang or mislead readers) and
 * every symlink with its target. No link is followed. GNU find walks the tree in its own process,
 * beside the orchestrator: at 15,000 files a walk in Node took 12-23 ms of the orchestrator's
 * thread per task. Records end in NUL: `g<TAB>path`, `s<TAB>path`, `l<TAB>path` then the link's
 * target; an empty record ends the list. `$1` names a file where no agent can reach: find writes
 * a line there per entry to remove, so a script can tell (`[ -s "$1" ]`) whether git may read
 * the tree before anything is removed.
 */
export const LIST_UNTRUSTED = `find . -mindepth 1 \\( -name .git -prune -printf 'g\\t%P\\0' -fprint "$1" \\) -o \\( -type l -printf 'l\\t%P\\0%l\\0' \\) -o \\( ! -type f ! -type d -printf 's\\t%P\\0' -fprint "$1" \\)
printf '\\0'`;

/** What `LIST_UNTRUSTED` found in a tree. */
export interface UntrustedEntries {
  /** Symlinks (relative path → target), never followed. */
  symlinks: Map<string, string>;
  /** Git metadata and special files, to be removed before any host tool reads the tree. */
  toRemove: string[];
}

/**
 * Reads `LIST_UNTRUSTED`'s records from the NUL-separated `output`; returns them and what the
 * output holds after the list's end.
 */
export function parseUntrusted(output: string): { entries: UntrustedEntries; rest: string } {
  const entries: UntrustedEntries = { symlinks: new Map(), toRemove: [] };
  let at = 0;
  const next = () => {
    const end = output.indexOf('\0', at);
    if (end < 0) throw new Error('the list of untrusted entries has no end');
    const field = output.slice(at, end);
    at = end + 1;
    return field;
  };
  for (let record = next(); record !== ''; record = next()) {
    if (record.startsWith('l\t')) entries.symlinks.set(record.slice(2), next());
    else entries.toRemove.push(record.slice(2));
  }
  return { entries, rest: output.slice(at) };
}

/** Removes the entries `parseUntrusted` found under `root`; returns their paths. */
export async function removeUntrusted(root: string, entries: UntrustedEntries): Promise<string[]> {
  for (const file of entries.toRemove) await removeTree(path.join(root, file));
  return entries.toRemove;
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
