import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { dockerClient, imageIdentity } from '../../packages/runtime/src/backends/docker/backend.js';
import { readSummary, resultLine, runCli, startRunIn } from '../support/cli.js';
import { describeDocker, docker, IMAGE, PYTHON_IMAGE, runContainers } from '../support/docker.js';
import { gitOut } from '../support/git.js';
import {
  type FixtureRepo,
  makeOfflineJsRepo,
  manifestsAddingTinyDep2,
  tinyDep2Test,
} from '../support/js-repo.js';
import { planInput, type TaskInput } from '../support/plans.js';
import { makePythonRepo } from '../support/py-repo.js';
import { tempDir } from '../support/tmp.js';

/**
 * `--setup` on the Docker backend: the repository's dependencies installed once, in a container
 * of the run's image, and shown read-only to every agent's and check's container.
 */

const work = tempDir('po-docker-setup-');
const cache = path.join(work, 'cache');
const environments = path.join(cache, 'environments');
/** Another image (the same with a label): another id, so another environment. */
const RELABELLED = `parallel-orchestrator-test:setup-${randomUUID().slice(0, 8)}`;

/** A test for Node's runner that doubling 1 with tiny-dep `times` times gives 2^times. */
function tinyDepTest(title: string, times: number): string {
  return [
    "const assert = require('node:assert');",
    "const test = require('node:test');",
    "const { double } = require('tiny-dep');",
    `test('${title}', () => {`,
    '  let n = 1;',
    `  for (let i = 0; i < ${times}; i++) n = double(n);`,
    `  assert.strictEqual(n, ${2 ** times});`,
    '});',
    '',
  ].join('\n');
}

/** A task that adds a test requiring tiny-dep. */
function usesDependency(
  id: string,
  times: number,
  dependsOn: string[] = [],
  durationMs?: number,
): TaskInput {
  return {
    id,
    title: `test ${id}`,
    description: `test tiny-dep ${times} times`,
    dependsOn,
    simulate: {
      files: { [`test/${id}.test.js`]: tinyDepTest(id, times) },
      ...(durationMs && { durationMs }),
    },
  };
}

