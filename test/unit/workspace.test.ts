import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_OUTPUT_LIMITS } from '../../packages/runtime/src/contracts/run-config.js';
import { OutputCheck, OutputRejectedError } from '../../packages/runtime/src/trust/output-check.js';
import {
  makeDirsInside,
  resolveInside,
  resolvesInside,
  WorkspaceEscapeError,
} from '../../packages/runtime/src/trust/path-safety.js';
import { SecretScanner } from '../../packages/runtime/src/trust/secret-scanner.js';
import { gitScript } from '../../packages/runtime/src/workspace/git.js';
import { writeRules } from '../../packages/runtime/src/workspace/ignore-rules.js';
import { Project } from '../../packages/runtime/src/workspace/project.js';
import { Slots } from '../../packages/runtime/src/workspace/slots.js';
import { gitOut } from '../support/git.js';
import { tempDir } from '../support/tmp.js';

// Passed through, and watched: a fast path that silently fell back would still be correct.
vi.mock('../../packages/runtime/src/workspace/git.js', async (original) => {
  const git = await original<typeof import('../../packages/runtime/src/workspace/git.js')>();
  return { ...git, gitScript: vi.fn(git.gitScript) };
});
/** The names of the git scripts run since the last call. */
const scriptsRun = () => {
  const names = vi.mocked(gitScript).mock.calls.map(([, name]) => name);
  vi.mocked(gitScript).mockClear();
  return names;
};

const root = tempDir();
let n = 0;

async function freshProject() {
  const dir = path.join(root, `run-${n++}`);
  const project = await Project.init(path.join(dir, 'project'), 'Start');
  const slots = new Slots(project);
  const workspace = (slot: number) => path.join(dir, 'sandboxes', `executor-${slot}`, 'workspace');
  /** Where each workspace was last prepared: its task commit's parent. */
  const bases = new Map<string, string>();
  const prepare = async (ws: string, base = project.head) => {
    bases.set(ws, base);
    await slots.prepare(ws, base);
  };
  const commit = (ws: string, taskId: string, check = new OutputCheck(DEFAULT_OUTPUT_LIMITS)) =>
    slots.commit(ws, {
      taskId,
      base: bases.get(ws) as string,
      message: `task ${taskId}`,
      check,
    });
  return { project, slots, workspace, prepare, commit };
}

function write(dir: string, file: string, content: string) {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), content);
}

