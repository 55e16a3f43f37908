import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { commitFixture, fixtureEnv } from './fixture-git.js';

const run = promisify(execFile);

/** A repository made for a test, with the commands that prepare and check it. */
export interface FixtureRepo {
  /** The repository (its work tree), a new directory under the `root` it was made in. */
  dir: string;
  /** Prepares its dependencies, run from `dir` (`--setup`). */
  setup: string;
  /** Its own check, run from `dir` after `setup` (`--verify`). */
  check: string;
  /** The one commit on `main`. */
  head: string;
}

/** The registry package the JavaScript fixture depends on, at a fixed version. */
export const JS_DEPENDENCY = { name: 'is-number', version: '7.0.0' } as const;

const PACKAGE_NAME = 'js-fixture';
const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error'];

function npm(cwd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('npm', args, { cwd, env: fixtureEnv(), encoding: 'utf8', timeout: 120_000 });
}

function manifest(dependencies: Record<string, string>): string {
  return `${JSON.stringify(
    {
      name: PACKAGE_NAME,
      version: '1.0.0',
      private: true,
      scripts: { test: 'node --test test/*.test.js' },
      dependencies,
    },
    null,
    2,
  )}\n`;
}

/** In a temporary directory removed afterwards. */
async function inScratch<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'po-fixture-'));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Caches a promise for the test process; a failure is not cached, so a later call tries again. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    cached ??= make().catch((error: unknown) => {
      cached = undefined;
      throw error;
    });
    return cached;
  };
}

/**
 * package.json's dependencies and package-lock.json as a real `npm install` of is-number writes
 * them, once per test process. The lockfile names no registry host: resolved URLs are left out
 * explicitly, whatever the machine's npmrc says, so `npm ci` fetches from whichever registry the
 * machine (or container) is configured with.
 */
const registryLock = once(() =>
  inScratch(async (dir) => {
    await writeFile(path.join(dir, 'package.json'), manifest({}));
    await npm(dir, [
      'install',
      `${JS_DEPENDENCY.name}@${JS_DEPENDENCY.version}`,
      '--save',
      '--save-exact',
      '--package-lock-only',
      '--omit-lockfile-registry-resolved',
      '--ignore-scripts',
      ...NPM_QUIET,
    ]);
    const written = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
    return {
      dependencies: written.dependencies as Record<string, string>,
      lockfile: await readFile(path.join(dir, 'package-lock.json'), 'utf8'),
    };
  }),
);

/** A test for Node's test runner: `title`, asserting `body`, with `requires` above it. */
function nodeTest(requires: string, title: string, body: string): string {
  return [
    "const assert = require('node:assert');",
    "const test = require('node:test');",
    requires,
    '',
    `test('${title}', () => {`,
    ...body.split('\n').map((line) => `  ${line}`),
    '});',
    '',
  ].join('\n');
}

async function writeJsRepo(
  dir: string,
  files: Record<string, string | Buffer>,
  message: string,
): Promise<string> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return commitFixture(dir, message);
}

/**
 * A git repo (main branch, one commit, user config set locally) with package.json depending on a
 * real registry package (is-number), package-lock.json committed, node_modules/ in .gitignore,
 * "test": "node --test test/*.test.js" (only the .js tests: a simulated task also writes a .ts one), importing the dependency. failing: the base's test fails.
 * setup = 'npm ci --no-audit --no-fund', check = 'npm test'. Made in a new directory under root;
 * the lockfile comes from one real `npm install` per test process.
 */
export async function makeJsRepo(
  root: string,
  options: { failing?: boolean } = {},
): Promise<FixtureRepo> {
  const { dependencies, lockfile } = await registryLock();
  const dir = await mkdtemp(path.join(root, 'js-repo-'));
  const head = await writeJsRepo(
    dir,
    {
      '.gitignore': 'node_modules/\n',
      'package.json': manifest(dependencies),
      'package-lock.json': lockfile,
      'test/is-number.test.js': nodeTest(
        "const isNumber = require('is-number');",
        options.failing ? 'the base is broken on purpose' : 'is-number tells numbers apart',
        options.failing
          ? "assert.strictEqual(isNumber('five'), true);"
          : "assert.strictEqual(isNumber(5), true);\nassert.strictEqual(isNumber('five'), false);",
      ),
    },
    options.failing ? 'A project whose test fails' : 'A project with a passing test',
  );
  return { dir, setup: 'npm ci --no-audit --no-fund', check: 'npm test', head };
}

