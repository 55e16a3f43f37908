import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Plan } from '../contracts/plan.js';
import type { RunConfig } from '../contracts/run-config.js';
import type { RunLayout } from '../contracts/run-layout.js';
import { reportHtml } from './html.js';
import { reportData } from './model.js';

export const REPORT_FILE = 'report.html';

/**
 * Writes `report.html` into a run directory from its plan, journal, summary and repository:
 * one self-contained page (no request leaves it) with the summary, the DAG, the timeline per
 * executor slot and the tasks with their changes. Returns the file.
 */
export async function writeReport(
  layout: RunLayout,
  config: RunConfig,
  plan: Plan,
): Promise<string> {
  const html = reportHtml(await reportData(layout, config, plan));
  const file = path.join(layout.root, REPORT_FILE);
  // Whole or not at all: a browser never opens half a report.
  const partial = `${file}.partial`;
  writeFileSync(partial, html);
  renameSync(partial, file);
  return file;
}
