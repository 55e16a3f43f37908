import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TaskSpec } from '../../packages/runtime/src/contracts/executor.js';
import { readEvents, readSummary, resultLine, runCli } from '../support/cli.js';
import { commitAll, gitOut } from '../support/git.js';
import { tempDir } from '../support/tmp.js';
import { nodeTest, operation } from '../support/verify.js';

const work = tempDir('po-verify-');
let n = 0;

/**
 * A project as people have them: a few thousand files, and a package.json whose test script is
 * its check (Node's own test runner, so no install is needed).
 */
function calculatorRepository(files = 3_000, parent = work): string {
  const dir = path.join(parent, `calc-${n++}`);
  mkdirSync(path.join(dir, 'test'), { recursive: true });
  mkdirSync(path.join(dir, 'src'));
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, 'lib', `m${i % 50}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `f${i}.mjs`), `export const v${i} = ${i};\n`);
  }
  writeFileSync(
    path.join(dir, 'package.json'),
    `${JSON.stringify({ name: 'calc', private: true, scripts: { test: 'node --test test/*.test.mjs' } }, null, 2)}\n`,
  );
  writeFileSync(path.join(dir, 'src/add.mjs'), 'export const add = (a, b) => a + b;\n');
  writeFileSync(path.join(dir, 'test/add.test.mjs'), nodeTest('add', 'add(2, 3)', 5));
  commitAll(dir, 'calculator');
  return dir;
}

function writePlan(tasks: unknown[]): string {
  const file = path.join(work, `plan-${n++}.json`);
  writeFileSync(
    file,
    JSON.stringify({ requirements: 'Extend the calculator', executorBudget: 2, tasks }),
  );
  return file;
}

async function run(repo: string, plan: string, extra: string[]) {
  const output = path.join(work, `runs-${n++}`);
  const result = await runCli(
    ['run', '--plan', plan, '--repo', repo, '-o', output, '--json', ...extra],
    work,
  );
  const runDir = result.stdout.trim() ? resultLine(result.stdout).runDir : '';
  return { ...result, runDir };
}

describe('--verify gates every merge on the repository check (local backend, bubblewrap)', () => {
  it("fails work that breaks the repository's tests, retries it with the output, and checks main at the end", async () => {
    const repo = calculatorRepository();
    const plan = writePlan([
      operation('mul', 'a * b', 6, 'a + b'),
      operation('sub', 'a - b', -1),
      { ...operation('pow', 'a ** b', 8), dependsOn: ['mul'] },
    ]);
    const result = await run(repo, plan, ['--verify', 'npm test']);
    expect(result.code, result.stderr).toBe(0);
    const { runDir } = result;
    const summary = readSummary(runDir);
    expect(summary.status).toBe('succeeded');
    expect(summary.totals.verifyFailures).toBe(1);
    const mul = summary.tasks.find((t) => t.taskId === 'mul');
    expect(mul).toMatchObject({ attempts: 2, verifyFailures: 1, verify: { exitCode: 0 } });
    expect(summary.verify).toMatchObject({
      command: 'npm test',
      final: { passed: true, exitCode: 0, commit: summary.integrationCommit },
    });

    // The failed attempt was retried at once, as a verify failure, and never merged.
    const retried = readEvents(runDir).find(
      (e) => e.type === 'task-retrying' && e.taskId === 'mul',
    );
    expect(retried).toMatchObject({ reason: 'verify', attempt: 1, delayMs: 0 });
    const project = path.join(runDir, 'project');
    expect(gitOut(project, ['show', 'main:src/mul.mjs'])).toBe(
      'export const mul = (a, b) => a * b;',
    );
    expect(
      gitOut(project, ['log', '--first-parent', '--format=%s', 'main', '--', 'src/mul.mjs']),
    ).toBe('Merge task/mul: add mul');

    // Each attempt's output is kept; the retry was handed the end of the failing one.
    const log = readFileSync(path.join(runDir, 'tasks/mul/verify.log'), 'utf8');
    expect(log).toMatch(
      /== attempt 1: npm test \(on the merge of [0-9a-f]{12} into [0-9a-f]{12}\) ==/,
    );
    expect(log).toContain('== attempt 1: failed (exit 1) ==');
    expect(log).toContain('== attempt 2: passed ==');
    const spec: TaskSpec = JSON.parse(
      readFileSync(path.join(runDir, 'tasks/mul/task.json'), 'utf8'),
    );
    expect(spec).toMatchObject({
      attempt: 2,
      verify: { command: 'npm test' },
      verifyFailure: { attempt: 1, command: 'npm test', exitCode: 1, timedOut: false },
    });
    expect(spec.verifyFailure?.tail).toContain('5 == 6');
    expect(spec.verifyFailure?.tail.length).toBeLessThanOrEqual(4096);
    expect(readFileSync(path.join(runDir, 'tasks/mul/executor.log'), 'utf8')).toContain(
      'attempt 1 failed the verify command',
    );
    // The final check ran on main after the last merge, with every task's tests.
    const final = readFileSync(path.join(runDir, 'verify.log'), 'utf8');
    expect(final).toContain(`== npm test on main at ${summary.integrationCommit.slice(0, 12)} ==`);
    expect(final).toMatch(/pass 4\n/);
    expect(final).toContain('== passed ==');
    // What was delivered passes the check too.
    const branch = resultLine(result.stdout) as unknown as { delivered: { branch: string } };
    expect(gitOut(repo, ['show', `${branch.delivered.branch}:src/mul.mjs`])).toContain('a * b');
  });

  it('fails the run with exit 1 when main fails the check after the last merge', async () => {
    const repo = calculatorRepository(10);
    // Each task's work passes on its own; both together break the check. The check is slow
    // enough that both are checked before either merges, so only the final check sees both.
    const plan = writePlan([operation('mul', 'a * b', 6), operation('sub', 'a - b', -1)]);
    const check = 'sleep 2; test ! -e src/mul.mjs || test ! -e src/sub.mjs';
    const result = await run(repo, plan, ['--verify', check]);
    expect(result.code, result.stderr).toBe(1);
    const summary = readSummary(result.runDir);
    expect(summary.totals.succeeded).toBe(2);
    expect(summary.status).toBe('failed');
    expect(summary.verify?.final).toMatchObject({ passed: false, exitCode: 1 });
    expect(resultLine(result.stdout)).toMatchObject({ status: 'failed', exitCode: 1 });
    // A run that failed is not delivered unless asked.
    expect(gitOut(repo, ['branch', '--list', 'parallel-orchestrator/*'])).toBe('');
    // Resuming it has nothing to run and does not forget why it failed.
    const resumed = await runCli(['resume', result.runDir, '--json'], work);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(readSummary(result.runDir)).toMatchObject({
      status: 'failed',
      verify: { final: { passed: false } },
    });
  });

  it('stops a check at its timeout, kills what it started, and keeps the run going', async () => {
    const repo = calculatorRepository(10);
    const plan = writePlan([operation('mul', 'a * b', 6)]);
    const marker = path.join(work, `survivor-${n++}`);
    const result = await run(repo, plan, [
      '--verify',
      // The base passes (the check runs before any task); the task's work never ends.
      `test ! -e src/mul.mjs || { (sleep 3; echo alive > ${marker}) & sleep 30; }`,
      '--verify-timeout',
      '500ms',
      '--retries',
      '0',
      '--deliver-partial',
    ]);
    expect(result.code, result.stderr).toBe(1);
    const summary = readSummary(result.runDir);
    expect(summary.tasks[0]).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('--verify timed out after'),
      verify: { timedOut: true, exitCode: null },
    });
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    // The background process died with the sandbox: it never wrote.
    expect(existsSync(marker)).toBe(false);
  });

  it("confines what the work runs: a hostile test cannot write the host, read the run's records or the user's repository, or reach the network", async () => {
    // Outside /tmp (every sandbox has a private one) and started from a directory of its own:
    // the repository and the run are hidden for what they are, not for where they happen to be.
    const outside = mkdtempSync('/var/tmp/po-verify-');
    afterAll(() => rmSync(outside, { recursive: true, force: true }));
    const repo = calculatorRepository(10, outside);
    const output = path.join(outside, 'runs');
    const cwd = path.join(outside, 'cwd');
    mkdirSync(cwd);
    const server = net.createServer((socket) => socket.end('hello\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const targets = [path.join(repo, 'PWNED'), path.join(output, 'PWNED')];
    const hidden = [
      path.join(process.env.HOME ?? '/root', 'PWNED-by-verify'),
      '/tmp/PWNED-by-verify',
    ];
    const hostile = [
      '#!/bin/sh',
      // Writes may land in the sandbox's own /tmp and HOME: what counts is that none reaches the host.
      ...[...targets, ...hidden].map((target) => `echo owned > ${target} 2>/dev/null`),
      `grep -qs run-started ${output}/*/events.jsonl && echo "read the journal"`,
      `cat ${repo}/package.json 2>/dev/null | grep -q calc && echo "read the user repository"`,
      `node -e "require('net').connect(${port}, '127.0.0.1').on('data', () => { console.log('reached the host'); process.exit(); }).on('error', () => process.exit())"`,
      'echo checked',
      '',
    ].join('\n');
    const plan = writePlan([
      { id: 'evil', title: 'evil', description: 'x', simulate: { files: { 'check.sh': hostile } } },
    ]);
    try {
      const result = await runCli(
        // The base has no check.sh: it passes, as a base must before any task starts.
        [
          'run',
          '--plan',
          plan,
          '--repo',
          repo,
          '-o',
          output,
          '--verify',
          'test ! -e check.sh || sh check.sh',
        ],
        cwd,
      );
      expect(result.code, result.stderr).toBe(0);
    } finally {
      server.close();
    }
    for (const target of [...targets, ...hidden]) expect(existsSync(target), target).toBe(false);
    const runDir = path.join(output, readdirOne(output));
    const log = readFileSync(path.join(runDir, 'tasks/evil/verify.log'), 'utf8');
    expect(log).toContain('checked');
    expect(log).not.toMatch(/read the journal|read the user repository|reached the host/);
  });
});

function readdirOne(dir: string): string {
  const entries = execFileSync('ls', [dir], { encoding: 'utf8' }).trim().split('\n');
  expect(entries).toHaveLength(1);
  return entries[0] as string;
}
