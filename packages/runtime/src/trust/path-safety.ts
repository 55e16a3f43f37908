import { mkdir, realpath } from 'node:fs/promises';
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
 * Where an absolute path really leads: links resolved for the part that exists, the rest (a file
 * about to be created) appended as written. The nearest existing ancestor decides where a write
 * lands, so a link anywhere on the way is followed before a path is judged.
 */
export async function realPathOf(target: string): Promise<string> {
  const missing: string[] = [];
  let current = path.resolve(target);
  while (true) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw error;
      missing.push(path.basename(current));
      current = parent;
    }
  }
}

/** True when `target`, with every link on its way resolved, lies inside `root`. */
export async function resolvesInside(root: string, target: string): Promise<boolean> {
  const [realRoot, realTarget] = await Promise.all([realpath(root), realPathOf(target)]);
  return isInside(realRoot, realTarget);
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
  if (!(await resolvesInside(root, path.dirname(target)))) {
    throw new WorkspaceEscapeError(`path "${relative}" resolves outside the workspace`);
  }
  return target;
}

/**
 * Makes directory `dir` and what is missing above it, below `root` only, one level at a time:
 * if `root` went (a run directory deleted mid-run), this fails with ENOENT instead of making it
 * again as `mkdir -p` would.
 */
export async function makeDirsInside(root: string, dir: string): Promise<void> {
  if (!isInside(root, dir)) throw new WorkspaceEscapeError(`${dir} is not inside ${root}`);
  let current = root;
  for (const part of path.relative(root, dir).split(path.sep).filter(Boolean)) {
    current = path.join(current, part);
    await mkdir(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
}
