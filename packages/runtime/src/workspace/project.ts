import { mkdir, rm } from 'node:fs/promises';
import { INTEGRATION_BRANCH, taskBranch } from '../contracts/run-layout.js';
import { GitError, git, gitScript } from './git.js';
import { assertNoEscapingSymlinks } from './path-safety.js';

export interface TaskCommit {
  commit: string;
  files: string[];
}

export type MergeResult =
  | { merged: true; mergeCommit: string }
  | { merged: false; conflictFiles: string[] };

const OID = /^[0-9a-f]{40,64}$/;

/**
 * Points the worktree $1 at a fresh `task/<id>` ($2) at the integration commit $3, dropping every
 * leftover of the slot's previous task, ignored files included. Another worktree may still have
 * the branch checked out from an earlier attempt of the same task; it is reset before its reuse.
 */
const PREPARE_WORKSPACE = `
cd "$1"
git checkout --quiet --force --ignore-other-worktrees -B "$2" "$3"
git clean --quiet -ffdx
`;

/** Commits the whole workspace on its branch and prints the commit and its files. */
const COMMIT_WORKSPACE = `
git add --all
git commit --quiet --allow-empty --no-verify -m "$1"
git log -1 -z --format=%H --name-only --no-renames
`;

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

/** Merges queued while one batch runs go together in the next. */
const MAX_MERGE_BATCH = 64;

interface QueuedMerge {
  commit: string;
  message: string;
  settle: (result: MergeResult | Error) => void;
}

/**
 * The run's git repository. `main` is the integration branch; each task works in an executor
 * worktree checked out at the integration commit, is committed on `task/<id>` and merged back
 * with a merge commit. Merges are computed with `git merge-tree` and published with a
 * compare-and-swap `update-ref`, so the project's own checkout is never touched mid-run and a
 * conflict is reported, never resolved by picking a side.
 */
export class Project {
  private readonly queue: QueuedMerge[] = [];
  private merging = false;
  private readonly workspaces = new Set<string>();
  private registrations: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private mainHead: string,
  ) {}

  static async init(dir: string, initialMessage: string): Promise<Project> {
    await mkdir(dir, { recursive: true });
    await git(dir, ['init', '--quiet', '--template=', `--initial-branch=${INTEGRATION_BRANCH}`]);
    for (const [key, value] of [
      ['gc.auto', '0'], // no background gc racing the run's parallel writers
      ['core.autocrlf', 'false'],
      ['commit.gpgsign', 'false'],
    ] as const) {
      await git(dir, ['config', key, value]);
    }
    await git(dir, ['commit', '--quiet', '--allow-empty', '--no-verify', '-m', initialMessage]);
    return Project.open(dir);
  }

  static async open(dir: string): Promise<Project> {
    const { stdout } = await git(dir, [
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

  /**
   * Readies a slot's worktree for a task: `task/<id>` at `base`, nothing else in it. Worktrees
   * belong to executor slots, not tasks: a task's checkout rewrites only what changed since the
   * slot's last task instead of the whole project. A slot's worktree is registered on its first
   * use, one registration at a time: `worktree add` reads every other worktree's metadata and
   * fails on one that is half-created.
   */
  async prepareWorkspace(workspace: string, taskId: string, base: string): Promise<void> {
    if (!this.workspaces.has(workspace)) {
      const added = this.registrations.then(() =>
        git(this.dir, [
          'worktree',
          'add',
          '--quiet',
          '--force',
          '--no-checkout',
          '--detach',
          workspace,
          base,
        ]),
      );
      this.registrations = added.then(
        () => {},
        () => {},
      );
      await added;
      this.workspaces.add(workspace);
    }
    await gitScript(this.dir, 'prepare-workspace', PREPARE_WORKSPACE, [
      workspace,
      taskBranch(taskId),
      base,
    ]);
  }

  /** Deletes every executor worktree and its git metadata. */
  async removeWorkspaces(root: string): Promise<void> {
    this.workspaces.clear();
    await rm(root, { recursive: true, force: true });
    await git(this.dir, ['worktree', 'prune']);
  }

  /**
   * Commits everything in the workspace on its task branch. An attempt that changed nothing
   * still gets its commit, so every task has one.
   */
  async commitWorkspace(workspace: string, message: string): Promise<TaskCommit> {
    const { stdout } = await gitScript(workspace, 'commit-workspace', COMMIT_WORKSPACE, [message]);
    // Output: `<hash>\0\n<file>\0<file>\0...`
    const [commit = '', ...names] = stdout.split('\0');
    if (names[0]?.startsWith('\n')) names[0] = names[0].slice(1);
    const files = names.filter(Boolean);
    await assertNoEscapingSymlinks(workspace, files);
    return { commit, files };
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
    const { stdout } = await gitScript(this.dir, 'merge-commits', MERGE_COMMITS, args);
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

  /** The paths that conflict when merging `commit` into `tip` (conflicts are rare: asked apart). */
  private async conflictedFiles(tip: string, commit: string): Promise<string[]> {
    const { stdout } = await git(
      this.dir,
      ['merge-tree', '--write-tree', '--name-only', '-z', '--no-messages', tip, commit],
      [1],
    );
    const [tree = '', ...names] = stdout.split('\0');
    // git 2.39 also exits 1 on a bad revision; a conflict starts with the merged tree's id.
    if (!OID.test(tree)) throw new GitError('merge-tree', 1, stdout);
    return [...new Set(names.filter(Boolean))];
  }

  /** The paths a commit changed against its first parent. */
  async changedFiles(commit: string): Promise<string[]> {
    const { stdout } = await git(this.dir, [
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
      this.dir,
      ['merge-base', '--is-ancestor', commit, this.mainHead],
      [0, 1, 128],
    );
    return exitCode === 0;
  }

  /** Brings the project's own checkout up to the integration branch (done once a run ends). */
  async checkoutHead(): Promise<void> {
    await git(this.dir, ['reset', '--quiet', '--hard', INTEGRATION_BRANCH]);
  }
}
