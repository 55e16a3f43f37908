import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PLAN_TOOL } from '../../packages/runtime/src/planner/model.js';
import { resolved, underMocks } from '../pulumi/mocks.js';
import {
  readEvents,
  readSummary,
  resultLine,
  runCli,
  startCli,
  startRunIn,
  waitFor,
} from '../support/cli.js';
import { describeDocker, docker, IMAGE, runContainers } from '../support/docker.js';
import { gitOut } from '../support/git.js';
import {
  conversationText,
  type ModelServer,
  primaryWorkingDirectory,
  type RecordedRequest,
  type Reply,
  startModelServer,
  text,
  toolResults,
  toolUse,
} from '../support/model-server.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';
import { NODE_TEST, operation } from '../support/verify.js';

const work = tempDir('po-docker-');
const KEY = `sk-ant-api03-DOCKER-${randomUUID()}`;

function writePlan(tasks: ReturnType<typeof task>[], executorBudget = 2): string {
  const file = path.join(work, `plan-${randomUUID()}.json`);
  writeFileSync(file, JSON.stringify(planInput(tasks, executorBudget)));
  return file;
}

/** A docker-backend run to its end: exit code, output, and the run directory it printed. */
/** The CLI's environment: the image under test (PO_TEST_IMAGE) unless a flag names another. */
function withImage(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { PO_DOCKER_IMAGE: IMAGE, ...env };
}

async function dockerRun(args: string[], env: NodeJS.ProcessEnv = {}) {
  const output = path.join(work, `runs-${randomUUID()}`);
  const result = await runCli(
    ['run', '--backend', 'docker', ...args, '-o', output, '--json'],
    work,
    withImage(env),
  );
  const runDir = result.stdout.trim() ? resultLine(result.stdout).runDir : '';
  return { ...result, output, runDir };
}

function startRun(args: string[], env: NodeJS.ProcessEnv = {}) {
  const output = path.join(work, `runs-${randomUUID()}`);
  return startRunIn(['run', '--backend', 'docker', ...args], work, output, withImage(env));
}

