/**
 * Control groups per executor slot, so that one agent's processes and memory are capped as a
 * whole: a fork bomb stops at its pids limit, a process allocating past the memory limit is
 * killed by the kernel (and that is known), and every process an agent left is found and killed.
 * Works on cgroup v2 (the unified hierarchy) and on v1 (memory and pids mounted separately) when
 * this process may make groups (root, or a delegated v2 subtree). Elsewhere it says why, and the
 * caller falls back to resource limits (rlimits.ts).
 *
 * The run's groups sit below the orchestrator's own group in each hierarchy, not at the root: an
 * orchestrator started inside a container, a systemd slice or any group with limits keeps its
 * agents inside them too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type MountEntry, ownMounts } from './mountinfo.js';

export interface CgroupLimits {
  /** The most memory (RAM, no swap) the slot's processes may use together, page cache included. */
  memoryBytes: number;
  /** The most processes and threads the slot may have at once. */
  pids: number;
}

/** One file that sets a limit in a slot's group; `ifPresent` files exist only on some kernels. */
interface LimitFile {
  name: string;
  value: string;
  ifPresent?: boolean;
}

/** One hierarchy the slots' groups are made in, and what the limits need there. */
export interface Hierarchy {
  version: 1 | 2;
  /** The orchestrator's own group in it: the run's group is made below this. */
  own: string;
  /** The hierarchy's root, where removeLeftovers looks for groups of a killed orchestrator. */
  mountPoint: string;
  limits: (limits: CgroupLimits) => LimitFile[];
  /** v2: what a group hands down to its children (cgroup.subtree_control). */
  delegate?: string;
  /** Where the kernel counts its out-of-memory kills (an `oom_kill N` line). */
  oomEvents?: string;
}

const RUN_GROUP_PREFIX = 'parallel-orchestrator-';

/** Names that make one path component and nothing else: no `/`, no `..`, no leading dot. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

function checkName(kind: string, name: string): string {
  if (!SAFE_NAME.test(name) || name.includes('..'))
    throw new Error(`${kind} ${JSON.stringify(name)} cannot name a control group`);
  return name;
}

/** The name of a run's group, made from its id (refused when it could leave its directory). */
export function runGroupName(runId: string): string {
  return `${RUN_GROUP_PREFIX}${checkName('run id', runId)}`;
}

/** How long killAll keeps killing before it gives up on a group that will not empty. */
const KILL_TIMEOUT_MS = 5_000;

/**
 * Joins the groups named as arguments up to `--`, then execs the rest: the command starts inside
 * them, so nothing it forks is ever outside. Exit status 125 when a group cannot be joined.
 */
const JOIN_SCRIPT =
  'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"';

export type CgroupSetup =
  | { available: true; cgroups: AgentCgroups }
  | { available: false; reason: string };

/**
 * The control groups of one run: `<own group>/parallel-orchestrator-<run id>/<slot>` in each
 * hierarchy, with the same limits for every slot.
 */
export class AgentCgroups {
  /** Out-of-memory kills counted in each slot's group when it was last prepared. */
  private readonly oomKillsAtPrepare = new Map<string, number>();

  private constructor(
    private readonly hierarchies: Hierarchy[],
    private readonly runGroup: string,
    private readonly limits: CgroupLimits,
  ) {}

  /**
   * Makes the run's groups, or says in one line why this host offers none that this process can
   * use (not root, no memory and pids controllers, a v2 group that cannot delegate them).
   */
  static async create(runId: string, limits: CgroupLimits): Promise<CgroupSetup> {
    const runGroup = runGroupName(runId);
    const hierarchies = await hostHierarchies();
    if (typeof hierarchies === 'string') return { available: false, reason: hierarchies };
    const made: string[] = [];
    for (const hierarchy of hierarchies) {
      const dir = path.join(hierarchy.own, runGroup);
      try {
        // An existing group is this run's, left by an earlier orchestrator: prepare empties it.
        if (await makeGroup(dir)) made.push(dir);
        if (hierarchy.delegate) {
          await delegate(hierarchy.own, hierarchy.delegate);
          await delegate(dir, hierarchy.delegate);
        }
      } catch (error) {
        await Promise.all(made.map((group) => rmdir(group).catch(() => {})));
        return { available: false, reason: cannotMake(hierarchy, error) };
      }
    }
    return { available: true, cgroups: new AgentCgroups(hierarchies, runGroup, limits) };
  }

  /**
   * Readies a slot's group for an attempt: made if missing, limits written, any process left in
   * it killed, and its out-of-memory count noted so that outOfMemory counts from now.
   */
  async prepare(slot: string): Promise<void> {
    const dirs = this.slotDirs(slot);
    for (const dir of dirs) await makeGroup(dir);
    await killGroups(dirs);
    for (const hierarchy of this.hierarchies) {
      const dir = this.slotDir(hierarchy, slot);
      for (const { name, value, ifPresent } of hierarchy.limits(this.limits)) {
        const file = path.join(dir, name);
        if (!ifPresent || existsSync(file)) await writeFile(file, value);
      }
    }
    this.oomKillsAtPrepare.set(slot, await this.oomKills(slot));
  }

