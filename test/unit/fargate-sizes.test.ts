import { describe, expect, test } from 'vitest';
import { checkFargateSize, FARGATE_RESOURCES } from '../../packages/runtime/src/contracts/index.js';

/**
 * Fargate's task sizes as the AWS Batch API Reference lists them for MEMORY on Fargate
 * (https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html): each
 * memory value with the vCPU counts that take it.
 */
const DOCUMENTED: [memory: number[], vcpus: number[]][] = [
  [[512], [0.25]],
  [[1024], [0.25, 0.5]],
  [[2048], [0.25, 0.5, 1]],
  [[3072], [0.5, 1]],
  [[4096], [0.5, 1, 2]],
  [
    [5120, 6144, 7168],
    [1, 2],
  ],
  [[8192], [1, 2, 4]],
  [
    [9216, 10240, 11264, 12288, 13312, 14336, 15360],
    [2, 4],
  ],
  [[16384], [2, 4, 8]],
  [[17408, 18432, 19456, 21504, 22528, 23552, 25600, 26624, 27648, 29696, 30720], [4]],
  [
    [20480, 24576, 28672],
    [4, 8],
  ],
  [[36864, 45056, 53248, 61440], [8]],
  [
    [32768, 40960, 49152, 57344],
    [8, 16],
  ],
  [[65536, 73728, 81920, 90112, 98304, 106496, 114688, 122880], [16]],
];

describe('Fargate task sizes', () => {
  test('the table holds exactly the documented (vCPU, memory) pairs', () => {
    const documented = DOCUMENTED.flatMap(([memory, vcpus]) =>
      vcpus.flatMap((v) => memory.map((m) => `${v}/${m}`)),
    ).sort();
    const table = [...FARGATE_RESOURCES].flatMap(([v, memory]) => memory.map((m) => `${v}/${m}`));
    expect(table.sort()).toEqual(documented);
  });

  test('accepts every documented pair', () => {
    for (const [memory, vcpus] of DOCUMENTED)
      for (const v of vcpus) for (const m of memory) expect(checkFargateSize(v, m)).toBeUndefined();
  });

  test('refuses memory between steps, or in another size’s steps, naming the size’s choices', () => {
    expect(checkFargateSize(2, 4500)).toEqual({
      resource: 'MEMORY',
      message:
        '4500 MiB is not a Fargate memory size for 2 vCPUs; choose from 4096 to 16384 in steps of 1024',
    });
    expect(checkFargateSize(8, 17408)?.message).toBe(
      '17408 MiB is not a Fargate memory size for 8 vCPUs; choose from 16384 to 61440 in steps of 4096',
    );
    expect(checkFargateSize(16, 36864)?.resource).toBe('MEMORY');
    expect(checkFargateSize(0.25, 1536)?.message).toMatch(/choose from 512, 1024, 2048$/);
    expect(checkFargateSize(4, 31744)?.resource).toBe('MEMORY');
  });

  test('refuses a vCPU count Fargate has no size for', () => {
    expect(checkFargateSize(3, 6144)).toEqual({
      resource: 'VCPU',
      message: '3 is not a Fargate vCPU size; choose from 0.25, 0.5, 1, 2, 4, 8, 16',
    });
  });
});
