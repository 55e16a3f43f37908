import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import { taskBranch } from '../contracts/run-layout.js';
import { unmountAllUnder } from '../sandbox/slot-disk.js';
import {
  checkLinks,
  checkNames,
  pathBytes,
  type RawPath,
  rawPath,
  scanWorkspace,
  shown,
} from '../trust/ingest.js';
import type { OutputCheck } from '../trust/output-check.js';
import { makeDirsInside } from '../trust/path-safety.js';
import { joinBytes, readUntrusted, removeTree } from '../trust/untrusted-files.js';
import { inBatches } from '../util/in-batches.js';
import { GitError, type GitTarget, gitBytes, gitScript } from './git.js';
import { HOST_IGNORE_FILE } from './ignore-rules.js';
import type { Project } from './project.js';

export interface TaskCommit {
  commit: string;
  files: string[];
  /** Git metadata and special files the agent left, removed before committing. */
  removed?: string[];
  /** What the agent wrote that the repository's ignore rules keep out of the commit. */
  ignored?: string[];
}

const OID = /^[0-9a-f]{40,64}$/;

/**
 * Points a workspace at the integration commit $1: the index the host keeps for it is reset to
 * that tree and the files follow (changed files rewritten, files not in it removed), then every
 * untracked or ignored file goes but what the `git clean` options after it ($2...) keep. Only what changed since the workspace's last task is written,
 * but every file is looked at: anything may have changed since.
 */
const PREPARE_WORKSPACE = `
base=$1; shift
git read-tree --reset -u "$base"
git clean -ffdxq "$@"
`;

/**
 * The same for a workspace whose files are exactly its index (its work was just committed and
 * nothing ran since): git looks only at the paths that differ between the two trees, so moving
 * a slot to the next task costs what changed, not what the repository holds. Ignored files the
 * commit left go as well.
 */
const ADVANCE_WORKSPACE = `
base=$1; shift
git read-tree -m -u "$base"
git clean -ffdxq "$@"
`;

/**
 * `git clean` options that keep `paths` (a prepared environment's, relative to the top): each
 * an exclude pattern anchored at the top, its glob characters escaped. With `-x` git still
 * honours patterns given by `-e`, and enters no directory one of them matches.
 */
function keepOptions(paths: readonly string[]): string[] {
  return paths.flatMap((p) => ['-e', `/${p.replace(/[\\*?[\]]/g, '\\$&')}`]);
}

/**
 * From this many paths an attempt's blobs are written into packs; fewer go loose, as every other
 * object does, so that a run of small tasks does not collect a pack per task.
 */
const BULK_STAGING_PATHS = 1_000;

/** Paths whose blobs share one pack when an attempt is staged in bulk. */
const BULK_PACK_PATHS = 10_000;

/**
 * Stages the changed paths (NUL-separated on stdin, the ones the output rules passed) into the
 * index the host keeps for the workspace, one by one: git hashes exactly those and looks at no
 * other file, in time linear in their number (a pathspec per path, as `git add` takes them, is
 * matched against every path: 40,000 files took 22 s). For a large attempt ($1 = bulk) the blobs
 * go into packs rather than one loose file each (40,000 loose objects took 8-10 s of system time
 * here, packs 2 s), 10,000 paths to a pack: git compares each new blob with every one already in
 * the pack it writes, so one pack of 300,000 took 99 s, packs of 10,000 took 16 s. And glibc
 * gives freed memory back to the kernel after each file unless told not to: 154,000 brk calls,
 * half the time, for 40,000 files. Prints the tree.
 */
const STAGE_WORKSPACE = `
export GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456
stage='update-index -z --add --remove --replace --stdin'
if [ "$1" = bulk ]; then
  split -t '\\0' -l ${BULK_PACK_PATHS} --filter="git -c core.bigFileThreshold=1 $stage"
else
  git $stage
fi
git write-tree
`;

/**
 * Commits tree $4 on top of $1 as branch $2 with message $3, without HEAD or any workspace.
 * Prints the commit and the changed files.
 */
const COMMIT_TREE = `
commit=$(git commit-tree "$4" -p "$1" -m "$3")
git update-ref "$2" "$commit"
printf '%s\\0' "$commit"
git diff-tree -r -z --name-only --no-commit-id --no-renames "$1" "$commit"
`;

