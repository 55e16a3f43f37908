import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect, it } from 'vitest';
import {
  describeDocker,
  describeDockerPython,
  docker,
  IMAGE,
  PYTHON_IMAGE,
  runOriginalExecutorCommand,
} from '../support/docker.js';
import { type FixtureRepo, makeJsRepo } from '../support/js-repo.js';
import { makePythonRepo } from '../support/py-repo.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-image-');

/** A directory any container user may write, as the image's README tells users to make. */
function sharedDir(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * A fixture's command in a container of `image` as its own user (executor), the repository at
 * /workspace, hardened as the Docker backend runs checks: read-only root, tmpfs /tmp and HOME (a
 * fresh HOME), no capabilities, CI=true; `network` none unless the command fetches. umask 0 so
 * that this process can remove what the container user wrote.
 */
function inContainer(image: string, repo: FixtureRepo, command: string, network = 'none') {
  // The container's user is not this one: it may write the fixture.
  execFileSync('chmod', ['-R', 'a+rwX', repo.dir]);
  return docker(
    [
      'run',
      '--rm',
      '--read-only',
      '--tmpfs',
      '/tmp:rw,exec,size=1g,mode=1777',
      '--tmpfs',
      '/home/executor:rw,exec,size=1g,mode=1777',
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--network',
      network,
      '-e',
      'CI=true',
      '-v',
      `${repo.dir}:/workspace`,
      '-w',
      '/workspace',
      image,
      'sh',
      '-c',
      `umask 0 && id -un && ${command}`,
    ],
    300_000,
  );
}

describeDocker('the image', () => {
  it('runs as the non-root user executor, with claude on PATH and the entrypoints in /app', async () => {
    expect((await docker(['run', '--rm', IMAGE, 'whoami'])).stdout.trim()).toBe('executor');
    expect((await docker(['run', '--rm', IMAGE, 'claude', '--version'])).stdout.trim()).toMatch(
      /^2\.1\.\d+ \(Claude Code\)$/,
    );
    const app = (await docker(['run', '--rm', IMAGE, 'ls', '/app'])).stdout.split('\n');
    for (const entry of [
      'batch-executor',
      'docker-executor',
      'docker-planner',
      'claude',
      'parallel-orchestrator',
      'dist',
    ]) {
      expect(app).toContain(entry);
    }
    const inspect = JSON.parse((await docker(['image', 'inspect', IMAGE])).stdout)[0];
    expect(inspect.Config.Cmd).toEqual(['/app/batch-executor']);
    expect(inspect.Config.User).toBe('executor');
    expect(Object.keys(inspect.Config.Volumes ?? {})).toEqual(['/output']);
  });

  it('holds one copy of the Claude Code binary and no secret or .env file', async () => {
    const listing = await docker([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      IMAGE,
      '-c',
      "find / -xdev \\( -name claude -type f -size +1M -o -name '.env' -o -name '.npmrc' -o -name '*.pem' -path '*/home/*' \\) 2>/dev/null",
    ]);
    const found = listing.stdout.trim().split('\n');
    expect(found.filter((f) => f.endsWith('/claude'))).toHaveLength(1);
    expect(found.filter((f) => f.endsWith('.env') || f.endsWith('.npmrc'))).toEqual([]);
    // Build arguments and layers carry no credentials.
    const history = (await docker(['history', '--no-trunc', IMAGE])).stdout;
    expect(history).not.toMatch(/ANTHROPIC_API_KEY=|AWS_SECRET_ACCESS_KEY=|sk-ant-/);
    const env = JSON.parse((await docker(['image', 'inspect', IMAGE])).stdout)[0].Config.Env.join(
      '\n',
    );
    expect(env).not.toMatch(/KEY=|TOKEN=/);
  });

  it("runs the original image's test command: a result, the code and a log in the volume", async () => {
    const output = sharedDir('test-output');
    const run = await runOriginalExecutorCommand(IMAGE, output);
    expect(run.code).toBe(0);
    const result = JSON.parse(readFileSync(path.join(output, 'result.json'), 'utf8'));
    expect(result).toMatchObject({
      status: 'succeeded',
      files: ['project/docs/tasks/task.md', 'project/src/task.ts', 'project/test/task.test.ts'],
    });
    expect(readFileSync(path.join(output, 'project/src/task.ts'), 'utf8')).toContain(
      'Build a simple calculator',
    );
    expect(readFileSync(path.join(output, 'executor.log'), 'utf8')).toMatch(/task task succeeded/);
  });

  it('explains an output directory the executor user cannot write', async () => {
    const output = path.join(work, 'root-only');
    mkdirSync(output, { mode: 0o755 });
    const run = await docker([
      'run',
      '--rm',
      '-e',
      'REQUIREMENTS=x',
      '-v',
      `${output}:/output`,
      IMAGE,
      'docker-executor',
    ]);
    // Root owns the directory in CI; as another user the mount may already be writable.
    if (process.getuid?.() === 0) {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /^error: OUTPUT_DIR \/output is not writable by uid 10001: EACCES; mount a directory this user can write/,
      );
    }
  });

  it('plans in a container, saying it simulated when given no credentials', async () => {
    const output = sharedDir('planner');
    const run = await docker([
      'run',
      '--rm',
      '-e',
      'REQUIREMENTS=Build a todo list app with add, delete and complete',
      '-e',
      'MAX_EXECUTORS=3',
      '-v',
      `${output}:/output`,
      IMAGE,
      'docker-planner',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/no model credentials: planned 8 tasks with the simulated planner/);
    const out = JSON.parse(readFileSync(path.join(output, 'planner_output.json'), 'utf8'));
    expect(out).toMatchObject({
      success: true,
      planner: 'simulated',
      num_tasks: 8,
      plan: { executorBudget: 3 },
    });
    expect(existsSync(path.join(output, 'execution_plan.json'))).toBe(true);
  });

  it('the batch executor names the variables it is missing', async () => {
    const run = await docker(['run', '--rm', '-e', 'TASK_ID=a', IMAGE]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      'error: the batch executor needs TASK_ID, S3_PREFIX, S3_INPUT_URL (missing: S3_PREFIX, S3_INPUT_URL)\n',
    );
  });

  it('the batch executor refuses a real task unless it is root: its agent would share the job credentials', async () => {
    const input = {
      version: 1,
      spec: {
        runId: 'run',
        taskId: 'feature',
        attempt: 1,
        executor: 0,
        mode: 'real',
        requirements: 'a feature',
        task: { id: 'feature', title: 'Feature', description: 'adds it', dependsOn: [] },
        mergedDependencies: [],
        workspaceDir: '/w',
        outputDir: '/o',
        seed: 1,
        agent: { provider: 'anthropic', model: 'claude-sonnet-4-5', maxTurns: 5, allowedTools: [] },
      },
      base: { commit: 'a'.repeat(40), bundle: { key: 'k', sha256: '0'.repeat(64), bytes: 1 } },
      transfer: {
        base: 'http://127.0.0.1:1/base',
        put: Object.fromEntries(
          ['bundle', 'transcript', 'verifyLog', 'result'].map((n) => [
            n,
            `http://127.0.0.1:1/${n}`,
          ]),
        ),
      },
      limits: { maxFileBytes: 1024, maxTaskBytes: 4096 },
    };
    const server = createServer((_req, res) => res.end(JSON.stringify(input)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      // The image's own user, as a definition without `user: root` would run it.
      const run = await docker([
        'run',
        '--rm',
        '--network',
        'host',
        '-e',
        'TASK_ID=feature',
        '-e',
        'S3_PREFIX=runs/run/tasks/feature/attempt-1/',
        '-e',
        `S3_INPUT_URL=http://127.0.0.1:${port}/input.json`,
        IMAGE,
      ]);
      expect(run.stderr).toBe(
        'error: a real task runs its agent as another user: the job must run as root\n',
      );
      expect(run.code).toBe(2);
    } finally {
      server.close();
    }
  });

  // npm and npx are kept (issue 25): a JavaScript repository's --setup (`npm ci`) and checks
  // (`npm test`) run in this image, with no extra flag or image of the user's.
  it('has npm and npx, and no NODE_ENV outside its entrypoints (npm ci would drop devDependencies)', async () => {
    const run = await docker([
      'run',
      '--rm',
      IMAGE,
      'sh',
      '-c',
      'npm --version && npx --version && echo "omit=[$(npm config get omit)] NODE_ENV=[$NODE_ENV]"',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const [npm, npx, settings] = run.stdout.trim().split('\n');
    expect(npm).toMatch(/^\d+\.\d+\.\d+$/);
    expect(npx).toBe(npm);
    expect(settings).toBe('omit=[] NODE_ENV=[]');
    // The runtime itself still runs with NODE_ENV=production: its entrypoints set it.
    const entries = [
      'docker-executor',
      'docker-planner',
      'batch-executor',
      'parallel-orchestrator',
    ];
    const wrappers = await docker(['run', '--rm', '-w', '/app', IMAGE, 'cat', ...entries]);
    expect(wrappers.stdout.match(/^export NODE_ENV="\$\{NODE_ENV:-production\}"$/gm)).toHaveLength(
      4,
    );
  });

  it("gives any user a writable HOME under the backend's tmpfs (which takes the mode of the image's directory)", async () => {
    const run = await docker([
      'run',
      '--rm',
      '--read-only',
      '--tmpfs',
      '/home/executor:rw,exec,size=1g,mode=1777',
      '--user',
      '12345:12345',
      IMAGE,
      'sh',
      '-c',
      'mkdir "$HOME/.npm" && echo "$HOME"',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('/home/executor\n');
  });

  it('sets up and checks a JavaScript repository as its user: npm ci from the registry, npm test offline', async () => {
    const repo = await makeJsRepo(work);
    const setup = await inContainer(IMAGE, repo, repo.setup, 'bridge');
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    expect(setup.stdout).toMatch(/^executor\n/);
    expect(setup.stdout).toMatch(/added 1 package/);
    const check = await inContainer(IMAGE, repo, repo.check);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/\bpass 1\b/);
    expect(check.stdout + check.stderr).not.toMatch(/New major version of npm/);
  });
});

describeDockerPython('the Python variant of the image', () => {
  it('sets up a Python repository (a venv, its local package with no index) and runs pytest, offline', async () => {
    const repo = await makePythonRepo(work);
    const setup = await inContainer(PYTHON_IMAGE, repo, repo.setup);
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    expect(setup.stdout).toMatch(/^executor\n/);
    expect(setup.stdout).toMatch(/Successfully installed greet-1\.0\.0/);
    const check = await inContainer(PYTHON_IMAGE, repo, repo.check);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/1 passed/);
  });

  it('is the default image with Python added: the same user, entrypoints and npm', async () => {
    const run = await docker([
      'run',
      '--rm',
      PYTHON_IMAGE,
      'sh',
      '-c',
      'id -un && ls /app/docker-executor && npm --version >/dev/null && python3 --version',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^executor\n\/app\/docker-executor\nPython 3\.\d+\.\d+\n$/);
  });
});
