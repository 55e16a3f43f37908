import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ReportData } from '../../packages/runtime/src/report/model.js';
import { ARTIFACTS } from '../support/browser.js';

/** What a page did while it loaded: its errors, dialogs and any request beyond the file. */
export interface Opened {
  page: Page;
  data: ReportData;
  errors: string[];
  requests: string[];
  dialogs: string[];
}

/**
 * Opens a run's report offline at a viewport's size, recording what the page does, and keeps a
 * screenshot in the artifacts: of the whole page, or of the first screen.
 */
export async function openReport(
  browser: Browser,
  runDir: string,
  name: string,
  viewport = { width: 1250, height: 900 },
  fullPage = true,
): Promise<Opened> {
  const context = await browser.newContext({ offline: true, viewport });
  const page = await context.newPage();
  const opened = {
    page,
    errors: [] as string[],
    requests: [] as string[],
    dialogs: [] as string[],
  };
  context.on('request', (request) => {
    if (!request.url().startsWith('file:')) opened.requests.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') opened.errors.push(message.text());
  });
  page.on('pageerror', (error) => opened.errors.push(String(error)));
  page.on('dialog', (dialog) => {
    opened.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(`file://${path.join(runDir, 'report.html')}`);
  await page.screenshot({ path: path.join(ARTIFACTS, `report-${name}.png`), fullPage });
  const data = JSON.parse((await page.locator('#report-data').textContent()) ?? '{}');
  return { ...opened, data };
}
