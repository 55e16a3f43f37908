import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLAN_TOOL } from '../../packages/runtime/src/planner/model.js';
import { readEvents, readSummary, resultLine, runCli, startCli, waitFor } from '../support/cli.js';
import { gitOut } from '../support/git.js';
import {
  conversationText,
  type ModelServer,
  primaryWorkingDirectory,
  type RecordedRequest,
  type Reply,
  startModelServer,
  text,
  toolResults,
  toolUse,
  type Usage,
} from '../support/model-server.js';
import { tempDir } from '../support/tmp.js';

/**
 * The real `claude` binary (the pinned @anthropic-ai/claude-code) driven through the Agent SDK,
 * talking to a scripted Messages API server instead of Anthropic.
 */

const KEY = `sk-ant-api03-FAKEKEY-${randomUUID()}`;
const work = tempDir('po-e2e-');
const OUTSIDE = path.join(work, `outside-${randomUUID()}.txt`);

const planTask = (id: string, dependsOn: string[]) => ({
  id,
  title: `Write ${id}`,
  description: `Create src/${id}.txt describing ${id}.`,
  dependsOn,
  files: [`src/${id}.txt`],
});
const PLAN = {
  tasks: [planTask('core', []), planTask('adder', ['core']), planTask('docs', ['core', 'adder'])],
};

let server: ModelServer;
let sent: Usage[] = [];
let script: (request: RecordedRequest) => Reply;

/** Replies carry usage; the test sums what it sent to check the run's accounting. */
function reply(value: Reply): Reply {
  if (value.usage) sent.push(value.usage);
  return value;
}

const taskOf = (request: RecordedRequest) =>
  /Your task: ([a-z0-9-]+):/.exec(conversationText(request))?.[1];

/** Each agent writes its file, edits it, runs one more tool, then says it is done. */
function agentStep(request: RecordedRequest): Reply {
  const cwd = primaryWorkingDirectory(request);
  const id = taskOf(request);
  if (!cwd || !id)
    return reply({ content: [text('ok')], usage: { input_tokens: 3, output_tokens: 2 } });
  const file = `${cwd}/src/${id}.txt`;
  switch (toolResults(request)) {
    case 0:
      return reply({
        content: [toolUse('Write', { file_path: file, content: `${id} written by Claude Code\n` })],
        usage: { input_tokens: 500, output_tokens: 50 },
      });
    case 1:
      return reply({
        content: [
          toolUse('Edit', {
            file_path: file,
            old_string: 'written',
            new_string: 'written and edited',
          }),
        ],
        usage: { input_tokens: 550, output_tokens: 45 },
      });
    case 2:
      // The adder tries to write outside its worktree: the tool policy must refuse.
      return reply({
        content: [
          id === 'adder'
            ? toolUse('Write', { file_path: OUTSIDE, content: 'escaped\n' })
            : toolUse('Bash', { command: 'ls src' }),
        ],
        usage: { input_tokens: 600, output_tokens: 40 },
      });
    default:
      return reply({
        content: [text(`Done: wrote src/${id}.txt`)],
        usage: { input_tokens: 700, output_tokens: 30 },
      });
  }
}

function planner(request: RecordedRequest): Reply | undefined {
  if (!request.body?.tools?.some((t: { name: string }) => t.name === PLAN_TOOL)) return undefined;
  return reply({
    content: [toolUse(PLAN_TOOL, PLAN)],
    usage: { input_tokens: 1200, output_tokens: 300 },
  });
}

beforeAll(async () => {
  script = (request) => planner(request) ?? agentStep(request);
  server = await startModelServer((request) => script(request));
});
afterAll(() => server.close());

/** A plan file of independent tasks, for runs that skip planning. */
function planFile(ids: string[], executorBudget: number): string {
  const file = path.join(work, `plan-${randomUUID()}.json`);
  const plan = {
    requirements: 'Scripted run',
    executorBudget,
    tasks: ids.map((id) => planTask(id, [])),
  };
  writeFileSync(file, JSON.stringify(plan));
  return file;
}

