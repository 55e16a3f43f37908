import {
  accessSync,
  appendFileSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statfsSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { errnoText } from '../errors.js';
import { gitSyncAt } from '../workspace/git.js';
import { RunDirError } from './run-dir.js';

/**
 * File systems that only look like directories: the kernel's views (proc, sysfs, cgroups,
 * debug and trace), where writes mean something else or never end (Node's recursive mkdir spins
 * forever on /proc).
 */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x1cd1, 'devpts'],
  [0xcafe4a11, 'bpf'],
  [0x6165676c, 'pstore'],
  [0x62656570, 'configfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x19800202, 'mqueue'],
  [0x6e736673, 'nsfs'],
  [0xf97cff8c, 'selinuxfs'],
]);

/** The nearest part of `dir` that exists (links followed: the path is the user's own). */
function existingAncestor(dir: string): { dir: string; isDirectory: boolean } {
  let current = dir;
  while (true) {
    try {
      return { dir: current, isDirectory: statSync(current).isDirectory() };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const parent = path.dirname(current);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === current) throw error;
      current = parent;
    }
  }
}

/**
 * Checks, writing nothing, that runs can be written under `outputDir` before any work (or model
 * spending) starts: it must be a writable directory on a real file system, or creatable in one.
 * Throws RunDirError (exit 2) in one line naming the problem.
 */
export function checkOutputDir(outputDir: string): void {
  const dir = path.resolve(outputDir);
  const fail = (why: string) => new RunDirError(`cannot write runs to ${outputDir}: ${why}`);
  if (dir === '/dev' || dir.startsWith('/dev/')) throw fail('it is under /dev');
  let nearest: { dir: string; isDirectory: boolean };
  try {
    nearest = existingAncestor(dir);
  } catch (error) {
    throw fail((error as NodeJS.ErrnoException).code ?? String(error));
  }
  if (!nearest.isDirectory) throw fail(`${nearest.dir} is not a directory`);
  const kind = PSEUDO_FILE_SYSTEMS.get(statfsSync(nearest.dir).type);
  if (kind) throw fail(`${nearest.dir} is on ${kind}, not a file system for files`);
  try {
    accessSync(nearest.dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw fail(errnoText(code) ?? String(code));
  }
}

/** Checks `outputDir` as `checkOutputDir` does, then creates it. */
export function prepareOutputDir(outputDir: string): void {
  checkOutputDir(outputDir);
  try {
    mkdirSync(outputDir, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RunDirError(`cannot write runs to ${outputDir}: ${errnoText(code) ?? String(code)}`);
  }
  excludeFromRepository(outputDir);
}

/**
 * Keeps runs out of `git status` of the repository they are written in (`./runs` from inside the
 * user's checkout): the directory is added to that repository's `info/exclude` unless git
 * already ignores it. Never `.gitignore`, which is tracked; nothing else of the repository is
 * touched. Returns the pattern added, if any.
 */
export function excludeFromRepository(outputDir: string): string | undefined {
  const top = gitSyncAt(outputDir, ['rev-parse', '--show-toplevel']);
  if (!top) return undefined;
  const relative = path.relative(realpathSync(top), realpathSync(outputDir));
  // A name with a line break would write a second pattern: such a directory is left as it is.
  if (!relative || relative.startsWith('..') || /[\r\n]/.test(relative)) return undefined;
  const posix = relative.split(path.sep).join('/');
  if (gitSyncAt(top, ['check-ignore', '-q', '--', `${posix}/`]) !== undefined) return undefined;
  const excludeFile = gitSyncAt(top, [
    'rev-parse',
    '--path-format=absolute',
    '--git-path',
    'info/exclude',
  ]);
  if (!excludeFile) return undefined;
  // Anchored at the top, as a directory, with git's pattern characters taken literally.
  const pattern = `/${posix.replace(/[\\*?[\]!#]/g, (c) => `\\${c}`)}/`;
  mkdirSync(path.dirname(excludeFile), { recursive: true });
  const unended = existsSync(excludeFile) && !readFileSync(excludeFile, 'utf8').endsWith('\n');
  appendFileSync(excludeFile, `${unended ? '\n' : ''}${pattern}\n`);
  return pattern;
}
