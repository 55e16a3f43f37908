import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../packages/runtime/src/contracts/plan.js';
import {
  assignSimulatedDurations,
  parseRequirement,
  SimulatedPlanner,
} from '../../packages/runtime/src/planner/simulated.js';
import { stages } from '../../packages/runtime/src/scheduler/ranking.js';

const planner = new SimulatedPlanner();
const planOf = (requirements: string, maxTasks = 100, executors = 3) =>
  planner.plan(requirements, { executors, maxTasks }).then((result) => result.plan);
const ids = (stage: { id: string }[] | undefined) => (stage ?? []).map((t) => t.id).sort();

describe('simulated planner', () => {
  it('plans a scaffold first, features in parallel, then integration, tests and docs', async () => {
    const plan = await planOf('Build a todo list app with add, delete and complete');
    const byStage = stages(plan.tasks);
    expect(ids(byStage[0])).toEqual(['scaffold']);
    expect(ids(byStage[1])).toEqual(['domain-model']);
    expect(ids(byStage[2])).toEqual(['feature-add', 'feature-complete', 'feature-delete']);
    expect(ids(byStage[3])).toEqual(['integration']);
    expect(ids(byStage[4])).toEqual(['docs', 'tests']);
    expect(plan.executorBudget).toBe(3);
    expect(plan.strategy).toContain('Critical path: scaffold → domain-model →');
    expect(plan.notes).toMatch(/no model was called/);
  });

  it('recognises cross-cutting parts and orders them', async () => {
    const plan = await planOf('Build a todo app with auth and a REST API, stored in SQLite');
    const deps = Object.fromEntries(plan.tasks.map((t) => [t.id, t.dependsOn]));
    expect(deps.persistence).toEqual(['domain-model']);
    expect(deps.auth).toEqual(['domain-model', 'persistence']);
    expect(deps['feature-core']).toEqual(['domain-model', 'persistence']);
    expect(deps.api).toEqual(['feature-core', 'auth']);
    expect(deps.integration).toEqual(['api']);
  });

  it('gives different requirements different plans, and the same requirement the same plan', async () => {
    const a = await planOf('Build a calculator');
    const b = await planOf('Create a blog with posts, comments and a React frontend');
    expect(a.tasks.map((t) => t.id)).not.toEqual(b.tasks.map((t) => t.id));
    expect(b.tasks.map((t) => t.id)).toContain('ui');
    expect(await planOf('Build a calculator')).toEqual(a);
  });

  it('reads bullet lists as features', async () => {
    expect(parseRequirement('Write a CLI tool.\n- parse CSV files\n- export charts')).toEqual({
      subject: 'CLI tool',
      items: ['parse CSV files', 'export charts'],
    });
  });

  it('may plan more tasks than executors, and folds features to fit max tasks', async () => {
    const requirement =
      'Build a shop with cart, checkout, search, reviews, wishlist, coupons and invoices';
    const wide = await planOf(requirement, 100, 2);
    expect(wide.tasks.length).toBeGreaterThan(2);
    expect(Math.max(...stages(wide.tasks).map((s) => s.length))).toBe(7);
    for (const maxTasks of [8, 6, 3, 1]) {
      const fitted = await planOf(requirement, maxTasks);
      expect(fitted.tasks.length).toBeLessThanOrEqual(maxTasks);
      expect(() => parsePlan(fitted, { maxTasks })).not.toThrow();
    }
    const eight = await planOf(requirement, 8);
    expect(eight.tasks.filter((t) => t.id.startsWith('feature-group-')).length).toBe(3);
  });

  it('assigns seeded simulated durations within the range, keeping given ones', async () => {
    const plan = await planOf('Build a todo list app with add, delete and complete');
    const first = assignSimulatedDurations(plan, { min: 100, max: 200 }, 9);
    const again = assignSimulatedDurations(plan, { min: 100, max: 200 }, 9);
    const other = assignSimulatedDurations(plan, { min: 100, max: 200 }, 10);
    const durations = first.tasks.map((t) => t.simulate?.durationMs ?? -1);
    expect(durations.every((d) => d >= 100 && d <= 200)).toBe(true);
    expect(again).toEqual(first);
    expect(other.tasks.map((t) => t.simulate?.durationMs)).not.toEqual(durations);
    const kept = assignSimulatedDurations(first, { min: 0, max: 0 }, 1);
    expect(kept.tasks.map((t) => t.simulate?.durationMs)).toEqual(durations);
  });
});