  /**
   * The argv that runs `command` inside the slot's groups: a shell that joins them and then execs
   * the command, so it is inside before it can fork. Put it outermost (before any wrapper that
   * drops privileges): joining a group takes write access to the group's files.
   */
  wrap(slot: string, command: string, args: readonly string[]): string[] {
    return [...this.launcher(slot), command, ...args];
  }

  /** What `wrap` puts in front of a command, for a process that builds the command itself. */
  launcher(slot: string): string[] {
    const procs = this.slotDirs(slot).map((dir) => path.join(dir, 'cgroup.procs'));
    return ['/bin/sh', '-c', JOIN_SCRIPT, 'join-cgroups', ...procs, '--'];
  }

  /**
   * Kills every process in the slot's groups (cgroup.kill on v2, else SIGKILL to each, again
   * until none is left). Resolves whether the groups are empty; false after KILL_TIMEOUT_MS.
   */
  killAll(slot: string): Promise<boolean> {
    return killGroups(this.slotDirs(slot));
  }

  /** The processes in the slot's groups now (pids as this process sees them). */
  processes(slot: string): Promise<number[]> {
    return processesInAll(this.slotDirs(slot));
  }

  /** Whether the kernel killed a process of the slot for memory since the slot was prepared. */
  async outOfMemory(slot: string): Promise<boolean> {
    return (await this.oomKills(slot)) > (this.oomKillsAtPrepare.get(slot) ?? 0);
  }

  /** Kills every process of the run's groups and removes them, slots first. */
  async remove(): Promise<void> {
    await removeRunGroups(this.hierarchies.map((h) => path.join(h.own, this.runGroup)));
  }

  /**
   * Kills and removes the groups an orchestrator of this run left when it was killed, wherever
   * they are in the hierarchies (a resumed orchestrator may sit in another group). Resolves the
   * run groups it removed.
   */
  static async removeLeftovers(runId: string): Promise<string[]> {
    const runGroup = runGroupName(runId);
    const hierarchies = await hostHierarchies();
    if (typeof hierarchies === 'string') return [];
    const found: string[] = [];
    for (const { mountPoint } of hierarchies)
      found.push(...(await findGroups(mountPoint, runGroup)));
    await removeRunGroups(found);
    return found;
  }

  private async oomKills(slot: string): Promise<number> {
    let count = 0;
    for (const hierarchy of this.hierarchies) {
      if (!hierarchy.oomEvents) continue;
      const events = await readFile(
        path.join(this.slotDir(hierarchy, slot), hierarchy.oomEvents),
        'utf8',
      );
      // Kernels before 4.13 (v1) have no oom_kill line: no kill is ever seen there.
      count += Number(/^oom_kill (\d+)$/m.exec(events)?.[1] ?? 0);
    }
    return count;
  }

  private slotDirs(slot: string): string[] {
    return this.hierarchies.map((hierarchy) => this.slotDir(hierarchy, slot));
  }

  private slotDir(hierarchy: Hierarchy, slot: string): string {
    return path.join(hierarchy.own, this.runGroup, checkName('slot', slot));
  }
}

