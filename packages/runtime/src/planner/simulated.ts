import { type Plan, type PlanInput, parsePlan } from '../contracts/plan.js';
import { ZERO_USAGE } from '../contracts/usage.js';
import { criticalPath, stages } from '../scheduler/ranking.js';
import { clip } from '../util/clip.js';
import { seededInts } from '../util/random.js';
import type { Planner, PlannerOptions, PlanResult } from './planner.js';

interface Capability {
  id: string;
  title: string;
  pattern: RegExp;
  estimateMinutes: number;
}

/** Cross-cutting parts recognised in a requirement; each becomes its own task. */
const CAPABILITIES: readonly Capability[] = [
  {
    id: 'persistence',
    title: 'Persistence layer',
    pattern: /\b(database|db|sql|sqlite|postgres\w*|mysql|mongo\w*|storage|persist\w*)\b/,
    estimateMinutes: 20,
  },
  {
    id: 'auth',
    title: 'Authentication',
    pattern: /\b(auth\w*|log ?in|sign ?(in|up)|passwords?|oauth|jwt|sessions?)\b/,
    estimateMinutes: 25,
  },
  {
    id: 'api',
    title: 'HTTP API',
    pattern: /\b(rest|api|endpoints?|http|graphql|server|backend)\b/,
    estimateMinutes: 20,
  },
  {
    id: 'cli',
    title: 'Command-line interface',
    pattern: /\b(cli|command[- ]line|terminal)\b/,
    estimateMinutes: 15,
  },
  {
    id: 'ui',
    title: 'User interface',
    pattern:
      /\b(ui|frontend|front-end|web ?app|website|web ?page|dashboard|react|vue|svelte|screens?)\b/,
    estimateMinutes: 30,
  },
];

const LEADING_VERB =
  /^(?:please\s+)?(?:build|create|make|develop|implement|write|design|code|ship)\s+(?:me\s+)?/i;
const FEATURE_CLAUSE = /\s+(?:with|that|which|featuring|including|supporting|where users can)\s+/i;

function slug(text: string, max = 40): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.slice(0, max).replace(/-+$/, '') || 'item';
}

function stripArticles(text: string): string {
  return text.replace(/^(?:(?:an?|the|some|simple|basic|small|new)\s+)+/i, '').trim();
}

/** Longest subject or feature name taken from the requirement: titles are built from them. */
const NAME_CHARS = 80;

/** Splits a requirement into its subject ("todo list app") and listed items ("add", "delete"). */
export function parseRequirement(requirements: string): { subject: string; items: string[] } {
  const lines = requirements
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const bullets = lines
    .filter((l) => /^(?:[-*•]|\d+[.)])\s+/.test(l))
    .map((l) => l.replace(/^(?:[-*•]|\d+[.)])\s+/, ''));
  const first = (lines.find((l) => !bullets.includes(l.replace(/^(?:[-*•]|\d+[.)])\s+/, ''))) ?? '')
    .split(/(?<=[.!?])\s/)[0]
    ?.replace(/[.!?:]+$/, '') as string;
  const [head = '', ...rest] = first.replace(LEADING_VERB, '').split(FEATURE_CLAUSE);
  const subject = clip(stripArticles(head), NAME_CHARS) || 'project';
  const listed = rest
    .join(', ')
    .split(/,|;|\band\b|&|\+|\//i)
    .map((item) => stripArticles(item.trim()))
    .filter((item) => item.length > 0);
  return {
    subject,
    items: [...listed, ...bullets.map((b) => b.replace(/[.;]+$/, ''))].map((item) =>
      clip(item, NAME_CHARS),
    ),
  };
}

interface Feature {
  name: string;
  title: string;
}

interface Draft {
  id: string;
  title: string;
  description: string;
  dependsOn: string[];
  priority: number;
  estimateMinutes: number;
}

/**
 * A deterministic, offline planner that reads the shape of a requirement: a scaffold first, a
 * domain model, the recognised cross-cutting parts and one task per listed feature in parallel,
 * then integration, and tests and docs side by side. Different requirements give different
 * DAGs; nothing calls a model.
 */