/** Runs one scripted task with extra flags; returns the exit code and the task's result. */
async function runOne(id: string, flags: string[]) {
  const args = [
    'run',
    '--real',
    '--plan',
    planFile([id], 1),
    ...flags,
    '-o',
    path.join(work, `one-${id}`),
    '--json',
  ];
  const { code, stdout } = await runCli(args, work, env());
  return {
    code,
    runDir: resultLine(stdout).runDir,
    task: readSummary(resultLine(stdout).runDir).tasks[0],
  };
}

const env = () => ({
  ANTHROPIC_API_KEY: KEY,
  ANTHROPIC_BASE_URL: server.url,
  HOME: path.join(work, 'home'),
});

/** Every file below `dir`, as bytes: secrets must appear in none. */
function filesBelow(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    const stats = statSync(full, { throwIfNoEntry: false });
    if (stats?.isDirectory()) out.push(...filesBelow(full));
    else if (stats?.isFile()) out.push(full);
  }
  return out;
}

const sumSent = () =>
  sent.reduce(
    (total, u) => ({ input: total.input + u.input_tokens, output: total.output + u.output_tokens }),
    { input: 0, output: 0 },
  );
// The default model's prices, as Claude Code reports them: $2 in, $10 out per million tokens.
const sonnetCost = ({ input, output }: { input: number; output: number }) =>
  (input * 2 + output * 10) / 1e6;

describe('run --real with Claude Code against a scripted model', () => {
  let runDir: string;
  let cli: { code: number | null; stdout: string; stderr: string };
  const processListings: string[] = [];

  beforeAll(async () => {
    sent = [];
    const started = startCli(
      ['run', 'Write three notes', '--real', '-e', '2', '-o', path.join(work, 'runs'), '--json'],
      work,
      env(),
    );
    // Record process listings while it runs: the key must not appear in any argv.
    const poll = setInterval(() => {
      execFile('ps', ['-eo', 'args'], (_, stdout) => processListings.push(stdout));
    }, 100);
    cli = await started.done;
    clearInterval(poll);
    runDir = resultLine(cli.stdout).runDir;
  });

  it('plans with the model and merges the files Claude Code wrote, one commit per task', () => {
    expect(cli.code).toBe(0);
    const project = path.join(runDir, 'project');
    for (const id of ['core', 'adder', 'docs']) {
      expect(readFileSync(path.join(project, 'src', `${id}.txt`), 'utf8')).toBe(
        `${id} written and edited by Claude Code\n`,
      );
    }
    expect(gitOut(project, ['log', '--no-merges', '--format=%s', 'main']).split('\n')).toHaveLength(
      4,
    );
    expect(readSummary(runDir)).toMatchObject({
      status: 'succeeded',
      mode: 'real',
      planning: { planner: 'model' },
    });
    for (const id of ['core', 'adder', 'docs']) {
      const transcript = readFileSync(path.join(runDir, 'tasks', id, 'transcript.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(JSON.parse(transcript.at(-1) as string)).toMatchObject({
        type: 'result',
        subtype: 'success',
      });
    }
  });

  it('gives each agent the plan around its task and what is already merged', () => {
    const first = server.requests.find((r) => taskOf(r) === 'docs');
    const prompt = conversationText(first as RecordedRequest);
    expect(prompt).toContain('Your task: docs: Write docs');
    expect(prompt).toContain(
      'Already done and merged into your working directory:\n- core: Write core\n- adder: Write adder',
    );
    expect(prompt).toContain('Files your task owns:\n- src/docs.txt');
  });

  it('keeps file tools inside the worktree', () => {
    expect(existsSync(OUTSIDE)).toBe(false);
    const refused = server.requests.find((r) => taskOf(r) === 'adder' && toolResults(r) === 3);
    expect(conversationText(refused as RecordedRequest)).toContain(
      "is outside this task's workspace",
    );
  });

  it('accounts tokens and cost exactly as the model reported them', () => {
    const summary = readSummary(runDir);
    const total = sumSent();
    expect(summary.usage.inputTokens).toBe(total.input);
    expect(summary.usage.outputTokens).toBe(total.output);
    expect(summary.usage.costUsd).toBeCloseTo(sonnetCost(total), 6);
    expect(summary.planning.usage).toMatchObject({
      inputTokens: 1200,
      outputTokens: 300,
      costUsd: sonnetCost({ input: 1200, output: 300 }),
    });
    const perTask = summary.tasks.reduce((sum, t) => sum + t.usage.inputTokens, 0);
    expect(perTask + 1200).toBe(total.input);
  });

  it('writes the key nowhere: run directory, git history, output, process listings', () => {
    // It was used: the model server saw it.
    expect(server.requests.some((r) => JSON.stringify(r.headers).includes(KEY))).toBe(true);
    for (const file of filesBelow(runDir)) {
      expect(readFileSync(file).includes(KEY), file).toBe(false);
    }
    const project = path.join(runDir, 'project');
    expect(gitOut(project, ['log', '--all', '-p'])).not.toContain(KEY);
    expect(cli.stdout + cli.stderr).not.toContain(KEY);
    expect(processListings.length).toBeGreaterThan(0);
    expect(processListings.join('\n')).not.toContain(KEY);
  });
});

