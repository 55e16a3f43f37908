import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertNoEscapingSymlinks,
  resolveInside,
  WorkspaceEscapeError,
} from '../../packages/runtime/src/workspace/path-safety.js';
import { Project } from '../../packages/runtime/src/workspace/project.js';
import { gitOut } from '../support/git.js';
import { tempDir } from '../support/tmp.js';

const root = tempDir();
let n = 0;

async function freshProject() {
  const dir = path.join(root, `run-${n++}`);
  const project = await Project.init(path.join(dir, 'project'), 'Start');
  const workspace = (slot: number) => path.join(dir, 'worktrees', `executor-${slot}`);
  return { project, workspace };
}

function write(dir: string, file: string, content: string) {
  mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  writeFileSync(path.join(dir, file), content);
}

describe('project integration', () => {
  it('merges parallel tasks with one merge commit each and keeps task branches', async () => {
    const { project, workspace } = await freshProject();
    const base = project.head;
    await project.prepareWorkspace(workspace(0), 'a', base);
    await project.prepareWorkspace(workspace(1), 'b', base);
    write(workspace(0), 'src/a.ts', 'a\n');
    write(workspace(1), 'src/b.ts', 'b\n');
    const a = await project.commitWorkspace(workspace(0), 'task a');
    const b = await project.commitWorkspace(workspace(1), 'task b');
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

  it('reports a conflict with its files and leaves main untouched', async () => {
    const { project, workspace } = await freshProject();
    const base = project.head;
    await project.prepareWorkspace(workspace(0), 'a', base);
    await project.prepareWorkspace(workspace(1), 'b', base);
    write(workspace(0), 'shared.txt', 'from a\n');
    write(workspace(0), 'a-only.txt', 'a\n');
    write(workspace(1), 'shared.txt', 'from b\n');
    const a = await project.commitWorkspace(workspace(0), 'task a');
    const b = await project.commitWorkspace(workspace(1), 'task b');
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
    const { project, workspace } = await freshProject();
    const base = project.head;
    const commits = [];
    for (const [slot, [id, file, content]] of [
      ['one', 'one.txt', '1'],
      ['two', 'shared.txt', 'two'],
      ['three', 'shared.txt', 'three'],
      ['four', 'four.txt', '4'],
    ].entries()) {
      await project.prepareWorkspace(workspace(slot), id as string, base);
      write(workspace(slot), file as string, content as string);
      commits.push(await project.commitWorkspace(workspace(slot), `task ${id}`));
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

  it('retries a task in another slot while its branch is still checked out in the first', async () => {
    const { project, workspace } = await freshProject();
    await project.prepareWorkspace(workspace(0), 'again', project.head);
    write(workspace(0), 'partial.txt', 'first attempt');
    await project.prepareWorkspace(workspace(1), 'again', project.head);
    write(workspace(1), 'done.txt', 'second attempt');
    const { files } = await project.commitWorkspace(workspace(1), 'second attempt');
    expect(files).toEqual(['done.txt']);
    expect(gitOut(project.dir, ['ls-tree', '-r', '--name-only', 'task/again'])).toBe('done.txt');
  });

  it('lists files with unusual names exactly', async () => {
    const { project, workspace } = await freshProject();
    await project.prepareWorkspace(workspace(0), 'odd', project.head);
    const names = ['with space.txt', 'ünïcödé.md', 'quote"d.txt', 'new\nline.txt'];
    for (const name of names) write(workspace(0), name, 'x');
    const { files } = await project.commitWorkspace(workspace(0), 'odd names');
    expect(files.sort()).toEqual([...names].sort());
  });

  it('starts every task from a clean worktree at the given commit', async () => {
    const { project, workspace } = await freshProject();
    await project.prepareWorkspace(workspace(0), 'first', project.head);
    write(workspace(0), '.gitignore', 'node_modules/\n');
    write(workspace(0), 'kept.txt', 'k');
    const first = await project.commitWorkspace(workspace(0), 'first');
    await project.merge(first.commit, 'merge first');
    write(workspace(0), 'node_modules/leftover.js', 'ignored');
    write(workspace(0), 'stray.txt', 'untracked');
    write(workspace(0), 'kept.txt', 'dirty');
    await project.prepareWorkspace(workspace(0), 'second', project.head);
    expect(existsSync(path.join(workspace(0), 'node_modules'))).toBe(false);
    expect(existsSync(path.join(workspace(0), 'stray.txt'))).toBe(false);
    expect(readFileSync(path.join(workspace(0), 'kept.txt'), 'utf8')).toBe('k');
  });

  it('rejects a task that commits a symlink pointing outside its workspace', async () => {
    const { project, workspace } = await freshProject();
    await project.prepareWorkspace(workspace(0), 'evil', project.head);
    symlinkSync('/etc/passwd', path.join(workspace(0), 'absolute'));
    await expect(project.commitWorkspace(workspace(0), 'evil')).rejects.toThrow(
      WorkspaceEscapeError,
    );
    await project.prepareWorkspace(workspace(0), 'evil', project.head);
    symlinkSync('../../../outside', path.join(workspace(0), 'relative'));
    await expect(project.commitWorkspace(workspace(0), 'evil')).rejects.toThrow(/points outside/);
    await project.prepareWorkspace(workspace(0), 'fine', project.head);
    write(workspace(0), 'docs/real.md', 'x');
    symlinkSync('docs/real.md', path.join(workspace(0), 'inside'));
    await expect(project.commitWorkspace(workspace(0), 'fine')).resolves.toMatchObject({
      files: ['docs/real.md', 'inside'],
    });
  });
});

describe('path safety', () => {
  const ws = path.join(root, 'ws');
  mkdirSync(path.join(ws, 'inner'), { recursive: true });
  symlinkSync(root, path.join(ws, 'out'));

  it('resolves paths inside the workspace', async () => {
    expect(await resolveInside(ws, 'inner/new/file.txt')).toBe(path.join(ws, 'inner/new/file.txt'));
  });

  it('refuses traversal, absolute paths and writes through a symlinked directory', async () => {
    for (const bad of ['../x', '/etc/passwd', 'inner/../../x', 'out/file.txt', '.']) {
      await expect(resolveInside(ws, bad)).rejects.toThrow(WorkspaceEscapeError);
    }
  });

  it('ignores regular files and missing paths when checking symlinks', async () => {
    await expect(assertNoEscapingSymlinks(ws, ['inner', 'missing.txt'])).resolves.toBeUndefined();
    await expect(assertNoEscapingSymlinks(ws, ['out'])).rejects.toThrow(WorkspaceEscapeError);
  });
});
