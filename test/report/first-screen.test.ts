import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBrowser, launchBrowser } from '../support/browser.js';
import { readSummary, resultLine, runCli } from '../support/cli.js';
import { planInput, type TaskInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';
import { openReport } from './open.js';

const work = tempDir('po-first-screen-');
const VIEWPORT = { width: 1400, height: 1000 };
const STAGES = 8;
const WIDTH = 15;

const id = (stage: number, i: number) => `s${stage}-t${String(i).padStart(2, '0')}`;
/** Odd stages take one task of the stage before, even ones two: a blocked cone widens slowly. */
const dependsOn = (stage: number, i: number) =>
  stage === 0
    ? []
    : stage % 2
      ? [id(stage - 1, i)]
      : [id(stage - 1, i), id(stage - 1, (i + 1) % WIDTH)];

/**
 * 120 tasks in 8 stages, and a task failing for good in 5 of them, each one that its earlier
 * failures did not block (its dependents are blocked in turn).
 */
function layeredPlan(): { tasks: TaskInput[]; failing: string[] } {
  const failing = new Set<string>();
  const blocked = new Set<string>();
  const block = () => {
    blocked.clear();
    for (let stage = 1; stage < STAGES; stage++)
      for (let i = 0; i < WIDTH; i++)
        if (dependsOn(stage, i).some((d) => failing.has(d) || blocked.has(d)))
          blocked.add(id(stage, i));
  };
  for (const stage of [1, 2, 4, 5, 7]) {
    let i = (stage * 4) % WIDTH;
    while (blocked.has(id(stage, i))) i = (i + 1) % WIDTH;
    failing.add(id(stage, i));
    block();
  }
  const tasks: TaskInput[] = [];
  for (let stage = 0; stage < STAGES; stage++)
    for (let i = 0; i < WIDTH; i++) {
      const taskId = id(stage, i);
      tasks.push(
        task(taskId, dependsOn(stage, i), undefined, {
          simulate: {
            durationMs: 60 + 10 * i,
            ...(failing.has(taskId) && { failAttempts: 9, failure: 'permanent' as const }),
          },
        }),
      );
    }
  return { tasks, failing: [...failing] };
}

/** The DAG's nodes not wholly inside its view, in CSS pixels. */
async function nodesOutside(page: Page): Promise<string[]> {
  const view = await page.locator('.dag-view').boundingBox();
  if (!view) return ['no view'];
  const nodes = await page.locator('svg.dag g.node').evaluateAll((all) =>
    all.map((node) => {
      const { left, right, top, bottom } = node.getBoundingClientRect();
      return { task: node.getAttribute('data-task') as string, left, right, top, bottom };
    }),
  );
  return nodes
    .filter(
      (box) =>
        box.left < view.x - 0.5 ||
        box.right > view.x + view.width + 0.5 ||
        box.top < view.y - 0.5 ||
        box.bottom > view.y + view.height + 0.5,
    )
    .map((box) => box.task);
}

describeBrowser('the report of a 120-task run with failures, at 1400x1000', () => {
  let browser: Browser;
  let runDir: string;
  let failing: string[];
  beforeAll(async () => {
    browser = await launchBrowser();
    const plan = layeredPlan();
    failing = plan.failing;
    const file = path.join(work, 'plan.json');
    writeFileSync(file, JSON.stringify(planInput(plan.tasks, 8)));
    const result = await runCli(
      [
        'run',
        '--plan',
        file,
        '-e',
        '8',
        '--sim-task-ms',
        '0',
        '--max-tasks',
        '120',
        '--retry-delay',
        '0s',
        '-o',
        path.join(work, 'runs'),
        '--json',
      ],
      work,
    );
    expect(result.code, result.stderr).toBe(1);
    runDir = resultLine(result.stdout).runDir;
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('names every failed task on the first screen, with its reason, log and diff, and what each blocked', async () => {
    const summary = readSummary(runDir);
    expect(summary.totals).toMatchObject({ tasks: 120, failed: 5 });
    expect(summary.totals.blocked).toBeGreaterThan(0);
    const { page, errors, requests, dialogs } = await openReport(
      browser,
      runDir,
      'first-screen',
      VIEWPORT,
      false,
    );
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(dialogs).toEqual([]);

    const head = await page.locator('header.head').textContent();
    expect(head).toContain(`5 failed · ${summary.totals.blocked} blocked`);
    expect(head).toContain('of 120 tasks');
    expect(head).toMatch(/Wall time [\d.]+ (ms|s) against a critical path of/);
    expect(head).toContain('cost $0.00, no budget set');

    for (const taskId of failing) {
      const row = page.locator(`.failures [data-task="${taskId}"]`);
      expect(await row.isVisible(), taskId).toBe(true);
      const box = await row.boundingBox();
      expect(box && box.y + box.height, taskId).toBeLessThanOrEqual(VIEWPORT.height);
      expect(await row.textContent()).toContain('simulated permanent failure');
      const log = await row.locator('a.log').getAttribute('href');
      expect(log).toBe(`tasks/${taskId}/executor.log`);
      expect(existsSync(path.join(runDir, log ?? '')), taskId).toBe(true);
    }
    // One line per cause, naming a few of the tasks it blocked, and together all of them.
    const causes = await page.locator('.failures ul.causes li').allTextContents();
    const blocked = summary.tasks.filter((t) => t.status === 'blocked');
    const byCause = new Map<string, typeof blocked>();
    for (const t of blocked) {
      const cause = [...(t.blockedBy ?? [])].sort().join(', ');
      byCause.set(cause, [...(byCause.get(cause) ?? []), t]);
    }
    expect(causes).toHaveLength(byCause.size);
    for (const [cause, tasks] of byCause) {
      const line = causes.find((c) => c.startsWith(`${tasks.length} blocked by ${cause}:`));
      expect(line, cause).toBeDefined();
      expect(line).toContain(tasks[0]?.taskId);
      if (tasks.length > 8) expect(line).toContain(`… (+${tasks.length - 8})`);
    }

    // A diff link opens the change it points at.
    for (const taskId of failing) {
      const details = page.locator(`details[id="diff-${taskId}"]`);
      expect(await details.getAttribute('open')).toBeNull();
      await page.locator(`.failures [data-task="${taskId}"] a.diff`).click();
      expect(await details.getAttribute('open'), taskId).not.toBeNull();
      expect(await details.locator('pre').isVisible()).toBe(true);
    }

    // The table starts with the failures, and says it is sorted by status.
    const statuses = await page.locator('table.tasks tbody tr td.status').allTextContents();
    expect(statuses.slice(0, 5)).toEqual(Array(5).fill('failed'));
    expect(statuses.slice(5, 5 + blocked.length)).toEqual(Array(blocked.length).fill('blocked'));
    expect(
      await page.locator('table.tasks th', { hasText: 'Status' }).getAttribute('aria-sort'),
    ).toBe('ascending');
    expect(errors).toEqual([]);
  });

  it('fits the whole DAG in its view, after zooming and panning too, and finds a failed task by search', async () => {
    const { page, errors, requests } = await openReport(
      browser,
      runDir,
      'first-screen-dag',
      VIEWPORT,
    );
    expect(await page.locator('svg.dag g.node').count()).toBe(120);
    expect(await nodesOutside(page)).toEqual([]);
    const view = await page.locator('.dag-view').boundingBox();
    expect(view?.height).toBeLessThanOrEqual(VIEWPORT.height * 0.7 + 1);

    // Zoomed in, most of the graph is out of the view; Fit brings all of it back.
    for (let i = 0; i < 4; i++) await page.locator('.dag-tools [data-zoom="in"]').click();
    expect((await nodesOutside(page)).length).toBeGreaterThan(60);
    // Dragging pans the view.
    const before = await page.locator('svg.dag').getAttribute('viewBox');
    const centre = { x: (view?.x ?? 0) + 300, y: (view?.y ?? 0) + 200 };
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.down();
    await page.mouse.move(centre.x - 120, centre.y - 80, { steps: 4 });
    await page.mouse.up();
    const after = (await page.locator('svg.dag').getAttribute('viewBox'))?.split(' ').map(Number);
    const [x0 = 0, y0 = 0] = before?.split(' ').map(Number) ?? [];
    expect(after?.[0]).toBeGreaterThan(x0);
    expect(after?.[1]).toBeGreaterThan(y0);
    await page.locator('.dag-tools [data-zoom="fit"]').click();
    expect(await nodesOutside(page)).toEqual([]);

    // Zoomed in again, a search for a failed task finds it alone and brings it into the view.
    for (let i = 0; i < 4; i++) await page.locator('.dag-tools [data-zoom="in"]').click();
    const search = page.locator('.dag-search');
    for (const taskId of failing) {
      await search.fill(taskId);
      expect(await page.locator('svg.dag g.node.match').count(), taskId).toBe(1);
      const match = page.locator(`svg.dag g.node.match[data-task="${taskId}"]`);
      expect(await match.count()).toBe(1);
      expect((await nodesOutside(page)).includes(taskId), taskId).toBe(false);
    }
    // A part of an id or a title matches every task that has it.
    await search.fill('S3-');
    expect(await page.locator('svg.dag g.node.match').count()).toBe(15);
    await search.fill('');
    expect(await page.locator('svg.dag g.node.match').count()).toBe(0);
    // The chips find every failed and every blocked task.
    await page.locator('.dag-tools [data-find="failed"]').click();
    expect(await page.locator('svg.dag g.node.match.failed').count()).toBe(5);
    expect(await page.locator('svg.dag g.node.match').count()).toBe(5);
    const blocked = readSummary(runDir).totals.blocked;
    await page.locator('.dag-tools [data-find="blocked"]').click();
    expect(await page.locator('svg.dag g.node.match.blocked').count()).toBe(blocked);

    // Clicking a node shows its row in the table.
    await page.locator('.dag-tools [data-zoom="fit"]').click();
    const failed = failing[0] as string;
    await page.locator(`svg.dag g.node[data-task="${failed}"]`).click();
    const row = await page.locator(`tr[id="task-${failed}"]`).boundingBox();
    expect(row && row.y >= 0 && row.y + row.height <= VIEWPORT.height, 'row in view').toBe(true);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  });

  it('labels every timeline bar wide enough with its task', async () => {
    const { page } = await openReport(browser, runDir, 'first-screen-timeline', VIEWPORT, false);
    const bars = await page.locator('svg.gantt g.attempt').evaluateAll((all) =>
      all.map((g) => ({
        task: g.getAttribute('data-task') as string,
        width: (g.querySelector('rect.running')?.getBoundingClientRect().width ?? 0) as number,
        // How far the label runs past the bar it sits on (running, then committing).
        over: (() => {
          const label = g.querySelector('text.bar-label')?.getBoundingClientRect();
          const ends = [...g.querySelectorAll('rect.running, rect.committing')].map(
            (r) => r.getBoundingClientRect().right as number,
          );
          return label ? label.right - Math.max(...ends) : 0;
        })() as number,
        label: (g.querySelector('text.bar-label')?.textContent ?? null) as string | null,
      })),
    );
    const wide = bars.filter((b) => b.width >= 40);
    expect(wide.length).toBeGreaterThan(10);
    for (const bar of wide) {
      expect(bar.label, bar.task).not.toBeNull();
      const shown = (bar.label ?? '').replace(/…$/, '');
      expect(bar.task.startsWith(shown), bar.task).toBe(true);
    }
    for (const bar of bars) {
      expect(bar.over, `${bar.task}'s label runs past its bar`).toBeLessThanOrEqual(0.5);
    }
  });

  it('shows the cost against the budget and a quote when run.json has one', async () => {
    const config = path.join(runDir, 'run.json');
    writeFileSync(
      config,
      JSON.stringify({
        ...JSON.parse(readFileSync(config, 'utf8')),
        maxBudgetUsd: 5,
        quote: { usd: 2.5 },
      }),
    );
    const again = await runCli(['report', runDir], work);
    expect(again.code, again.stderr).toBe(0);
    const { page } = await openReport(browser, runDir, 'first-screen-quote', VIEWPORT, false);
    expect(await page.locator('header.head').textContent()).toContain(
      'cost $0.00 of $5.00 budget (0%), quoted $2.50',
    );
  });
});
