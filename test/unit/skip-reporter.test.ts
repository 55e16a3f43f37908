import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = path.join(root, 'test/fixtures/skip-reporter');

/** Real vitest on the fixture project, with the given environment on top of a clean one. */
function runFixture(env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('REQUIRE_')),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run'],
      { cwd: fixture, env: { ...clean, NO_COLOR: '1', ...env }, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

const skipped = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('  skipped '))
    .map((line) => line.trim());

describe('the skip reporter', () => {
  it('prints one line per reason: how many, where, why, how to run them, which flag fails instead', async () => {
    const { code, output } = await runFixture({});
    expect(code, output).toBe(0);
    expect(output).toContain('\nSkipped, by reason:\n');
    expect(skipped(output)).toEqual([
      'skipped 2 tests in cases.fixture.ts: no widget here; to run: plug a widget in; REQUIRE_WIDGET=1 fails instead',
      'skipped 1 test in cases.fixture.ts: no reason given (use describeNeeding or itNeeding from test/support/needing.ts)',
      'skipped 1 test in cases.fixture.ts: no widget build for this platform; to run: run it where widgets are built',
      'skipped 1 test in cases.fixture.ts: the widget went away',
    ]);
  });

  it('fails a suite whose REQUIRE_ flag is set, saying what is missing and how to get it', async () => {
    const { code, output } = await runFixture({ REQUIRE_WIDGET: '1' });
    expect(code, output).toBe(1);
    expect(output).toContain('REQUIRE_WIDGET=1 but no widget here (to run it: plug a widget in)');
    expect(output).not.toContain('no widget here;');
    expect(skipped(output)).toHaveLength(3);
  });
});
