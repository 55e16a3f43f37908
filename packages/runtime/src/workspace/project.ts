import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { INTEGRATION_BRANCH } from '../contracts/run-layout.js';
import { UsageError } from '../errors.js';
import { GitError, type GitTarget, git, gitAt, gitScript } from './git.js';
import { SOURCE_TRANSPORTS, type SourceRepository } from './source.js';

export type MergeResult =
  | { merged: true; mergeCommit: string }
  | { merged: false; conflictFiles: string[] };

const OID = /^[0-9a-f]{40,64}$/;

/**
 * Attributes that outrank any `.gitattributes` an agent commits: merges use git's own text
 * merge (an agent's `merge=union` would turn every conflict into a silent concatenation), no
 * filter, diff or encoding driver is looked up for agent files, and files are stored and
 * checked out byte for byte (no line-ending conversion, no `$Id$` expansion).
 */
const HOST_ATTRIBUTES = '* !merge !filter !diff !working-tree-encoding -text !eol !ident\n';

/**
 * Merges commits into the integration branch at $1 without touching any checkout, one after
 * another: merge-tree computes each merge, commit-tree records it on top of the previous one,
 * and one compare-and-swap update-ref publishes them all. Arguments after $1 come in pairs
 * (commit, message). Prints `merged <commit>` or `conflict <tip it conflicted with>` per pair;
 * a conflicting commit is skipped and nothing of it is written.
 */
const MERGE_COMMITS = `
base=$1; shift
tip=$base
while [ $# -gt 1 ]; do
  if tree=$(git merge-tree --write-tree --no-messages "$tip" "$1"); then
    tip=$(git commit-tree "$tree" -p "$tip" -p "$1" -m "$2")
    echo "merged $tip"
  elif [ $? -eq 1 ]; then
    echo "conflict $tip"
  else
    exit 2
  fi
  shift 2
done
[ "$tip" = "$base" ] || git update-ref refs/heads/${INTEGRATION_BRANCH} "$tip" "$base"
`;

/**
 * Tree $2 with the paths after $3 as commit $3 has them, through a scratch index at $1 (removed
 * after): the paths go from the tree, then what $3 holds under them comes in. Prints the tree.
 */
const TREE_WITH_PATHS_FROM = `
export GIT_INDEX_FILE="$1" GIT_LITERAL_PATHSPECS=1
tree=$2 from=$3; shift 3
trap 'rm -f "$GIT_INDEX_FILE"' EXIT
git read-tree "$tree"
git rm -r -q --cached --ignore-unmatch -- "$@"
git ls-tree -r -z "$from" -- "$@" | git update-index -z --index-info
git write-tree
`;

/** For each file after $1 (the integration tip): the task whose merge last changed it. */
const TASKS_TOUCHING = `
tip=$1; shift
for file; do
  git log -1 --first-parent --format='%(trailers:key=Task-Id,valueonly,separator=%x2C)' "$tip" -- "$file"
done
`;

/** Bundles commit $2 as ref $1 into file $3, less the history of $4 if given. */
const WRITE_BUNDLE = `
git update-ref "$1" "$2"
status=0
if [ -n "$4" ]; then
  git bundle create --quiet "$3" "$1" "^$4" || status=$?
else
  git bundle create --quiet "$3" "$1" || status=$?
fi
git update-ref -d "$1"
exit $status
`;

/**
 * Reading a bundle is a fetch from a local file, the one transport the hardened configuration
 * lets through, for these calls only; every object fetched is checked by git's fsck.
 */
export const FETCH_BUNDLE_CONFIG = [
  '-c',
  'protocol.file.allow=always',
  '-c',
  'transfer.fsckObjects=true',
  '-c',
  'fetch.fsckObjects=true',
  // Paths git refuses to check out are errors here too, not warnings.
  '-c',
  'fetch.fsck.hasDotgit=error',
  '-c',
  'fetch.fsck.hasDotdot=error',
] as const;

/** Merges queued while one batch runs go together in the next. */
const MAX_MERGE_BATCH = 64;

/** Merges published between two rounds of repository upkeep. */
const UPKEEP_EVERY_MERGES = 200;

