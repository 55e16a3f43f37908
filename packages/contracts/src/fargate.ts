/** `from`, `from + step`, ... up to `to`. */
function steps(from: number, to: number, step: number): number[] {
  return Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);
}

/**
 * The task sizes Fargate runs: for each vCPU count, the memory values (MiB) it accepts, and no
 * others. AWS Batch API Reference, ResourceRequirement (`value` for MEMORY and VCPU on Fargate),
 * https://docs.aws.amazon.com/batch/latest/APIReference/API_ResourceRequirement.html, the same
 * table as ECS's task sizes,
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
 */
export const FARGATE_RESOURCES: ReadonlyMap<number, readonly number[]> = new Map([
  [0.25, [512, 1024, 2048]],
  [0.5, steps(1024, 4096, 1024)],
  [1, steps(2048, 8192, 1024)],
  [2, steps(4096, 16384, 1024)],
  [4, steps(8192, 30720, 1024)],
  [8, steps(16384, 61440, 4096)],
  [16, steps(32768, 122880, 8192)],
]);

/** Which of a Fargate size's two values Fargate refuses, and why, in one line. */
export interface FargateSizeProblem {
  resource: 'VCPU' | 'MEMORY';
  message: string;
}

/** Why Fargate would refuse a job of `vcpus` and `memoryMib`; undefined when it runs it. */
export function checkFargateSize(vcpus: number, memoryMib: number): FargateSizeProblem | undefined {
  const memory = FARGATE_RESOURCES.get(vcpus);
  if (!memory)
    return {
      resource: 'VCPU',
      message: `${vcpus} is not a Fargate vCPU size; choose from ${[...FARGATE_RESOURCES.keys()].join(', ')}`,
    };
  if (!memory.includes(memoryMib))
    return {
      resource: 'MEMORY',
      message: `${memoryMib} MiB is not a Fargate memory size for ${vcpus} vCPUs; choose from ${describe(memory)}`,
    };
  return undefined;
}

/** `512, 1024, 2048`, or `2048 to 8192 in steps of 1024`. */
function describe(values: readonly number[]): string {
  const first = values[0] as number;
  const last = values.at(-1) as number;
  const step = (values[1] as number) - first;
  const even = values.every((value, i) => value === first + i * step);
  return even && values.length > 3 ? `${first} to ${last} in steps of ${step}` : values.join(', ');
}