/** Makes a group; resolves false when it was there already. */
async function makeGroup(dir: string): Promise<boolean> {
  try {
    await mkdir(dir);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Enables controllers for the children of `dir`, unless they are already. */
async function delegate(dir: string, controllers: string): Promise<void> {
  const file = path.join(dir, 'cgroup.subtree_control');
  const enabled = (await readFile(file, 'utf8')).split(/\s+/);
  const missing = controllers.split(' ').filter((c) => !enabled.includes(c.slice(1)));
  if (missing.length > 0) await writeFile(file, missing.join(' '));
}

function cannotMake(hierarchy: Hierarchy, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const where = `cgroup v${hierarchy.version} (${hierarchy.own})`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
    return `${where} is not writable by this process (uid ${process.getuid?.()})`;
  if (code === 'EBUSY' && hierarchy.version === 2)
    return `${where}: the orchestrator's own group holds processes, so it cannot hand memory and pids down (run it in a group of its own)`;
  return `${where}: ${(error as Error).message}`;
}

async function hostHierarchies(): Promise<Hierarchy[] | string> {
  const [mounts, membership] = await Promise.all([
    ownMounts(),
    readFile('/proc/self/cgroup', 'utf8'),
  ]);
  return findHierarchies(mounts, membership, readControllers);
}

function readControllers(dir: string): string[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

/**
 * The hierarchies that can hold the limits: cgroup v2 when this process's own group offers both
 * memory and pids (`controllersOf` reads a group's cgroup.controllers), else v1 when the memory
 * and pids controllers are both mounted, else why neither. `membership` is /proc/self/cgroup.
 */
export function findHierarchies(
  mounts: MountEntry[],
  membership: string,
  controllersOf: (dir: string) => string[],
): Hierarchy[] | string {
  const own = ownGroups(membership);
  const mountOf = (controller: string) =>
    mounts.find((m) =>
      controller === ''
        ? m.fsType === 'cgroup2'
        : m.fsType === 'cgroup' && m.superOptions.includes(controller),
    );
  const unified = mountOf('');
  const ownUnified = own.get('');
  if (unified && ownUnified !== undefined) {
    const dir = groupDir(ownUnified, unified);
    const offered = controllersOf(dir);
    if (offered.includes('memory') && offered.includes('pids'))
      return [
        {
          version: 2,
          own: dir,
          mountPoint: unified.mountPoint,
          delegate: '+memory +pids',
          oomEvents: 'memory.events',
          limits: ({ memoryBytes, pids }) => [
            { name: 'memory.max', value: String(memoryBytes) },
            { name: 'memory.swap.max', value: '0', ifPresent: true },
            { name: 'pids.max', value: String(pids) },
          ],
        },
      ];
  }
  const memory = mountOf('memory');
  const pids = mountOf('pids');
  const ownMemory = own.get('memory');
  const ownPids = own.get('pids');
  if (memory && pids && ownMemory !== undefined && ownPids !== undefined)
    return [
      {
        version: 1,
        own: groupDir(ownMemory, memory),
        mountPoint: memory.mountPoint,
        oomEvents: 'memory.oom_control',
        // Memory and swap together capped at the same value: swap cannot extend the limit. The
        // kernel refuses a memory limit above memsw, or memsw below it, so memsw is lifted first:
        // a group left by an earlier orchestrator of the run may have had either limit lower.
        limits: ({ memoryBytes }) => [
          { name: 'memory.memsw.limit_in_bytes', value: '-1', ifPresent: true },
          { name: 'memory.limit_in_bytes', value: String(memoryBytes) },
          { name: 'memory.memsw.limit_in_bytes', value: String(memoryBytes), ifPresent: true },
        ],
      },
      {
        version: 1,
        own: groupDir(ownPids, pids),
        mountPoint: pids.mountPoint,
        limits: ({ pids: max }) => [{ name: 'pids.max', value: String(max) }],
      },
    ];
  if (unified) return 'cgroup v2 offers this process no memory and pids controllers';
  return 'no cgroup hierarchy with the memory and pids controllers is mounted';
}

/** This process's group per controller (`''` for v2), from /proc/self/cgroup. */
function ownGroups(membership: string): Map<string, string> {
  const groups = new Map<string, string>();
  for (const line of membership.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers = '', group = '/'] = match;
    for (const controller of controllers.split(',')) groups.set(controller, group);
  }
  return groups;
}

/** The directory of `group` under a mount whose root may itself be a group (a container's). */
function groupDir(group: string, mount: MountEntry): string {
  const relative = path.posix.relative(mount.root, group);
  return relative.startsWith('..') ? mount.mountPoint : path.join(mount.mountPoint, relative);
}

/** SIGKILLs every process in `dirs` until they are empty or KILL_TIMEOUT_MS has passed. */
async function killGroups(dirs: string[]): Promise<boolean> {
  for (const dir of dirs) {
    const kill = path.join(dir, 'cgroup.kill');
    if (existsSync(kill)) await writeFile(kill, '1');
  }
  const deadline = Date.now() + KILL_TIMEOUT_MS;
  for (;;) {
    const pids = await processesInAll(dirs);
    if (pids.length === 0) return true;
    if (Date.now() > deadline) return false;
    // A pid read here could be reused before the kill only if its process exited and the
    // kernel went through every other pid in between: not a risk worth a pidfd.
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    await sleep(10);
  }
}

/** Processes of several groups, once each (on v1 a slot's process is in two groups). */
async function processesInAll(dirs: string[]): Promise<number[]> {
  return [...new Set((await Promise.all(dirs.map(processesIn))).flat())];
}

async function processesIn(dir: string): Promise<number[]> {
  const text = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    },
  );
  return text.split('\n').filter(Boolean).map(Number);
}

/** Kills and removes run groups and their slot groups, children first. */
async function removeRunGroups(runDirs: string[]): Promise<void> {
  const failures: string[] = [];
  for (const runDir of runDirs) {
    const slots = await childGroups(runDir);
    if (!(await killGroups([...slots, runDir])))
      failures.push(`${runDir}: processes still alive after ${KILL_TIMEOUT_MS} ms of SIGKILL`);
    for (const dir of [...slots, runDir])
      await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') failures.push(`${dir}: ${error.message}`);
      });
  }
  if (failures.length > 0) throw new Error(`cannot remove control groups: ${failures.join('; ')}`);
}

async function childGroups(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
}

/** Every group named `name` in a hierarchy, not looking inside them. */
async function findGroups(dir: string, name: string): Promise<string[]> {
  const found: string[] = [];
  for (const child of await childGroups(dir)) {
    if (path.basename(child) === name) found.push(child);
    else found.push(...(await findGroups(child, name)));
  }
  return found;
}
