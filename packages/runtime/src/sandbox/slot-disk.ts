/**
 * A size-capped file system per executor slot: a sparse ext4 image next to the slot's directory,
 * loop-mounted on it, so that the workspace, home and output of the slot's agent all count
 * against one limit and a write past it fails with ENOSPC instead of filling the host's disk.
 * Needs root (mount) and loop devices; where either is missing the caller is told why and falls
 * back (see rlimits.ts for the disk watchdog).
 */
import { execFile } from 'node:child_process';
import { existsSync, type StatsFs } from 'node:fs';
import {
  chmod,
  chown,
  mkdir,
  readdir,
  realpath,
  rm,
  rmdir,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { formatBytes } from '../util/bytes.js';
import { ownMounts } from './mountinfo.js';

/** Smaller images leave too little room once ext4's own tables are counted. */
const MIN_DISK_BYTES = 16 * 2 ** 20;

/**
 * ext4 without a journal: the image is thrown away after the run (and on resume), so crash
 * consistency buys nothing and a journal costs writes and 128 MiB of a 20 GiB disk. Inode tables
 * are initialised lazily and never zeroed in the background (`noinit_itable` below): the image is
 * sparse, so they read as zeros already. No blocks are reserved for root.
 */
const MKFS_ARGS = ['-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1'];

/**
 * `discard`: space an agent frees goes back to the host (the loop device punches holes in the
 * image), so an image holds what is in it now, not the most it ever held. `noatime`: reads cost
 * no writes. `nosuid,nodev`: nothing on the agent's disk gains privileges or reaches a device.
 */
const MOUNT_OPTIONS = 'loop,nosuid,nodev,noatime,discard,noinit_itable';

/** The image of a slot's disk: beside the slot's directory, where its agent cannot reach it. */
export function slotDiskImage(slotDir: string): string {
  return `${path.resolve(slotDir)}.disk`;
}

export type SlotDiskMount =
  | { mounted: true; elapsedMs: number }
  | { mounted: false; reason: string };

/**
 * Makes `slotDir` (created if missing, which must be empty and not a mount point) a file system
 * of `bytes` (a sparse image: only what is written takes room on the host). The new root keeps
 * the directory's owner and mode. When this machine cannot loop-mount, says why instead.
 */
export async function mountSlotDisk(slotDir: string, bytes: number): Promise<SlotDiskMount> {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_DISK_BYTES)
    throw new RangeError(`a slot disk needs at least ${formatBytes(MIN_DISK_BYTES)}, not ${bytes}`);
  const unavailable = loopMountUnavailable();
  if (unavailable) return { mounted: false, reason: unavailable };
  const started = performance.now();
  const dir = path.resolve(slotDir);
  await mkdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  await assertEmptyDirectory(dir);
  const before = await stat(dir);
  const image = slotDiskImage(dir);
  // A new file: an image left by a lazy unmount may still back a detaching loop device.
  await rm(image, { force: true });
  await writeFile(image, '', { mode: 0o600, flag: 'wx' });
  await truncate(image, bytes);
  const mkfs = await runTool('mkfs.ext4', [...MKFS_ARGS, image]);
  const mount = mkfs.ok ? await runTool('mount', ['-o', MOUNT_OPTIONS, image, dir]) : mkfs;
  if (!mount.ok) {
    await rm(image, { force: true });
    return { mounted: false, reason: `cannot make a slot disk: ${mount.message}` };
  }
  // Only fsck needs lost+found, and nobody checks a disk that is thrown away.
  await rmdir(path.join(dir, 'lost+found'));
  await chown(dir, before.uid, before.gid);
  await chmod(dir, before.mode & 0o7777);
  return { mounted: true, elapsedMs: performance.now() - started };
}

/** Why this process cannot loop-mount, or undefined when it can try. */
export function loopMountUnavailable(): string | undefined {
  const uid = process.getuid?.();
  if (uid !== 0) return `slot disks need root to mount (running as uid ${uid ?? 'unknown'})`;
  if (!existsSync('/dev/loop-control')) return 'no loop devices here (/dev/loop-control missing)';
  return undefined;
}

async function assertEmptyDirectory(dir: string): Promise<void> {
  if (await isMountPoint(dir)) throw new Error(`${dir} is already a mount point`);
  // Mounting over files would hide them: still on the host's disk, and not the slot's.
  if ((await readdir(dir)).length > 0) throw new Error(`${dir} is not empty`);
}

