import { describe, expect, it } from 'vitest';
import {
  findCycle,
  PlanValidationError,
  parsePlan,
} from '../../packages/runtime/src/contracts/plan.js';
import { planInput, task } from '../support/plans.js';

function problemsOf(input: unknown, maxTasks?: number): string[] {
  try {
    parsePlan(input, { maxTasks });
  } catch (error) {
    expect(error).toBeInstanceOf(PlanValidationError);
    return (error as PlanValidationError).problems;
  }
  throw new Error('plan was accepted');
}

describe('plan validation', () => {
  it('accepts a DAG and fills defaults', () => {
    const plan = parsePlan({
      requirements: 'Build it',
      executorBudget: 2,
      tasks: [
        { id: 'a', title: 'A', description: '' },
        { id: 'b', title: 'B', description: '', dependsOn: ['a'] },
      ],
    });
    expect(plan.tasks[0]?.dependsOn).toEqual([]);
    expect(plan.tasks[1]?.dependsOn).toEqual(['a']);
  });

  it('rejects duplicate ids', () => {
    expect(problemsOf(planInput([task('a'), task('a')]))).toContain('duplicate task id "a"');
  });

  it('rejects unknown and self dependencies', () => {
    const problems = problemsOf(planInput([task('a', ['ghost']), task('b', ['b'])]));
    expect(problems).toContain('task "a" depends on unknown task "ghost"');
    expect(problems).toContain('task "b" depends on itself');
  });

  it('names the cycle', () => {
    const problems = problemsOf(
      planInput([task('a', ['c']), task('b', ['a']), task('c', ['b']), task('d')]),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^dependency cycle: /);
    const walk = (problems[0] as string).replace('dependency cycle: ', '').split(' → ');
    expect(walk[0]).toBe(walk.at(-1));
    expect(new Set(walk)).toEqual(new Set(['a', 'b', 'c']));
  });

  it('finds a cycle deep in a long chain without overflowing the stack', () => {
    const tasks = Array.from({ length: 5000 }, (_, i) => ({
      id: `t${i}`,
      dependsOn: i ? [`t${i - 1}`] : ['t4999'],
    }));
    expect(findCycle(tasks)?.length).toBe(5001);
    expect(findCycle(tasks.map((t, i) => (i === 0 ? { ...t, dependsOn: [] } : t)))).toBeUndefined();
  });

  it('bounds the task count', () => {
    expect(problemsOf(planInput([]))).toEqual([
      'tasks: Too small: expected array to have >=1 items',
    ]);
    expect(problemsOf(planInput([task('a'), task('b'), task('c')]), 2)).toContain(
      'plan has 3 tasks, more than the limit of 2',
    );
  });

  it('rejects ids that are not slugs', () => {
    for (const id of ['A', '-a', 'a_b', 'a/b', '../x', 'x'.repeat(64), '']) {
      expect(problemsOf(planInput([task(id)]))[0]).toMatch(/^tasks\.0\.id: /);
    }
  });

  it('rejects simulated files outside the workspace', () => {
    for (const file of ['../escape', '/etc/passwd', 'a/../../b', '.git/config', 'a//b']) {
      const problems = problemsOf(
        planInput([task('a', [], 0, { simulate: { files: { [file]: 'x' } } })]),
      );
      expect(problems[0]).toMatch(/^tasks\.0\.simulate\.files/);
    }
  });

  it('rejects unknown fields and empty requirements', () => {
    expect(problemsOf({ ...planInput([task('a')]), extra: 1 })[0]).toMatch(/Unrecognized key/);
    expect(problemsOf({ ...planInput([task('a')]), requirements: '   ' })[0]).toMatch(
      /^requirements:/,
    );
  });
});
