import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import type { AgentNetwork } from '../contracts/run-config.js';
import { isInside } from '../trust/path-safety.js';

/** Directories every sandbox gets empty and private, whatever else it hides. */
const PRIVATE_DIRS = ['/tmp', '/run'] as const;

/** What one confined agent may see and write. */
export interface Confinement {
  /** The task's files: writable. */
  workspace: string;
  /** The agent's HOME: writable, fresh for the attempt. */
  home: string;
  /** The model proxy's socket directory, mounted at the same path; absent in direct mode. */
  modelSocketDir?: string;
  /** `none`: no network namespace shared with the host, so only the proxy's socket leads out. */
  network: AgentNetwork;
  /** Directories replaced by empty ones: the run directory, homes, runtime sockets. */
  hidden: readonly string[];
  /** Directories under `hidden` that stay readable: the Claude Code binary, Node, tools on PATH. */
  exposed: readonly string[];
}

/**
 * The bubblewrap command line that runs `command` confined: the host's file system read-only,
 * the hidden directories empty, private /tmp and /run, only the workspace and home writable,
 * its own PID, IPC and UTS namespaces (every process it starts dies with it), no capabilities,
 * a new session (no typing into the host's terminal), and no network unless asked for.
 */
export function bubblewrapArgs(
  confinement: Confinement,
  command: string,
  args: string[],
): string[] {
  const bind = (flag: string, dir: string) => [flag, dir, dir];
  // Shorter paths first: a mount inside a hidden directory must come after it.
  const hidden = [...new Set(confinement.hidden)].sort((a, b) => a.length - b.length);
  return [
    '--die-with-parent',
    '--new-session',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(confinement.network === 'none' ? ['--unshare-net'] : []),
    '--cap-drop',
    'ALL',
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    ...[...PRIVATE_DIRS, ...hidden].flatMap((dir) => ['--tmpfs', dir]),
    ...confinement.exposed.flatMap((dir) => bind('--ro-bind', dir)),
    ...(confinement.modelSocketDir ? bind('--ro-bind', confinement.modelSocketDir) : []),
    ...bind('--bind', confinement.workspace),
    ...bind('--bind', confinement.home),
    '--chdir',
    confinement.workspace,
    '--',
    command,
    ...args,
  ];
}

/**
 * The directories a confined agent must not see, and those under them it still needs. Hidden:
 * the run directory (the host's repository, journal and other slots), the directory the
 * orchestrator was started in (the user's own project, its `.env`), `alsoHidden` (the repository
 * a run started from, wherever it is), the orchestrator user's home
 * and every home (keys, cloud credentials, tokens), and `/var/run` where it is its own directory
 * (the Docker socket: root on the host). Exposed again read-only: the Claude Code binary's
 * directory, Node's installation, and the tools on PATH, should they live in a hidden directory
 * or under the private /tmp and /run.
 */
export function confinementPaths(
  runRoot: string,
  claudeBinary: string,
  pathEnv = process.env.PATH ?? '',
  alsoHidden: readonly string[] = [],
): Pick<Confinement, 'hidden' | 'exposed'> {
  const candidates = [
    runRoot,
    process.cwd(),
    os.homedir(),
    '/root',
    '/home',
    '/var/run',
    ...alsoHidden,
  ];
  const hidden = candidates.filter((dir) => {
    const stats = existsSync(dir) ? lstatSync(dir) : undefined;
    return stats?.isDirectory() && dir !== '/';
  });
  const needed = [
    path.dirname(claudeBinary),
    path.dirname(path.dirname(process.execPath)),
    ...pathEnv
      .split(':')
      .filter((dir) => path.isAbsolute(dir))
      .map((dir) => (path.basename(dir) === 'bin' ? path.dirname(dir) : dir)),
  ];
  const emptied = [...PRIVATE_DIRS, ...hidden];
  const exposed = [...new Set(needed)].filter(
    (dir) => existsSync(dir) && emptied.some((h) => isInside(h, dir)) && !isInside(runRoot, dir),
  );
  return { hidden, exposed };
}

/** Claude Code, started by the Agent SDK inside the sandbox; its stderr goes to `log`. */
export function confinedSpawn(
  confinement: Confinement,
  log: (line: string) => void,
): (options: SpawnOptions) => ChildProcessByStdio<Writable, Readable, Readable> {
  return (options) => {
    const child = spawn('bwrap', bubblewrapArgs(confinement, options.command, options.args), {
      cwd: confinement.workspace,
      env: options.env as NodeJS.ProcessEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => log(chunk.trimEnd()));
    child.on('error', (error) => log(`sandbox: ${error.message}`));
    return child;
  };
}

export type SandboxProbe = { available: true } | { available: false; reason: string };

let probed: Promise<SandboxProbe> | undefined;

/**
 * Whether bubblewrap can confine agents on this machine: installed, and allowed to make the
 * namespaces it needs (some distributions forbid unprivileged user namespaces). Asked once.
 */
export function probeBubblewrap(): Promise<SandboxProbe> {
  probed ??= new Promise((resolve) => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'po-probe-'));
    const args = bubblewrapArgs(
      { workspace: scratch, home: scratch, network: 'none', hidden: [], exposed: [] },
      'true',
      [],
    );
    execFile('bwrap', args, { timeout: 10_000 }, (error, _stdout, stderr) => {
      rmSync(scratch, { recursive: true, force: true });
      if (!error) resolve({ available: true });
      else if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        resolve({ available: false, reason: 'bubblewrap (bwrap) is not installed' });
      else
        resolve({
          available: false,
          reason: `bubblewrap cannot make a sandbox here: ${stderr.trim().split('\n')[0] || error.message}`,
        });
    });
  });
  return probed;
}