export interface SlotDiskUnmount {
  elapsedMs: number;
  /**
   * It was in use (a process had a file open or its working directory there): it was detached
   * lazily, and its space returns to the host only once the last such process is gone.
   */
  busy: boolean;
}

/**
 * Unmounts a slot's disk (lazily if something still uses it) and deletes its image, so the slot
 * is an empty directory again. A slot that is not mounted only loses its image, if any.
 */
export async function unmountSlotDisk(slotDir: string): Promise<SlotDiskUnmount> {
  const dir = path.resolve(slotDir);
  return release(dir, await isMountPoint(dir));
}

async function release(dir: string, mounted: boolean): Promise<SlotDiskUnmount> {
  const started = performance.now();
  const busy = mounted && !(await unmount(dir));
  await rm(slotDiskImage(dir), { force: true });
  return { elapsedMs: performance.now() - started, busy };
}

/** Unmounts `dir`; detaches it lazily when it is busy. Resolves whether it went at once. */
async function unmount(dir: string): Promise<boolean> {
  const plain = await runTool('umount', [dir]);
  if (plain.ok) return true;
  const lazy = await runTool('umount', ['-l', dir]);
  if (!lazy.ok) throw new Error(`cannot unmount ${dir}: ${lazy.message}`);
  return false;
}

/**
 * Unmounts everything mounted below `dir` (not `dir` itself), deepest first, and deletes the
 * slot disk images beside what it unmounted: for the end of a run, and for a resume after an
 * orchestrator that was killed with its slots mounted. Returns what it unmounted.
 */
export async function unmountAllUnder(
  dir: string,
): Promise<Array<{ mountPoint: string } & SlotDiskUnmount>> {
  // mountinfo names real paths: a link on the way to `dir` would hide everything below it.
  const root = await realpath(dir).catch(() => path.resolve(dir));
  const below = (await ownMounts())
    .map((mount) => mount.mountPoint)
    .reverse() // the last mount on a path is the one on top
    .filter((point) => point.startsWith(`${root}/`))
    .sort((a, b) => depth(b) - depth(a));
  const done = [];
  for (const mountPoint of below) done.push({ mountPoint, ...(await release(mountPoint, true)) });
  return done;
}

const depth = (dir: string) => dir.split('/').length;

/** Whether `dir` is where a file system is mounted (its parent is on another one). */
async function isMountPoint(dir: string): Promise<boolean> {
  const [own, parent] = await Promise.all([stat(dir), stat(path.dirname(dir))]);
  return own.dev !== parent.dev;
}

export interface DiskUsage {
  /** What files can use in all (the image's size less ext4's own tables, about 2%). */
  sizeBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** Files and directories it can still hold. */
  freeInodes: number;
}

/** How full the file system holding `dir` is: one statfs, no walk. */
export async function diskUsage(dir: string): Promise<DiskUsage> {
  return usageOf(await statfs(dir));
}

export function usageOf(fs: StatsFs): DiskUsage {
  return {
    sizeBytes: fs.blocks * fs.bsize,
    usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
    freeBytes: fs.bavail * fs.bsize,
    freeInodes: fs.ffree,
  };
}

/**
 * Why a slot's disk counts as full, as an attempt's failure would say it ("filled its disk of
 * 20 GiB"), or undefined. Full means less than 1% (at least 1 MiB) left, or no inode left: the
 * next write or file could fail with ENOSPC. Called once an attempt ends.
 */
export async function slotDiskFull(slotDir: string): Promise<string | undefined> {
  const [usage, image] = await Promise.all([diskUsage(slotDir), stat(slotDiskImage(slotDir))]);
  const size = formatBytes(image.size);
  if (usage.freeInodes === 0) return `ran out of inodes (files) on its disk of ${size}`;
  if (usage.freeBytes < Math.max(2 ** 20, usage.sizeBytes / 100))
    return `filled its disk of ${size}`;
  return undefined;
}

type ToolResult = { ok: true } | { ok: false; message: string };

/** Runs a system tool to its end; a failure carries the first line it printed. */
function runTool(file: string, args: string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (!error) resolve({ ok: true });
      else
        resolve({
          ok: false,
          message: `${file}: ${stderr.trim().split('\n')[0] || error.message}`,
        });
    });
  });
}