/**
 * Repository upkeep, git's own: every task commit and merge writes its trees whole, as loose
 * objects, so a run's loose objects grow with the square of its size unless packed (trees delta
 * well against their previous versions). `loose-objects` deletes the loose copies the previous
 * round packed, then packs the rest; `pack-refs` moves task branches into one file; the
 * commit-graph speeds the merge-base walks every merge makes. All of it is safe beside the
 * run's writers: git deletes a loose object only once it is in a pack.
 */
const UPKEEP = [
  'maintenance',
  'run',
  '--quiet',
  '--task=loose-objects',
  '--task=pack-refs',
  '--task=commit-graph',
];

interface QueuedMerge {
  commit: string;
  message: string;
  settle: (result: MergeResult | Error) => void;
}

/**
 * The run's git repository. Its git directory lives only here, where no agent can reach; the
 * workspaces agents work in are plain directories (slots.ts) whose indexes it keeps.
 *
 * `main` is the integration branch. A task's changes are committed as `task/<id>` on top of the
 * integration commit its workspace was prepared at, then merged with a merge commit computed by
 * `git merge-tree` and published with a compare-and-swap `update-ref`, so the project's own
 * checkout is never touched mid-run and a conflict is reported, never resolved by picking a side.
 */
export class Project {
  private readonly queue: QueuedMerge[] = [];
  private merging = false;
  /** Merges published between two rounds of upkeep. */
  upkeepEvery = UPKEEP_EVERY_MERGES;
  private mergesSinceUpkeep = 0;
  /** The round of upkeep under way, if any; it runs beside merges, never ahead of them. */
  private upkeeping: Promise<void> | undefined;
  private upkeepError: Error | undefined;
  readonly gitDir: string;

  private constructor(
    readonly dir: string,
    private mainHead: string,
  ) {
    this.gitDir = path.join(dir, '.git');
  }

  /** A new repository at `dir` whose integration branch starts with an empty commit. */
  static async init(dir: string, initialMessage: string): Promise<Project> {
    const gitDir = await Project.create(dir);
    await git({ gitDir, workTree: dir }, [
      'commit',
      '--quiet',
      '--allow-empty',
      '--no-verify',
      '-m',
      initialMessage,
    ]);
    return Project.open(dir);
  }

  /**
   * A new repository at `dir` holding a bundle's history (the orchestrator's, checked by fsck),
   * its integration branch at `commit`: how a job on another machine starts from its base.
   */
  static async fromBundle(dir: string, bundle: string, commit: string): Promise<Project> {
    const gitDir = await Project.create(dir);
    await git({ gitDir }, [
      ...FETCH_BUNDLE_CONFIG,
      'fetch',
      '--quiet',
      '--no-tags',
      '--no-write-fetch-head',
      bundle,
      '+refs/*:refs/bundle/*',
    ]);
    await git({ gitDir }, ['update-ref', `refs/heads/${INTEGRATION_BRANCH}`, commit]);
    return Project.open(dir);
  }