export class SimulatedPlanner implements Planner {
  readonly name = 'simulated';

  async plan(requirements: string, options: PlannerOptions): Promise<PlanResult> {
    const text = requirements.trim();
    const lower = text.toLowerCase();
    const { subject, items } = parseRequirement(text);
    const capabilities = CAPABILITIES.filter((c) => c.pattern.test(lower));
    const featureNames = items.filter(
      (item) => !CAPABILITIES.some((c) => c.pattern.test(item.toLowerCase())),
    );
    const features: Feature[] =
      featureNames.length > 0
        ? dedupe(featureNames).map((name) => ({ name, title: `Implement ${name}` }))
        : [{ name: 'core', title: `Implement the ${subject} core` }];
    const drafts = fitToLimit(buildDrafts(subject, capabilities, features), options.maxTasks);
    const plan: PlanInput = {
      requirements: text,
      executorBudget: options.executors,
      tasks: drafts,
      notes: 'Planned offline by the simulated planner: no model was called.',
    };
    const parsed = parsePlan(plan, { maxTasks: options.maxTasks });
    const widest = Math.max(...stages(parsed.tasks).map((stage) => stage.length));
    parsed.strategy =
      `Critical path: ${criticalPath(parsed.tasks)
        .map((t) => t.id)
        .join(' → ')}. ` +
      `Widest stage: ${widest} tasks for ${options.executors} executor${options.executors === 1 ? '' : 's'}.`;
    return { plan: parsed, usage: ZERO_USAGE };
  }
}

