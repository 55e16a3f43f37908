/**
 * Resource limits for agents without a control group, and the disk watchdog, against the real kernel. They need root: without it they skip, saying why, unless
 * REQUIRE_ROOT=1 (CI sets it), when they fail instead.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import {
  prlimitCommand,
  sharedProcessCap,
  threadsOfUser,
  watchFreeSpace,
} from '../../packages/runtime/src/sandbox/rlimits.js';
import {
  loopMountUnavailable,
  mountSlotDisk,
  unmountAllUnder,
} from '../../packages/runtime/src/sandbox/slot-disk.js';
import { exited, fill, GiB, MiB, notRoot, rootNeed, until } from '../support/limits.js';
import { describeNeeding } from '../support/needing.js';
import { tempDir } from '../support/tmp.js';

describeNeeding(
  'resource limits and the disk watchdog',
  () => {
    const root = tempDir('po-rlimits-');
    afterAll(async () => {
      await unmountAllUnder(root);
    });

    it('applies the limits to the command and what it starts', () => {
      const { file, args } = prlimitCommand(
        { dataBytes: GiB, processes: 5_000, maxFileBytes: 3 * MiB },
        '/bin/sh',
        ['-c', 'sleep 5 & cat /proc/$!/limits; kill $!'],
      );
      const limits = execFileSync(file, args).toString();
      const row = (name: string) =>
        new RegExp(`^${name}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(limits)?.slice(1);
      expect(row('Max data size')).toEqual([String(GiB), String(GiB)]);
      expect(row('Max processes')).toEqual(['5000', '5000']);
      expect(row('Max file size')).toEqual([String(3 * MiB), String(3 * MiB)]);
      expect(row('Max core file size')).toEqual(['0', '0']);
    });

    it('stops a file at the largest size allowed, killing its writer with SIGXFSZ', () => {
      const file = path.join(root, 'capped');
      const { file: prlimit, args } = prlimitCommand(
        { dataBytes: GiB, processes: 5_000, maxFileBytes: MiB },
        '/bin/sh',
        ['-c', `head -c 2M /dev/zero > '${file}'; echo $?`],
      );
      // 128 + SIGXFSZ (25)
      expect(execFileSync(prlimit, args).toString().trim()).toBe('153');
      expect(statSync(file).size).toBe(MiB);
    });

    it("caps a user's processes, all of them together, when the user is not root", async () => {
      // A uid no one else here runs as: the count is per user, system-wide.
      const user = 40_000 + (randomBytes(2).readUInt16BE() % 10_000);
      const cap = (await threadsOfUser(user)) + 20;
      expect(await sharedProcessCap(3, 100, user)).toBe(cap - 20 + 300);
      const { file, args } = prlimitCommand(
        { dataBytes: GiB, processes: cap, maxFileBytes: GiB },
        '/bin/sh',
        ['-c', 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done; wait'],
      );
      const bomb = spawn(
        'setpriv',
        ['--reuid', String(user), '--regid', String(user), '--clear-groups', file, ...args],
        { detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      bomb.stderr?.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      try {
        // The shell stops at its first failed fork, leaving the sleeps it started.
        await exited(bomb);
        expect(stderr).toMatch(/fork/i);
        expect(await threadsOfUser(user)).toBeLessThanOrEqual(cap);
      } finally {
        process.kill(-(bomb.pid as number), 'SIGKILL');
      }
      // As root the same limit is ignored: the kernel exempts uid 0 from RLIMIT_NPROC.
      const asRoot = prlimitCommand(
        { dataBytes: GiB, processes: 3, maxFileBytes: GiB },
        '/bin/sh',
        ['-c', 'sleep 1 & sleep 1 & sleep 1 & sleep 1 & echo started; wait'],
      );
      expect(execFileSync(asRoot.file, asRoot.args).toString().trim()).toBe('started');
    });

    it('calls back when free space falls below the floor, and again after it recovered', async () => {
      const dir = path.join(root, 'run-fs');
      await mountSlotDisk(dir, 64 * MiB);
      const lows: number[] = [];
      const watch = watchFreeSpace(dir, (usage) => lows.push(usage.freeBytes), {
        intervalMs: 20,
        floorBytes: 24 * MiB,
      });
      try {
        await sleep(100);
        expect(lows).toEqual([]);
        const file = path.join(dir, 'filler');
        fill(file, 40 * MiB);
        await until(() => lows.length === 1);
        expect(lows[0]).toBeLessThan(24 * MiB);
        rmSync(file);
        await sleep(100);
        fill(file, 40 * MiB);
        await until(() => lows.length === 2);
      } finally {
        watch.stop();
      }
    });
  },
  rootNeed(notRoot ?? loopMountUnavailable()),
);
