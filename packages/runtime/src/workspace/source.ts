import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { printable } from '../util/printable.js';
import { GitError, git, gitAt, gitReason } from './git.js';

/**
 * The transports a source repository may come over. The hardened configuration allows none; a
 * repository the user names (`--repo`) is fetched over the usual ones, and only for that.
 */
export const SOURCE_TRANSPORTS = ['file', 'https', 'http', 'ssh', 'git'].flatMap((name) => [
  '-c',
  `protocol.${name}.allow=always`,
]);

/** Whether `--repo` (or a push target) names a URL, `scheme://...` or `user@host:path`. */
export const isUrl = (location: string) => /^[\w+.-]+:\/\/|^[\w.-]+@[\w.-]+:/.test(location);

/**
 * A URL as it may be shown and written down: without the credentials it may carry. A password
 * always goes; so does an http(s) user name, which is often a token (`https://<token>@host/`).
 * An ssh user (`ssh://git@host/`) is no secret and is needed to reach the repository again.
 */
export function withoutCredentials(url: string): string {
  const match = /^([\w+.-]+):\/\/([^/?#]*)@/.exec(url);
  if (!match) return url;
  const [whole, scheme = '', user = ''] = match;
  const kept = /^https?$/i.test(scheme) ? '' : `${user.split(':')[0]}@`;
  return `${scheme}://${kept}${url.slice(whole.length)}`;
}

/**
 * A repository must answer `git ls-remote` (reads only), or a one-line UsageError says git's
 * reason, naming the URL as `shown` (without credentials).
 */
export async function checkReachable(url: string, shown: string, what: string): Promise<void> {
  try {
    await gitAt(process.cwd(), [...SOURCE_TRANSPORTS, 'ls-remote', '--quiet', url, 'HEAD']);
  } catch (error) {
    const reason = error instanceof GitError ? gitReason(error.stderr) : '';
    throw new UsageError(
      `${what} ${shown}: cannot reach the repository${reason ? `: ${reason.replaceAll(url, shown)}` : ''}`,
    );
  }
}

/** A repository a run starts from, as `run --repo` and `--base` name it. */
export interface SourceRepository {
  /** What `git clone` takes: a local repository's git directory, or a URL. */
  location: string;
  /** The repository as the user named it (an absolute path, or the URL without credentials). */
  shown: string;
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
    if (!isUrl(repo)) throw new UsageError(`--repo ${repo}: no such directory, and not a URL`);
    const shown = withoutCredentials(repo);
    await checkReachable(repo, shown, '--repo');
    return { location: repo, shown, ref };
  }
  const location = path.resolve(repo);
  // A bare repository is named; a checkout is asked which repository it belongs to.
  const bare =
    existsSync(path.join(location, 'HEAD')) && existsSync(path.join(location, 'objects'));
  const ask = (args: string[]) =>
    bare ? git({ gitDir: location }, args, [0, 1, 128]) : gitAt(location, args, [0, 1, 128]);
  // The repository itself, also from a subdirectory or a linked worktree of it.
  const dir = await ask(['rev-parse', '--path-format=absolute', '--git-common-dir']);
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
  const gitDir = dir.stdout.trim();
  return { location: gitDir, shown: location, ref, commit: commit.stdout.trim(), gitDir };
}

/** How many of the uncommitted and untracked paths a note names before it says "and N more". */
const NAMED_PATHS = 3;

/**
 * What a run from a local checkout leaves out, in one line: the run starts from a commit, so
 * uncommitted changes and untracked files are not in it. Undefined for a clean checkout, a bare
 * repository or a URL. Reads only (`--no-optional-locks`: no index refresh is written back).
 */
export async function leftOut(source: SourceRepository): Promise<string | undefined> {
  if (!source.commit || source.shown === source.gitDir) return undefined;
  const status = await gitAt(
    source.shown,
    ['--no-optional-locks', 'status', '--porcelain=v1', '-z', '--untracked-files=normal'],
    [0, 128],
  );
  if (status.exitCode !== 0) return undefined;
  const changed: string[] = [];
  const untracked: string[] = [];
  const entries = status.stdout.split('\0');
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as string;
    if (entry.length < 4) continue;
    (entry.startsWith('??') ? untracked : changed).push(entry.slice(3));
    // A rename or copy is followed by the path it came from.
    if (/^[RC]/.test(entry)) i++;
  }
  if (changed.length + untracked.length === 0) return undefined;
  const named = (paths: string[], one: string, many: string) => {
    const shown = paths.slice(0, NAMED_PATHS).map(printable).join(', ');
    const more = paths.length > NAMED_PATHS ? `, and ${paths.length - NAMED_PATHS} more` : '';
    return `${paths.length} ${paths.length === 1 ? one : many} (${shown}${more})`;
  };
  const parts = [
    ...(changed.length ? [named(changed, 'uncommitted change', 'uncommitted changes')] : []),
    ...(untracked.length ? [named(untracked, 'untracked file', 'untracked files')] : []),
  ];
  // HEAD is said as the branch it is on, when it is on one.
  const branch =
    source.ref === 'HEAD'
      ? (await gitAt(source.shown, ['symbolic-ref', '--short', '-q', 'HEAD'], [0, 1])).stdout.trim()
      : '';
  const start = `${branch || source.ref} at ${source.commit.slice(0, 12)}`;
  return `${source.shown} has ${parts.join(' and ')} that the run leaves out: it starts from ${start}`;
}

