import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBrowser, launchBrowser } from '../support/browser.js';
import { readEvents, readSummary, resultLine, runCli } from '../support/cli.js';
import { type ModelServer, startModelServer, text } from '../support/model-server.js';
import { independent, planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';
import { openReport } from './open.js';

const work = tempDir('po-report-');
let n = 0;

function writePlan(plan: unknown): string {
  const file = path.join(work, `plan-${n++}.json`);
  writeFileSync(file, JSON.stringify(plan));
  return file;
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = await runCli(
    ['run', ...args, '-o', path.join(work, `runs-${n++}`), '--json'],
    work,
    env,
  );
  return { ...result, runDir: resultLine(result.stdout).runDir };
}

/** A planted script, as a planner or an agent could name a task. */
const PLANTED = '</script><script>alert("owned")</script><img src=x onerror=alert(1)>';

describeBrowser('the run report, in a real browser with the network off', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  const open = (runDir: string, name: string) => openReport(browser, runDir, name);

  const count = (page: Page, selector: string) => page.locator(selector).count();

  it('draws retries, a conflict, a failed check and a blocked task distinctly, its numbers those of the summary and the journal', async () => {
    const plan = writePlan(
      planInput(
        [
          task('first', [], undefined, {
            simulate: { durationMs: 150, files: { 'shared.txt': 'first\n' } },
          }),
          task('second', [], undefined, {
            simulate: { durationMs: 900, files: { 'shared.txt': 'second\n' } },
          }),
          task('flaky', [], undefined, { simulate: { durationMs: 200, failAttempts: 1 } }),
          task('broken', [], undefined, {
            title: PLANTED,
            simulate: { durationMs: 100, failAttempts: 9, failure: 'permanent' },
          }),
          task('after', ['broken'], 100),
          task('checked', [], undefined, {
            simulate: { durationMs: 100, broken: { attempts: 1, files: { 'bad.txt': 'x\n' } } },
          }),
          task('last', ['first', 'flaky'], 200),
        ],
        3,
      ),
    );
    const result = await run([
      '--plan',
      plan,
      '--retry-delay',
      '0s',
      '--verify',
      'test ! -e bad.txt',
    ]);
    expect(result.code, result.stderr).toBe(1);
    expect(resultLine(result.stdout)).toMatchObject({
      report: path.join(result.runDir, 'report.html'),
    });
    const summary = readSummary(result.runDir);
    const events = readEvents(result.runDir);
    const { page, data, errors, requests, dialogs } = await open(result.runDir, 'outcomes');
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(dialogs).toEqual([]);

    // One node per task, one bar per attempt.
    expect(await count(page, 'svg.dag g.node')).toBe(7);
    const started = events.filter((e) => e.type === 'task-started');
    expect(await count(page, 'svg.gantt g.attempt')).toBe(started.length);
    // Each outcome has its own mark.
    const endsOf = (taskId: string) =>
      data.timeline.attempts.filter((a) => a.taskId === taskId).map((a) => a.end);
    expect(endsOf('second')).toEqual(['conflict', 'succeeded']);
    expect(endsOf('flaky')).toEqual(['transient', 'succeeded']);
    expect(endsOf('checked')).toEqual(['verify', 'succeeded']);
    expect(endsOf('broken')).toEqual(['failed']);
    expect(await count(page, 'svg.gantt g.attempt.conflict[data-task="second"]')).toBe(1);
    expect(await count(page, 'svg.gantt g.attempt.transient[data-task="flaky"]')).toBe(1);
    expect(await count(page, 'svg.gantt g.attempt.verify[data-task="checked"]')).toBe(1);
    expect(await count(page, 'svg.gantt g.attempt.failed[data-task="broken"]')).toBe(1);
    expect(await count(page, 'svg.dag g.node.blocked[data-task="after"]')).toBe(1);
    expect(await count(page, 'svg.dag g.node.failed[data-task="broken"]')).toBe(1);
    expect(await count(page, 'svg.dag g.node.critical')).toBeGreaterThan(0);
    expect(await page.locator('table.tasks tr[data-task="after"] td.reason').textContent()).toBe(
      'blocked by broken',
    );
    // A planted script is text, not markup, in the table and in the first screen's failures.
    expect(
      await page.locator('table.tasks tr[data-task="broken"] td').first().textContent(),
    ).toContain(PLANTED);
    expect(await page.locator('.failures [data-task="broken"]').textContent()).toContain(
      PLANTED.slice(0, 39),
    );
    // Logs are linked where they exist: a blocked task never ran.
    expect(await page.locator('.failures [data-task="broken"] a.log').getAttribute('href')).toBe(
      'tasks/broken/executor.log',
    );
    expect(await count(page, 'table.tasks tr[data-task="after"] a')).toBe(0);
    expect(existsSync(path.join(result.runDir, 'tasks/after/executor.log'))).toBe(false);
    expect(
      await page.locator('table.tasks tr[data-task="checked"] a', { hasText: 'verify' }).count(),
    ).toBe(1);
    expect(await page.locator('.failures ul.causes li').allTextContents()).toEqual([
      '1 blocked by broken: after',
    ]);

    // The numbers are the run's own.
    expect(data.totals).toEqual(summary.totals);
    expect(data.usage).toEqual(summary.usage);
    expect(data.durationMs).toBe(summary.durationMs);
    expect(data.status).toBe(summary.status);
    expect(data.tasks.map(({ id, status, attempts }) => ({ id, status, attempts }))).toEqual(
      summary.tasks.map(({ taskId, status, attempts }) => ({ id: taskId, status, attempts })),
    );
    expect(data.timeline.attempts).toHaveLength(summary.totals.attempts);
    const bars = data.timeline.attempts.map((a) => `${a.taskId}#${a.attempt}@${a.executor}`);
    expect(bars).toEqual(
      started.map((e) => e.type === 'task-started' && `${e.taskId}#${e.attempt}@${e.executor}`),
    );
    const { bounds } = data;
    expect(bounds.lowerBoundMs).toBeLessThanOrEqual(data.durationMs);
    expect(data.verify).toEqual(summary.verify);

    // The table sorts; the diffs are there, collapsed.
    await page.locator('table.tasks th', { hasText: 'Attempts' }).click();
    await page.locator('table.tasks th', { hasText: 'Attempts' }).click();
    const attemptsColumn = await page
      .locator('table.tasks tbody tr td:nth-child(3)')
      .allTextContents();
    expect(attemptsColumn.map(Number)).toEqual(
      [...attemptsColumn.map(Number)].sort((a, b) => b - a),
    );
    const diff = page.locator('details.diff[data-task="first"]');
    expect(await diff.getAttribute('open')).toBeNull();
    expect(await diff.locator('pre').textContent()).toContain('+first');
  });

  it('marks a run the spending limit stopped', async () => {
    const server: ModelServer = await startModelServer(() => ({
      content: [text('Done.')],
      usage: { input_tokens: 100_000, output_tokens: 10_000 },
    }));
    try {
      const plan = writePlan(planInput([task('one'), task('two'), task('three')], 1));
      const result = await run(['--real', '--plan', plan, '-e', '1', '--max-budget-usd', '0.4'], {
        ANTHROPIC_API_KEY: 'sk-ant-api03-report-test-key-00000000',
        ANTHROPIC_BASE_URL: server.url,
        HOME: path.join(work, 'home'),
      });
      expect(result.code, result.stderr).toBe(1);
      const summary = readSummary(result.runDir);
      expect(summary.stoppedBy).toBe('budget');
      const { page, data, errors } = await open(result.runDir, 'budget');
      expect(errors).toEqual([]);
      expect(data.stoppedBy).toBe('budget');
      expect(data.usage).toEqual(summary.usage);
      expect(data.timeline.budgetStopMs).toBeGreaterThan(0);
      expect(await page.locator('.notice.budget').isVisible()).toBe(true);
      const pending = summary.tasks.filter((t) => t.status === 'pending').map((t) => t.taskId);
      expect(pending).toHaveLength(1);
      expect(await page.locator('.failures ul.causes li').allTextContents()).toEqual([
        `1 unfinished (resume continues them): ${pending[0]}`,
      ]);
      // The run spent its budget (a task already running may take it over).
      expect(await page.locator('header.head').textContent()).toMatch(
        /cost \$[\d.]+ of \$0\.40 budget \((1\d\d|[2-9]\d\d)%\)/,
      );
      expect(await count(page, 'svg.gantt line.budget-stop')).toBe(1);
      expect(await count(page, 'svg.dag g.node.pending')).toBe(1);
      expect(data.models.executor).toBeTruthy();
    } finally {
      await server.close();
    }
  });

  it('stays under 1 MB for 200 tasks; `report` writes it again, and refuses a run that has not ended', async () => {
    const plan = writePlan(planInput(independent(200, 0), 8));
    const result = await run(['--plan', plan, '-e', '8', '--max-tasks', '200']);
    expect(result.code, result.stderr).toBe(0);
    const file = path.join(result.runDir, 'report.html');
    expect(statSync(file).size).toBeLessThan(2 ** 20);
    const { page, errors } = await open(result.runDir, '200-tasks');
    expect(errors).toEqual([]);
    expect(await count(page, 'svg.dag g.node')).toBe(200);
    expect(await count(page, 'svg.gantt g.attempt')).toBe(200);

    writeFileSync(file, 'stale');
    const again = await runCli(['report', result.runDir], work);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(file);
    // With no desktop to open it in, --open says where the report is instead.
    const opened = await runCli(['report', result.runDir, '--open'], work);
    expect(opened.stdout).toContain(`no browser here: open ${file} on a machine with one`);
    expect(readFileSync(file, 'utf8')).toMatch(/^<!doctype html>/);

    const summaryFile = path.join(result.runDir, 'execution_summary.json');
    rmSync(summaryFile);
    const unfinished = await runCli(['report', result.runDir], work);
    expect(unfinished.code).toBe(2);
    expect(unfinished.stderr.trim()).toMatch(/has not ended \(no execution_summary\.json\)/);
    expect(existsSync(file)).toBe(true);
  });
});
