import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureEnv } from '../support/fixture-git.js';
import { gitOut } from '../support/git.js';
import { hostPython } from '../support/host-python.js';
import {
  type FixtureRepo,
  JS_DEPENDENCY,
  makeJsRepo,
  makeOfflineJsRepo,
} from '../support/js-repo.js';
import { describeNeeding } from '../support/needing.js';
import { makePythonRepo } from '../support/py-repo.js';
import { tempDir } from '../support/tmp.js';

const root = tempDir('po-fixtures-');

/** `sh -c command` in `cwd`, as a check runs (CI=true), prefixed by `wrap` (e.g. unshare -n). */
function sh(
  cwd: string,
  command: string,
  env: NodeJS.ProcessEnv = {},
  wrap: string[] = [],
): Promise<{ code: number; output: string }> {
  const [file, ...args] = [...wrap, 'sh', '-c', command];
  return new Promise((resolve) => {
    execFile(
      file as string,
      args,
      { cwd, env: fixtureEnv({ CI: 'true', ...env }), encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          output: stdout + stderr,
        }),
    );
  });
}

/** One commit on main, the one `head` names, and nothing left uncommitted or untracked. */
function expectCommittedOnce(repo: FixtureRepo): void {
  expect(gitOut(repo.dir, ['symbolic-ref', '--short', 'HEAD'])).toBe('main');
  expect(gitOut(repo.dir, ['rev-list', '--count', 'main'])).toBe('1');
  expect(gitOut(repo.dir, ['rev-parse', 'main'])).toBe(repo.head);
  expect(gitOut(repo.dir, ['config', '--local', 'user.email'])).toBe('fixture@example.invalid');
  expectClean(repo);
}

/** What setup and check wrote is ignored: the repository has nothing to commit. */
function expectClean(repo: FixtureRepo): void {
  expect(gitOut(repo.dir, ['status', '--porcelain', '--untracked-files=all'])).toBe('');
}

/** How to take the network away from a command: a namespace of its own, if this user may. */
function offline(): string[] {
  if (process.getuid?.() === 0) return ['unshare', '-n'];
  try {
    execFileSync('unshare', ['-rn', 'true'], { stdio: 'ignore' });
    return ['unshare', '-rn'];
  } catch {
    return [];
  }
}

