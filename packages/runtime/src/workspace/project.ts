import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { INTEGRATION_BRANCH, taskBranch } from '../contracts/run-layout.js';
import { Mutex } from '../util/mutex.js';
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

/** Resets an executor worktree to the integration commit $1, dropping every leftover file. */
const PREPARE_WORKSPACE = `
git checkout --quiet --force --detach "$1"
git clean --quiet -ffdx
`;

/** Commits the whole workspace, points branch $1 at it, prints the commit and its files. */
const COMMIT_TASK = `
git add --all
git commit --quiet --allow-empty --no-verify -m "$2"
git update-ref "$1" HEAD
git log -1 -z --format=%H --name-only --no-renames
`;

/**
 * Merges commit $2 into the integration branch at $1 without touching any checkout: the merge
 * is computed by merge-tree, recorded by commit-tree, and published by a compare-and-swap
 * update-ref. On conflict nothing is written and the conflicted paths are printed.
 */
const MERGE_TASK = `
if tree=$(git merge-tree --write-tree --no-messages "$1" "$2"); then
  merge=$(git commit-tree "$tree" -p "$1" -p "$2" -m "$3")
  git update-ref refs/heads/${INTEGRATION_BRANCH} "$merge" "$1"
  printf 'merged\\0%s' "$merge"
elif [ $? -eq 1 ]; then
  printf 'conflict\\0'
  git merge-tree --write-tree --name-only -z --no-messages "$1" "$2" || true
else
  exit 2
fi
`;

/**
 * The run's git repository. `main` is the integration branch; each task works in a worktree
 * checked out at the integration commit, is committed on `task/<id>` and merged back with a
 * merge commit. Merges are computed with
 * `git merge-tree` and published with a compare-and-swap `update-ref`, so the project's own
 * checkout is never touched mid-run and a conflict is reported, never resolved by picking a side.
 */
export class Project {
  private readonly merges = new Mutex();
  private readonly worktreeAdds = new Mutex();

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
   * Readies an executor's worktree for a task: detached at `base`, every trace of the previous
   * task removed (ignored files too). Worktrees are kept per executor slot rather than per task:
   * a checkout then only rewrites what changed since the slot's last task, instead of the whole
   * project for every task.
   */
  async prepareWorkspace(workspace: string, base: string): Promise<void> {
    if (!existsSync(path.join(workspace, '.git'))) {
      // `worktree add` reads every other worktree's metadata, so two must never run at once.
      await this.worktreeAdds.run(async () => {
        await rm(workspace, { recursive: true, force: true });
        await git(this.dir, ['worktree', 'add', '--quiet', '--force', '--detach', workspace, base]);
      });
      return;
    }
    await gitScript(workspace, 'prepare-workspace', PREPARE_WORKSPACE, [base]);
  }

  /** Deletes every executor worktree and its git metadata. */
  async removeWorkspaces(root: string): Promise<void> {
    await rm(root, { recursive: true, force: true });
    await git(this.dir, ['worktree', 'prune']);
  }

  /**
   * Commits everything in the workspace and points `task/<id>` at it. An attempt that changed
   * nothing still gets its commit, so every task has one.
   */
  async commitWorkspace(workspace: string, taskId: string, message: string): Promise<TaskCommit> {
    const { stdout } = await gitScript(workspace, 'commit-task', COMMIT_TASK, [
      `refs/heads/${taskBranch(taskId)}`,
      message,
    ]);
    // Output: `<hash>\0\n<file>\0<file>\0...`
    const [commit = '', ...names] = stdout.split('\0');
    if (names[0]?.startsWith('\n')) names[0] = names[0].slice(1);
    const files = names.filter(Boolean);
    await assertNoEscapingSymlinks(workspace, files);
    return { commit, files };
  }

  /** Merges a task commit into `main`, one merge at a time. */
  merge(commit: string, message: string): Promise<MergeResult> {
    return this.merges.run(async () => {
      const base = this.mainHead;
      const { stdout } = await gitScript(this.dir, 'merge-task', MERGE_TASK, [
        base,
        commit,
        message,
      ]);
      const [outcome, ...fields] = stdout.split('\0');
      if (outcome === 'merged' && OID.test(fields[0] ?? '')) {
        this.mainHead = fields[0] as string;
        return { merged: true, mergeCommit: this.mainHead };
      }
      // `conflict\0<tree>\0<file>\0...`; git 2.39 also exits 1 on a bad revision, hence the check.
      if (outcome === 'conflict' && OID.test(fields[0] ?? '')) {
        return { merged: false, conflictFiles: [...new Set(fields.slice(1).filter(Boolean))] };
      }
      throw new GitError('merge-task', 0, `unexpected merge output: ${stdout.slice(0, 200)}`);
    });
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
