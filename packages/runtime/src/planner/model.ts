import type Anthropic from '@anthropic-ai/sdk';
import { z } from 'zod';
import { PlanSchema, PlanTaskSchema, PlanValidationError, parsePlan } from '../contracts/plan.js';
import { addUsage, type Usage, ZERO_USAGE } from '../contracts/usage.js';
import { UsageError } from '../errors.js';
import type { MessagesClient } from '../models/client.js';
import { costOf } from '../models/pricing.js';
import type { Planner, PlannerOptions, PlanResult } from './planner.js';

/** What the model fills in; the runtime adds the requirements and the budget. */
export const PlanProposalSchema = PlanSchema.pick({ strategy: true, notes: true }).extend({
  tasks: z.array(PlanTaskSchema.omit({ simulate: true })).min(1),
});

export const PLAN_TOOL = 'submit_plan';

/** The tool's input schema, generated from the plan schema: one definition for both. */
export function planToolSchema(): Anthropic.Tool.InputSchema {
  const { $schema: _, ...schema } = z.toJSONSchema(PlanProposalSchema, { io: 'input' }) as Record<
    string,
    unknown
  >;
  return schema as Anthropic.Tool.InputSchema;
}

/** The model could not be reached, refused, or gave no valid plan: a configuration-level error. */
export class PlanningError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'PlanningError';
  }
}

const SYSTEM = [
  'You are the planner of a system that runs several Claude Code agents at once on one repository.',
  'Split the requirement into tasks. Each task is done by one agent in its own git worktree that',
  'already contains the merged work of the tasks it depends on; every finished task is merged.',
  'Make tasks that own distinct files, so parallel tasks do not edit the same file, and list those',
  "files in `files`. Add a dependency only when a task needs another task's output. Make the",
  'graph as wide as the number of agents allows, with a short critical path. Give each task a',
  'description an engineer could act on alone: what to build, where, and how to check it.',
].join(' ');

function userPrompt(requirements: string, options: PlannerOptions): string {
  return [
    `Requirement:\n${requirements}`,
    '',
    ...(options.codebase ? [options.codebase, ''] : []),
    `Agents working at once: ${options.executors}. At most ${options.maxTasks} tasks.`,
    'Task ids are slugs: lowercase letters, digits and "-", starting with a letter or digit.',
    `Call ${PLAN_TOOL} with the plan.`,
  ].join('\n');
}

function usageOf(model: string, usage: Anthropic.Usage): Usage {
  const tokens = {
    inputTokens: usage.input_tokens,
    outputTokens: usage.output_tokens,
    cacheReadTokens: usage.cache_read_input_tokens ?? 0,
    cacheCreationTokens: usage.cache_creation_input_tokens ?? 0,
  };
  return { ...tokens, costUsd: costOf(model, tokens) ?? 0 };
}

async function describeApiError(error: unknown, baseURL: string | undefined): Promise<string> {
  const { APIConnectionError, APIError } = await import('@anthropic-ai/sdk');
  if (error instanceof APIConnectionError) {
    return `cannot reach the model API${baseURL ? ` at ${baseURL}` : ''}: ${error.message}`;
  }
  if (error instanceof APIError) {
    const detail = error.message.replace(/\s+/g, ' ').slice(0, 300);
    return `the model API answered ${error.status ?? 'with an error'}: ${detail}`;
  }
  if (error instanceof Error && error.name === 'TimeoutError')
    return 'planning took longer than its time limit';
  return error instanceof Error ? error.message : String(error);
}

export interface ModelPlannerOptions {
  client: MessagesClient;
  model: string;
  /** Further tries after an invalid plan. */
  repairs: number;
  /** The whole planning step, retries and repairs included. */
  timeoutMs: number;
  /** Shown in connection errors. */
  baseURL?: string;
}

/**
 * Plans through the Messages API: the plan comes back as the input of a forced tool call whose
 * schema is the plan schema, is validated like any plan, and its problems go back to the model
 * for a bounded number of repairs.
 */
export class ModelPlanner implements Planner {
  readonly name = 'model';

  constructor(private readonly options: ModelPlannerOptions) {}

  async plan(requirements: string, options: PlannerOptions): Promise<PlanResult> {
    const { client, model, repairs, timeoutMs } = this.options;
    const signal = AbortSignal.timeout(timeoutMs);
    const tool: Anthropic.Tool = {
      name: PLAN_TOOL,
      description: 'Submit the task plan: the tasks, their dependencies and the files each owns.',
      input_schema: planToolSchema(),
    };
    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: userPrompt(requirements, options) },
    ];
    let usage = ZERO_USAGE;
    let problems: string[] = [];
    for (let attempt = 0; attempt <= repairs; attempt++) {
      let response: Anthropic.Message;
      try {
        response = await client.messages.create(
          {
            model,
            max_tokens: 16_000,
            system: SYSTEM,
            messages,
            tools: [tool],
            tool_choice: { type: 'tool', name: PLAN_TOOL },
          },
          { signal },
        );
      } catch (error) {
        throw new PlanningError(
          `planning failed: ${await describeApiError(error, this.options.baseURL)}`,
        );
      }
      usage = addUsage(usage, usageOf(model, response.usage));
      messages.push({ role: 'assistant', content: response.content });
      const call = response.content.find(
        (block): block is Anthropic.ToolUseBlock =>
          block.type === 'tool_use' && block.name === PLAN_TOOL,
      );
      if (!call) {
        problems = [`the answer did not call ${PLAN_TOOL}`];
        messages.push({
          role: 'user',
          content: `Answer by calling ${PLAN_TOOL} with the plan, not in prose.`,
        });
        continue;
      }
      try {
        const proposal = PlanProposalSchema.safeParse(call.input);
        const fields = proposal.success ? proposal.data : (call.input as Record<string, unknown>);
        return {
          plan: parsePlan(
            { ...fields, requirements, executorBudget: options.executors },
            { maxTasks: options.maxTasks },
          ),
          usage,
        };
      } catch (error) {
        if (!(error instanceof PlanValidationError)) throw error;
        problems = error.problems;
        messages.push({
          role: 'user',
          content: [
            {
              type: 'tool_result',
              tool_use_id: call.id,
              is_error: true,
              content: `The plan is invalid:\n- ${problems.join('\n- ')}\nCall ${PLAN_TOOL} again with a corrected plan.`,
            },
          ],
        });
      }
    }
    throw new PlanningError(
      `the model gave no valid plan in ${repairs + 1} ${repairs ? 'tries' : 'try'}: ${problems.slice(0, 5).join('; ')}`,
    );
  }
}