export interface CommitRequest {
  taskId: string;
  /** The integration commit the workspace was prepared at: the task commit's parent. */
  base: string;
  message: string;
  /** The rules the changes must pass before anything of them is hashed into the repository. */
  check: OutputCheck;
  /** The attempt's: staging and committing stop with it. */
  signal?: AbortSignal;
  /**
   * Called once the changes are in git and the workspace is needed no more: what is left (the
   * commit, the branch) is made without it, so its slot can serve the next task meanwhile.
   */
  onStaged?: () => void;
  /**
   * Paths of a prepared environment extracted into the workspace (a Batch job's): ignored, so
   * never committed, and never entered or read by the trust checks (they can be large).
   */
  skip?: readonly string[];
}

/** What git would take from a workspace: new paths (`?`) and tracked ones changed or gone. */
interface Changes {
  added: RawPath[];
  changed: RawPath[];
}

/**
 * The workspaces agents work in, one per executor slot, each a plain directory whose index the
 * host keeps in the run's git directory: every git call names the repository explicitly, so
 * nothing an agent writes (a `.git`, hooks, config, attributes) is read as git configuration.
 * A slot is reset between tasks to exactly the files of the next task's base, and an attempt's
 * work is committed from it once it passes the trust checks (trust/ingest.ts).
 */
export class Slots {
  /**
   * Workspaces whose files are exactly their index, cleared of what agents leave: their work was
   * staged (commit) and nothing has run in them since.
   */
  private readonly committed = new Set<string>();
  /** Settles when the first checkout under way (if any) is done. */
  private firstCheckouts: Promise<void> = Promise.resolve();
  private excludeOptions: string[] | undefined;
  /** The links of the source repository's base, by path: the user's own, kept as they are. */
  private sourceLinks: Promise<Map<RawPath, RawPath>> | undefined;

  constructor(
    private readonly project: Pick<Project, 'dir' | 'gitDir'>,
    /** The commit of the repository the run started from, if it started from one. */
    private readonly sourceBase?: string,
  ) {}

  private get repo(): GitTarget {
    return { gitDir: this.project.gitDir };
  }

  /** A workspace as git sees it: its files, and the index the host keeps for it. */
  workspaceTarget(workspace: string): GitTarget & { workTree: string } {
    return this.target(workspace);
  }

  private target(workspace: string): GitTarget & { workTree: string } {
    const key = createHash('sha256').update(workspace).digest('hex').slice(0, 16);
    return {
      gitDir: this.project.gitDir,
      workTree: workspace,
      indexFile: path.join(this.project.gitDir, 'workspaces', `${key}.index`),
    };
  }

  /**
   * Readies a workspace for a task: exactly the files of `base`, nothing else. Workspaces belong
   * to executor slots and are reused, so a task's checkout rewrites only what changed since the
   * slot's last task. What the last agent left is cleared of git metadata and special files
   * first; if the workspace cannot be reset (an agent made parts of it unwritable or too deep to
   * name, say), it is deleted and checked out afresh.
   */
  async prepare(
    workspace: string,
    base: string,
    options: { keep?: readonly string[] } = {},
  ): Promise<void> {
    const target = this.target(workspace);
    const keep = options.keep ?? [];
    // A first checkout writes the whole tree: one at a time, so that on a large repository the
    // first task starts after one checkout rather than after all of them, contending.
    if (!(await lstat(target.indexFile as string).catch(() => undefined))) {
      const previous = this.firstCheckouts;
      let done = () => {};
      this.firstCheckouts = new Promise((resolve) => {
        done = resolve;
      });
      await previous;
      try {
        await this.reset(target, workspace, base, keep);
      } finally {
        done();
      }
      return;
    }
    await this.reset(target, workspace, base, keep);
  }