describe('budgets', () => {
  it('stops starting tasks once the run budget is spent; running ones finish', async () => {
    // Each task costs $0.30: 100k tokens in, 10k out.
    script = (request) =>
      reply({
        content: [text(`Done with ${taskOf(request)}`)],
        usage: { input_tokens: 100_000, output_tokens: 10_000 },
      });
    const { code, stdout } = await runCli(
      [
        'run',
        '--real',
        '--plan',
        planFile(['one', 'two', 'three'], 1),
        '-e',
        '1',
        '--max-budget-usd',
        '0.4',
        '-o',
        path.join(work, 'budget'),
        '--json',
      ],
      work,
      env(),
    );
    expect(code).toBe(1);
    const { runDir } = resultLine(stdout);
    const summary = readSummary(runDir);
    expect(summary.stoppedBy).toBe('budget');
    expect(summary.totals).toMatchObject({ succeeded: 2, unfinished: 1 });
    expect(summary.usage.costUsd).toBeCloseTo(0.6, 6);
    expect(readEvents(runDir).find((e) => e.type === 'run-budget-spent')).toMatchObject({
      limitUsd: 0.4,
    });
  });

  it('stops a task that spends its own budget, without retrying it', async () => {
    script = (request) => {
      const cwd = primaryWorkingDirectory(request);
      return reply({
        content: [toolUse('Write', { file_path: `${cwd}/big.txt`, content: 'x\n' })],
        usage: { input_tokens: 100_000, output_tokens: 10_000 },
      });
    };
    const { code, task } = await runOne('pricey', ['--max-task-usd', '0.05']);
    expect(code).toBe(1);
    expect(task).toMatchObject({ status: 'failed', attempts: 1 });
    // Claude Code stops itself once its own count passes the budget, or the proxy refuses it.
    expect(task?.error).toMatch(/^task (spent|reached) its budget of \$0\.05/);
    // What the proxy counted from the answer: 100,000 tokens in, 10,000 out, at Sonnet's price.
    expect(task?.usage).toMatchObject({ inputTokens: 100_000, outputTokens: 10_000 });
    expect(task?.usage.costUsd).toBeCloseTo(0.3, 6);
  });
});

describe('turn limit', () => {
  it('fails a task that uses all its turns, without retrying it', async () => {
    script = (request) => agentStep(request);
    const { code, task } = await runOne('long', ['--max-turns', '2']);
    expect(code).toBe(1);
    expect(task).toMatchObject({ status: 'failed', attempts: 1, error: 'task used all 2 turns' });
  });
});

