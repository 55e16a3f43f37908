import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { git, gitAt } from './git.js';

/**
 * The transports a source repository may come over. The hardened configuration allows none; a
 * repository the user names (`--repo`) is fetched over the usual ones, and only for that.
 */
export const SOURCE_TRANSPORTS = ['file', 'https', 'http', 'ssh', 'git'].flatMap((name) => [
  '-c',
  `protocol.${name}.allow=always`,
]);

/** A repository a run starts from, as `run --repo` and `--base` name it. */
export interface SourceRepository {
  /** What `git clone` takes: an absolute path, or a URL. */
  location: string;
  /** The ref, branch, tag or commit to start from, as given. */
  ref: string;
  /** The commit it names, when it could be resolved before cloning (a local repository). */
  commit?: string;
  /** A local repository's git directory: where the result can be delivered. */
  gitDir?: string;
}

/**
 * Checks `--repo` and `--base` before anything is planned or written: a local path must be a
 * git repository in which the ref names a commit; a URL must answer `git ls-remote`. Reads only.
 */
export async function resolveSource(repo: string, ref = 'HEAD'): Promise<SourceRepository> {
  if (!existsSync(repo)) {
    if (!/^[\w+.-]+:\/\/|^[\w.-]+@[\w.-]+:/.test(repo))
      throw new UsageError(`--repo ${repo}: no such directory, and not a URL`);
    const answer = await gitAt(
      process.cwd(),
      [...SOURCE_TRANSPORTS, 'ls-remote', '--quiet', repo, 'HEAD'],
      [0, 1, 2, 128],
    );
    if (answer.exitCode !== 0) throw new UsageError(`--repo ${repo}: cannot reach the repository`);
    return { location: repo, ref };
  }
  const location = path.resolve(repo);
  // A bare repository is named; a checkout is asked which repository it belongs to.
  const bare =
    existsSync(path.join(location, 'HEAD')) && existsSync(path.join(location, 'objects'));
  const ask = (args: string[]) =>
    bare ? git({ gitDir: location }, args, [0, 1, 128]) : gitAt(location, args, [0, 1, 128]);
  const dir = await ask(['rev-parse', '--absolute-git-dir']);
  if (dir.exitCode !== 0) throw new UsageError(`--repo ${repo} is not a git repository`);
  const commit = await ask([
    'rev-parse',
    '--verify',
    '--quiet',
    '--end-of-options',
    `${ref}^{commit}`,
  ]);
  if (commit.exitCode !== 0)
    throw new UsageError(`--base ${ref} does not name a commit in ${repo}`);
  return { location, ref, commit: commit.stdout.trim(), gitDir: dir.stdout.trim() };
}
