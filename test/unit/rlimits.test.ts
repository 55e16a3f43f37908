import { describe, expect, it } from 'vitest';
import {
  freeSpaceFloor,
  MIN_DATA_BYTES,
  prlimitCommand,
} from '../../packages/runtime/src/sandbox/rlimits.js';
import { GiB } from '../support/limits.js';

describe('resource limits for agents without a control group', () => {
  it('runs the command under prlimit with soft and hard limits equal, in plain bytes', () => {
    const { file, args } = prlimitCommand(
      { dataBytes: 4 * GiB, processes: 900, maxFileBytes: 100 * 2 ** 20 },
      '/usr/bin/bwrap',
      ['--', 'claude'],
    );
    expect(file).toBe('prlimit');
    expect(args).toEqual([
      '--data=4294967296:4294967296',
      '--nproc=900:900',
      '--fsize=104857600:104857600',
      '--core=0:0',
      '--',
      '/usr/bin/bwrap',
      '--',
      'claude',
    ]);
  });

  it('refuses a memory limit Claude Code cannot start under', () => {
    expect(() =>
      prlimitCommand({ dataBytes: 512 * 2 ** 20, processes: 1, maxFileBytes: 1 }, 'x', []),
    ).toThrow(/below what Claude Code needs/);
    expect(MIN_DATA_BYTES).toBe(GiB);
  });

  it('keeps 1 GiB free, or 5% of a file system over 20 GiB', () => {
    expect(freeSpaceFloor(10 * GiB)).toBe(GiB);
    expect(freeSpaceFloor(200 * GiB)).toBe(10 * GiB);
  });
});