function writePlan(tasks: TaskInput[]): string {
  const file = path.join(work, `plan-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(planInput(tasks, 2)));
  return file;
}

function setupArgs(repo: Pick<FixtureRepo, 'dir' | 'setup' | 'check'>, image = IMAGE): string[] {
  return [
    'run',
    '--backend',
    'docker',
    '--docker-image',
    image,
    '--repo',
    repo.dir,
    '--setup',
    repo.setup,
    '--verify',
    repo.check,
    '--cache-dir',
    cache,
  ];
}

async function dockerRun(args: string[]) {
  const output = path.join(work, `runs-${randomUUID()}`);
  const started = Date.now();
  const result = await runCli([...args, '-o', output, '--json'], work);
  const runDir = result.stdout.trim() ? resultLine(result.stdout).runDir : '';
  return { ...result, runDir, ms: Date.now() - started };
}

/** The prepared environments in the cache, and anything half made. */
function cached(): { keys: string[]; partial: string[] } {
  const names = existsSync(environments) ? readdirSync(environments) : [];
  return {
    keys: names.filter((name) => /^[0-9a-f]{32}$/.test(name)).sort(),
    partial: names.filter((name) => name.startsWith('.')),
  };
}

describeDocker('--setup on the Docker backend', () => {
  let repo: FixtureRepo;
  let firstKey = '';

  beforeAll(async () => {
    repo = await makeOfflineJsRepo(work);
    // The suite needs an image whose shell finds npm (docker/README.md, Toolchains).
    const npm = await docker(['run', '--rm', '--entrypoint', 'npm', IMAGE, '--version']);
    if (npm.code !== 0) throw new Error(`${IMAGE} has no npm: ${npm.stderr.trim()}`);
  });
  afterAll(async () => {
    await docker(['image', 'rm', '-f', RELABELLED]);
  });

  it('prepares node_modules once in a container of the image, read-only for every agent and check, in no commit', async () => {
    const plan = writePlan([usesDependency('quad', 2), usesDependency('oct', 3, ['quad'])]);
    const run = await dockerRun([...setupArgs(repo), '--plan', plan]);
    expect(run.code, run.stderr).toBe(0);
    const summary = readSummary(run.runDir);
    expect(summary.environment).toMatchObject({
      command: repo.setup,
      cached: false,
      paths: ['node_modules/'],
    });
    expect(summary.totals).toMatchObject({ succeeded: 2 });
    expect(summary.verify?.final).toMatchObject({ passed: true, exitCode: 0 });
    expect(summary.verify?.final?.tail).toMatch(/pass 3\n/);
    // The setup ran in the image, as the container's user, and said so in the run's setup log.
    const setupLog = readFileSync(path.join(run.runDir, 'setup.log'), 'utf8');
    expect(setupLog).toContain(`== ${repo.setup} on `);
    expect(setupLog).toContain(`in ${IMAGE} ==`);
    // One prepared copy, in the cache, and nothing of it committed.
    const { keys, partial } = cached();
    expect(partial).toEqual([]);
    expect(keys).toEqual([summary.environment?.key]);
    firstKey = keys[0] ?? '';
    const tree = path.join(environments, firstKey, 'tree');
    expect(readdirSync(tree)).toEqual(['node_modules']);
    expect(readFileSync(path.join(tree, 'node_modules/tiny-dep/index.js'), 'utf8')).toContain(
      'double',
    );
    const project = path.join(run.runDir, 'project');
    const committed = gitOut(project, ['log', '--all', '--name-only', '--format=']);
    expect(committed).toContain('test/oct.test.js');
    expect(committed).not.toContain('node_modules');
    expect(await runContainers(path.basename(run.runDir))).toEqual([]);
  });

  it('a second run on the same repository finds the environment in the cache and prepares nothing', async () => {
    const tree = path.join(environments, firstKey, 'tree');
    const before = statSync(path.join(tree, 'node_modules'));
    // A task long enough to look at its container: the environment bound over its workspace.
    const plan = writePlan([usesDependency('slow', 1, [], 3_000)]);
    const output = path.join(work, `runs-${randomUUID()}`);
    const run = await startRunIn([...setupArgs(repo), '--plan', plan], work, output);
    const info = await runningExecutor(run.runId);
    const { code, stderr } = await run.done;
    expect(code, `${stderr} ${run.runDir}`).toBe(0);
    expect(info.Mounts).toContainEqual(
      expect.objectContaining({
        Type: 'bind',
        Source: path.join(tree, 'node_modules'),
        Destination: '/workspace/node_modules',
        RW: false,
      }),
    );
    expect(Object.keys(info.HostConfig.Tmpfs).sort()).toEqual([
      '/home/executor',
      '/tmp',
      '/workspace/node_modules/.cache',
      '/workspace/node_modules/.vite',
    ]);
    expect(info.HostConfig.Tmpfs['/workspace/node_modules/.cache']).toMatch(/size=256m/);
    const summary = readSummary(run.runDir);
    expect(summary.environment).toMatchObject({ key: firstKey, cached: true });
    expect(summary.verify?.final).toMatchObject({ passed: true });
    expect(existsSync(path.join(run.runDir, 'setup.log'))).toBe(false);
    expect(cached()).toEqual({ keys: [firstKey], partial: [] });
    const after = statSync(path.join(tree, 'node_modules'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
  });

  it('another image is another environment: the key has the image id', async () => {
    execFileSync('docker', ['build', '-q', '-t', RELABELLED, '-'], {
      input: `FROM ${IMAGE}\nLABEL parallel-orchestrator.test=${randomUUID()}\n`,
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    const engine = dockerClient();
    const [ours, theirs] = await Promise.all([
      imageIdentity(engine, IMAGE),
      imageIdentity(engine, RELABELLED),
    ]);
    expect(ours).toBe(`docker:${(await engine.getImage(IMAGE).inspect()).Id}`);
    expect(theirs).not.toBe(ours);
    const plan = writePlan([usesDependency('quad', 2)]);
    const run = await dockerRun([...setupArgs(repo, RELABELLED), '--plan', plan]);
    expect(run.code, run.stderr).toBe(0);
    const summary = readSummary(run.runDir);
    expect(summary.environment).toMatchObject({ cached: false });
    expect(summary.environment?.key).not.toBe(firstKey);
    expect(cached().keys).toEqual([firstKey, summary.environment?.key].sort());
  });

  it('prepares again, in the image, for work that adds a dependency; its dependent starts from that environment', async () => {
    const plan = writePlan([
      {
        id: 'add-dep',
        title: 'add tiny-dep2',
        description: 'add tiny-dep2',
        dependsOn: [],
        simulate: {
          files: { 'test/add-dep.test.js': tinyDep2Test('triple 2', 2) },
          replace: await manifestsAddingTinyDep2(),
        },
      },
      {
        id: 'use-dep',
        title: 'use tiny-dep2',
        description: 'use tiny-dep2',
        dependsOn: ['add-dep'],
        simulate: { files: { 'test/use-dep.test.js': tinyDep2Test('triple 3', 3) } },
      },
    ]);
    const before = cached().keys;
    const run = await dockerRun([...setupArgs(repo), '--plan', plan]);
    expect(run.code, run.stderr).toBe(0);
    const summary = readSummary(run.runDir);
    expect(summary.environment).toMatchObject({ key: firstKey, cached: true, preparedForWork: 1 });
    expect(summary.verify?.final).toMatchObject({ passed: true });
    expect(summary.verify?.final?.tail).toMatch(/pass 3\n/);
    expect(readFileSync(path.join(run.runDir, 'tasks/add-dep/setup.log'), 'utf8')).toContain(
      `in ${IMAGE} ==`,
    );
    // The new key's copy is the only one added, and has both packages.
    const added = cached().keys.filter((key) => !before.includes(key));
    expect(added).toHaveLength(1);
    const tree = path.join(environments, added[0] ?? '', 'tree');
    expect(readdirSync(path.join(tree, 'node_modules')).sort()).toEqual(
      expect.arrayContaining(['tiny-dep', 'tiny-dep2']),
    );
    expect(await runContainers(path.basename(run.runDir))).toEqual([]);
  });

  it('prepares a Python repository the same way in the :python image: a venv, pytest on it', async () => {
    const python = await makePythonRepo(work);
    const plan = writePlan([
      {
        id: 'shout',
        title: 'shout',
        description: 'a louder greeting',
        dependsOn: [],
        simulate: {
          files: {
            'tests/test_shout.py': [
              'from greet import greet',
              '',
              '',
              'def test_shout():',
              '    assert greet("world").upper() == "HELLO, WORLD"',
              '',
            ].join('\n'),
          },
        },
      },
    ]);
    const run = await dockerRun([...setupArgs(python, PYTHON_IMAGE), '--plan', plan]);
    expect(run.code, run.stderr).toBe(0);
    const summary = readSummary(run.runDir);
    expect(summary.environment?.paths).toContain('.venv/');
    expect(summary.baseCheck).toMatchObject({ passed: true });
    expect(summary.verify?.final).toMatchObject({ passed: true });
    expect(summary.verify?.final?.tail).toMatch(/2 passed/);
    const committed = gitOut(path.join(run.runDir, 'project'), [
      'log',
      '--all',
      '--name-only',
      '--format=',
    ]);
    expect(committed).toContain('tests/test_shout.py');
    expect(committed).not.toContain('.venv');
  });

  it('refuses a --setup whose program the image does not have, in one line, before the run', async () => {
    const output = path.join(work, `runs-${randomUUID()}`);
    const { code, stderr } = await runCli(
      [...setupArgs({ ...repo, setup: 'no-such-installer ci' }), '-o', output],
      work,
    );
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(
      /--setup: command not found: no-such-installer .*docker\/README\.md.*Toolchains.*--docker-image/,
    );
    expect(existsSync(output)).toBe(false);
  });
});

/** `docker inspect` of the run's executor container, once it runs. */
async function runningExecutor(runId: string) {
  for (let i = 0; i < 600; i++) {
    const info = await executorInspect(runId);
    if (info?.State?.Running) return info;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no executor container of ${runId} ran`);
}

async function executorInspect(runId: string) {
  const { stdout } = await docker([
    'ps',
    '-q',
    '--filter',
    `label=parallel-orchestrator.run-id=${runId}`,
    '--filter',
    'label=parallel-orchestrator.role=executor',
  ]);
  const id = stdout.trim().split('\n')[0];
  if (!id) return undefined;
  const inspected = await docker(['inspect', id]);
  return inspected.code === 0 ? JSON.parse(inspected.stdout)[0] : undefined;
}
