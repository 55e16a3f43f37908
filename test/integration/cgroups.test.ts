/**
 * Per-slot control groups against the real kernel. They need root: without it they skip, saying why, unless
 * REQUIRE_ROOT=1 (CI sets it), when they fail instead.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it } from 'vitest';
import { AgentCgroups } from '../../packages/runtime/src/sandbox/cgroups.js';
import {
  exited,
  firstLine,
  GiB,
  MiB,
  notRoot,
  rootNeed,
  spawnArgv,
  testRunId,
  until,
} from '../support/limits.js';
import { describeNeeding, itNeeding } from '../support/needing.js';

/** The bubblewrap test: in the suite, so required by REQUIRE_ROOT with it (CI installs bubblewrap). */
const bubblewrap = {
  ...rootNeed(
    ['/usr/bin/bwrap', '/bin/bwrap'].some((file) => existsSync(file))
      ? undefined
      : 'bubblewrap (bwrap) is not installed',
  ),
  enable: 'apt-get install bubblewrap',
};

/** Why control groups cannot be tested here (made and removed once to find out). */
async function cgroupsMissing(): Promise<string | undefined> {
  if (notRoot) return notRoot;
  const probe = await AgentCgroups.create(testRunId('probe'), { memoryBytes: GiB, pids: 10 });
  if (!probe.available) return probe.reason;
  await probe.cgroups.remove();
  return undefined;
}

describeNeeding(
  'per-slot control groups',
  () => {
    const runId = testRunId('cgroups');
    const leftoverRun = testRunId('leftover');
    let cgroups: AgentCgroups;
    afterAll(async () => {
      await cgroups?.remove();
      await AgentCgroups.removeLeftovers(runId);
      await AgentCgroups.removeLeftovers(leftoverRun);
    });

    it('starts a command inside the groups, so what it forks is inside too', async () => {
      const setup = await AgentCgroups.create(runId, { memoryBytes: 64 * MiB, pids: 40 });
      if (!setup.available) throw new Error(setup.reason);
      cgroups = setup.cgroups;
      await cgroups.prepare('executor-0');
      const child = spawnArgv(
        cgroups.wrap('executor-0', '/bin/sh', ['-c', 'sleep 30 & echo $!; wait']),
      );
      const grandchild = Number(await firstLine(child));
      const groups = readFileSync(`/proc/${grandchild}/cgroup`, 'utf8');
      const inSlot = groups
        .split('\n')
        .filter((line) => line.endsWith(`/parallel-orchestrator-${runId}/executor-0`));
      // v1: the memory and the pids group; v2: the one unified group.
      expect(inSlot.length).toBeGreaterThanOrEqual(1);
      expect(await cgroups.processes('executor-0')).toEqual(
        expect.arrayContaining([child.pid, grandchild]),
      );
      expect(await cgroups.killAll('executor-0')).toBe(true);
      expect((await exited(child)).signal).toBe('SIGKILL');
    });

    it('stops a fork bomb at pids.max, and killAll leaves no process', async () => {
      await cgroups.prepare('executor-1');
      const bomb = spawnArgv(
        cgroups.wrap('executor-1', '/bin/sh', ['-c', 'while :; do sleep 1234 & done']),
      );
      await until(async () => (await cgroups.processes('executor-1')).length >= 35);
      let most = 0;
      for (let i = 0; i < 20; i++) {
        most = Math.max(most, (await cgroups.processes('executor-1')).length);
        await sleep(10);
      }
      expect(most).toBeLessThanOrEqual(40);
      expect(await cgroups.killAll('executor-1')).toBe(true);
      expect(await cgroups.processes('executor-1')).toEqual([]);
      // The shell itself gives up when a fork fails; its sleeps are what killAll had to find.
      await exited(bomb);
      expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toContain('sleep 1234');
    });

    it('has the kernel kill a process past the memory limit, and says it did', async () => {
      await cgroups.prepare('executor-2');
      expect(await cgroups.outOfMemory('executor-2')).toBe(false);
      // tail keeps the last "line" of /dev/zero, which has no newline: all 300 MiB of it.
      const hog = spawnArgv(
        cgroups.wrap('executor-2', '/bin/sh', ['-c', 'head -c 300M /dev/zero | tail']),
      );
      const { code } = await exited(hog);
      expect(code).not.toBe(0);
      expect(await cgroups.outOfMemory('executor-2')).toBe(true);
      // The next attempt in the slot starts with a clean record.
      await cgroups.prepare('executor-2');
      expect(await cgroups.outOfMemory('executor-2')).toBe(false);
    });

    itNeeding(
      'keeps an agent in bubblewrap from moving itself out (cgroupfs is read-only there)',
      async () => {
        await cgroups.prepare('executor-4');
        const tryToLeave =
          'for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do echo $$ 2>/dev/null >"$f" && echo "moved by $f"; done; cat /proc/self/cgroup';
        const sandboxed = spawnArgv(
          cgroups.wrap('executor-4', 'bwrap', [
            ...['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid'],
            ...['--cap-drop', 'ALL', '--', '/bin/sh', '-c', tryToLeave],
          ]),
        );
        let output = '';
        sandboxed.stdout?.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        expect((await exited(sandboxed)).code).toBe(0);
        expect(output).not.toContain('moved');
        expect(output).toContain(`/parallel-orchestrator-${runId}/executor-4`);
      },
      bubblewrap,
    );

    it('removes the groups an orchestrator left when it was killed', async () => {
      const setup = await AgentCgroups.create(leftoverRun, { memoryBytes: GiB, pids: 10 });
      if (!setup.available) throw new Error(setup.reason);
      await setup.cgroups.prepare('executor-0');
      const orphan = spawnArgv(setup.cgroups.wrap('executor-0', 'sleep', ['100']));
      await until(async () => (await setup.cgroups.processes('executor-0')).length === 1);
      // The object is forgotten, as a killed orchestrator's would be: only the run id is left.
      const removed = await AgentCgroups.removeLeftovers(leftoverRun);
      expect(removed.length).toBeGreaterThanOrEqual(1);
      expect(removed.every((dir) => !existsSync(dir))).toBe(true);
      expect((await exited(orphan)).signal).toBe('SIGKILL');
      expect(await AgentCgroups.removeLeftovers(leftoverRun)).toEqual([]);
    });

    it('takes over a slot an earlier orchestrator of the run left, with other limits', async () => {
      const earlier = await AgentCgroups.create(leftoverRun, { memoryBytes: 64 * MiB, pids: 10 });
      if (!earlier.available) throw new Error(earlier.reason);
      await earlier.cgroups.prepare('executor-0');
      for (const memoryBytes of [128 * MiB, 32 * MiB]) {
        const later = await AgentCgroups.create(leftoverRun, { memoryBytes, pids: 10 });
        if (!later.available) throw new Error(later.reason);
        await later.cgroups.prepare('executor-0');
      }
      expect(await AgentCgroups.removeLeftovers(leftoverRun)).not.toEqual([]);
    });

    it('leaves nothing once removed', async () => {
      await cgroups.prepare('executor-3');
      const child = spawnArgv(cgroups.wrap('executor-3', 'sleep', ['100']));
      await until(async () => (await cgroups.processes('executor-3')).length === 1);
      await cgroups.remove();
      expect((await exited(child)).signal).toBe('SIGKILL');
      expect(await AgentCgroups.removeLeftovers(runId)).toEqual([]);
    });
  },
  rootNeed(await cgroupsMissing()),
);
