/**
 * Limits for an agent where no control group could be made (not root, or a host whose cgroups
 * are not writable): resource limits set by `prlimit` on the sandboxed command, and a watchdog
 * on the run's file system for when no slot disk could be mounted either. Coarser than a cgroup:
 * see docs/decisions.md, "Per-agent limits (issue 23)".
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import { formatBytes } from '../util/bytes.js';
import { type DiskUsage, usageOf } from './slot-disk.js';

/**
 * Claude Code (Bun) and Node 24 reserve memory that RLIMIT_DATA counts before doing anything:
 * both started here at 640 MiB and crashed at 512 MiB. 1 GiB leaves a margin.
 */
export const MIN_DATA_BYTES = 2 ** 30;

export interface AgentRlimits {
  /**
   * RLIMIT_DATA: the heap and private memory of EACH process of the agent, not of the agent as a
   * whole (ten processes may use ten times this). RLIMIT_AS would count much more that runtimes
   * reserve without using: Node 24 needs 2 GiB of address space to start, 640 MiB of data.
   */
  dataBytes: number;
  /**
   * RLIMIT_NPROC: the kernel counts every process and thread of the real user, system-wide, and
   * ignores the limit for root. So it is one cap shared by all agents of a user and everything
   * else that user runs (see sharedProcessCap), never a per-agent count.
   */
  processes: number;
  /**
   * RLIMIT_FSIZE: the largest file a process may write (the run's --max-file-size). A write past
   * it gets SIGXFSZ, which kills the writing process (the agent sees its command die).
   */
  maxFileBytes: number;
}

/**
 * The command line that runs `command` under `limits`: prlimit sets them on itself, then execs
 * it, so every process the command starts inherits them. Soft and hard are equal, so the agent
 * cannot raise them again; no core files (an agent's memory may hold its token). Values are
 * plain byte counts: this prlimit (util-linux 2.38) reads `--data=2G` as 2 bytes.
 */
export function prlimitCommand(
  limits: AgentRlimits,
  command: string,
  args: readonly string[],
): { file: 'prlimit'; args: string[] } {
  const [file, ...prefix] = prlimitLauncher(limits);
  return { file: file as 'prlimit', args: [...prefix, command, ...args] };
}

/** What `prlimitCommand` puts in front of a command. */
export function prlimitLauncher(limits: AgentRlimits): string[] {
  if (limits.dataBytes < MIN_DATA_BYTES)
    throw new RangeError(
      `a memory limit of ${formatBytes(limits.dataBytes)} per process is below what Claude Code needs to start (${formatBytes(MIN_DATA_BYTES)})`,
    );
  const both = (value: number) => `${Math.floor(value)}:${Math.floor(value)}`;
  return [
    'prlimit',
    `--data=${both(limits.dataBytes)}`,
    `--nproc=${both(limits.processes)}`,
    `--fsize=${both(limits.maxFileBytes)}`,
    '--core=0:0',
    '--',
  ];
}

/**
 * RLIMIT_NPROC for agents of a user who is not root: what the user runs now (shell, editor, the
 * orchestrator; threads count) plus `perAgent` for each of `executors` agents. A fork bomb in
 * one agent can still take the others' share: the limit is one counter for the whole user.
 */
export async function sharedProcessCap(
  executors: number,
  perAgent: number,
  uid = process.getuid?.() ?? 0,
): Promise<number> {
  return (await threadsOfUser(uid)) + executors * perAgent;
}

/** The user's processes and threads now, as RLIMIT_NPROC counts them (by real uid). */
export async function threadsOfUser(uid: number): Promise<number> {
  let count = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const realUid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const threads = /^Threads:\s+(\d+)/m.exec(status)?.[1];
    if (realUid === String(uid) && threads) count += Number(threads);
  }
  return count;
}

/**
 * The least free space a run's file system may keep while agents write to it unconfined: 1 GiB,
 * or 5% of a larger file system, so the orchestrator can still journal, commit and merge.
 */
export function freeSpaceFloor(sizeBytes: number): number {
  return Math.max(2 ** 30, sizeBytes * 0.05);
}

export interface FreeSpaceWatch {
  stop(): void;
}

/**
 * Watches the free space of the file system holding `dir`, for runs whose slots have no disk of
 * their own: every `intervalMs` one statfs (no walk of any tree, nothing measurable), and
 * `onLow` once each time free space falls below the floor (freeSpaceFloor unless given), so the
 * orchestrator can stop the attempts that are filling it. It fires again only after free space
 * has risen back above the floor.
 */
export function watchFreeSpace(
  dir: string,
  onLow: (usage: DiskUsage, floorBytes: number) => void,
  options: { intervalMs?: number; floorBytes?: number } = {},
): FreeSpaceWatch {
  const intervalMs = options.intervalMs ?? 5_000;
  let low = false;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    // A statfs that fails (the run directory gone) is left to the orchestrator to notice.
    const usage = await statfs(dir).then(usageOf, () => undefined);
    if (stopped) return;
    if (usage) {
      const floor = options.floorBytes ?? freeSpaceFloor(usage.sizeBytes);
      const below = usage.freeBytes < floor;
      if (below && !low) onLow(usage, floor);
      low = below;
    }
    timer = setTimeout(check, intervalMs).unref();
  };
  void check();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