  /**
   * `keep`: paths of a prepared environment in the workspace (a Batch job's), left as they are
   * unless the workspace has to be deleted whole.
   */
  private async reset(
    target: GitTarget,
    workspace: string,
    base: string,
    keep: readonly string[],
  ): Promise<void> {
    // Below the git directory and the run directory, never those themselves: a run directory
    // deleted mid-run fails the checkout instead of coming back empty.
    const makeDirs = async () => {
      await makeDirsInside(this.project.gitDir, path.dirname(target.indexFile as string));
      await makeDirsInside(path.dirname(this.project.dir), workspace);
    };
    const committed = this.committed.delete(workspace);
    const background = { priority: 'background' as const };
    try {
      await makeDirs();
      const args = [base, ...keepOptions(keep)];
      const advanced =
        committed &&
        (await gitScript(target, 'advance-workspace', ADVANCE_WORKSPACE, args, background).then(
          () => true,
          () => false,
        ));
      if (!advanced) {
        if (!committed) await scanWorkspace(workspace, { skip: keep });
        await gitScript(target, 'prepare-workspace', PREPARE_WORKSPACE, args, background);
      }
    } catch {
      await removeTree(workspace);
      await rm(target.indexFile as string, { force: true });
      await makeDirs();
      await gitScript(target, 'prepare-workspace', PREPARE_WORKSPACE, [base], background);
    }
  }

  /**
   * Deletes every workspace under `root` and the indexes the host kept for them; a slot disk an
   * orchestrator that was killed left mounted there is unmounted first.
   */
  async removeAll(root: string): Promise<void> {
    this.committed.clear();
    await unmountAllUnder(root);
    await removeTree(root);
    await rm(path.join(this.project.gitDir, 'workspaces'), { recursive: true, force: true });
  }

  /**
   * Commits everything in the workspace as `task/<id>` on top of its base, once the changes pass
   * the trust checks: the agent's git metadata and special files are removed, new names are held
   * to the portable rules, every link the commit would hold is resolved, and every added or
   * changed file is measured (and read, when there are secrets to look for) before git hashes
   * any of it. An attempt that changed nothing still gets its commit, so every task has one.
   * Throws OutputRejectedError naming the first path that breaks a rule.
   */
  async commit(workspace: string, request: CommitRequest): Promise<TaskCommit> {
    const target = this.target(workspace);
    const { signal } = request;
    this.committed.delete(workspace);
    const { links, removed } = await scanWorkspace(workspace, { skip: request.skip ?? [] });
    const changes = await this.changes(target, signal);
    checkNames(changes.added);
    const ignored = await this.ignored(target, signal);
    await checkLinks(workspace, await this.linksToCheck(links, ignored));
    // What went first: a file turned into a directory leaves the index before what it holds comes.
    const paths = [...changes.changed, ...changes.added];
    await this.measure(workspace, paths, links, request.check);
    const bulk = paths.length >= BULK_STAGING_PATHS ? 'bulk' : '';
    const staged = await gitScript(target, 'stage-workspace', STAGE_WORKSPACE, [bulk], {
      priority: 'background',
      input: Buffer.concat(paths.map((file) => Buffer.concat([pathBytes(file), NUL]))),
      signal,
    });
    const tree = staged.stdout.trim();
    if (!OID.test(tree)) throw new GitError('stage-workspace', 0, `unexpected output: ${tree}`);
    this.committed.add(workspace);
    request.onStaged?.();
    const { stdout } = await gitScript(
      this.repo,
      'commit-tree',
      COMMIT_TREE,
      [request.base, `refs/heads/${taskBranch(request.taskId)}`, request.message, tree],
      { signal },
    );
    const [commit = '', ...names] = stdout.split('\0');
    if (!OID.test(commit)) throw new GitError('commit-tree', 0, `unexpected output: ${stdout}`);
    return {
      commit,
      files: names.filter(Boolean),
      ...(removed.length > 0 && { removed }),
      ...(ignored.length > 0 && { ignored: ignored.map(shown) }),
    };
  }

  /**
   * The host's ignore rules, as git options; none when the run's repository had none. Written
   * before the run's first attempt (or the job's), so looked for once.
   */
  private excludes(): string[] {
    if (!this.excludeOptions) {
      const file = path.join(this.project.gitDir, HOST_IGNORE_FILE);
      this.excludeOptions = existsSync(file) ? [`--exclude-from=${file}`] : [];
    }
    return this.excludeOptions;
  }

  /**
   * What `git add --all` would take, under the host's ignore rules (never the agent's): untracked
   * files not ignored (`?` from `-t`), and tracked files that changed or went. Git lists them
   * without descending into links.
   */
  private async changes(target: GitTarget, signal?: AbortSignal): Promise<Changes> {
    const { stdout } = await gitBytes(
      target,
      ['ls-files', '-z', '-t', '--others', '--modified', ...this.excludes()],
      { priority: 'background', signal },
    );
    const added = new Set<RawPath>();
    const changed = new Set<RawPath>();
    for (const entry of splitNul(stdout)) {
      const file = rawPath(entry.subarray(2));
      (entry[0] === 0x3f ? added : changed).add(file);
    }
    for (const file of added) changed.delete(file);
    return { added: [...added], changed: [...changed] };
  }

