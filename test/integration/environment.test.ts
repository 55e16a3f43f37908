import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JournalEvent } from '../../packages/runtime/src/contracts/events.js';
import { readEvents, readSummary, resultLine, runCli } from '../support/cli.js';
import { fixtureEnv } from '../support/fixture-git.js';
import {
  type FixtureRepo,
  makeJsRepo,
  makeOfflineJsRepo,
  manifestsAddingTinyDep2,
  tinyDep2Test,
} from '../support/js-repo.js';
import { tempDir } from '../support/tmp.js';

// --setup on the local backend: the repository's dependencies prepared once per key in a
// bubblewrap sandbox, shown read-only to every check; --verify on the base before any task.
const work = tempDir('po-environment-');
let n = 0;

/** What this network makes tools trust, as the user's shell has it: a setup with the network needs it. */
const TRUST = Object.fromEntries(
  ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy']
    .filter((name) => process.env[name])
    .map((name) => [name, process.env[name]]),
);

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: dir, encoding: 'utf8', env: fixtureEnv() }).trim();

/** A test for Node's runner that requires `dep` and checks `expression` (of `dep`) is `expected`. */
function depTest(dep: string, expression: string, expected: unknown): string {
  return [
    "const assert = require('node:assert');",
    "const test = require('node:test');",
    `const dep = require('${dep}');`,
    `test('${dep}', () => assert.strictEqual(${expression}, ${JSON.stringify(expected)}));`,
    '',
  ].join('\n');
}

function writePlan(tasks: unknown[]): string {
  const file = path.join(work, `plan-${n++}.json`);
  writeFileSync(
    file,
    JSON.stringify({ requirements: 'Use the dependencies', executorBudget: 2, tasks }),
  );
  return file;
}

function task(id: string, files: Record<string, string>, dependsOn: string[] = []) {
  return { id, title: id, description: id, dependsOn, simulate: { files } };
}

async function run(cwd: string, args: string[]) {
  const output = path.join(work, `runs-${n++}`);
  const cache = args.includes('--cache-dir') ? [] : ['--cache-dir', path.join(work, 'cache')];
  const started = Date.now();
  const result = await runCli(['run', '-o', output, '--json', ...cache, ...args], cwd, TRUST);
  const line = result.stdout.trim() ? resultLine(result.stdout) : undefined;
  return { ...result, runDir: line?.runDir ?? '', output, ms: Date.now() - started };
}

/**
 * Run `plan` on `repo` (named as `as`, e.g. '.' from inside it), prepared by its setup and
 * checked by its check unless told otherwise.
 */
function setupArgs(
  repo: FixtureRepo,
  plan: string,
  {
    setup = repo.setup,
    verify = repo.check,
    as = repo.dir,
  }: { setup?: string; verify?: string; as?: string } = {},
): string[] {
  return ['--repo', as, '--setup', setup, '--verify', verify, '--plan', plan];
}

function events(runDir: string, type: JournalEvent['type']) {
  return readEvents(runDir).filter((e) => e.type === type);
}

/** Directories of prepared environments in a cache (scratch ones start with a dot). */
function environmentsIn(cache: string): string[] {
  const dir = path.join(cache, 'environments');
  return existsSync(dir) ? readdirSync(dir).filter((name) => !name.startsWith('.')) : [];
}