describe('stopping agents', () => {
  /** Processes whose working directory is inside `dir`: agents left behind. */
  function processesIn(dir: string): number[] {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          return readlinkSync(`/proc/${pid}/cwd`).startsWith(dir);
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  it('kills Claude Code when a task times out', async () => {
    // The model never answers in time.
    script = () =>
      reply({
        content: [text('late')],
        delayMs: 60_000,
        usage: { input_tokens: 1, output_tokens: 1 },
      });
    const started = Date.now();
    const { code, runDir, task } = await runOne('slow', ['--task-timeout', '3s', '--retries', '0']);
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(task?.error).toMatch(/^timed out after 3000 ms/);
    expect(processesIn(runDir)).toEqual([]);
  });

  it('cancels a real run on SIGINT and resumes it with the credentials given again', async () => {
    script = (request) =>
      taskOf(request) === 'slow' && toolResults(request) === 0
        ? reply({
            content: [text('slow answer')],
            delayMs: 4_000,
            usage: { input_tokens: 10, output_tokens: 5 },
          })
        : agentStep(request);
    const output = path.join(work, 'cancel');
    const run = startCli(
      ['run', '--real', '--plan', planFile(['slow', 'quick'], 2), '-o', output, '--json'],
      work,
      env(),
    );
    const runDir = await waitFor(() => {
      const entries = existsSync(output) ? readdirSync(output) : [];
      return entries[0] ? path.join(output, entries[0]) : undefined;
    });
    await waitFor(() => (server.requests.some((r) => taskOf(r) === 'slow') ? true : undefined));
    run.child.kill('SIGINT');
    expect((await run.done).code).toBe(130);
    expect(processesIn(runDir)).toEqual([]);
    const withoutKey = await runCli(['resume', runDir], work, { HOME: path.join(work, 'home') });
    expect(withoutKey.code).toBe(2);
    expect(withoutKey.stderr).toMatch(/^error: no model credentials/);
    script = (request) => agentStep(request);
    const resumed = await runCli(['resume', runDir, '--json'], work, env());
    expect(resumed.code).toBe(0);
    expect(readSummary(runDir).totals.succeeded).toBe(2);
  });
});

describe('Bedrock through the model proxy', () => {
  it('runs Claude Code on Bedrock with requests signed by the proxy; the agent holds no AWS key', async () => {
    const secretKey = `aws-secret-${randomUUID()}`;
    script = (request) => {
      const cwd = primaryWorkingDirectory(request);
      if (!cwd) return reply({ content: [text('ok')] });
      return toolResults(request) === 0
        ? reply({
            content: [toolUse('Bash', { command: 'env | sort > env.txt; cat env.txt' })],
          })
        : reply({
            content: [text('done on Bedrock')],
            usage: { input_tokens: 20, output_tokens: 10 },
          });
    };
    const before = server.requests.length;
    const plan = planFile(['bedrock'], 1);
    const { code, stdout, stderr } = await runCli(
      ['run', '--real', '--plan', plan, '-o', path.join(work, 'bedrock'), '--json'],
      work,
      {
        HOME: path.join(work, 'home'),
        USE_BEDROCK: '1',
        BEDROCK_REGION: 'eu-west-1',
        BEDROCK_MODEL: 'eu.anthropic.claude-sonnet-5-5-v1:0',
        AWS_ACCESS_KEY_ID: 'AKIDBEDROCKTEST',
        AWS_SECRET_ACCESS_KEY: secretKey,
        ANTHROPIC_BEDROCK_BASE_URL: server.url,
      },
    );
    const { runDir } = resultLine(stdout);
    expect(code, stderr).toBe(1);
    const calls = server.requests.slice(before);
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call.path).toBe(
        '/model/eu.anthropic.claude-sonnet-5-5-v1%3A0/invoke-with-response-stream',
      );
      expect(call.headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDBEDROCKTEST\/\d{8}\/eu-west-1\/bedrock\/aws4_request, /,
      );
    }
    // The agent's environment (what it wrote to env.txt, refused at commit): no AWS credential.
    const seen = conversationText(calls.at(-1) as RecordedRequest);
    expect(seen).toContain('CLAUDE_CODE_SKIP_BEDROCK_AUTH=1');
    expect(seen).toContain('AWS_REGION=eu-west-1');
    expect(seen).not.toMatch(/AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE)=/);
    expect(seen).not.toContain(secretKey);
    const [task] = readSummary(runDir).tasks;
    expect(task?.error).toMatch(/^env\.txt contains the value of the model proxy token/);
    for (const file of filesBelow(runDir)) {
      expect(readFileSync(file).includes(secretKey), file).toBe(false);
    }
  });
});

