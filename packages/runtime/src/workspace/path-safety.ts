import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';

export class WorkspaceEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkspaceEscapeError';
  }
}

/** True when `candidate` is `root` or lies below it (both absolute and normalised). */
export function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * Resolves a workspace-relative path for writing, refusing anything that lands outside the
 * workspace: `..` segments, absolute paths, or a parent directory that is a symlink pointing out.
 */
export async function resolveInside(root: string, relative: string): Promise<string> {
  const target = path.resolve(root, relative);
  if (path.isAbsolute(relative) || !isInside(root, target) || target === root) {
    throw new WorkspaceEscapeError(`path "${relative}" is outside the workspace`);
  }
  const realRoot = await realpath(root);
  let parent = path.dirname(target);
  // The nearest existing ancestor decides where the write really lands.
  while (true) {
    try {
      const realParent = await realpath(parent);
      if (!isInside(realRoot, realParent)) {
        throw new WorkspaceEscapeError(`path "${relative}" resolves outside the workspace`);
      }
      return target;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      parent = path.dirname(parent);
    }
  }
}

/**
 * Rejects symlinks among `files` (workspace-relative) that are absolute or point outside the
 * workspace: merged into the project they would read or overwrite files of the host.
 */
export async function assertNoEscapingSymlinks(
  root: string,
  files: readonly string[],
): Promise<void> {
  for (const file of files) {
    const full = path.join(root, file);
    const stats = await lstat(full).catch(() => undefined);
    if (!stats?.isSymbolicLink()) continue;
    const target = await readlink(full);
    if (path.isAbsolute(target) || !isInside(root, path.resolve(path.dirname(full), target))) {
      throw new WorkspaceEscapeError(`symlink "${file}" points outside the workspace (${target})`);
    }
  }
}