describe('project integration', () => {
  it('merges parallel tasks with one merge commit each and keeps task branches', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const base = project.head;
    await prepare(workspace(0), base);
    await prepare(workspace(1), base);
    write(workspace(0), 'src/a.ts', 'a\n');
    write(workspace(1), 'src/b.ts', 'b\n');
    const a = await commit(workspace(0), 'a');
    const b = await commit(workspace(1), 'b');
    expect(a.files).toEqual(['src/a.ts']);
    expect(await project.merge(a.commit, 'merge a')).toMatchObject({ merged: true });
    const merged = await project.merge(b.commit, 'merge b');
    expect(merged).toMatchObject({ merged: true });
    expect(project.head).toBe(merged.merged && merged.mergeCommit);
    expect(gitOut(project.dir, ['ls-tree', '-r', '--name-only', 'main']).split('\n')).toEqual([
      'src/a.ts',
      'src/b.ts',
    ]);
    expect(gitOut(project.dir, ['rev-parse', 'task/b'])).toBe(b.commit);
    expect(gitOut(project.dir, ['log', '--format=%P', '-1', 'main']).split(' ')).toHaveLength(2);
    expect(await project.contains(a.commit)).toBe(true);
  });

  it('packs what merges write while they go on, and loses nothing', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    project.upkeepEvery = 4;
    const objects = () =>
      Object.fromEntries(
        gitOut(project.dir, ['count-objects', '-v'])
          .split('\n')
          .map((line) => line.split(': ') as [string, string]),
      );
    const commits: string[] = [];
    for (let i = 0; i < 16; i++) {
      await prepare(workspace(i % 2));
      write(workspace(i % 2), `src/t${i}.ts`, `export const t${i} = ${i};\n`);
      const { commit: task } = await commit(workspace(i % 2), `t${i}`);
      commits.push(task);
      expect(await project.merge(task, `merge t${i}`)).toMatchObject({ merged: true });
    }
    // Rounds ran beside the merges: objects are in packs before the run is compacted.
    await vi.waitFor(() => expect(Number(objects()['in-pack'])).toBeGreaterThan(0));
    await project.compact();
    expect(objects()).toMatchObject({ count: '0', 'prune-packable': '0' });
    expect(gitOut(project.dir, ['fsck', '--no-dangling', '--strict'])).toBe('');
    expect(gitOut(project.dir, ['rev-list', '--count', '--merges', 'main'])).toBe('16');
    for (const [i, task] of commits.entries())
      expect(gitOut(project.dir, ['rev-parse', `task/t${i}`])).toBe(task);
    expect(
      gitOut(project.dir, ['ls-tree', '--name-only', 'main', 'src/']).split('\n'),
    ).toHaveLength(16);
    // Branches are packed, and no reflog is kept for them.
    expect(readFileSync(path.join(project.gitDir, 'packed-refs'), 'utf8')).toContain(
      'refs/heads/task/t15',
    );
    expect(existsSync(path.join(project.gitDir, 'logs', 'refs', 'heads', 'task'))).toBe(false);
  });

  it('reports a conflict with its files and leaves main untouched', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const base = project.head;
    await prepare(workspace(0), base);
    await prepare(workspace(1), base);
    write(workspace(0), 'shared.txt', 'from a\n');
    write(workspace(0), 'a-only.txt', 'a\n');
    write(workspace(1), 'shared.txt', 'from b\n');
    const a = await commit(workspace(0), 'a');
    const b = await commit(workspace(1), 'b');
    await project.merge(a.commit, 'merge a');
    const headAfterA = project.head;
    expect(await project.merge(b.commit, 'merge b')).toEqual({
      merged: false,
      conflictFiles: ['shared.txt'],
    });
    expect(project.head).toBe(headAfterA);
    expect(gitOut(project.dir, ['rev-parse', 'main'])).toBe(headAfterA);
    expect(gitOut(project.dir, ['show', 'main:shared.txt'])).toBe('from a');
    expect(gitOut(project.dir, ['show', 'task/b:shared.txt'])).toBe('from b');
    expect(await project.contains(b.commit)).toBe(false);
  });

  it('batches merges requested together and skips only the conflicting one', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const base = project.head;
    const commits = [];
    for (const [slot, [id, file, content]] of [
      ['one', 'one.txt', '1'],
      ['two', 'shared.txt', 'two'],
      ['three', 'shared.txt', 'three'],
      ['four', 'four.txt', '4'],
    ].entries()) {
      await prepare(workspace(slot), base);
      write(workspace(slot), file as string, content as string);
      commits.push(await commit(workspace(slot), id as string));
    }
    const results = await Promise.all(commits.map((c, i) => project.merge(c.commit, `merge ${i}`)));
    expect(results.map((r) => r.merged)).toEqual([true, true, false, true]);
    expect(results[2]).toEqual({ merged: false, conflictFiles: ['shared.txt'] });
    expect(gitOut(project.dir, ['ls-tree', '-r', '--name-only', 'main']).split('\n')).toEqual([
      'four.txt',
      'one.txt',
      'shared.txt',
    ]);
    expect(gitOut(project.dir, ['rev-parse', 'main'])).toBe(project.head);
    expect(project.head).toBe(results[3]?.merged && results[3].mergeCommit);
    // Each merge builds on the previous: one merge commit per task on the first-parent chain.
    expect(
      gitOut(project.dir, ['log', '--first-parent', '--format=%s', 'main']).split('\n'),
    ).toEqual(['merge 3', 'merge 1', 'merge 0', 'Start']);
  });

  it('points task/<id> at the latest attempt, whichever slot ran it', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    write(workspace(0), 'partial.txt', 'first attempt');
    await commit(workspace(0), 'again');
    await prepare(workspace(1));
    write(workspace(1), 'done.txt', 'second attempt');
    const { files } = await commit(workspace(1), 'again');
    expect(files).toEqual(['done.txt']);
    expect(gitOut(project.dir, ['ls-tree', '-r', '--name-only', 'task/again'])).toBe('done.txt');
  });

  it('lists files with unusual names exactly', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0), project.head);
    const names = ['with space.txt', 'ünïcödé.md', "apo'strophe.txt", '[brackets] & more.md'];
    for (const name of names) write(workspace(0), name, 'x');
    const { files } = await commit(workspace(0), 'odd');
    expect(files.sort()).toEqual([...names].sort());
  });

  it('commits an attempt of thousands of files exactly, their blobs in one pack', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    const names = Array.from({ length: 1_500 }, (_, i) => `gen/d${i % 7}/f${i}.txt`);
    for (const name of names) write(workspace(0), name, `${name}\n`);
    const packs = () =>
      readdirSync(path.join(project.gitDir, 'objects/pack')).filter((f) => f.endsWith('.pack'));
    const before = packs().length;
    const { files, commit: made } = await commit(workspace(0), 'many');
    expect(files.sort()).toEqual([...names].sort());
    expect(packs().length).toBe(before + 1);
    expect(gitOut(project.dir, ['show', `${made}:gen/d3/f10.txt`])).toBe('gen/d3/f10.txt');
    expect(gitOut(project.dir, ['fsck', '--no-dangling', '--strict'])).toBe('');
  });

  it('starts every task from a clean worktree at the given commit', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0), project.head);
    write(workspace(0), '.gitignore', 'node_modules/\n');
    write(workspace(0), 'kept.txt', 'k');
    const first = await commit(workspace(0), 'first');
    await project.merge(first.commit, 'merge first');
    // An attempt that leaves all this and is never committed.
    await prepare(workspace(0), project.head);
    write(workspace(0), 'node_modules/leftover.js', 'ignored');
    write(workspace(0), 'stray.txt', 'untracked');
    write(workspace(0), 'kept.txt', 'dirty');
    await prepare(workspace(0), project.head);
    expect(existsSync(path.join(workspace(0), 'node_modules'))).toBe(false);
    expect(existsSync(path.join(workspace(0), 'stray.txt'))).toBe(false);
    expect(readFileSync(path.join(workspace(0), 'kept.txt'), 'utf8')).toBe('k');
  });

  it('commits deletions, type and mode changes, and files turned into directories', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    for (const file of ['gone.txt', 'was-file', 'dir/was-dir.txt', 'script.sh', 'link-me'])
      write(workspace(0), file, `${file}\n`);
    await project.merge((await commit(workspace(0), 'first')).commit, 'merge first');
    await prepare(workspace(0));
    const ws = workspace(0);
    execFileSync(
      'sh',
      [
        '-c',
        'rm gone.txt was-file && mkdir was-file && echo inner > was-file/inner.txt && rm -r dir && echo now-file > dir && chmod +x script.sh && rm link-me && ln -s script.sh link-me && mkdir -p deep/er && echo new > deep/er/new.txt',
      ],
      { cwd: ws },
    );
    const { commit: task, files } = await commit(ws, 'second');
    expect(files.sort()).toEqual(
      [
        'deep/er/new.txt',
        'dir',
        'dir/was-dir.txt',
        'gone.txt',
        'link-me',
        'script.sh',
        'was-file',
        'was-file/inner.txt',
      ].sort(),
    );
    expect(gitOut(project.dir, ['ls-tree', '-r', task]).replace(/ [0-9a-f]{40}\t/g, ' ')).toBe(
      [
        '100644 blob deep/er/new.txt',
        '100644 blob dir',
        '120000 blob link-me',
        '100755 blob script.sh',
        '100644 blob was-file/inner.txt',
      ].join('\n'),
    );
  });

  it('moves a workspace just committed from to the next base, ignored files gone', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    // As if the run's repository ignored dist/: the host's rules.
    await writeRules(project.gitDir, 'dist/\n');
    await prepare(workspace(0));
    write(workspace(0), '.gitignore', 'dist/\n');
    write(workspace(0), 'src/old.ts', 'old\n');
    write(workspace(0), 'dist/build.js', 'built');
    await project.merge((await commit(workspace(0), 'first')).commit, 'merge first');
    // Another slot changes, adds and deletes files meanwhile.
    await prepare(workspace(1));
    write(workspace(1), 'src/new.ts', 'new\n');
    write(workspace(1), '.gitignore', 'dist/\nout/\n');
    execFileSync('rm', [path.join(workspace(1), 'src/old.ts')]);
    await project.merge((await commit(workspace(1), 'second')).commit, 'merge second');
    scriptsRun();
    await prepare(workspace(0));
    expect(scriptsRun()).toEqual(['advance-workspace']);
    expect(existsSync(path.join(workspace(0), 'dist'))).toBe(false);
    expect(existsSync(path.join(workspace(0), 'src/old.ts'))).toBe(false);
    expect(readFileSync(path.join(workspace(0), 'src/new.ts'), 'utf8')).toBe('new\n');
    expect(readFileSync(path.join(workspace(0), '.gitignore'), 'utf8')).toBe('dist/\nout/\n');
    // Its index is the base's: a task that changes nothing commits no change.
    expect((await commit(workspace(0), 'third')).files).toEqual([]);
  });

  it("keeps a prepared environment's paths through checkouts, and never enters them to commit", async () => {
    const { project, slots, workspace, prepare } = await freshProject();
    await writeRules(project.gitDir, 'node_modules/\ndist/\n');
    const ws = workspace(0);
    const keep = ['node_modules/'];
    await prepare(ws);
    // What a setup made; a `.git` inside it is what the trust checks would delete if they
    // walked it, so its survival shows they did not.
    write(ws, 'node_modules/dep/index.js', 'dep');
    write(ws, 'node_modules/dep/.git/HEAD', 'ref: refs/heads/x\n');
    write(ws, 'dist/build.js', 'built');
    write(ws, 'src/a.ts', 'a\n');
    const committed = await slots.commit(ws, {
      taskId: 'a',
      base: project.head,
      message: 'a',
      check: new OutputCheck(DEFAULT_OUTPUT_LIMITS),
      skip: keep,
    });
    expect(committed.files).toEqual(['src/a.ts']);
    expect(existsSync(path.join(ws, 'node_modules/dep/.git/HEAD'))).toBe(true);
    await project.merge(committed.commit, 'merge a');
    // Moved on (the fast path) and checked out afresh: the environment stays, dist/ goes.
    await slots.prepare(ws, project.head, { keep });
    expect(readFileSync(path.join(ws, 'node_modules/dep/index.js'), 'utf8')).toBe('dep');
    expect(existsSync(path.join(ws, 'dist'))).toBe(false);
    await slots.prepare(ws, project.head, { keep });
    expect(existsSync(path.join(ws, 'node_modules/dep/.git/HEAD'))).toBe(true);
    // Without it, a checkout leaves nothing ignored.
    await slots.prepare(ws, project.head);
    expect(existsSync(path.join(ws, 'node_modules'))).toBe(false);
  });

  it('rejects a task that commits a symlink pointing outside its workspace', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0), project.head);
    symlinkSync('/etc/passwd', path.join(workspace(0), 'absolute'));
    await expect(commit(workspace(0), 'evil')).rejects.toThrow(OutputRejectedError);
    await prepare(workspace(0), project.head);
    symlinkSync('../../../outside', path.join(workspace(0), 'relative'));
    await expect(commit(workspace(0), 'evil')).rejects.toThrow(
      'symlink relative leads outside the project (../../../outside)',
    );
    await prepare(workspace(0), project.head);
    write(workspace(0), 'docs/real.md', 'x');
    symlinkSync('docs/real.md', path.join(workspace(0), 'inside'));
    await expect(commit(workspace(0), 'fine')).resolves.toMatchObject({
      files: ['docs/real.md', 'inside'],
    });
  });
});

