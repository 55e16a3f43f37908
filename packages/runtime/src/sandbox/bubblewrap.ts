import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { ENVIRONMENT_HOLES } from '../contracts/environment.js';
import type { AgentNetwork } from '../contracts/run-config.js';
import { isInside } from '../trust/path-safety.js';
import { type AgentUser, dropPrivileges, handOver, unconfinedArgs } from './agent-user.js';
import { PRIVATE_DIRS, type Visibility } from './visibility.js';

/** What one confined agent may see and write. */
export interface Confinement extends Visibility {
  /** The task's files: writable. */
  workspace: string;
  /** The agent's HOME: writable, fresh for the attempt. */
  home: string;
  /** The model proxy's socket directory, mounted at the same path; absent in direct mode. */
  modelSocketDir?: string;
  /** `none`: no network namespace shared with the host, so only the proxy's socket leads out. */
  network: AgentNetwork;
  /** The most the private /tmp may hold (it is memory); unbounded if absent. */
  tmpBytes?: number;
  /**
   * Set when the orchestrator is root: the unprivileged user the confined command becomes once
   * bubblewrap has built its view (the mounts need root's reach into directories like a 0700
   * home; the agent never has it).
   */
  runAs?: AgentUser;
  /**
   * The workspace is shown here too, and the command starts here when `startAtAlias`: one fixed
   * path, so that what a setup records by absolute path (a venv's scripts) holds in every check.
   */
  workspaceAlias?: string;
  startAtAlias?: boolean;
  /** `--setup`: prepared paths shown read-only over the workspace (and its alias). */
  environment?: { tree: string; paths: readonly string[] };
}

/** The size of the tmpfs bubblewrap puts over /run and every hidden directory. */
const SMALL_TMPFS_BYTES = 16 * 2 ** 20;

/** The capabilities a root bubblewrap keeps for `setpriv` to change user and drop the rest. */
const DROP_CAPABILITIES = ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP'];

/** A mount: its bubblewrap option, what is mounted (the host's path) and where. */
type Mount = [flag: string, source: string, dest: string];

/** How much a sandbox may write into one of a prepared environment's holes (tools' caches). */
const HOLE_TMPFS_BYTES = 256 * 2 ** 20;

/**
 * A prepared environment under `root`: each path read-only from the environment's tree, and its
 * holes (tools' caches) private and writable. A write anywhere else in it fails (EROFS): no
 * sandbox changes what the others see.
 */
function environmentMounts({ environment }: Confinement, root: string): Mount[] {
  if (!environment) return [];
  const under = (relative: string) => path.join(root, relative.replace(/\/$/, ''));
  return [
    ...environment.paths.map(
      (kept): Mount => ['--ro-bind', path.join(environment.tree, kept), under(kept)],
    ),
    ...ENVIRONMENT_HOLES.filter((hole) => environment.paths.includes(`${hole.split('/')[0]}/`)).map(
      (hole): Mount => ['hole', '', under(hole)],
    ),
  ];
}

/**
 * `--dir` for each directory between the emptied directory holding `target` and `target`:
 * bubblewrap would otherwise make them 0700 as root, which an agent running as another user
 * cannot pass through.
 */
function parentsOf(target: string, emptied: readonly string[]): string[] {
  const holder = emptied
    .filter((dir) => isInside(dir, target) && dir !== target)
    .sort((a, b) => b.length - a.length)[0];
  if (!holder) return [];
  const parents: string[] = [];
  for (let dir = path.dirname(target); dir !== holder; dir = path.dirname(dir))
    parents.unshift(dir);
  return parents.flatMap((dir) => ['--dir', dir]);
}

/**
 * The bubblewrap command line that runs `command` confined: the host's file system read-only,
 * `/proc/sys` read-only too (a sysctl write needs no capability for uid 0, and
 * `kernel.core_pattern` runs a program as real root), the hidden directories empty, private /tmp
 * and /run, only the workspace and home writable, its own PID, IPC and UTS namespaces (every
 * process it starts dies with it), no capabilities, a new session (no typing into the host's
 * terminal), no network unless asked for, and, for a root orchestrator, an unprivileged user.
 */