describe('--setup prepares the repository once, every check starts from it (local backend)', () => {
  it('runs a project with registry dependencies from inside it: node_modules is prepared once, never committed, and the user tree is untouched', async () => {
    const repo = await makeJsRepo(work);
    const cache = path.join(work, `cache-${n++}`);
    const before = {
      status: git(repo.dir, 'status', '--porcelain=v2', '--branch', '--ignored'),
      head: git(repo.dir, 'rev-parse', 'HEAD'),
    };
    const plan = writePlan([
      task('numbers', { 'test/numbers.test.js': depTest('is-number', "dep('12')", true) }),
      task('words', { 'test/words.test.js': depTest('is-number', "dep('twelve')", false) }, [
        'numbers',
      ]),
    ]);
    const first = await run(repo.dir, [
      ...setupArgs(repo, plan, { as: '.' }),
      '--cache-dir',
      cache,
    ]);
    expect(first.code, first.stderr).toBe(0);
    const summary = readSummary(first.runDir);
    expect(summary.environment).toMatchObject({
      command: repo.setup,
      cached: false,
      paths: ['node_modules/'],
      preparedForWork: 0,
    });
    expect(summary.baseCheck).toMatchObject({ passed: true, allowed: false });
    expect(summary.verify?.final).toMatchObject({ passed: true });
    // One copy on disk, in the cache; none in the run, none committed.
    expect(environmentsIn(cache)).toHaveLength(1);
    const committed = git(
      path.join(first.runDir, 'project'),
      'log',
      '--all',
      '--name-only',
      '--format=',
    );
    expect(committed).not.toContain('node_modules');
    expect(committed).toContain('test/words.test.js');
    // The user's repository: the same status (ignored files included) and HEAD.
    expect(git(repo.dir, 'status', '--porcelain=v2', '--branch', '--ignored')).toBe(before.status);
    expect(git(repo.dir, 'rev-parse', 'HEAD')).toBe(before.head);

    // The same base again: nothing is prepared.
    const second = await run(repo.dir, [
      ...setupArgs(repo, plan, { as: '.' }),
      '--cache-dir',
      cache,
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(readSummary(second.runDir).environment).toMatchObject({
      cached: true,
      key: summary.environment?.key,
    });
    expect(existsSync(path.join(second.runDir, 'setup.log'))).toBe(false);
    expect(environmentsIn(cache)).toHaveLength(1);
    const status = await runCli(['status', second.runDir], work);
    expect(status.stdout).toContain(`Environment:   ${repo.setup}`);
    expect(status.stdout).toContain((summary.environment?.key ?? 'x').slice(0, 12));

    // An environment missing from the cache is prepared again, with a line saying so.
    rmSync(
      path.join(cache, 'environments', environmentsIn(cache)[0] as string, 'tree', 'node_modules'),
      {
        recursive: true,
      },
    );
    const third = await run(repo.dir, [
      ...setupArgs(repo, plan, { as: '.' }),
      '--cache-dir',
      cache,
    ]);
    expect(third.code, third.stderr).toBe(0);
    const [prepared] = events(third.runDir, 'environment-prepared');
    expect(prepared).toMatchObject({
      cached: false,
      note: expect.stringContaining('incomplete (node_modules/ is missing)'),
    });
  });

  it('stops before planning or any task when the base fails its check, in seconds, saying how to reproduce it', async () => {
    const repo = await makeOfflineJsRepo(work, { failing: true });
    const plan = writePlan([task('a', { 'a.txt': 'a\n' })]);
    const result = await run(work, setupArgs(repo, plan));
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(30_000);
    expect(result.stderr).toContain(
      `error: npm test failed (exit 1) on the base (main at ${repo.head.slice(0, 12)}), before planning or any task:`,
    );
    expect(result.stderr).toContain(`Reproduce: git clone -q ${repo.dir}`);
    expect(result.stderr).toContain(`&& ${repo.setup} && npm test`);
    expect(result.stderr).toContain('--allow-failing-base');
    // No plan, no run record: only the logs that say why.
    const [runDir] = readdirSync(result.output).filter((name) => !name.startsWith('.'));
    const left = readdirSync(path.join(result.output, runDir as string))
      .filter((name) => !name.startsWith('.'))
      .sort();
    expect(left).toEqual(['setup.log', 'verify.log']);
  });

  it('--allow-failing-base runs a requirement to fix the base: work is not held to the failing check until it passes', async () => {
    // The base's check needs a module no one has written yet: the requirement is to write it.
    const repo = await makeOfflineJsRepo(work);
    writeFileSync(
      path.join(repo.dir, 'test/answer.test.js'),
      depTest('../src/answer.js', 'dep.answer', 42),
    );
    git(repo.dir, 'add', '-A');
    git(repo.dir, 'commit', '-qm', 'A test of what is to come');
    const plan = writePlan([
      task('unrelated', { 'notes.md': 'notes\n' }),
      task('answer', { 'src/answer.js': 'exports.answer = 42;\n' }),
      task('later', { 'later.md': 'later\n' }, ['answer']),
    ]);
    const result = await run(work, [...setupArgs(repo, plan), '--allow-failing-base', '-e', '1']);
    expect(result.code, result.stderr).toBe(0);
    const summary = readSummary(result.runDir);
    expect(summary.baseCheck).toMatchObject({ passed: false, allowed: true, exitCode: 1 });
    expect(summary.totals.succeeded).toBe(3);
    expect(summary.verify?.final).toMatchObject({ passed: true });
    // Until the answer merged, a failing check did not gate; after it, every check passed.
    const later = summary.tasks.find((t) => t.taskId === 'later');
    expect(later?.verify).toMatchObject({ exitCode: 0 });
  });

  it('prepares again for work that changes the manifests, and its dependents start from the merged environment', async () => {
    const repo = await makeOfflineJsRepo(work);
    const plan = writePlan([
      {
        ...task('add-dep', {}),
        simulate: {
          files: { 'test/tiny-dep2.test.js': tinyDep2Test('tiny-dep2', 2) },
          replace: await manifestsAddingTinyDep2(),
        },
      },
      task('use-dep', { 'test/use.test.js': tinyDep2Test('use', 3) }, ['add-dep']),
    ]);
    const result = await run(work, setupArgs(repo, plan));
    expect(result.code, result.stderr).toBe(0);
    const prepared = events(result.runDir, 'environment-prepared');
    expect(prepared.map((e) => ('taskId' in e ? e.taskId : undefined))).toEqual([
      undefined,
      'add-dep',
    ]);
    const summary = readSummary(result.runDir);
    expect(summary.environment?.preparedForWork).toBe(1);
    expect(summary.verify?.final).toMatchObject({ passed: true });
    expect(existsSync(path.join(result.runDir, 'tasks/add-dep/setup.log'))).toBe(true);
  });

  it('refuses a setup that fails, touches tracked files, writes outside ignored paths, or never ends', async () => {
    const repo = await makeOfflineJsRepo(work);
    const plan = writePlan([task('a', { 'a.txt': 'a\n' })]);
    const cases: [string[], string][] = [
      [['--setup', 'echo broken; exit 3'], '--setup "echo broken; exit 3" failed (exit 3)'],
      [
        ['--setup', `${repo.setup} && echo x >> package.json`],
        'changed tracked files or wrote outside ignored paths: package.json',
      ],
      [['--setup', 'touch stray.txt'], 'wrote outside ignored paths: stray.txt'],
      [['--setup', 'sleep 100', '--setup-timeout', '1s'], 'did not end within --setup-timeout 1s'],
    ];
    for (const [flags, message] of cases) {
      const result = await run(work, ['--repo', repo.dir, ...flags, '--plan', plan]);
      expect(result.code, flags.join(' ')).toBe(1);
      expect(result.stderr).toContain(message);
      expect(result.ms).toBeLessThan(30_000);
    }
  });

  it('keeps a link a setup leaves out of the environment: a bind would follow it anywhere', async () => {
    const repo = await makeOfflineJsRepo(work);
    writeFileSync(path.join(repo.dir, '.gitignore'), 'node_modules/\ndeps\n');
    git(repo.dir, 'commit', '-qam', 'deps are ignored');
    const plan = writePlan([task('a', { 'a.txt': 'a\n' })]);
    const result = await run(
      work,
      setupArgs(repo, plan, { setup: `${repo.setup} && ln -s / deps`, verify: 'test ! -e deps' }),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(readSummary(result.runDir).environment?.paths).toEqual(['node_modules/']);
    expect(readFileSync(path.join(result.runDir, 'setup.log'), 'utf8')).toContain(
      'left out of the environment: deps (not a file or a directory)',
    );
  });

  it('a check without network fails at once with the reason, never waits on it', async () => {
    const repo = await makeOfflineJsRepo(work);
    const plan = writePlan([task('a', { 'a.txt': 'a\n' })]);
    const result = await run(work, setupArgs(repo, plan, { verify: 'npx --yes jest' }));
    expect(result.code).toBe(1);
    expect(result.ms).toBeLessThan(20_000);
    expect(result.stderr).toContain('ENOTCACHED');
    expect(result.stderr).toContain('the check has no network');
  });

  it('says what would prepare the repository, and --setup auto runs it', async () => {
    const repo = await makeOfflineJsRepo(work);
    const plan = writePlan([task('a', { 'a.txt': 'a\n' })]);
    const without = await run(work, ['--repo', repo.dir, '--plan', plan]);
    expect(without.code, without.stderr).toBe(0);
    expect(without.stderr).toContain(
      'note: no --setup: package-lock.json says "npm ci" would prepare this repository',
    );
    const auto = await run(work, setupArgs(repo, plan, { setup: 'auto' }));
    // npm ci without --offline finds the tarballs in the repository: no network is needed.
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toContain('note: --setup auto: package-lock.json says "npm ci"');
    expect(readSummary(auto.runDir).environment).toMatchObject({ command: 'npm ci' });
  });

  it('refuses setup flags that qualify nothing, and a cache inside the repository', async () => {
    const repo = await makeOfflineJsRepo(work);
    const cases: [string[], string][] = [
      [
        ['--setup', 'npm ci', 'x'],
        '--setup prepares the repository the run starts from: give --repo',
      ],
      [
        ['--repo', repo.dir, '--setup-timeout', '1m', 'x'],
        '--setup-network and --setup-timeout go with --setup',
      ],
      [
        ['--repo', repo.dir, '--allow-failing-base', 'x'],
        '--allow-failing-base lets a base fail --verify: give --verify too',
      ],
      [
        ['--repo', repo.dir, '--setup', 'npm ci', '--cache-dir', path.join(repo.dir, 'cache'), 'x'],
        'is inside the repository',
      ],
      [
        ['--repo', repo.dir, '--setup', 'no-such-tool install', 'x'],
        '--setup: command not found: no-such-tool',
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['run', '-o', path.join(work, 'never'), ...args], work);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(message);
    }
    expect(existsSync(path.join(work, 'never'))).toBe(false);
  });
});