describe('planning failures and checks', () => {
  it('plan --real prints the model plan and what planning cost', async () => {
    script = (request) => planner(request) ?? agentStep(request);
    const json = await runCli(
      ['plan', 'Write three notes', '--real', '--json', '-e', '2'],
      work,
      env(),
    );
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      requirements: 'Write three notes',
      executorBudget: 2,
      tasks: PLAN.tasks,
    });
    const textOut = await runCli(['plan', 'Write three notes', '--real'], work, env());
    expect(textOut.stdout).toContain('Stage 3\n  docs: Write docs  ← core, adder');
    expect(textOut.stdout).toContain(
      'Planned by claude-sonnet-5-5: 1,200 in / 300 out tokens, $0.0054',
    );
  });

  it('exits 2 with the last problems when the model keeps planning a cycle', async () => {
    script = (request) =>
      planner(request)
        ? reply({
            content: [toolUse(PLAN_TOOL, { tasks: [planTask('a', ['b']), planTask('b', ['a'])] })],
          })
        : agentStep(request);
    const { code, stderr } = await runCli(
      ['run', 'x', '--real', '--plan-repairs', '1', '-o', path.join(work, 'nope')],
      work,
      env(),
    );
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^error: the model gave no valid plan in 2 tries: dependency cycle: (a → b → a|b → a → b)\n$/,
    );
    expect(existsSync(path.join(work, 'nope'))).toBe(false);
  });

  it('exits 2 in one line when the model API cannot be reached', async () => {
    const { code, stderr } = await runCli(['run', 'x', '--real'], work, {
      ...env(),
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
    });
    expect(code).toBe(2);
    expect(stderr).toBe(
      'error: planning failed: cannot reach the model API at http://127.0.0.1:9: Connection error.\n',
    );
  });

  it('doctor reports the binary and where credentials come from, never their values', async () => {
    const found = await runCli(['doctor'], work, env());
    expect(found.code).toBe(0);
    expect(found.stdout).toMatch(/^ok {7}Claude Code {2}2\.1\.\d+ \(Claude Code\), \S+claude$/m);
    // The key was probed (GET /v1/models), not only found.
    expect(found.stdout).toMatch(
      /^ok {7}Models {7}gateway http:\/\/127\.0\.0\.1:\d+ takes ANTHROPIC_API_KEY; planner claude-sonnet-5-5/m,
    );
    expect(found.stdout).not.toContain(KEY);
    // No credentials: a simulation-only user is fine, and told what real mode needs.
    const none = await runCli(['doctor'], work, { HOME: path.join(work, 'home') });
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^note {5}Models {7}no model credentials: real mode/m);

    // --json, and Docker is ok only with the image the docker backend would run.
    const json = await runCli(
      ['doctor', '--json', '--docker-image', 'po-missing:none'],
      work,
      env(),
    );
    expect(json.code, json.stderr).toBe(0);
    const { ok, checks } = JSON.parse(json.stdout);
    expect(ok).toBe(true);
    expect(checks.map((c: { name: string }) => c.name)).toEqual([
      'Node',
      'git',
      'Claude Code',
      'Models',
      'Sandbox',
      'Docker',
    ]);
    expect(checks.find((c: { name: string }) => c.name === 'git').detail).toMatch(
      /^git version 2\.\d+/,
    );
    expect(checks.find((c: { name: string }) => c.name === 'Docker')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/no image po-missing:none|unavailable/),
    });
    expect(json.stdout).not.toContain(KEY);
  });
});
