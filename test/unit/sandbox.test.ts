import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bubblewrapArgs, confinementPaths } from '../../packages/runtime/src/sandbox/bubblewrap.js';
import { tempDir } from '../support/tmp.js';

describe('bubblewrap confinement', () => {
  const root = tempDir('po-sandbox-');
  const runRoot = path.join(root, 'runs', 'r1');
  const claudeDir = path.join(root, 'checkout', 'node_modules', 'claude-code-linux-x64');
  mkdirSync(claudeDir, { recursive: true });
  mkdirSync(runRoot, { recursive: true });

  it('hides the run, the start directory and the homes, and shows again what agents need', () => {
    const { hidden, exposed } = confinementPaths(
      runRoot,
      path.join(claudeDir, 'claude'),
      `/usr/bin:${os.homedir()}/.local/bin:relative/bin`,
    );
    expect(hidden).toEqual(expect.arrayContaining([runRoot, process.cwd(), os.homedir()]));
    expect(hidden).not.toContain('/');
    // The binary lives under /tmp, which every sandbox empties: it must be shown again.
    expect(exposed).toContain(claudeDir);
    expect(exposed.some((dir) => dir.startsWith(runRoot))).toBe(false);
  });

  it('mounts what hides before what shows, and binds the workspace and home last', () => {
    const args = bubblewrapArgs(
      {
        workspace: `${runRoot}/sandboxes/executor-0/workspace`,
        home: `${runRoot}/sandboxes/executor-0/home`,
        modelSocketDir: '/tmp/po-model-x',
        network: 'none',
        hidden: [runRoot, '/root'],
        exposed: [claudeDir],
      },
      '/bin/claude',
      ['-p'],
    );
    const at = (flag: string, value: string) =>
      args.findIndex((a, i) => a === flag && args[i + 1] === value);
    expect(args).toContain('--unshare-net');
    expect(at('--tmpfs', '/tmp')).toBeLessThan(at('--tmpfs', runRoot));
    expect(at('--tmpfs', '/root')).toBeLessThan(at('--tmpfs', runRoot));
    expect(at('--tmpfs', runRoot)).toBeLessThan(at('--ro-bind', claudeDir));
    expect(at('--ro-bind', claudeDir)).toBeLessThan(
      at('--bind', `${runRoot}/sandboxes/executor-0/workspace`),
    );
    expect(at('--ro-bind', '/tmp/po-model-x')).toBeGreaterThan(at('--tmpfs', '/tmp'));
    expect(args.slice(-3)).toEqual(['--', '/bin/claude', '-p']);
    const open = bubblewrapArgs(
      { workspace: '/w', home: '/h', network: 'open', hidden: [], exposed: [] },
      'x',
      [],
    );
    expect(open).not.toContain('--unshare-net');
  });
});
