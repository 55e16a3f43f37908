import { existsSync, lstatSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isInside } from '../trust/path-safety.js';

/** Directories every sandbox gets empty and private, whatever else it hides. */
export const PRIVATE_DIRS = ['/tmp', '/run'] as const;

/** What a confined agent sees of the host besides its workspace and home. */
export interface Visibility {
  /** Directories replaced by empty ones: runs, repositories, homes, runtime sockets. */
  hidden: readonly string[];
  /** Directories inside hidden ones shown again read-only: the binaries agents need. */
  exposed: readonly string[];
}

const isDirectory = (dir: string) => existsSync(dir) && lstatSync(dir).isDirectory();

const isPackageBin = (dir: string) =>
  path.basename(dir) === '.bin' && path.basename(path.dirname(dir)) === 'node_modules';

/**
 * The top of the repository `dir` is in (the directory holding `.git`, found without running
 * git), and for a linked worktree the repository it belongs to as well: `../.env` beside the
 * directory a run started in is as secret as the directory itself. `dir` alone outside any
 * repository.
 */
export function repositoryDirs(dir: string): string[] {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const dotGit = path.join(current, '.git');
    const stats = existsSync(dotGit) ? lstatSync(dotGit) : undefined;
    if (stats?.isDirectory()) return [current];
    if (stats?.isFile()) {
      const gitDir = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim();
      const resolved = gitDir && path.resolve(current, gitDir);
      const main = resolved && /^(.+)\/\.git\/worktrees\/[^/]+$/.exec(resolved)?.[1];
      return [current, ...(main ? [main] : resolved ? [resolved] : [])];
    }
    if (current === path.dirname(current)) return [path.resolve(dir)];
  }
}

/** The homes on this machine an agent must never see: keys, cloud credentials, tokens. */
function homes(): string[] {
  return [os.homedir(), process.env.HOME ?? '', '/root', '/home'].filter((dir) =>
    path.isAbsolute(dir),
  );
}

/**
 * Where a binary needs to be seen from: its directory, and for one in a `bin` directory the
 * installation above it too (Node's holds its `lib`), unless that is refused (a home).
 */
function installDirs(binary: string): string[] {
  const dir = path.dirname(binary);
  return path.basename(dir) === 'bin' ? [path.dirname(dir), dir] : [dir];
}

/**
 * What a confined agent must not see, and what inside that it still needs. Hidden: the output
 * directory holding the run (its repository, journal, other slots, earlier runs and their
 * transcripts), the whole repository the orchestrator was started in and each repository the
 * run was given (`sources`), every home, and `/var/run` where it is its own directory (the
 * Docker socket). Exposed again read-only, each on its own: where `binaries` live (Claude
 * Code, Node's installation) and every PATH entry that lies in a hidden directory — the
 * entry itself, never its parent: `~/bin` on PATH shows `~/bin`, not the home. A directory is
 * never exposed if it holds a hidden one, or lies in the output directory. Nor is a
 * `node_modules/.bin` (pnpm and npm put the orchestrator's own first on PATH): its programs are
 * links and shims into the packages beside it, which stay hidden, so a `node` there would shadow
 * the machine's with one that cannot start.
 */
export function visibility(
  runRoot: string,
  binaries: readonly string[],
  pathEnv = process.env.PATH ?? '',
  sources: readonly string[] = [],
): Visibility {
  const outputDir = path.dirname(runRoot);
  const hidden = [
    ...new Set([
      outputDir,
      ...repositoryDirs(process.cwd()),
      ...sources.flatMap(repositoryDirs),
      ...homes(),
      '/var/run',
    ]),
  ].filter((dir) => dir !== '/' && isDirectory(dir));
  const emptied = [...PRIVATE_DIRS, ...hidden];
  const wanted = [
    ...binaries.flatMap(installDirs),
    ...pathEnv.split(':').filter((dir) => path.isAbsolute(dir) && !isPackageBin(dir)),
  ].map((dir) => path.resolve(dir));
  const exposable = [...new Set(wanted)].filter(
    (dir) =>
      isDirectory(dir) &&
      emptied.some((h) => isInside(h, dir) && h !== dir) &&
      !hidden.some((h) => isInside(dir, h)) &&
      !isInside(outputDir, dir),
  );
  // A directory already shown through another needs no mount of its own.
  const exposed = exposable.filter(
    (dir) => !exposable.some((other) => other !== dir && isInside(other, dir)),
  );
  return { hidden, exposed };
}