describe('agent output crosses as data', () => {
  const MARKER = path.join(root, 'planted-ran');
  const plant = (dir: string) => {
    // A repository of the agent's own whose config and hooks would run a script on any git use.
    mkdirSync(path.join(dir, 'hooks'), { recursive: true });
    const script = `#!/bin/sh\ntouch '${MARKER}'\n`;
    writeFileSync(path.join(dir, 'evil.sh'), script, { mode: 0o755 });
    for (const hook of ['pre-commit', 'post-commit', 'post-checkout', 'reference-transaction'])
      writeFileSync(path.join(dir, 'hooks', hook), script, { mode: 0o755 });
    writeFileSync(
      path.join(dir, 'config'),
      `[core]\n\tfsmonitor = ${path.join(dir, 'evil.sh')}\n\thooksPath = ${path.join(dir, 'hooks')}\n`,
    );
    writeFileSync(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
    mkdirSync(path.join(dir, 'objects'), { recursive: true });
    mkdirSync(path.join(dir, 'refs'), { recursive: true });
  };

  it('never reads git metadata an agent left in its workspace, at any depth', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    plant(path.join(workspace(0), '.git'));
    plant(path.join(workspace(0), 'vendor/lib/.git'));
    write(workspace(0), 'vendor/lib/index.js', 'lib');
    write(workspace(0), 'app.txt', 'app');
    const done = await commit(workspace(0), 'planted');
    expect(done.files.sort()).toEqual(['app.txt', 'vendor/lib/index.js']);
    expect(done.removed?.sort()).toEqual(['.git', 'vendor/lib/.git']);
    const merged = await project.merge(done.commit, 'merge planted');
    expect(merged.merged).toBe(true);
    await prepare(workspace(0));
    await project.checkoutHead();
    expect(existsSync(MARKER)).toBe(false);
    expect(gitOut(project.dir, ['ls-tree', '-r', 'main'])).not.toContain('160000');
  });

  it('refuses a file over the per-file limit and changes over the per-task limit, by path', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const limits = { maxFileBytes: 1000, maxTaskBytes: 1500 };
    // As if the run's repository ignored cache/: the host's rules, there from the start.
    await writeRules(project.gitDir, 'cache/\n');
    await prepare(workspace(0));
    write(workspace(0), 'big.bin', 'x'.repeat(1001));
    await expect(commit(workspace(0), 'big', new OutputCheck(limits))).rejects.toThrow(
      'big.bin is 1001 B, over the limit of 1000 B per file (--max-file-size)',
    );
    await prepare(workspace(0));
    write(workspace(0), 'a.bin', 'x'.repeat(800));
    write(workspace(0), 'b.bin', 'x'.repeat(800));
    await expect(commit(workspace(0), 'many', new OutputCheck(limits))).rejects.toThrow(
      /^the task's changes reach 1\.6 KiB at [ab]\.bin, over the limit of 1\.5 KiB per task/,
    );
    // Files the repository ignores are not the task's output: neither measured nor committed.
    await prepare(workspace(0));
    write(workspace(0), '.gitignore', 'cache/\n');
    write(workspace(0), 'cache/huge.bin', 'x'.repeat(5000));
    await expect(commit(workspace(0), 'ignored', new OutputCheck(limits))).resolves.toMatchObject({
      files: ['.gitignore'],
    });
  });

  it('refuses a commit holding a secret, as written or encoded, and hashes none of it', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const key = 'sk-ant-api03-THISISASECRETKEY-0123456789';
    const check = () => new OutputCheck(DEFAULT_OUTPUT_LIMITS, new SecretScanner({ KEY: key }));
    for (const [file, content] of [
      ['env.txt', `PATH=/bin\nKEY=${key}\n`],
      ['b64.txt', Buffer.from(`xx${key}yy`).toString('base64')],
      ['hex.txt', Buffer.from(key).toString('hex')],
      ['reversed.txt', [...key].reverse().join('')],
    ] as const) {
      await prepare(workspace(0));
      write(workspace(0), file, content);
      await expect(commit(workspace(0), 'leak', check())).rejects.toThrow(
        `${file} contains the value of KEY, a secret handed to agents; the attempt is not committed`,
      );
    }
    expect(gitOut(project.dir, ['branch', '--list', 'task/leak'])).toBe('');
    const objects = gitOut(project.dir, ['cat-file', '--batch-all-objects', '--batch']);
    expect(objects).toContain('Start'); // the repository's own commit is there to be read
    expect(objects).not.toContain(key);
    expect(objects).not.toContain('PATH=/bin');
  });

  /** A repository at `z` whose HEAD is a FIFO, and `gitFile`, a `.git` file pointing at it. */
  const plantFifoHead = (workspace: string, gitFile: string | Buffer) => {
    for (const dir of ['z/objects', 'z/refs'])
      mkdirSync(path.join(workspace, dir), { recursive: true });
    execFileSync('mkfifo', [path.join(workspace, 'z/HEAD')]);
    writeFileSync(gitFile, `gitdir: ${path.join(workspace, 'z')}\n`);
  };

  it('removes a planted repository before git reads any of it: one whose HEAD is a FIFO', {
    timeout: 20_000,
  }, async () => {
    // Git opens the HEAD of a repository a `.git` file points to when it lists untracked files;
    // a FIFO there would hang it for good.
    const { workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    write(workspace(0), 'y/file.txt', 'kept');
    plantFifoHead(workspace(0), path.join(workspace(0), 'y/.git'));
    const done = await commit(workspace(0), 'fifo-head');
    expect(done.files).toEqual(['y/file.txt']);
    expect(done.removed?.sort()).toEqual(['y/.git', 'z/HEAD']);
  });

  it('reads names as bytes: a planted repository below a name that is not UTF-8 goes before git reads it, and the name fails the attempt, the slot still usable', {
    timeout: 20_000,
  }, async () => {
    const { workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    const odd = Buffer.concat([Buffer.from(`${workspace(0)}/odd`), Buffer.from([0xff])]);
    mkdirSync(odd);
    plantFifoHead(workspace(0), Buffer.concat([odd, Buffer.from('/.git')]));
    writeFileSync(Buffer.concat([odd, Buffer.from('/file.txt')]), 'x');
    await expect(commit(workspace(0), 'odd')).rejects.toThrow(
      'odd\\xff/file.txt is not a valid UTF-8 name',
    );
    await prepare(workspace(0));
    expect(readdirSync(workspace(0))).toEqual([]);
  });

  it('checks the files of a repository it planted one by one, like any other', async () => {
    // Git lists a directory holding a `.git` as one entry; the `.git` goes first, so its files
    // are listed (and checked) one by one, not staged whole behind the directory's name.
    const { project, workspace, prepare, commit } = await freshProject();
    const key = 'sk-ant-api03-HIDDENBEHINDAREPO-0123456789';
    await prepare(workspace(0));
    plant(path.join(workspace(0), 'vendor/lib/.git'));
    write(workspace(0), 'vendor/lib/config.txt', `KEY=${key}\n`);
    await expect(
      commit(
        workspace(0),
        'hidden',
        new OutputCheck(DEFAULT_OUTPUT_LIMITS, new SecretScanner({ KEY: key })),
      ),
    ).rejects.toThrow('vendor/lib/config.txt contains the value of KEY');
    expect(gitOut(project.dir, ['cat-file', '--batch-all-objects', '--batch'])).not.toContain(key);
  });

  it('resets a workspace an agent wrecked: unreadable directories, FIFOs, files turned into directories', async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    await prepare(workspace(0));
    write(workspace(0), 'src/keep.ts', 'keep');
    write(workspace(0), 'file', 'a file');
    const first = await commit(workspace(0), 'first');
    await project.merge(first.commit, 'merge first');
    await prepare(workspace(0));
    execFileSync(
      'sh',
      [
        '-c',
        'rm file && mkdir -p file/inner && mkfifo fifo && mkdir locked && touch locked/x && chmod 000 locked src',
      ],
      {
        cwd: workspace(0),
      },
    );
    await prepare(workspace(0));
    expect(readFileSync(path.join(workspace(0), 'file'), 'utf8')).toBe('a file');
    expect(readFileSync(path.join(workspace(0), 'src/keep.ts'), 'utf8')).toBe('keep');
    expect(existsSync(path.join(workspace(0), 'fifo'))).toBe(false);
    expect(existsSync(path.join(workspace(0), 'locked'))).toBe(false);
  });

  it("merges with git's own text merge whatever .gitattributes an agent commits", async () => {
    const { project, workspace, prepare, commit } = await freshProject();
    const base = project.head;
    await prepare(workspace(0), base);
    await prepare(workspace(1), base);
    write(workspace(0), '.gitattributes', '* merge=union\n');
    write(workspace(0), 'value.txt', 'from a\n');
    write(workspace(1), '.gitattributes', '* merge=union\n');
    write(workspace(1), 'value.txt', 'from b\n');
    const a = await commit(workspace(0), 'a');
    const b = await commit(workspace(1), 'b');
    await project.merge(a.commit, 'merge a\n\nTask-Id: a');
    expect(await project.merge(b.commit, 'merge b')).toEqual({
      merged: false,
      conflictFiles: ['value.txt'],
    });
    expect(await project.tasksTouching(['value.txt'])).toEqual(['a']);
  });

  it('removes lock files a killed git left, and nothing else', async () => {
    const { project } = await freshProject();
    const gitDir = path.join(project.dir, '.git');
    for (const lock of ['HEAD.lock', 'refs/heads/main.lock', 'index.lock'])
      writeFileSync(path.join(gitDir, lock), '');
    expect((await Project.removeStaleLocks(project.dir)).sort()).toEqual([
      'HEAD.lock',
      'index.lock',
      'refs/heads/main.lock',
    ]);
    expect(gitOut(project.dir, ['rev-parse', 'main'])).toBe(project.head);
  });
});

