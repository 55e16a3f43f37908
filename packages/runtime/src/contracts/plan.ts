import { z } from 'zod';

/** Task ids name files, git branches and Batch jobs, so they are kept to a portable slug. */
export const TASK_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Hard ceiling on plan size, whatever `--max-tasks` says: keeps a runaway plan bounded. */
export const MAX_PLAN_TASKS = 5000;
export const MAX_REQUIREMENTS_CHARS = 200_000;
/** The most a plan file (or a planner's output) may weigh: far above any real plan. */
export const MAX_PLAN_BYTES = 64 * 2 ** 20;

const relativePath = z
  .string()
  .min(1)
  .max(512)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      !p.includes('\\') &&
      p.split('/').every((s) => s !== '..' && s !== '' && s !== '.'),
    { message: 'must be a relative path inside the workspace (no "..", no leading "/")' },
  )
  .refine((p) => p.split('/')[0] !== '.git', { message: 'must not write into .git' });

/** Knobs for simulated execution. Real executors ignore them. */
export const SimulateSpecSchema = z
  .object({
    durationMs: z.number().int().min(0).max(86_400_000).optional(),
    /** Extra files the simulated executor writes, path → content (used to rehearse conflicts). */
    files: z.record(relativePath, z.string().max(1_000_000)).optional(),
    /** Files written over what is there, as an agent edits a manifest: path → content. */
    replace: z.record(relativePath, z.string().max(1_000_000)).optional(),
    /** The first N attempts fail, to rehearse retries. */
    failAttempts: z.number().int().min(0).max(100).optional(),
    /** Whether those failures are transient (retried) or permanent. */
    failure: z.enum(['transient', 'permanent']).optional(),
    /**
     * Work that breaks the repository's checks, to rehearse `--verify`: on its first `attempts`
     * attempts the executor also writes these files (over its own of the same path).
     */
    broken: z
      .object({
        attempts: z.number().int().min(1).max(100).default(1),
        files: z.record(relativePath, z.string().max(1_000_000)),
      })
      .strict()
      .optional(),
  })
  .strict();

export const PlanTaskSchema = z
  .object({
    id: z
      .string()
      .regex(TASK_ID_PATTERN, 'must be a slug: lowercase letters, digits and "-", 1-63 chars'),
    title: z.string().trim().min(1).max(200),
    description: z.string().max(20_000),
    dependsOn: z.array(z.string()).max(MAX_PLAN_TASKS).default([]),
    /** 1 is the most urgent; breaks ties after the critical path. */
    priority: z.number().int().min(1).max(5).optional(),
    estimateMinutes: z.number().min(0).max(10_000).optional(),
    /** Paths the task expects to own; other tasks are asked not to edit them. */
    files: z.array(relativePath).max(200).optional(),
    simulate: SimulateSpecSchema.optional(),
  })
  .strict();

export const PlanSchema = z
  .object({
    requirements: z.string().trim().min(1).max(MAX_REQUIREMENTS_CHARS),
    executorBudget: z.number().int().min(1).max(1000),
    tasks: z.array(PlanTaskSchema).min(1).max(MAX_PLAN_TASKS),
    strategy: z.string().max(20_000).optional(),
    notes: z.string().max(20_000).optional(),
  })
  .strict();

export type SimulateSpec = z.infer<typeof SimulateSpecSchema>;
export type PlanTask = z.infer<typeof PlanTaskSchema>;
export type Plan = z.infer<typeof PlanSchema>;
/** What a planner or a plan file may omit before parsing (e.g. `dependsOn`). */
export type PlanInput = z.input<typeof PlanSchema>;

export class PlanValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.slice(0, 5).join('; ') +
        (problems.length > 5 ? `; and ${problems.length - 5} more` : ''),
    );
    this.name = 'PlanValidationError';
  }
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : 'plan';
    return `${where}: ${issue.message}`;
  });
}

/** Finds one cycle and returns it as a closed walk (`a → b → a`), or undefined. */
export function findCycle(
  tasks: readonly Pick<PlanTask, 'id' | 'dependsOn'>[],
): string[] | undefined {
  const deps = new Map(tasks.map((t) => [t.id, t.dependsOn]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  for (const root of deps.keys()) {
    if (state.has(root)) continue;
    // Iterative DFS: a long chain of 5,000 tasks must not overflow the call stack.
    const frames: { id: string; next: number }[] = [{ id: root, next: 0 }];
    state.set(root, 'open');
    stack.push(root);
    while (frames.length) {
      const frame = frames[frames.length - 1] as { id: string; next: number };
      const children = deps.get(frame.id) ?? [];
      if (frame.next < children.length) {
        const child = children[frame.next++] as string;
        if (!deps.has(child)) continue;
        const s = state.get(child);
        if (s === 'open') return [...stack.slice(stack.indexOf(child)), child];
        if (s === undefined) {
          state.set(child, 'open');
          stack.push(child);
          frames.push({ id: child, next: 0 });
        }
      } else {
        state.set(frame.id, 'done');
        stack.pop();
        frames.pop();
      }
    }
  }
  return undefined;
}

export interface PlanLimits {
  maxTasks?: number;
}

/**
 * Parses and validates a plan: schema, unique ids, known dependencies, no self or cyclic
 * dependency, task count within `maxTasks`. Throws PlanValidationError listing every problem.
 */
export function parsePlan(input: unknown, limits: PlanLimits = {}): Plan {
  const parsed = PlanSchema.safeParse(input);
  if (!parsed.success) throw new PlanValidationError(describeIssues(parsed.error));
  const plan = parsed.data;
  const problems: string[] = [];
  const maxTasks = limits.maxTasks ?? MAX_PLAN_TASKS;
  if (plan.tasks.length > maxTasks) {
    problems.push(`plan has ${plan.tasks.length} tasks, more than the limit of ${maxTasks}`);
  }
  const ids = new Set<string>();
  for (const task of plan.tasks) {
    if (ids.has(task.id)) problems.push(`duplicate task id "${task.id}"`);
    ids.add(task.id);
  }
  for (const task of plan.tasks) {
    const seen = new Set<string>();
    for (const dep of task.dependsOn) {
      if (dep === task.id) problems.push(`task "${task.id}" depends on itself`);
      else if (!ids.has(dep)) problems.push(`task "${task.id}" depends on unknown task "${dep}"`);
      if (seen.has(dep)) problems.push(`task "${task.id}" lists dependency "${dep}" twice`);
      seen.add(dep);
    }
  }
  if (problems.length === 0) {
    const cycle = findCycle(plan.tasks);
    if (cycle) problems.push(`dependency cycle: ${cycle.join(' → ')}`);
  }
  if (problems.length) throw new PlanValidationError(problems);
  return plan;
}