  /** What the agent wrote that the ignore rules keep out: reported, never committed. */
  private async ignored(target: GitTarget, signal?: AbortSignal): Promise<RawPath[]> {
    const excludes = this.excludes();
    if (excludes.length === 0) return [];
    const { stdout } = await gitBytes(
      target,
      ['ls-files', '-z', '--others', '--ignored', '--directory', ...excludes],
      { priority: 'background', signal },
    );
    return splitNul(stdout).map(rawPath);
  }

  /**
   * The links the commit will hold: the workspace's, less those inside what is ignored (git
   * does not take them) and those the source repository has as they are (the user's own).
   */
  private async linksToCheck(
    links: ReadonlyMap<RawPath, RawPath>,
    ignored: readonly RawPath[],
  ): Promise<Map<RawPath, RawPath>> {
    if (links.size === 0) return new Map();
    const own = await this.sourceLinksAtBase();
    const inIgnored = (link: RawPath) =>
      ignored.some((dir) => link === dir || (dir.endsWith('/') && link.startsWith(dir)));
    return new Map(
      [...links].filter(([link, target]) => own.get(link) !== target && !inIgnored(link)),
    );
  }

  private sourceLinksAtBase(): Promise<Map<RawPath, RawPath>> {
    this.sourceLinks ??= (async () => {
      if (!this.sourceBase) return new Map();
      const { stdout } = await gitBytes(this.repo, ['ls-tree', '-r', '-z', this.sourceBase]);
      const linkBlobs = splitNul(stdout)
        .map(rawPath)
        .map((entry) => /^120000 blob ([0-9a-f]+)\t(.*)$/s.exec(entry))
        .filter((match): match is RegExpExecArray => match !== null);
      const targets = await Promise.all(
        linkBlobs.map(([, id]) =>
          gitBytes(this.repo, ['cat-file', 'blob', id as string]).then((r) => rawPath(r.stdout)),
        ),
      );
      return new Map(linkBlobs.map(([, , link], i) => [link as RawPath, targets[i] as RawPath]));
    })();
    return this.sourceLinks;
  }

  /**
   * The size rules for every path git will take, and the secret rule for the content of each
   * file and the target of each link. No agent is alive to change the tree, so measuring each by
   * lstat is measuring what git reads. A file an agent closed to the host is opened first.
   */
  private async measure(
    workspace: string,
    paths: readonly RawPath[],
    links: ReadonlyMap<RawPath, RawPath>,
    check: OutputCheck,
  ): Promise<void> {
    const root = Buffer.from(workspace);
    const full = (file: RawPath) => joinBytes(root, pathBytes(file));
    const files = paths.filter((file) => !links.has(file));
    const stats = await inBatches(files, LSTAT_BATCH, (file) =>
      lstat(full(file)).catch(() => undefined),
    );
    const present: { file: RawPath; size: number }[] = [];
    for (const [i, file] of files.entries()) {
      const stat = stats[i];
      if (!stat?.isFile()) continue; // it went
      check.file(shown(file), stat.size);
      // Never through a hard link: the file may be the host's, linked in by the agent.
      if ((stat.mode & 0o400) === 0 && stat.nlink === 1) await chmod(full(file), stat.mode | 0o400);
      present.push({ file, size: stat.size });
    }
    for (const file of paths) {
      const target = links.get(file);
      if (target !== undefined) check.content(shown(file), pathBytes(target));
    }
    if (!check.needsContent) return;
    // One at a time: what is held in memory is one file, whatever the limits allow.
    for (const { file, size } of present) {
      const content = await readUntrusted(full(file), size);
      if (content) check.content(shown(file), content);
    }
  }
}

const NUL = Buffer.from([0]);

/** How many lstat calls are in flight at once while an attempt's files are measured. */
const LSTAT_BATCH = 64;

function splitNul(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let end = bytes.indexOf(0); end !== -1; end = bytes.indexOf(0, start)) {
    if (end > start) parts.push(bytes.subarray(start, end));
    start = end + 1;
  }
  return parts;
}