/** The tiny packages vendored in the offline fixture, with what each exports. */
const TINY_PACKAGES = {
  'tiny-dep': 'exports.double = (n) => n * 2;\n',
  'tiny-dep2': 'exports.triple = (n) => n * 3;\n',
} as const;

/** vendor/<name>-1.0.0.tgz of each tiny package, packed by `npm pack`, and the lockfile. */
const offlineTemplate = once(() =>
  inScratch(async (scratch) => {
    const vendor = path.join(scratch, 'repo', 'vendor');
    await mkdir(vendor, { recursive: true });
    const tarballs: Record<string, Buffer> = {};
    for (const [name, source] of Object.entries(TINY_PACKAGES)) {
      const pkg = path.join(scratch, name);
      await mkdir(pkg);
      await writeFile(
        path.join(pkg, 'package.json'),
        `${JSON.stringify({ name, version: '1.0.0', main: 'index.js', license: 'MIT' }, null, 2)}\n`,
      );
      await writeFile(path.join(pkg, 'index.js'), source);
      await npm(pkg, ['pack', '--pack-destination', vendor, '--silent']);
      const file = `vendor/${name}-1.0.0.tgz`;
      tarballs[file] = await readFile(path.join(scratch, 'repo', file));
    }
    const dependencies = { 'tiny-dep': 'file:vendor/tiny-dep-1.0.0.tgz' };
    await writeFile(path.join(scratch, 'repo', 'package.json'), manifest(dependencies));
    await npm(path.join(scratch, 'repo'), [
      'install',
      '--package-lock-only',
      '--offline',
      '--omit-lockfile-registry-resolved',
      '--ignore-scripts',
      ...NPM_QUIET,
    ]);
    const lockfile = await readFile(path.join(scratch, 'repo', 'package-lock.json'), 'utf8');
    // What an agent writes to ask for tiny-dep2: the manifest and lockfile, as npm makes them.
    await npm(path.join(scratch, 'repo'), [
      'install',
      'file:vendor/tiny-dep2-1.0.0.tgz',
      '--package-lock-only',
      '--offline',
      '--omit-lockfile-registry-resolved',
      '--ignore-scripts',
      ...NPM_QUIET,
    ]);
    const addingTinyDep2 = {
      'package.json': await readFile(path.join(scratch, 'repo', 'package.json'), 'utf8'),
      'package-lock.json': await readFile(path.join(scratch, 'repo', 'package-lock.json'), 'utf8'),
    };
    return { dependencies, tarballs, lockfile, addingTinyDep2 };
  }),
);

/**
 * package.json and package-lock.json of the offline fixture after `npm install` of the vendored
 * tiny-dep2: the files a task replaces to add a dependency (the `simulate.replace` knob).
 */
export async function manifestsAddingTinyDep2(): Promise<Record<string, string>> {
  return (await offlineTemplate()).addingTinyDep2;
}

/** A test file for Node's test runner asserting `require('tiny-dep2').triple(n)`. */
export function tinyDep2Test(title: string, n: number): string {
  return nodeTest(
    "const { triple } = require('tiny-dep2');",
    title,
    `assert.strictEqual(triple(${n}), ${3 * n});`,
  );
}

/**
 * The same shape with no network needed at setup: dependencies are `file:vendor/<name>-1.0.0.tgz`
 * tarballs packed by `npm pack` from tiny packages made on the fly (dep names 'tiny-dep' and, in
 * vendor/ but NOT yet a dependency, 'tiny-dep2', so a task can add it);
 * setup = 'npm ci --offline --no-audit --no-fund'.
 */
export async function makeOfflineJsRepo(
  root: string,
  options: { failing?: boolean } = {},
): Promise<FixtureRepo> {
  const { dependencies, tarballs, lockfile } = await offlineTemplate();
  const dir = await mkdtemp(path.join(root, 'js-offline-repo-'));
  const head = await writeJsRepo(
    dir,
    {
      '.gitignore': 'node_modules/\n',
      'package.json': manifest(dependencies),
      'package-lock.json': lockfile,
      ...tarballs,
      'test/tiny-dep.test.js': nodeTest(
        "const { double } = require('tiny-dep');",
        options.failing ? 'the base is broken on purpose' : 'tiny-dep doubles',
        options.failing ? 'assert.strictEqual(double(2), 5);' : 'assert.strictEqual(double(2), 4);',
      ),
    },
    options.failing ? 'An offline project whose test fails' : 'An offline project',
  );
  return { dir, setup: 'npm ci --offline --no-audit --no-fund', check: 'npm test', head };
}