describe('the JavaScript fixture (is-number from the registry)', () => {
  it('commits a lockfile naming no registry host; npm ci then npm test pass', async () => {
    const repo = await makeJsRepo(root);
    expect(repo).toMatchObject({ setup: 'npm ci --no-audit --no-fund', check: 'npm test' });
    expectCommittedOnce(repo);
    const lockfile = readFileSync(path.join(repo.dir, 'package-lock.json'), 'utf8');
    expect(lockfile).not.toMatch(/"resolved":\s*"https?:/);
    expect(lockfile).not.toMatch(/registry/);
    const lock = JSON.parse(lockfile);
    expect(lock.packages[`node_modules/${JS_DEPENDENCY.name}`]).toMatchObject({
      version: JS_DEPENDENCY.version,
      integrity: expect.stringMatching(/^sha512-/),
    });
    const manifest = JSON.parse(readFileSync(path.join(repo.dir, 'package.json'), 'utf8'));
    expect(manifest.dependencies).toEqual({ [JS_DEPENDENCY.name]: JS_DEPENDENCY.version });
    expect(manifest.scripts.test).toBe('node --test test/*.test.js');

    const setup = await sh(repo.dir, repo.setup);
    expect(setup, setup.output).toMatchObject({ code: 0 });
    expect(existsSync(path.join(repo.dir, 'node_modules', JS_DEPENDENCY.name))).toBe(true);
    const check = await sh(repo.dir, repo.check);
    expect(check, check.output).toMatchObject({ code: 0 });
    expect(check.output).toMatch(/\bpass 1\b/);
    expectClean(repo);
  });

  it('failing: the setup passes and the check fails', async () => {
    const repo = await makeJsRepo(root, { failing: true });
    expectCommittedOnce(repo);
    expect(await sh(repo.dir, repo.setup)).toMatchObject({ code: 0 });
    const check = await sh(repo.dir, repo.check);
    expect(check.code, check.output).not.toBe(0);
    expect(check.output).toMatch(/\bfail 1\b/);
  });
});

describe('the offline JavaScript fixture (vendored tarballs)', () => {
  // No network namespace (or none for this user): a registry nothing answers at and an empty
  // cache still show the setup fetches nothing.
  const noRegistry = (cache: string) => ({
    npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_cache: cache,
  });

  it('sets up with the network unshared, passes its check, and can take tiny-dep2', async () => {
    const repo = await makeOfflineJsRepo(root);
    expect(repo).toMatchObject({
      setup: 'npm ci --offline --no-audit --no-fund',
      check: 'npm test',
    });
    expectCommittedOnce(repo);
    const manifest = JSON.parse(readFileSync(path.join(repo.dir, 'package.json'), 'utf8'));
    expect(manifest.dependencies).toEqual({ 'tiny-dep': 'file:vendor/tiny-dep-1.0.0.tgz' });
    expect(gitOut(repo.dir, ['ls-files', 'vendor']).split('\n')).toEqual([
      'vendor/tiny-dep-1.0.0.tgz',
      'vendor/tiny-dep2-1.0.0.tgz',
    ]);
    const lockfile = readFileSync(path.join(repo.dir, 'package-lock.json'), 'utf8');
    expect(lockfile).not.toMatch(/"resolved":\s*"https?:/);
    expect(lockfile).not.toContain('tiny-dep2');

    const cache = path.join(root, 'empty-npm-cache');
    mkdirSync(cache, { recursive: true });
    const wrap = offline();
    const setup = await sh(repo.dir, repo.setup, noRegistry(cache), wrap);
    expect(setup, setup.output).toMatchObject({ code: 0 });
    const check = await sh(repo.dir, repo.check, {}, wrap);
    expect(check, check.output).toMatchObject({ code: 0 });
    expectClean(repo);

    // What a task would do to use the second package, still offline.
    const add = await sh(
      repo.dir,
      'npm install --offline --no-audit --no-fund file:vendor/tiny-dep2-1.0.0.tgz && node -e "process.exit(require(\'tiny-dep2\').triple(2) === 6 ? 0 : 1)"',
      noRegistry(cache),
      wrap,
    );
    expect(add, add.output).toMatchObject({ code: 0 });
  });

  it('failing: the setup passes and the check fails', async () => {
    const repo = await makeOfflineJsRepo(root, { failing: true });
    expect(await sh(repo.dir, repo.setup, noRegistry(path.join(root, 'cache-2')))).toMatchObject({
      code: 0,
    });
    const check = await sh(repo.dir, repo.check);
    expect(check.code, check.output).not.toBe(0);
  });
});

describeNeeding(
  'the Python fixture (a local setuptools package, pytest)',
  () => {
    const env = 'path' in hostPython ? { PATH: hostPython.path } : {};

    it('sets up with no index and passes its check; what they write is ignored', async () => {
      const repo = await makePythonRepo(root);
      expectCommittedOnce(repo);
      const setup = await sh(repo.dir, repo.setup, env);
      expect(setup, setup.output).toMatchObject({ code: 0 });
      expect(setup.output).toMatch(/Successfully installed greet-1\.0\.0/);
      const check = await sh(repo.dir, repo.check, env);
      expect(check, check.output).toMatchObject({ code: 0 });
      expect(check.output).toMatch(/1 passed/);
      expectClean(repo);
    });

    it('failing: the setup passes and the check fails', async () => {
      const repo = await makePythonRepo(root, { failing: true });
      expect(await sh(repo.dir, repo.setup, env)).toMatchObject({ code: 0 });
      const check = await sh(repo.dir, repo.check, env);
      expect(check.code, check.output).not.toBe(0);
      expect(check.output).toMatch(/1 failed/);
    });
  },
  {
    missing: 'missing' in hostPython ? hostPython.missing : undefined,
    enable: 'apt-get install python3-venv python3-pytest python3-wheel',
    required: 'REQUIRE_PYTHON',
  },
);
