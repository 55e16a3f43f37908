import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { handOver } from '../../packages/runtime/src/sandbox/agent-user.js';
import { bubblewrapArgs } from '../../packages/runtime/src/sandbox/bubblewrap.js';
import { repositoryDirs, visibility } from '../../packages/runtime/src/sandbox/visibility.js';
import { notRoot, rootNeed } from '../support/limits.js';
import { itNeeding } from '../support/needing.js';
import { tempDir } from '../support/tmp.js';

describe('what a confined agent sees', () => {
  const root = tempDir('po-sandbox-');
  const runRoot = path.join(root, 'runs', 'r1');
  const claudeDir = path.join(root, 'checkout', 'node_modules', 'claude-code-linux-x64');
  mkdirSync(claudeDir, { recursive: true });
  mkdirSync(runRoot, { recursive: true });

  it('hides the output directory, the repository it started in, and the homes', () => {
    const { hidden } = visibility(runRoot, [path.join(claudeDir, 'claude')], '/usr/bin');
    expect(hidden).toEqual(
      expect.arrayContaining([path.join(root, 'runs'), os.homedir(), '/root']),
    );
    // The suite runs in this checkout: its whole repository, not only the directory.
    expect(hidden).toContain(repositoryDirs(process.cwd())[0]);
    expect(hidden).not.toContain('/');
  });

  it('shows a PATH entry inside a home as itself, never the home or a parent of what it hides', () => {
    const home = os.homedir();
    const { exposed } = visibility(
      runRoot,
      [path.join(claudeDir, 'claude')],
      [`${home}/.local/bin`, `${home}/.cargo/bin`, home, path.dirname(home), 'relative/bin'].join(
        ':',
      ),
    );
    expect(exposed).not.toContain(home);
    expect(exposed).not.toContain(`${home}/.local`);
    expect(exposed).not.toContain(`${home}/.cargo`);
    expect(exposed.some((dir) => dir.startsWith(path.join(root, 'runs')))).toBe(false);
    // The binary lives under /tmp, which every sandbox empties: it must be shown again.
    expect(exposed).toContain(claudeDir);
  });

  it("leaves a hidden checkout's node_modules/.bin hidden: its shims point at packages the sandbox cannot see", () => {
    const bin = path.join(root, 'checkout', 'node_modules', '.bin');
    const tools = path.join(root, 'tools', 'bin');
    mkdirSync(bin, { recursive: true });
    mkdirSync(tools, { recursive: true });
    const { exposed } = visibility(runRoot, [path.join(claudeDir, 'claude')], `${bin}:${tools}`);
    expect(exposed).not.toContain(bin);
    expect(exposed).toContain(tools);
  });

  it('finds the top of a repository from a directory deep in it, and a worktree its repository', () => {
    const repo = path.join(root, 'repo');
    mkdirSync(path.join(repo, 'a', 'b'), { recursive: true });
    execFileSync('git', ['init', '-q', repo]);
    expect(repositoryDirs(path.join(repo, 'a', 'b'))).toEqual([repo]);
    const worktree = path.join(root, 'linked');
    mkdirSync(worktree);
    writeFileSync(path.join(worktree, '.git'), `gitdir: ${repo}/.git/worktrees/linked\n`);
    expect(repositoryDirs(worktree)).toEqual([worktree, repo]);
    const loose = path.join(root, 'loose');
    mkdirSync(loose);
    expect(repositoryDirs(loose)).toEqual([loose]);
  });
});

describe('the bubblewrap command line', () => {
  const runRoot = '/srv/runs/r1';
  const confinement = {
    workspace: `${runRoot}/sandboxes/executor-0/workspace`,
    home: `${runRoot}/sandboxes/executor-0/home`,
    modelSocketDir: '/tmp/po-model-x',
    network: 'none' as const,
    hidden: ['/srv/runs', '/root'],
    exposed: ['/root/.cache/node'],
  };
  const at = (args: string[], flag: string, value: string) =>
    args.findIndex((a, i) => a === flag && args[i + 1] === value);

  it('mounts what hides before what shows, and makes the way to each mount passable', () => {
    const args = bubblewrapArgs(confinement, '/bin/claude', ['-p']);
    expect(args).toContain('--unshare-net');
    expect(at(args, '--tmpfs', '/tmp')).toBeLessThan(at(args, '--tmpfs', '/srv/runs'));
    expect(at(args, '--tmpfs', '/root')).toBeLessThan(at(args, '--ro-bind', '/root/.cache/node'));
    expect(at(args, '--tmpfs', '/srv/runs')).toBeLessThan(
      at(args, '--bind', confinement.workspace),
    );
    // Directories bubblewrap would make 0700 on the way are made 0755 first.
    expect(at(args, '--dir', '/root/.cache')).toBeLessThan(
      at(args, '--ro-bind', '/root/.cache/node'),
    );
    expect(at(args, '--dir', `${runRoot}/sandboxes/executor-0`)).toBeLessThan(
      at(args, '--bind', confinement.workspace),
    );
    expect(at(args, '--ro-bind', '/tmp/po-model-x')).toBeGreaterThan(at(args, '--tmpfs', '/tmp'));
    expect(args.slice(-3)).toEqual(['--', '/bin/claude', '-p']);
    expect(bubblewrapArgs({ ...confinement, network: 'open' }, 'x', [])).not.toContain(
      '--unshare-net',
    );
  });

  it('keeps /proc/sys read-only and, for root, runs the command as the agent user with nothing to regain', () => {
    const args = bubblewrapArgs(
      { ...confinement, runAs: { uid: 10001, gid: 10001, setpriv: '/usr/bin/setpriv' } },
      '/bin/claude',
      [],
    );
    expect(at(args, '--ro-bind', '/proc/sys')).toBeGreaterThan(at(args, '--proc', '/proc'));
    const command = args.slice(args.indexOf('--') + 1);
    expect(command).toEqual([
      '/usr/bin/setpriv',
      '--reuid',
      '10001',
      '--regid',
      '10001',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      '/bin/claude',
    ]);
    const kept = args.flatMap((a, i) => (a === '--cap-add' ? [args[i + 1]] : []));
    expect(kept.sort()).toEqual(['CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID']);
  });
});

describe('handing a tree to the agent user', () => {
  // Only root can give files away: CI runs as root.
  itNeeding(
    'gives away what the host made, never a file linked in from elsewhere (as root)',
    async () => {
      const root = tempDir('po-hand-over-');
      const tree = path.join(root, 'workspace');
      mkdirSync(path.join(tree, 'src'), { recursive: true });
      writeFileSync(path.join(tree, 'src', 'a.ts'), 'a');
      // A file of the host's, hard-linked into the tree by the last agent.
      const hosts = path.join(root, 'hosts-file');
      writeFileSync(hosts, 'the host owns this');
      linkSync(hosts, path.join(tree, 'linked'));
      const before = statSync(hosts);
      const user = { uid: before.uid + 12345, gid: before.gid + 12345 };
      await handOver(tree, user);
      expect(statSync(path.join(tree, 'src', 'a.ts')).uid).toBe(user.uid);
      expect(statSync(tree).uid).toBe(user.uid);
      expect(statSync(hosts).uid).toBe(before.uid);
    },
    rootNeed(notRoot),
  );
});