function dedupe(items: string[]): string[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const key = slug(item);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function buildDrafts(
  subject: string,
  capabilities: readonly Capability[],
  features: Feature[],
): Draft[] {
  const has = (id: string) => capabilities.some((c) => c.id === id);
  const drafts: Draft[] = [
    {
      id: 'scaffold',
      title: `Scaffold the ${subject} project`,
      description: `Create the ${subject} project layout, build and test tooling, and a README stub.`,
      dependsOn: [],
      priority: 1,
      estimateMinutes: 5,
    },
    {
      id: 'domain-model',
      title: `Define the ${subject} domain model`,
      description: `Define the core types and invariants of the ${subject} that every feature builds on.`,
      dependsOn: ['scaffold'],
      priority: 1,
      estimateMinutes: 10,
    },
  ];
  const add = (capabilityId: string, dependsOn: string[], description: string) => {
    const capability = capabilities.find((c) => c.id === capabilityId);
    if (!capability) return;
    drafts.push({
      id: capability.id,
      title: capability.title,
      description,
      dependsOn,
      priority: 2,
      estimateMinutes: capability.estimateMinutes,
    });
  };
  add(
    'persistence',
    ['domain-model'],
    `Store and load ${subject} data behind a repository interface.`,
  );
  add(
    'auth',
    has('persistence') ? ['domain-model', 'persistence'] : ['domain-model'],
    `Add user accounts, password hashing and session handling to the ${subject}.`,
  );
  const featureIds: string[] = [];
  for (const feature of features) {
    const id = uniqueId(`feature-${slug(feature.name, 48)}`, drafts);
    featureIds.push(id);
    drafts.push({
      id,
      title: feature.title,
      description: `Implement "${feature.name}" for the ${subject}, with unit tests, on the domain model.`,
      dependsOn: has('persistence') ? ['domain-model', 'persistence'] : ['domain-model'],
      priority: 3,
      estimateMinutes: 10 + 5 * Math.min(4, feature.name.split(/\s+/).length),
    });
  }
  const withAuth = (deps: string[]) => (has('auth') ? [...deps, 'auth'] : deps);
  add(
    'api',
    withAuth(featureIds),
    `Expose the ${subject} features over an HTTP API with input validation.`,
  );
  add('cli', featureIds, `Offer the ${subject} features as a command-line tool.`);
  add(
    'ui',
    has('api') ? ['api'] : withAuth(featureIds),
    `Build the user interface of the ${subject} on top of its features.`,
  );
  const dependedOn = new Set(drafts.flatMap((d) => d.dependsOn));
  drafts.push(
    {
      id: 'integration',
      title: `Integrate the ${subject}`,
      description: `Wire every part of the ${subject} together into one entry point and fix the seams.`,
      dependsOn: drafts.filter((d) => !dependedOn.has(d.id)).map((d) => d.id),
      priority: 2,
      estimateMinutes: 15,
    },
    {
      id: 'tests',
      title: 'End-to-end tests',
      description: `Test the integrated ${subject} end to end, covering each listed feature.`,
      dependsOn: ['integration'],
      priority: 3,
      estimateMinutes: 20,
    },
    {
      id: 'docs',
      title: 'Documentation',
      description: `Write the ${subject} README: setup, usage of each feature, and architecture.`,
      dependsOn: ['integration'],
      priority: 4,
      estimateMinutes: 10,
    },
  );
  return drafts;
}

function uniqueId(base: string, drafts: readonly Draft[]): string {
  let id = base.slice(0, 60);
  for (let n = 2; drafts.some((d) => d.id === id); n++) id = `${base.slice(0, 57)}-${n}`;
  return id;
}

/**
 * Shrinks a plan to `maxTasks`: first by folding features together, then to a short chain.
 */
function fitToLimit(drafts: Draft[], maxTasks: number): Draft[] {
  if (drafts.length <= maxTasks) return drafts;
  const features = drafts.filter((d) => d.id.startsWith('feature-'));
  const others = drafts.filter((d) => !d.id.startsWith('feature-'));
  const room = maxTasks - others.length;
  if (room >= 1 && features.length > 0) {
    const groups: Draft[][] = Array.from({ length: room }, () => []);
    for (const [i, feature] of features.entries()) groups[i % room]?.push(feature);
    const merged = groups.map((group, i) => ({
      ...(group[0] as Draft),
      id: `feature-group-${i + 1}`,
      title: clip(
        `Implement ${group.map((f) => f.title.replace(/^Implement /, '')).join(', ')}`,
        200,
      ),
      description: clip(group.map((f) => f.description).join('\n'), 20_000),
      estimateMinutes: group.reduce((sum, f) => sum + f.estimateMinutes, 0),
    }));
    const renamed = new Map(
      groups.flatMap((group, i) => group.map((f) => [f.id, `feature-group-${i + 1}`])),
    );
    const relink = (d: Draft): Draft => ({
      ...d,
      dependsOn: [...new Set(d.dependsOn.map((dep) => renamed.get(dep) ?? dep))],
    });
    const insertAt = others.findIndex((d) => d.dependsOn.some((dep) => renamed.has(dep)));
    return [...others.slice(0, insertAt), ...merged, ...others.slice(insertAt)].map(relink);
  }
  const all = drafts.map((d) => d.title).join('; ');
  const chain: Draft[] = [
    { ...(drafts[0] as Draft), dependsOn: [] },
    {
      id: 'implement',
      title: 'Implement every feature',
      description: clip(`Implement: ${all}.`, 20_000),
      dependsOn: ['scaffold'],
      priority: 2,
      estimateMinutes: drafts.reduce((sum, d) => sum + d.estimateMinutes, 0),
    },
    {
      id: 'verify',
      title: 'Test and document',
      description: 'Test the result end to end and document it.',
      dependsOn: ['implement'],
      priority: 3,
      estimateMinutes: 20,
    },
  ];
  if (maxTasks >= chain.length) return chain;
  return [{ ...(chain[1] as Draft), dependsOn: [], description: `Build everything: ${all}.` }];
}

/**
 * Gives every task without a simulated duration one drawn uniformly from `[min, max]` ms with a
 * seeded generator, so a simulated run is reproducible from its seed.
 */
export function assignSimulatedDurations(
  plan: Plan,
  range: { min: number; max: number },
  seed: number,
): Plan {
  const draw = seededInts(seed);
  return {
    ...plan,
    tasks: plan.tasks.map((task) =>
      task.simulate?.durationMs !== undefined
        ? task
        : { ...task, simulate: { ...task.simulate, durationMs: draw(range.min, range.max) } },
    ),
  };
}
