import path from 'node:path';
import { AgentCgroups } from '../../sandbox/cgroups.js';
import {
  type FreeSpaceWatch,
  prlimitLauncher,
  sharedProcessCap,
  watchFreeSpace,
} from '../../sandbox/rlimits.js';
import { mountSlotDisk, slotDiskFull, unmountSlotDisk } from '../../sandbox/slot-disk.js';
import { formatBytes } from '../../util/bytes.js';

/** What one local agent (or check) may use. */
export interface AgentLimits {
  memoryBytes: number;
  pids: number;
  diskBytes: number;
}

export interface SlotLimitsRun {
  runId: string;
  /** The run directory: its file system is watched when slots have no disk of their own. */
  runRoot: string;
  /** Every slot an agent or check runs in (its directory, which holds workspace and home). */
  slots: readonly string[];
  limits: AgentLimits;
  /** The run's --max-file-size: the largest file a process may write where no disk caps it. */
  maxFileBytes: number;
  /** Where the run's file system fills up all the same: what stops every attempt. */
  onDiskLow: (message: string) => void;
}

/** Why an attempt was stopped by its limits, and whether another attempt may fare better. */
export interface LimitHit {
  error: string;
  retryable: boolean;
}

/**
 * How a run's local agents and checks are held to their limits, in the strongest way this host
 * allows: a control group per slot (memory and processes, as one agent) and a loop-mounted disk
 * per slot (ENOSPC past the limit) when the orchestrator is root; otherwise resource limits per
 * process (prlimit) and a watchdog on the free space of the run's file system. Which one holds is
 * told by `enforced`; docs/operations.md says what each one means.
 */
export class SlotLimits {
  private constructor(
    private readonly limits: AgentLimits,
    private readonly cgroups: AgentCgroups | undefined,
    private readonly rlimits: string[] | undefined,
    private readonly disks: ReadonlySet<string>,
    private readonly watch: FreeSpaceWatch | undefined,
    /** One line per kind of limit: how this run enforces it. */
    readonly enforced: readonly string[],
  ) {}

  static async start(run: SlotLimitsRun): Promise<SlotLimits> {
    const { limits } = run;
    const enforced: string[] = [];
    // A killed orchestrator's groups would otherwise keep its agents alive and counted.
    await AgentCgroups.removeLeftovers(run.runId).catch(() => []);
    const setup = await AgentCgroups.create(run.runId, limits);
    let rlimits: string[] | undefined;
    if (setup.available)
      enforced.push(
        `memory ${formatBytes(limits.memoryBytes)} and ${limits.pids} processes per agent: a control group per slot`,
      );
    else {
      // A root orchestrator runs agents as one unprivileged user, which only they use: the
      // kernel's count of that user's processes is the agents' alone.
      const processes =
        process.getuid?.() === 0
          ? run.slots.length * limits.pids
          : await sharedProcessCap(run.slots.length, limits.pids);
      rlimits = prlimitLauncher({
        dataBytes: limits.memoryBytes,
        processes,
        // One byte over: a file cut at the limit would pass the ingest's check, which must fail it.
        maxFileBytes: run.maxFileBytes + 1,
      });
      enforced.push(
        `memory ${formatBytes(limits.memoryBytes)} per process, ${processes} processes for all agents together, files up to ${formatBytes(run.maxFileBytes)}: prlimit (${setup.reason})`,
      );
    }
    const mounts = await Promise.all(
      run.slots.map((slot) => mountSlotDisk(slot, limits.diskBytes)),
    );
    const disks = new Set(run.slots.filter((_, i) => mounts[i]?.mounted));
    let watch: FreeSpaceWatch | undefined;
    const unmounted = mounts.find((mount) => !mount.mounted);
    if (unmounted && !unmounted.mounted) {
      watch = watchFreeSpace(run.runRoot, (usage, floor) =>
        run.onDiskLow(
          `the run's file system has ${formatBytes(usage.freeBytes)} free, under ${formatBytes(floor)}`,
        ),
      );
      enforced.push(
        `disk: agents stopped when the run's file system falls under its floor (${unmounted.reason})`,
      );
    } else enforced.push(`disk ${formatBytes(limits.diskBytes)} per agent: a file system per slot`);
    return new SlotLimits(
      limits,
      setup.available ? setup.cgroups : undefined,
      rlimits,
      disks,
      watch,
      enforced,
    );
  }

  /** What goes in front of the slot's sandbox command: joining its group, or prlimit. */
  launcher(slot: string): string[] {
    return this.cgroups?.launcher(path.basename(slot)) ?? this.rlimits ?? [];
  }

  /** Before an attempt: the slot's group emptied of anything left, its counts reset. */
  async prepare(slot: string): Promise<void> {
    await this.cgroups?.prepare(path.basename(slot));
  }

  /**
   * After an attempt: nothing of it left running, and whether a limit stopped it (the kernel
   * killed something for memory, or its disk is full).
   */
  async afterwards(slot: string): Promise<LimitHit | undefined> {
    const name = path.basename(slot);
    if (!this.cgroups) return this.diskHit(slot);
    const outOfMemory = await this.cgroups.outOfMemory(name);
    await this.cgroups.killAll(name);
    if (outOfMemory)
      return {
        error: `killed for memory (limit ${formatBytes(this.limits.memoryBytes)})`,
        retryable: true,
      };
    return this.diskHit(slot);
  }

  private async diskHit(slot: string): Promise<LimitHit | undefined> {
    if (!this.disks.has(slot)) return undefined;
    const full = await slotDiskFull(slot);
    return full ? { error: `the agent ${full}`, retryable: false } : undefined;
  }

  async close(): Promise<void> {
    this.watch?.stop();
    await this.cgroups?.remove();
    await Promise.all([...this.disks].map(unmountSlotDisk));
  }
}