/**
 * A URL source fetched before the run: a bare clone in a scratch directory under `parent`, so
 * that `--base` is resolved (or refused) before anything is planned, the planner can be shown
 * the codebase, and the run's own clone is a local one from it. `remove` deletes the scratch.
 */
export async function fetchSource(
  source: SourceRepository,
  parent: string,
): Promise<{ source: SourceRepository; remove: () => Promise<void> }> {
  if (source.commit) return { source, remove: async () => {} };
  await mkdir(parent, { recursive: true });
  // Absolute: git runs in the scratch, where a relative `--output` (`-o runs`) names nothing.
  const scratch = await mkdtemp(path.join(path.resolve(parent), '.source-'));
  const remove = () => rm(scratch, { recursive: true, force: true });
  try {
    const bare = path.join(scratch, 'repo.git');
    await gitAt(scratch, [
      ...SOURCE_TRANSPORTS,
      'clone',
      '--quiet',
      '--bare',
      '--template=',
      '--end-of-options',
      source.location,
      bare,
    ]).catch((error: unknown) => {
      const reason = (error as Error).message.replaceAll(source.location, source.shown);
      throw new UsageError(`--repo ${source.shown}: cannot clone: ${reason}`);
    });
    // Clone wrote the URL into the scratch's configuration: a credential in it goes at once.
    if (source.shown !== source.location)
      await git({ gitDir: bare }, ['config', '--unset-all', 'remote.origin.url'], [0, 5]);
    const commit = await git(
      { gitDir: bare },
      ['rev-parse', '--verify', '--quiet', '--end-of-options', `${source.ref}^{commit}`],
      [0, 1, 128],
    );
    if (commit.exitCode !== 0)
      throw new UsageError(`--base ${source.ref} does not name a commit in ${source.shown}`);
    return {
      source: { ...source, location: bare, commit: commit.stdout.trim() },
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** How much of a codebase the planner is shown: enough to plan in it, bounded for any size. */
export const CODEBASE_LIMITS = { paths: 1_500, readmeBytes: 8_192, manifestBytes: 4_096 } as const;

/** Files at the top of a repository that say what it is built with. */
const MANIFESTS = [
  'package.json',
  'pnpm-workspace.yaml',
  'tsconfig.json',
  'pyproject.toml',
  'requirements.txt',
  'setup.py',
  'Cargo.toml',
  'go.mod',
  'pom.xml',
  'build.gradle',
  'Gemfile',
  'composer.json',
  'Makefile',
];

/**
 * What the planner is told of the repository a run starts from: its tracked files at the base
 * (so what `.gitignore` keeps out is not there), capped, its README and its manifests, each cut
 * to a bound. A URL is read from the bare clone `fetchSource` made.
 */
export async function describeCodebase(source: SourceRepository): Promise<string | undefined> {
  // A local repository's location is its git directory; a fetched URL's, its bare clone.
  if (!source.commit) return undefined;
  const repo = { gitDir: source.location };
  const listed = await git(repo, ['ls-tree', '-r', '-z', '--name-only', source.commit]);
  const paths = listed.stdout.split('\0').filter(Boolean);
  const shown = paths.slice(0, CODEBASE_LIMITS.paths);
  const parts = [
    `The work starts from an existing repository (commit ${source.commit.slice(0, 12)}). Plan changes to it; do not recreate what is there.`,
    '',
    `Its files (${paths.length}${paths.length > shown.length ? `, the first ${shown.length} shown` : ''}):`,
    ...shown,
  ];
  const readme = paths.find((file) => /^readme(\.\w+)?$/i.test(file));
  for (const [file, limit] of [
    ...(readme ? [[readme, CODEBASE_LIMITS.readmeBytes] as const] : []),
    ...MANIFESTS.filter((name) => paths.includes(name)).map(
      (name) => [name, CODEBASE_LIMITS.manifestBytes] as const,
    ),
  ]) {
    const blob = await git(repo, ['cat-file', 'blob', `${source.commit}:${file}`]);
    const text = blob.stdout.length > limit ? `${blob.stdout.slice(0, limit)}\n[cut]` : blob.stdout;
    parts.push('', `${file}:`, text.trimEnd());
  }
  return parts.join('\n');
}
