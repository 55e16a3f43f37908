#!/usr/bin/env node
// The installed command. It exists before the first build, so that installing links it; it
// says what to do when the build has not run yet.
try {
  await import('../dist/cli/main.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/main.js'))
    throw error;
  process.stderr.write('error: parallel-orchestrator is not built yet: run pnpm build\n');
  process.exit(2);
}