export function bubblewrapArgs(
  confinement: Confinement,
  command: string,
  args: readonly string[],
): string[] {
  const hidden = [...new Set(confinement.hidden)].filter(
    (dir) => !(PRIVATE_DIRS as readonly string[]).includes(dir),
  );
  const emptied = [...PRIVATE_DIRS, ...hidden];
  const same = (flag: string, dir: string): Mount => [flag, dir, dir];
  const { workspace, workspaceAlias } = confinement;
  const mounts: Mount[] = [
    ...hidden.map((dir) => same('--tmpfs', dir)),
    ...confinement.exposed.map((dir) => same('--ro-bind', dir)),
    ...(confinement.modelSocketDir ? [same('--ro-bind', confinement.modelSocketDir)] : []),
    same('--bind', workspace),
    ...(workspaceAlias ? [['--bind', workspace, workspaceAlias] as Mount] : []),
    same('--bind', confinement.home),
    ...environmentMounts(confinement, workspace),
    ...(workspaceAlias ? environmentMounts(confinement, workspaceAlias) : []),
  ];
  // Shorter paths first: a mount inside another must come after it.
  mounts.sort(([, , a], [, , b]) => a.length - b.length);
  const roots = workspaceAlias ? [workspace, workspaceAlias] : [workspace];
  const { runAs } = confinement;
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
    ...(runAs ? DROP_CAPABILITIES.flatMap((cap) => ['--cap-add', cap]) : []),
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--ro-bind',
    '/proc/sys',
    '/proc/sys',
    // Writable by any user, as /tmp is: a dropped user needs it as much as the orchestrator's.
    ...(confinement.tmpBytes ? ['--size', String(confinement.tmpBytes)] : []),
    '--perms',
    '01777',
    '--tmpfs',
    '/tmp',
    '--size',
    String(SMALL_TMPFS_BYTES),
    '--tmpfs',
    '/run',
    ...mounts.flatMap(([flag, source, dir]) => [
      // What lies in the workspace is there already, made by the host.
      ...(roots.some((root) => isInside(root, dir) && root !== dir) ? [] : parentsOf(dir, emptied)),
      // A hidden directory is empty but for the way to what is shown again: memory an agent
      // running as the user (who owns it in the sandbox) could otherwise fill.
      ...(flag === '--tmpfs'
        ? ['--size', String(SMALL_TMPFS_BYTES), flag, dir]
        : flag === 'hole'
          ? ['--size', String(HOLE_TMPFS_BYTES), '--perms', '01777', '--tmpfs', dir]
          : [flag, source, dir]),
    ]),
    '--chdir',
    confinement.startAtAlias && workspaceAlias ? workspaceAlias : workspace,
    '--',
    ...(runAs ? dropPrivileges(runAs) : []),
    command,
    ...args,
  ];
}

/** Claude Code, started by the Agent SDK inside the sandbox; its stderr goes to `log`. */
export function agentSpawn(
  confinement: Confinement | undefined,
  runAs: AgentUser | undefined,
  log: (line: string) => void,
  /** What goes first: the slot's limits (joining its control group, or prlimit). */
  launcher: readonly string[] = [],
): (options: SpawnOptions) => ChildProcessByStdio<Writable, Readable, Readable> {
  return (options) => {
    const [command, args] = confinement
      ? ['bwrap', bubblewrapArgs(confinement, options.command, options.args)]
      : unconfinedArgs(runAs, options.command, options.args);
    const [file, ...argv] = [...launcher, command, ...args] as [string, ...string[]];
    const child = spawn(file, argv, {
      cwd: confinement?.workspace ?? options.cwd,
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

const probes = new Map<string, Promise<SandboxProbe>>();

/**
 * Whether bubblewrap can confine agents on this machine: installed, allowed to make the
 * namespaces it needs (some distributions forbid unprivileged user namespaces), and, for a root
 * orchestrator, able to run the command as `runAs`. Asked once per user.
 */
export function probeBubblewrap(runAs?: AgentUser): Promise<SandboxProbe> {
  const key = runAs ? `${runAs.uid}` : '';
  let probe = probes.get(key);
  if (!probe) {
    probe = runProbe(runAs);
    probes.set(key, probe);
  }
  return probe;
}

async function runProbe(runAs: AgentUser | undefined): Promise<SandboxProbe> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'po-probe-'));
  try {
    if (runAs) {
      // Entered by bubblewrap as root without its capabilities, as a workspace is.
      chmodSync(scratch, 0o755);
      await handOver(scratch, runAs);
    }
    const args = bubblewrapArgs(
      { workspace: scratch, home: scratch, network: 'none', hidden: [], exposed: [], runAs },
      '/bin/sh',
      ['-c', 'id -u'],
    );
    return await new Promise((resolve) => {
      execFile('bwrap', args, { timeout: 10_000 }, (error, stdout, stderr) => {
        if (!error && (!runAs || stdout.trim() === String(runAs.uid))) resolve({ available: true });
        else if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT')
          resolve({ available: false, reason: 'bubblewrap (bwrap) is not installed' });
        else
          resolve({
            available: false,
            reason: `bubblewrap cannot make a sandbox here: ${stderr.trim().split('\n')[0] || error?.message || `it ran as uid ${stdout.trim()}, not ${runAs?.uid}`}`,
          });
      });
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
