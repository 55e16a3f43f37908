import { defineConfig } from 'vitest/config';
import { SkipReporter } from './test/support/skip-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Two cores: integration suites spawn git and executor processes, so keep the pool small.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // After the default summary: why each skipped test was skipped and how to run it.
    reporters: ['default', new SkipReporter()],
  },
});