describe('path safety', () => {
  const ws = path.join(root, 'ws');
  mkdirSync(path.join(ws, 'inner'), { recursive: true });
  symlinkSync(root, path.join(ws, 'out'));

  it('makes directories below a root, and never the root again once it is gone', async () => {
    const runDir = path.join(root, 'run-gone');
    mkdirSync(runDir);
    await makeDirsInside(runDir, path.join(runDir, 'sandboxes/executor-0/workspace'));
    expect(existsSync(path.join(runDir, 'sandboxes/executor-0/workspace'))).toBe(true);
    await makeDirsInside(runDir, path.join(runDir, 'sandboxes/executor-0/workspace'));
    execFileSync('rm', ['-r', runDir]);
    await expect(
      makeDirsInside(runDir, path.join(runDir, 'sandboxes/executor-1/workspace')),
    ).rejects.toThrow(/ENOENT/);
    expect(existsSync(runDir)).toBe(false);
    await expect(makeDirsInside(runDir, root)).rejects.toThrow(WorkspaceEscapeError);
  });

  it('resolves paths inside the workspace', async () => {
    expect(await resolveInside(ws, 'inner/new/file.txt')).toBe(path.join(ws, 'inner/new/file.txt'));
  });

  it('refuses traversal, absolute paths and writes through a symlinked directory', async () => {
    for (const bad of ['../x', '/etc/passwd', 'inner/../../x', 'out/file.txt', '.']) {
      await expect(resolveInside(ws, bad)).rejects.toThrow(WorkspaceEscapeError);
    }
  });

  it('resolves links on the way to a path that does not exist yet', async () => {
    expect(await resolvesInside(ws, path.join(ws, 'inner/new/deep.txt'))).toBe(true);
    expect(await resolvesInside(ws, path.join(ws, 'out/new/deep.txt'))).toBe(false);
    expect(await resolvesInside(ws, path.join(ws, '../elsewhere.txt'))).toBe(false);
  });
});
