/** What every benchmark shares: the CLI it runs, the result shape, and plans. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PlanInput } from '../packages/runtime/src/contracts/plan.js';

export const CLI = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../packages/runtime/dist/cli/main.js',
);

export interface Result {
  name: string;
  value: number;
  unit: string;
  target: string;
  pass: boolean;
  samples?: number[];
  [detail: string]: unknown;
}

/** The CLI arguments that run a plan file at M executors into `output`, printing NDJSON. */
export const runPlanArgs = (file: string, executors: number, output: string) => [
  'run',
  '--plan',
  file,
  '-e',
  String(executors),
  '--max-tasks',
  '5000',
  '-o',
  output,
  '--json',
];

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
export const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

export function task(id: string, dependsOn: string[], durationMs: number) {
  return {
    id,
    title: `Task ${id}`,
    description: `Benchmark task ${id}.`,
    dependsOn,
    simulate: { durationMs },
  };
}

export const independent = (count: number, durationMs: number): PlanInput => ({
  requirements: `${count} independent tasks`,
  executorBudget: 8,
  tasks: Array.from({ length: count }, (_, i) => task(`t${i}`, [], durationMs)),
});

/** A speed-up from pairs of run times at M=1 and M=8: the median ratio, with every sample. */
export function speedupResult(
  name: string,
  description: string,
  minimum: number,
  pairs: { one: number; eight: number }[],
): Result {
  const ratios = pairs.map(({ one, eight }) => one / eight);
  const value = round(median(ratios), 2);
  return {
    name,
    description,
    value,
    unit: 'x',
    target: `>= ${minimum}`,
    pass: value >= minimum,
    samples: ratios.map((r) => round(r, 2)),
    durationsMs: pairs.map(({ one, eight }) => ({ m1: one, m8: eight })),
  };
}