  /**
   * A new repository at `dir` holding a source repository's history, its integration branch at
   * the commit the run starts from. A local source is cloned with its objects hard-linked where
   * the file system allows, so nothing of its history is copied; nothing of its configuration,
   * hooks or working tree is taken, and it is only read. Its main is the resolved base.
   */
  static async fromRepository(dir: string, source: SourceRepository): Promise<Project> {
    await gitAt(path.dirname(dir), [
      ...SOURCE_TRANSPORTS,
      'clone',
      '--quiet',
      '--no-checkout',
      '--template=',
      '--origin',
      'source',
      '--end-of-options',
      source.location,
      dir,
    ]);
    const gitDir = path.join(dir, '.git');
    await Project.configure(gitDir);
    const resolve = async (name: string) => {
      const found = await git(
        { gitDir },
        ['rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`],
        [0, 1, 128],
      );
      return found.exitCode === 0 ? found.stdout.trim() : undefined;
    };
    const base =
      source.commit ?? (await resolve(source.ref)) ?? (await resolve(`source/${source.ref}`));
    if (!base)
      throw new UsageError(`--base ${source.ref} does not name a commit in ${source.shown}`);
    // The project's own branches are main and the tasks': the clone's checkout branch goes.
    await gitScript(
      { gitDir },
      'start-from-base',
      `
git symbolic-ref HEAD refs/heads/${INTEGRATION_BRANCH}
git update-ref refs/heads/${INTEGRATION_BRANCH} "$1"
git for-each-ref --format='%(refname)' refs/heads | while read -r ref; do
  [ "$ref" = refs/heads/${INTEGRATION_BRANCH} ] || git update-ref -d "$ref"
done
`,
      [base],
    );
    return Project.open(dir);
  }

  /**
   * What of the integration commit a run leaves as it is, said in a line each: submodules are
   * kept as the commits they point at and never checked out into workspaces; Git LFS files are
   * their pointers (no filter runs on agents' files), so agents see and keep the pointers.
   */
  async leftAsIs(): Promise<string[]> {
    const notes: string[] = [];
    const { stdout: tree } = await git(this.repo, ['ls-tree', '-r', '-z', this.mainHead]);
    const submodules = tree
      .split('\0')
      .filter((entry) => entry.startsWith('160000 '))
      .map((entry) => entry.slice(entry.indexOf('\t') + 1));
    if (submodules.length > 0)
      notes.push(
        `${submodules.length} submodule${submodules.length === 1 ? '' : 's'} (${submodules.slice(0, 3).join(', ')}${submodules.length > 3 ? ', ...' : ''}) kept at the commits they point at, not checked out for agents`,
      );
    const lfs = await git(
      this.repo,
      ['grep', '-l', '-F', 'filter=lfs', this.mainHead, '--', ':(glob)**/.gitattributes'],
      [0, 1],
    );
    if (lfs.exitCode === 0)
      notes.push(
        'Git LFS files are kept as their pointers: agents see the pointers, not the content, and no LFS object is fetched',
      );
    return notes;
  }

  private static async create(dir: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const gitDir = path.join(dir, '.git');
    await git({ gitDir, workTree: dir }, [
      'init',
      '--quiet',
      '--template=',
      `--initial-branch=${INTEGRATION_BRANCH}`,
    ]);
    await Project.configure(gitDir);
    return gitDir;
  }

  /** The repository settings a run relies on, and the attributes that outrank any agent's. */
  private static async configure(gitDir: string): Promise<void> {
    for (const [key, value] of [
      ['gc.auto', '0'], // no gc of git's choosing: the run packs by its own upkeep (UPKEEP)
      // Branch history is the journal's: a reflog file per task branch only fills the disk.
      ['core.logAllRefUpdates', 'false'],
      ['core.autocrlf', 'false'],
      ['commit.gpgsign', 'false'],
    ] as const) {
      await git({ gitDir }, ['config', key, value]);
    }
    await mkdir(path.join(gitDir, 'info'), { recursive: true });
    await writeFile(path.join(gitDir, 'info', 'attributes'), HOST_ATTRIBUTES);
  }

  static async open(dir: string): Promise<Project> {
    const { stdout } = await git({ gitDir: path.join(dir, '.git') }, [
      'rev-parse',
      '--verify',
      `refs/heads/${INTEGRATION_BRANCH}`,
    ]);
    return new Project(dir, stdout.trim());
  }

  /** The integration commit: every task merged so far. */
  get head(): string {
    return this.mainHead;
  }

  private get repo(): GitTarget {
    return { gitDir: this.gitDir };
  }

  /** Merges a task commit into `main`; merges requested meanwhile are batched into one publish. */
  merge(commit: string, message: string): Promise<MergeResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        commit,
        message,
        settle: (result) => (result instanceof Error ? reject(result) : resolve(result)),
      });
      void this.drainMerges();
    });
  }

  private async drainMerges(): Promise<void> {
    if (this.merging) return;
    this.merging = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_MERGE_BATCH);
        try {
          const results = await this.mergeBatch(batch);
          for (const [i, item] of batch.entries()) item.settle(results[i] as MergeResult);
          this.mergesSinceUpkeep += batch.length;
          if (this.mergesSinceUpkeep >= this.upkeepEvery && !this.upkeeping) {
            this.mergesSinceUpkeep = 0;
            this.upkeeping = this.upkeep().finally(() => {
              this.upkeeping = undefined;
            });
          }
        } catch (error) {
          for (const item of batch)
            item.settle(error instanceof Error ? error : new Error(String(error)));
        }
      }
    } finally {
      this.merging = false;
    }
  }

  private async mergeBatch(batch: readonly QueuedMerge[]): Promise<MergeResult[]> {
    const args = [this.mainHead, ...batch.flatMap((m) => [m.commit, m.message])];
    const { stdout } = await gitScript(this.repo, 'merge-commits', MERGE_COMMITS, args);
    const lines = stdout.trim().split('\n');
    if (lines.length !== batch.length)
      throw new GitError('merge-commits', 0, `unexpected output: ${stdout}`);
    const results: MergeResult[] = [];
    for (const [i, line] of lines.entries()) {
      const [outcome, oid = ''] = line.split(' ');
      if (!OID.test(oid)) throw new GitError('merge-commits', 0, `unexpected output: ${line}`);
      if (outcome === 'merged') {
        this.mainHead = oid;
        results.push({ merged: true, mergeCommit: oid });
      } else {
        results.push({
          merged: false,
          conflictFiles: await this.conflictedFiles(oid, batch[i]?.commit ?? ''),
        });
      }
    }
    return results;
  }

  private async upkeep(): Promise<void> {
    await git(this.repo, UPKEEP, [0], 'background').catch((error: Error) => {
      this.upkeepError ??= error;
    });
  }

  /**
   * Packs what the run wrote, once no task is in flight: after the round under way, one more
   * (its `loose-objects` deletes the copies the last round packed, then packs what is left) and
   * a last deletion. Throws if any round failed; the repository is whole either way, only larger.
   */
  async compact(): Promise<void> {
    await this.upkeeping;
    await this.upkeep();
    await git(this.repo, ['prune-packed', '--quiet'], [0], 'background').catch((error: Error) => {
      this.upkeepError ??= error;
    });
    const error = this.upkeepError;
    this.upkeepError = undefined;
    if (error) throw error;
  }

  /**
   * The tree `commit` would merge into the integration branch as, were it merged now; nothing
   * is published. What `--verify` checks before the real merge.
   */
  async previewMerge(
    commit: string,
  ): Promise<{ merged: true; tree: string } | { merged: false; conflictFiles: string[] }> {
    const tip = this.mainHead;
    const { stdout, exitCode } = await git(
      this.repo,
      ['merge-tree', '--write-tree', '--no-messages', tip, commit],
      [0, 1],
    );
    const tree = stdout.trim();
    if (exitCode === 0 && OID.test(tree)) return { merged: true, tree };
    return { merged: false, conflictFiles: await this.conflictedFiles(tip, commit) };
  }

  /** The paths that conflict when merging `commit` into `tip` (conflicts are rare: asked apart). */
  private async conflictedFiles(tip: string, commit: string): Promise<string[]> {
    const { stdout } = await git(
      this.repo,
      ['merge-tree', '--write-tree', '--name-only', '-z', '--no-messages', tip, commit],
      [1],
    );
    const [tree = '', ...names] = stdout.split('\0');
    // git 2.39 also exits 1 on a bad revision; a conflict starts with the merged tree's id.
    if (!OID.test(tree)) throw new GitError('merge-tree', 1, stdout);
    return [...new Set(names.filter(Boolean))];
  }

  /**
   * `paths` as they are at the integration commit, each checked to be there: a typo in an option
   * naming them (`flag`) is an error, not a check that silently takes nothing.
   */
  async existingPaths(paths: readonly string[], flag: string): Promise<string[]> {
    for (const file of paths) {
      const { exitCode } = await git(
        this.repo,
        ['cat-file', '-e', `${this.mainHead}:${file}`],
        [0, 128],
      );
      if (exitCode !== 0)
        throw new UsageError(
          `${flag}: ${file} is not in the repository at ${this.mainHead.slice(0, 12)}`,
        );
    }
    return [...paths];
  }

  /**
   * The tree `tree` with `paths` as they are in `from` (gone where `from` has none): what a check
   * that trusts only its own files at the run's start runs on. Nothing is published.
   */
  async treeWithPathsFrom(tree: string, from: string, paths: readonly string[]): Promise<string> {
    const { stdout } = await gitScript(this.repo, 'tree-with-paths-from', TREE_WITH_PATHS_FROM, [
      path.join(this.gitDir, `check-${process.pid}-${Date.now()}.index`),
      tree,
      from,
      ...paths,
    ]);
    const result = stdout.trim();
    if (!OID.test(result))
      throw new GitError('tree-with-paths-from', 0, `unexpected output: ${result}`);
    return result;
  }

  /** The tasks whose merges last changed `files` on the integration branch. */
  async tasksTouching(files: readonly string[]): Promise<string[]> {
    if (files.length === 0) return [];
    const { stdout } = await gitScript(this.repo, 'tasks-touching', TASKS_TOUCHING, [
      this.mainHead,
      ...files,
    ]);
    return [...new Set(stdout.split(/[\n,]/).map((id) => id.trim()))].filter(Boolean);
  }

  /** The paths a commit changed against its first parent. */
  async changedFiles(commit: string): Promise<string[]> {
    const { stdout } = await git(this.repo, [
      'diff-tree',
      '--no-commit-id',
      '--name-only',
      '-r',
      '-z',
      '--root',
      commit,
    ]);
    return stdout.split('\0').filter(Boolean);
  }

  /** True when `commit` is already part of the integration branch. */
  async contains(commit: string): Promise<boolean> {
    const { exitCode } = await git(
      this.repo,
      ['merge-base', '--is-ancestor', commit, this.mainHead],
      [0, 1, 128],
    );
    return exitCode === 0;
  }

  /** The commit `main` points at in the repository (the published truth, not the cached head). */
  async publishedHead(): Promise<string> {
    const { stdout } = await git(this.repo, [
      'rev-parse',
      '--verify',
      `refs/heads/${INTEGRATION_BRANCH}`,
    ]);
    return stdout.trim();
  }

  /**
   * Writes `commit` and its history (less `exclude`'s, a prerequisite the reader must have) to a
   * bundle, under `ref`. Git bundles refs, not commits, so the ref exists only while bundling.
   */
  async writeBundle(file: string, ref: string, commit: string, exclude?: string): Promise<void> {
    await gitScript(this.repo, 'write-bundle', WRITE_BUNDLE, [ref, commit, file, exclude ?? '']);
  }

  /**
   * Removes what a killed git leaves in the repository at `dir`: lock files (`main.lock`,
   * `HEAD.lock`, `packed-refs.lock`, index locks, the upkeep's `objects/maintenance.lock`, after
   * which every later round would fail) and half-written packs. Only for a caller that has proved
   * no git is running on it: the run's lock is held and no process works in the run directory.
   * Returns what it removed, relative to the git directory.
   */
  static async removeStaleLocks(dir: string): Promise<string[]> {
    const gitDir = path.join(dir, '.git');
    const removed: string[] = [];
    const leftover = (relative: string, name: string) =>
      name.endsWith('.lock') || (relative.startsWith('objects/pack/') && name.startsWith('tmp_'));
    const visit = async (relativeDir: string): Promise<void> => {
      const entries = await readdir(path.join(gitDir, relativeDir), {
        withFileTypes: true,
      }).catch(() => []);
      for (const entry of entries) {
        const relative = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
        // Loose objects are written whole and renamed into place: no leftovers among them.
        const objectsFanout = relativeDir === 'objects' && /^[0-9a-f]{2}$/.test(entry.name);
        if (entry.isDirectory() && !objectsFanout) await visit(relative);
        else if (entry.isFile() && leftover(relative, entry.name)) {
          await rm(path.join(gitDir, relative), { force: true });
          removed.push(relative);
        }
      }
    };
    await visit('');
    return removed;
  }

  /** Brings the project's own checkout up to the integration branch (done once a run ends). */
  async checkoutHead(): Promise<void> {
    await git({ gitDir: this.gitDir, workTree: this.dir }, [
      'reset',
      '--quiet',
      '--hard',
      INTEGRATION_BRANCH,
    ]);
  }
}