/** Waits for a container of the run to be running and returns its `docker inspect`. */
async function inspectRunning(runId: string) {
  for (let i = 0; i < 200; i++) {
    const ids = await runContainers(runId);
    if (ids[0]) {
      const inspected = await docker(['inspect', ids[0]]);
      if (inspected.code === 0) {
        const [info] = JSON.parse(inspected.stdout);
        if (info.State.Running) return info;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no running container for ${runId}`);
}

describeDocker('the Docker backend', () => {
  let server: ModelServer;
  const taskOf = (r: RecordedRequest) => /Your task: ([a-z0-9-]+):/.exec(conversationText(r))?.[1];
  let script: (r: RecordedRequest) => Reply = () => ({ content: [text('ok')] });

  beforeAll(async () => {
    // Containers reach the host through host.docker.internal: listen beyond loopback.
    server = await startModelServer((r) => script(r), '0.0.0.0');
  });
  afterAll(() => server.close());

  it('runs every task in its own hardened container and merges the work', async () => {
    const { code, runDir } = await dockerRun([
      'Build a todo list app with add, delete and complete',
      '-e',
      '3',
      '--sim-task-ms',
      '50',
    ]);
    expect(code).toBe(0);
    const summary = readSummary(runDir);
    expect(summary).toMatchObject({
      status: 'succeeded',
      backend: 'docker',
      totals: { succeeded: 8 },
    });
    const project = path.join(runDir, 'project');
    expect(gitOut(project, ['log', '--no-merges', '--format=%s', 'main']).split('\n')).toHaveLength(
      9,
    );
    expect(readFileSync(path.join(project, 'src/integration.ts'), 'utf8')).toContain(
      "from './feature-add.js'",
    );
    expect(readFileSync(path.join(runDir, 'tasks/docs/executor.log'), 'utf8')).toMatch(
      /executor \d running task docs/,
    );
    expect(await runContainers(path.basename(runDir))).toEqual([]);
    expect(JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8')).docker).toMatchObject({
      image: IMAGE,
      pidsLimit: 512,
    });
  });

  it('runs --verify in a fresh container of the image on the merged work, and on main at the end', async () => {
    const plan = writePlan([operation('mul', 'a * b', 6, 'a + b'), operation('sub', 'a - b', -1)]);
    // The check says where it runs: the container's /workspace, as the image's user, offline.
    const check = `pwd; id -u; (getent hosts host.docker.internal || echo offline); ${NODE_TEST}`;
    const { code, stderr, runDir } = await dockerRun(['--plan', plan, '--verify', check]);
    expect(code, stderr).toBe(0);
    const summary = readSummary(runDir);
    expect(summary.tasks.find((t) => t.taskId === 'mul')).toMatchObject({
      attempts: 2,
      verifyFailures: 1,
    });
    expect(summary.verify?.final).toMatchObject({ passed: true, exitCode: 0 });
    const log = readFileSync(path.join(runDir, 'tasks/mul/verify.log'), 'utf8');
    expect(log).toContain('5 == 6');
    // The image's user when this runs as root, the caller's uid otherwise (as for executors).
    const uid = process.getuid?.() === 0 ? 10001 : process.getuid?.();
    expect(log).toMatch(new RegExp(`^/workspace\\n${uid}\\noffline$`, 'm'));
    expect(readFileSync(path.join(runDir, 'verify.log'), 'utf8')).toMatch(/pass 2\n/);
    expect(await runContainers(path.basename(runDir))).toEqual([]);
  });

  it('hardens containers: no credential, a token file, the model proxy socket and no network', async () => {
    script = (r) => ({
      content: [text(`done ${taskOf(r)}`)],
      delayMs: 3_000,
      usage: { input_tokens: 1, output_tokens: 1 },
    });
    const plan = writePlan([task('guarded', [])], 1);
    const run = await startRun(
      [
        '--plan',
        plan,
        '--real',
        '--docker-memory',
        '512m',
        '--docker-cpus',
        '1.5',
        '--docker-pids',
        '256',
      ],
      {
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_BASE_URL: server.url,
      },
    );
    const info = await inspectRunning(run.runId);
    expect(info.Config.User).toBe(
      process.getuid?.() === 0 ? '10001:10001' : `${process.getuid?.()}:${process.getgid?.()}`,
    );
    expect(info.HostConfig).toMatchObject({
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      PidsLimit: 256,
      Memory: 512 * 2 ** 20,
      NanoCpus: 1.5e9,
    });
    expect(Object.keys(info.HostConfig.Tmpfs).sort()).toEqual(['/home/executor', '/tmp']);
    expect(info.Config.Labels).toMatchObject({
      'parallel-orchestrator.run-id': run.runId,
      'parallel-orchestrator.task-id': 'guarded',
      'parallel-orchestrator.attempt': '1',
    });
    expect(info.HostConfig.NetworkMode).toBe('none');
    expect(info.Config.Env).toContain('MODEL_PROXY_TOKEN_FILE=/run/secrets/MODEL_PROXY_TOKEN');
    expect(info.Config.Env.some((e: string) => /^(ANTHROPIC|AWS)_/.test(e))).toBe(false);
    const mount = (destination: string) =>
      info.Mounts.find((m: { Destination: string }) => m.Destination === destination);
    const token = mount('/run/secrets/MODEL_PROXY_TOKEN');
    expect(token).toMatchObject({ RW: false });
    const tokenValue = readFileSync(token.Source, 'utf8');
    expect(tokenValue).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(mount('/run/model-proxy')).toMatchObject({ RW: false });
    expect(JSON.stringify(info)).not.toContain(KEY);
    expect(JSON.stringify(info)).not.toContain(tokenValue);
    const result = await run.done;
    expect(result.code).toBe(0);
    expect(existsSync(token.Source)).toBe(false);
    // The model server heard the real key from the proxy, never from the container.
    expect(server.requests.some((r) => r.headers['x-api-key'] === KEY)).toBe(true);
  });

  it('runs the real claude in containers against the model server on the host', async () => {
    script = (r) => {
      if (r.body?.tools?.some((t: { name: string }) => t.name === PLAN_TOOL)) {
        return {
          content: [
            toolUse(PLAN_TOOL, {
              tasks: [
                { id: 'core', title: 'Core', description: 'Write core.', dependsOn: [] },
                { id: 'api', title: 'API', description: 'Write api.', dependsOn: ['core'] },
                { id: 'cli', title: 'CLI', description: 'Write cli.', dependsOn: ['core'] },
              ],
            }),
          ],
        };
      }
      const cwd = primaryWorkingDirectory(r);
      const id = taskOf(r);
      if (!cwd || !id) return { content: [text('ok')] };
      return toolResults(r) === 0
        ? {
            content: [
              toolUse('Write', {
                file_path: `${cwd}/${id}.txt`,
                content: `${id} from a container\n`,
              }),
            ],
          }
        : { content: [text('done')] };
    };
    const { code, stderr, runDir } = await dockerRun(['Three files', '--real', '-e', '2'], {
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: server.url,
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const id of ['core', 'api', 'cli']) {
      expect(readFileSync(path.join(runDir, 'project', `${id}.txt`), 'utf8')).toBe(
        `${id} from a container\n`,
      );
      const transcript = readFileSync(path.join(runDir, 'tasks', id, 'transcript.jsonl'), 'utf8');
      expect(transcript).toContain('"type":"result"');
    }
    // Claude Code saw the workspace as the container mounts it.
    expect(server.requests.some((r) => primaryWorkingDirectory(r) === '/workspace')).toBe(true);
    for (const file of walk(runDir)) expect(readFileSync(file).includes(KEY), file).toBe(false);
  });

  it('retries a task whose container is killed, and the run succeeds', async () => {
    const plan = writePlan([task('victim', [], 4_000), task('other', [], 100)], 2);
    const run = await startRun(['--plan', plan, '--retry-delay', '10ms']);
    let victim: string | undefined;
    for (let i = 0; i < 200 && !victim; i++) {
      const { stdout } = await docker([
        'ps',
        '-q',
        '--filter',
        `label=parallel-orchestrator.task-id=victim`,
        '--filter',
        `label=parallel-orchestrator.run-id=${run.runId}`,
      ]);
      victim = stdout.trim() || undefined;
      if (!victim) await new Promise((r) => setTimeout(r, 50));
    }
    expect(victim).toBeDefined();
    await docker(['kill', victim as string]);
    expect((await run.done).code).toBe(0);
    const retry = readEvents(run.runDir).find((e) => e.type === 'task-retrying');
    expect(retry).toMatchObject({ taskId: 'victim', reason: 'transient' });
    expect(readSummary(run.runDir).tasks.find((t) => t.taskId === 'victim')).toMatchObject({
      status: 'succeeded',
      attempts: 2,
    });
  });

  it('runs two runs at once without their containers clashing', async () => {
    const plan = writePlan([task('same', [], 500), task('name', [], 500)], 2);
    const [a, b] = await Promise.all([startRun(['--plan', plan]), startRun(['--plan', plan])]);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(a.runId).not.toBe(b.runId);
  });

  it('clears the containers an interrupted orchestrator left, and resumes', async () => {
    const plan = writePlan([task('long', [], 6_000), task('short', [], 100)], 2);
    const run = await startRun(['--plan', plan]);
    await inspectRunning(run.runId);
    run.child.kill('SIGKILL');
    await run.done;
    expect((await runContainers(run.runId)).length).toBeGreaterThan(0);
    const resumed = startCli(['resume', run.runDir, '--json'], work);
    // The leftover is gone before the task runs again.
    await waitFor(() =>
      readEvents(run.runDir).some((e) => e.type === 'run-resumed') ? true : undefined,
    );
    expect((await resumed.done).code).toBe(0);
    expect(await runContainers(run.runId)).toEqual([]);
    expect(readSummary(run.runDir).totals.succeeded).toBe(2);
  });

  it('reports a container killed for memory, and retries it as transient', async () => {
    const plan = writePlan([task('hungry', [], 10)], 1);
    const { code, runDir } = await dockerRun([
      '--plan',
      plan,
      '--docker-memory',
      '8m',
      '--retries',
      '1',
      '--retry-delay',
      '10ms',
    ]);
    expect(code).toBe(1);
    const summary = readSummary(runDir);
    expect(summary.tasks[0]).toMatchObject({
      status: 'failed',
      attempts: 2,
      // Docker records most such kills; one at the container's start can go unrecorded.
      error: expect.stringMatching(/^container killed .*8 MiB/),
    });
  });

  it('plans in a container with --docker-planner', async () => {
    const { code, runDir, output } = await dockerRun([
      'Build a calculator',
      '--docker-planner',
      '--sim-task-ms',
      '10',
    ]);
    expect(code).toBe(0);
    expect(readSummary(runDir)).toMatchObject({
      status: 'succeeded',
      planning: { planner: 'docker-simulated' },
      totals: { tasks: 6 },
    });
    // The planner's scratch directory is gone.
    expect(readdirSync(output).filter((e) => e.startsWith('.'))).toEqual([]);
  });

  it('kills the container of a task that times out, and removes it', async () => {
    const plan = writePlan([task('stuck', [], 60_000)], 1);
    const started = Date.now();
    const { code, runDir } = await dockerRun([
      '--plan',
      plan,
      '--task-timeout',
      '2s',
      '--retries',
      '0',
    ]);
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(readSummary(runDir).tasks[0]?.error).toMatch(/^timed out after 2000 ms/);
    expect(await runContainers(path.basename(runDir))).toEqual([]);
  });

  it('removes its containers when cancelled', async () => {
    const plan = writePlan([task('a', [], 30_000), task('b', [], 30_000)], 2);
    const run = await startRun(['--plan', plan]);
    await inspectRunning(run.runId);
    run.child.kill('SIGINT');
    expect((await run.done).code).toBe(130);
    expect(await runContainers(run.runId)).toEqual([]);
  });

  it('plans with the model in a container and runs on a network of your choice', async () => {
    const network = `po-test-${randomUUID().slice(0, 8)}`;
    await docker(['network', 'create', network]);
    try {
      script = (r) => {
        if (r.body?.tools?.some((t: { name: string }) => t.name === PLAN_TOOL)) {
          return {
            content: [
              toolUse(PLAN_TOOL, {
                tasks: [{ id: 'only', title: 'Only', description: 'Write it.', dependsOn: [] }],
              }),
            ],
            usage: { input_tokens: 100, output_tokens: 20 },
          };
        }
        const cwd = primaryWorkingDirectory(r);
        return cwd && toolResults(r) === 0
          ? {
              content: [
                toolUse('Write', {
                  file_path: `${cwd}/only.txt`,
                  content: 'planned in a container\n',
                }),
              ],
            }
          : { content: [text('done')] };
      };
      const run = await startRun(
        ['One file', '--real', '--docker-planner', '--docker-network', network],
        {
          ANTHROPIC_API_KEY: KEY,
          ANTHROPIC_BASE_URL: server.url,
        },
      );
      const info = await inspectRunning(run.runId);
      expect(Object.keys(info.NetworkSettings.Networks)).toEqual([network]);
      expect((await run.done).code).toBe(0);
      expect(readSummary(run.runDir).planning).toMatchObject({
        planner: 'docker-model',
        model: 'claude-sonnet-5-5',
      });
      expect(readFileSync(path.join(run.runDir, 'project/only.txt'), 'utf8')).toBe(
        'planned in a container\n',
      );
    } finally {
      await docker(['network', 'rm', network]);
    }
  });

  it("runs on the image and network a docker stack's runtimeConfig names (--backend-config)", async () => {
    const network = `po-stack-${randomUUID().slice(0, 8)}`;
    await docker(['network', 'create', network]);
    try {
      // What `pulumi stack output runtimeConfig --json` prints for a docker stack; the engine
      // cannot run here, so the component runs under Pulumi's mocks.
      const { ParallelOrchestrator } = await import('../../packages/pulumi/src/index.js');
      const { result } = await underMocks(
        'local',
        (opts) =>
          new ParallelOrchestrator(
            'po',
            { backend: 'docker', docker: { imageName: IMAGE, networkName: network } },
            opts,
          ),
      );
      const config = path.join(work, `stack-${network}.json`);
      writeFileSync(config, JSON.stringify(await resolved(result.runtimeConfig)));

      script = (r) => ({ content: [text(`done ${taskOf(r)}`)], delayMs: 1_000 });
      const plan = writePlan([task('stacked', [])], 1);
      const run = await startRun(['--plan', plan, '--real', '--backend-config', config], {
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_BASE_URL: server.url,
      });
      const info = await inspectRunning(run.runId);
      expect(Object.keys(info.NetworkSettings.Networks)).toEqual([network]);
      expect(info.Config.Image).toBe(IMAGE);
      expect((await run.done).code).toBe(0);
      expect(
        JSON.parse(readFileSync(path.join(run.runDir, 'run.json'), 'utf8')).docker,
      ).toMatchObject({
        image: IMAGE,
        network,
      });
    } finally {
      await docker(['network', 'rm', network]);
    }
  });

  it('says when the daemon cannot be reached or the image is missing, in one line', async () => {
    const unreachable = await runCli(
      ['run', 'x', '--backend', 'docker', '-o', path.join(work, 'none')],
      work,
      {
        DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      },
    );
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(
      /^error: cannot reach the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock: .*\n$/,
    );
    const missing = await runCli(
      [
        'run',
        'x',
        '--backend',
        'docker',
        '--docker-image',
        'no-such-image:1',
        '-o',
        path.join(work, 'none'),
      ],
      work,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'error: Docker image no-such-image:1 not found: build it with docker/build.sh (or pass --docker-image)\n',
    );
    expect(existsSync(path.join(work, 'none'))).toBe(false);
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    const stats = statSync(full, { throwIfNoEntry: false });
    return stats?.isDirectory() ? walk(full) : stats?.isFile() ? [full] : [];
  });
}
