import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { commitAll } from './git.js';

/**
 * A JavaScript repository whose setup needs no network: package.json depends on
 * `file:vendor/tiny-dep-1.0.0.tgz` (a tiny package packed by `npm pack`), package-lock.json is
 * committed, node_modules/ is ignored, and `npm test` (`node --test`) requires the dependency.
 * Made with the host's npm, in a new directory under `root`.
 */
export function makeTinyJsRepo(root: string): { dir: string; setup: string; check: string } {
  const scratch = mkdtempSync(path.join(root, 'tiny-dep-'));
  const dir = mkdtempSync(path.join(root, 'js-repo-'));
  const npm = (cwd: string, args: string[]) =>
    execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd,
      stdio: 'ignore',
      timeout: 120_000,
    });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  writeFileSync(
    path.join(scratch, 'package.json'),
    json({ name: 'tiny-dep', version: '1.0.0', main: 'index.js', license: 'MIT' }),
  );
  writeFileSync(path.join(scratch, 'index.js'), 'exports.double = (n) => n * 2;\n');
  mkdirSync(path.join(dir, 'vendor'));
  mkdirSync(path.join(dir, 'test'));
  npm(scratch, ['pack', '--pack-destination', path.join(dir, 'vendor')]);
  writeFileSync(
    path.join(dir, 'package.json'),
    json({
      name: 'js-fixture',
      version: '1.0.0',
      private: true,
      scripts: { test: 'node --test' },
      dependencies: { 'tiny-dep': 'file:vendor/tiny-dep-1.0.0.tgz' },
    }),
  );
  npm(dir, ['install', '--package-lock-only', '--offline', '--omit-lockfile-registry-resolved']);
  writeFileSync(path.join(dir, '.gitignore'), 'node_modules/\n');
  writeFileSync(path.join(dir, 'test/tiny-dep.test.js'), tinyDepTest('tiny-dep doubles', 1, 2));
  commitAll(dir, 'A project with a vendored dependency');
  return { dir, setup: 'npm ci --offline', check: 'npm test' };
}

/**
 * A test for Node's test runner that `double` of tiny-dep, applied `times` times to 1, gives
 * `expected`: what a task adds to show it uses the prepared dependency. CommonJS, so that a
 * `.test.ts` name (the one a simulated task writes anyway) runs as it is.
 */
export function tinyDepTest(title: string, times: number, expected: number): string {
  return [
    "const assert = require('node:assert');",
    "const test = require('node:test');",
    "const { double } = require('tiny-dep');",
    `test('${title}', () => {`,
    '  let n = 1;',
    `  for (let i = 0; i < ${times}; i++) n = double(n);`,
    `  assert.strictEqual(n, ${expected});`,
    '});',
    '',
  ].join('\n');
}
