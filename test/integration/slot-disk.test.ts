/**
 * Slot disks (a loop-mounted ext4 per executor slot) against the real kernel. They need root: without it they skip, saying why, unless
 * REQUIRE_ROOT=1 (CI sets it), when they fail instead.
 */
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  diskUsage,
  loopMountUnavailable,
  mountSlotDisk,
  slotDiskFull,
  slotDiskImage,
  unmountAllUnder,
  unmountSlotDisk,
} from '../../packages/runtime/src/sandbox/slot-disk.js';
import { fill, GiB, MiB, mountedUnder, notRoot, rootNeed, until } from '../support/limits.js';
import { describeNeeding } from '../support/needing.js';
import { tempDir } from '../support/tmp.js';

describeNeeding(
  'slot disks',
  () => {
    const root = tempDir('po-slot-disk-');
    const sandboxes = path.join(root, 'run with space', 'sandboxes');
    mkdirSync(sandboxes, { recursive: true });
    afterAll(async () => {
      await unmountAllUnder(root);
    });

    it('gives a slot 64 MiB: a write past it gets ENOSPC, and deleting makes room again', async () => {
      const slot = path.join(sandboxes, 'executor-0');
      mkdirSync(slot, { mode: 0o750 });
      chownSync(slot, 1000, 1000);
      const mounted = await mountSlotDisk(slot, 64 * MiB);
      expect(mounted).toMatchObject({ mounted: true });
      // The agent's user still owns its slot; nothing else is in it.
      expect(statSync(slot)).toMatchObject({ uid: 1000, gid: 1000, mode: 0o40750 });
      expect(readdirSync(slot)).toEqual([]);
      mkdirSync(path.join(slot, 'workspace'));
      const big = path.join(slot, 'workspace', 'big');
      expect(fill(big)).toMatchObject({ code: 'ENOSPC' });
      const usage = await diskUsage(slot);
      expect(usage.sizeBytes).toBeLessThanOrEqual(64 * MiB);
      expect(usage.usedBytes).toBeGreaterThan(50 * MiB);
      expect(await slotDiskFull(slot)).toBe('filled its disk of 64 MiB');
      rmSync(big);
      expect(await slotDiskFull(slot)).toBeUndefined();
      expect(fill(path.join(slot, 'home'), 10 * MiB)).toBeUndefined();
      const unmounted = await unmountSlotDisk(slot);
      expect(unmounted.busy).toBe(false);
      expect(existsSync(slotDiskImage(slot))).toBe(false);
      expect(readdirSync(slot)).toEqual([]);
    });

    it('makes a 20 GiB disk sparse, and refuses a slot that is not empty', async () => {
      const slot = path.join(sandboxes, 'executor-1');
      const mounted = await mountSlotDisk(slot, 20 * GiB);
      if (!mounted.mounted) throw new Error(mounted.reason);
      expect(mounted.elapsedMs).toBeLessThan(5_000);
      const onHost = statSync(slotDiskImage(slot)).blocks * 512;
      expect(onHost).toBeLessThan(16 * MiB);
      await expect(mountSlotDisk(slot, 20 * GiB)).rejects.toThrow(/already a mount point/);
      const unmounted = await unmountSlotDisk(slot);
      expect(unmounted.elapsedMs).toBeLessThan(5_000);
      mkdirSync(path.join(slot, 'workspace'));
      await expect(mountSlotDisk(slot, 64 * MiB)).rejects.toThrow(/not empty/);
    });

    it('detaches a busy disk lazily and says so', async () => {
      const slot = path.join(sandboxes, 'executor-2');
      await mountSlotDisk(slot, 64 * MiB);
      const open = openSync(path.join(slot, 'held'), 'w');
      try {
        expect((await unmountSlotDisk(slot)).busy).toBe(true);
        expect(mountedUnder(root)).not.toContain(slot);
        // This disk's device only: an earlier test's may still be on its way out (the kernel
        // clears a loop device after its last user, not at once).
        expect(loopDevicesOf(slotDiskImage(slot))).toHaveLength(1);
      } finally {
        closeSync(open);
      }
      // The last user gone, the file system is released and its loop device with it.
      await until(() => loopDevicesOf(root).length === 0);
    });

    it('unmounts what a killed run left, deepest first, with spaces in the names', async () => {
      const first = path.join(sandboxes, 'executor 3');
      const nested = path.join(first, 'inner');
      const second = path.join(sandboxes, 'executor-4');
      await mountSlotDisk(first, 64 * MiB);
      await mountSlotDisk(nested, 64 * MiB);
      await mountSlotDisk(second, 64 * MiB);
      // Nothing in this process remembers them: the functions keep no state, like a new process.
      const done = await unmountAllUnder(path.dirname(sandboxes));
      expect(done.map((d) => d.mountPoint)).toEqual([nested, second, first]);
      expect(done.every((d) => !d.busy)).toBe(true);
      expect(mountedUnder(root)).toEqual([]);
      for (const slot of [first, second]) expect(existsSync(slotDiskImage(slot))).toBe(false);
      await until(() => loopDevicesOf(root).length === 0, 15_000);
    });
  },
  rootNeed(notRoot ?? loopMountUnavailable()),
);

/** Loop devices whose image is below `dir` (deleted images included). */
/** Loop devices whose backing file is `target` or lies under it. */
function loopDevicesOf(target: string): string[] {
  return execFileSync('losetup', ['-a'])
    .toString()
    .split('\n')
    .filter(
      (line) =>
        line.includes(`(${target}/`) ||
        line.includes(`(${target})`) ||
        line.includes(`(${target} (deleted))`),
    );
}
