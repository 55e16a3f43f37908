import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { describeNeeding } from './needing.js';

/** Debian's chromium: playwright cannot download browsers here (see ENVIRONMENT notes). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Screenshots the browser tests keep, for a person to look at (CI keeps the directory). */
export const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../artifacts');

/** A suite that needs a real browser: skipped without one, failing with REQUIRE_BROWSER=1. */
export function describeBrowser(name: string, body: () => void): void {
  describeNeeding(name, body, {
    missing: existsSync(CHROMIUM) ? undefined : `no browser at ${CHROMIUM}`,
    enable: 'apt-get install chromium, or point CHROMIUM_PATH at a Chromium',
    required: 'REQUIRE_BROWSER',
  });
}

export function launchBrowser(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}
