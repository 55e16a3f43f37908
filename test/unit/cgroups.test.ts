import { describe, expect, it } from 'vitest';
import { findHierarchies, runGroupName } from '../../packages/runtime/src/sandbox/cgroups.js';
import { parseMountinfo } from '../../packages/runtime/src/sandbox/mountinfo.js';
import { mountinfoLine as mount } from '../support/limits.js';

const V1_HOST = [
  mount(35, '/', '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  mount(36, '/', '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
  mount(39, '/', '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
  mount(41, '/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
].join('\n');
const V1_MEMBERSHIP = '8:pids:/\n4:memory:/user.slice\n2:cpu,cpuacct:/\n0::/user.slice\n';
const V2_HOST = mount(30, '/', '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate');

describe('control group names', () => {
  it("come from the run id, which may not leave the run's group", () => {
    expect(runGroupName('20261207-130455-build-a-todo-abc123')).toBe(
      'parallel-orchestrator-20261207-130455-build-a-todo-abc123',
    );
    for (const bad of [
      '',
      '..',
      '../x',
      'a/b',
      'a/../b',
      '.hidden',
      'x..y',
      'a b',
      'x'.repeat(201),
    ])
      expect(() => runGroupName(bad), bad).toThrow(/cannot name a control group/);
  });
});

describe('finding the cgroup hierarchies', () => {
  const offering =
    (controllers: string[]) =>
    (_dir: string): string[] =>
      controllers;

  it('uses v1 memory and pids where the unified hierarchy has no controllers (this host)', () => {
    const found = findHierarchies(parseMountinfo(V1_HOST), V1_MEMBERSHIP, offering([]));
    expect(found).not.toBeTypeOf('string');
    if (typeof found === 'string') return;
    expect(found.map((h) => [h.version, h.own, h.mountPoint])).toEqual([
      [1, '/sys/fs/cgroup/memory/user.slice', '/sys/fs/cgroup/memory'],
      [1, '/sys/fs/cgroup/pids', '/sys/fs/cgroup/pids'],
    ]);
    const limits = found.flatMap((h) => h.limits({ memoryBytes: 64, pids: 10 }));
    expect(limits).toEqual([
      { name: 'memory.memsw.limit_in_bytes', value: '-1', ifPresent: true },
      { name: 'memory.limit_in_bytes', value: '64' },
      { name: 'memory.memsw.limit_in_bytes', value: '64', ifPresent: true },
      { name: 'pids.max', value: '10' },
    ]);
  });

  it('uses v2 below the own group when it offers memory and pids', () => {
    const found = findHierarchies(
      parseMountinfo(V2_HOST),
      '0::/system.slice/po.service\n',
      offering(['cpu', 'memory', 'pids']),
    );
    if (typeof found === 'string') throw new Error(found);
    expect(found).toHaveLength(1);
    const [v2] = found;
    expect(v2?.own).toBe('/sys/fs/cgroup/system.slice/po.service');
    expect(v2?.delegate).toBe('+memory +pids');
    expect(v2?.oomEvents).toBe('memory.events');
    expect(v2?.limits({ memoryBytes: 64, pids: 10 }).map((l) => `${l.name}=${l.value}`)).toEqual([
      'memory.max=64',
      'memory.swap.max=0',
      'pids.max=10',
    ]);
  });

  it("maps a container's own group to its mount, whose root is that group", () => {
    const container = mount(30, '/docker/abc', '/sys/fs/cgroup', 'cgroup2', 'rw');
    const found = findHierarchies(
      parseMountinfo(container),
      '0::/docker/abc\n',
      offering(['memory', 'pids']),
    );
    if (typeof found === 'string') throw new Error(found);
    expect(found[0]?.own).toBe('/sys/fs/cgroup');
  });

  it('says why when no hierarchy can hold the limits', () => {
    expect(findHierarchies(parseMountinfo(V2_HOST), '0::/\n', offering(['cpu']))).toBe(
      'cgroup v2 offers this process no memory and pids controllers',
    );
    expect(findHierarchies([], '', offering([]))).toBe(
      'no cgroup hierarchy with the memory and pids controllers is mounted',
    );
  });
});
