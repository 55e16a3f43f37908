import { createHash, randomUUID } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readSummary, resultLine, runCli } from '../support/cli.js';
import { describeDocker, IMAGE } from '../support/docker.js';
import { gitOut } from '../support/git.js';
import { bash, expectIntegrity, innocent, lastConversation, scripted } from '../support/hostile.js';
import { makeOfflineJsRepo } from '../support/js-repo.js';
import {
  type ModelServer,
  type RecordedRequest,
  type Reply,
  startModelServer,
} from '../support/model-server.js';
import { planInput, type TaskInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

/**
 * Prompt-injected agents on the docker backend: the real `claude` in the project's image, doing
 * from inside its container what an attacker would, against the scripted Messages API.
 */

const work = tempDir('po-hostile-docker-');
const KEY = `sk-ant-api03-HOSTILE-DOCKER-${randomUUID()}`;
/** A host path a planted script would touch if the host ran it (root, here). */
const MARKER = path.join(work, 'planted-script-ran');
/** A host path an agent aims a link at, for the host to write through. */
const VICTIM = path.join(work, 'victim.json');

let server: ModelServer;
let script: (request: RecordedRequest) => Reply;

beforeAll(async () => {
  server = await startModelServer((request) => script(request));
});
afterAll(() => server.close());

async function hostileRun(tasks: TaskInput[], flags: string[] = []) {
  const plan = path.join(work, `plan-${randomUUID()}.json`);
  writeFileSync(plan, JSON.stringify(planInput(tasks, 1)));
  const result = await runCli(
    [
      'run',
      '--real',
      '--backend',
      'docker',
      '--plan',
      plan,
      '-o',
      path.join(work, 'runs'),
      '--json',
      ...flags,
    ],
    work,
    {
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: server.url,
      HOME: path.join(work, 'home'),
      // The image under test (PO_TEST_IMAGE), which the run would not otherwise use.
      PO_DOCKER_IMAGE: IMAGE,
    },
  );
  return { ...result, runDir: result.stdout.trim() ? resultLine(result.stdout).runDir : '' };
}

describeDocker('a hostile agent in a container', () => {
  it('cannot make the host run its git config or hooks by replacing /workspace/.git', async () => {
    const evil = `#!/bin/sh\\ntouch ${MARKER}\\n`;
    script = scripted(({ taskId, cwd }) =>
      taskId === 'escaper'
        ? [
            bash(
              [
                `printf '${evil}' > /workspace/evil.sh && chmod +x /workspace/evil.sh`,
                // A repository of its own as /workspace/.git (the image has no git: by hand).
                'for g in /workspace/.git /workspace/.hidden-git; do rm -rf $g; mkdir -p $g/hooks $g/objects $g/refs/heads; echo "ref: refs/heads/main" > $g/HEAD; printf "[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = ./evil.sh\\n\\thooksPath = ./$(basename $g)/hooks\\n" > $g/config; for h in pre-commit post-commit post-checkout reference-transaction post-index-change; do cp /workspace/evil.sh $g/hooks/$h; done; done',
                // A nested repository found through a gitfile.
                'mkdir -p /workspace/lib && echo "gitdir: /workspace/.hidden-git" > /workspace/lib/.git',
                'ls -la /workspace /workspace/.git && cat /workspace/.git/config',
              ].join(' && '),
            ),
            ...innocent(cwd, taskId),
          ]
        : innocent(cwd, taskId),
    );
    const run = await hostileRun([
      task('escaper', [], undefined, { priority: 1 }),
      task('after-one'),
      task('after-two'),
    ]);
    expect(lastConversation(server, 'escaper')).toContain('fsmonitor = ./evil.sh');
    expect(run.code).toBe(0);
    expect(existsSync(MARKER)).toBe(false);
    const summary = expectIntegrity(run.runDir, [KEY]);
    expect(summary.totals.succeeded).toBe(3);
    const files = gitOut(path.join(run.runDir, 'project'), ['ls-tree', '-r', 'main']);
    expect(files).not.toMatch(/160000|\.git\//);
    expect(readFileSync(path.join(run.runDir, 'tasks/escaper/executor.log'), 'utf8')).toMatch(
      /removed what git must not read from the workspace: .*\.git/,
    );
  });

  it('cannot make the host write or read through links it plants in /output', async () => {
    script = scripted(() => [
      bash(
        `ln -sf ${VICTIM} /output/result.json; ln -sf /dev/zero /output/transcript.jsonl; ln -sf /etc/shadow /output/outcome.json; ls -la /output`,
      ),
    ]);
    const run = await hostileRun([task('linker')]);
    expect(lastConversation(server, 'linker')).toContain('outcome.json -> /etc/shadow');
    expect(run.code).toBe(1);
    expect(existsSync(VICTIM)).toBe(false);
    const result = path.join(run.runDir, 'tasks/linker/result.json');
    expect(lstatSync(result).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(result, 'utf8'))).toMatchObject({ status: 'failed' });
    const [linker] = expectIntegrity(run.runDir, [KEY]).tasks;
    expect(linker?.error).toMatch(/^the container's output: \S+ is a symlink; not followed$/);
    expect(existsSync(path.join(run.runDir, 'tasks/linker/transcript.jsonl'))).toBe(false);
  });

  it('holds no credential and no network; the token it can read is caught in its commit', async () => {
    script = scripted(() => [
      bash(
        `env > env.txt; cat /run/secrets/MODEL_PROXY_TOKEN > token.txt; getent hosts host.docker.internal || echo no-dns; node -e "require('net').connect(80, '1.1.1.1').on('error', () => console.log('no-net')).on('connect', () => console.log('NETWORK'))"; cat env.txt`,
      ),
    ]);
    const run = await hostileRun([task('thief')]);
    expect(run.code).toBe(1);
    const seen = lastConversation(server, 'thief');
    expect(seen).toContain('ANTHROPIC_UNIX_SOCKET=/run/model-proxy/model.sock');
    expect(seen).toContain('no-dns');
    expect(seen).toContain('no-net');
    expect(seen).not.toContain(KEY);
    expect(server.requests.some((r) => r.headers['x-api-key'] === KEY)).toBe(true);
    const [thief] = readSummary(run.runDir).tasks;
    expect(thief?.error).toMatch(
      /^(env|token)\.txt contains the value of the model proxy token, a secret handed to agents/,
    );
    const token = /ANTHROPIC_BASE_URL=http:\/\/model-proxy\/([A-Za-z0-9_-]{43})/.exec(seen)?.[1];
    expect(token).toBeDefined();
    expectIntegrity(run.runDir, [KEY, token as string]);
  });

  it('cannot lower what it spent by rewriting its outcome: the proxy counted it', async () => {
    // The last writer of /output/outcome.json wins: a process it leaves behind keeps writing one.
    const forged = JSON.stringify({
      status: 'succeeded',
      usage: {
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
        costUsd: 0,
      },
    });
    script = (request) => ({
      ...scripted(({ cwd, taskId }) => [
        bash(
          `nohup sh -c 'while :; do echo '"'"'${forged}'"'"' > /output/outcome.json; sleep 0.01; done' >/dev/null 2>&1 & echo forging`,
        ),
        ...innocent(cwd, taskId),
      ])(request),
      usage: { input_tokens: 1_000, output_tokens: 500 },
    });
    const run = await hostileRun([task('forger')]);
    expect(lastConversation(server, 'forger')).toContain('forging'); // the attack ran
    const [forger] = expectIntegrity(run.runDir, [KEY]).tasks;
    // Every call of the attempt answered 500 tokens out: what was recorded is that, priced.
    expect(forger?.usage?.outputTokens).toBeGreaterThanOrEqual(1_000);
    expect(forger?.usage?.outputTokens ? forger.usage.outputTokens % 500 : -1).toBe(0);
    expect(forger?.usage?.costUsd).toBeGreaterThan(0);
  });

  it('cannot fill the host disk: its workspace and output are a disk of their own', async () => {
    script = scripted(({ cwd, taskId }) => [
      bash(
        'head -c 300M /dev/zero > /workspace/big.bin; echo "disk=$?"; head -c 300M /dev/zero > /output/big.bin; echo "output=$?"',
      ),
      ...innocent(cwd, taskId),
    ]);
    const run = await hostileRun([task('filler')], ['--docker-disk', '128m']);
    const seen = lastConversation(server, 'filler');
    expect(seen).toMatch(/^disk=[1-9]\d*$/m);
    expect(seen).toMatch(/^output=[1-9]\d*$/m);
    expect(run.code).toBe(1);
    const [filler] = expectIntegrity(run.runDir, [KEY]).tasks;
    expect(filler?.error).toBe('the agent filled its disk of 128 MiB');
    expect(readFileSync(path.join(run.runDir, 'orchestrator.log'), 'utf8')).toContain(
      'limits: disk 128 MiB per container: a file system per slot',
    );
  });
});

/** Every entry under `dir`: its path, mode and content's sha256 (a link's target). */
function treeListing(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix))
    .sort()
    .flatMap((name) => {
      const rel = path.join(prefix, name);
      const stats = lstatSync(path.join(dir, rel));
      const mode = stats.mode.toString(8);
      if (stats.isDirectory()) return [`${rel}/ ${mode}`, ...treeListing(dir, rel)];
      const content = stats.isSymbolicLink()
        ? readlinkSync(path.join(dir, rel))
        : createHash('sha256')
            .update(readFileSync(path.join(dir, rel)))
            .digest('hex');
      return [`${rel} ${mode} ${content}`];
    });
}

describeDocker('a prepared environment against hostile agents and checks', () => {
  const cache = path.join(work, 'cache');
  /** What both attacks try: overwrite the dependency, delete it all, write into a hole. */
  const ATTACK = [
    'echo pwned > node_modules/tiny-dep/index.js; echo "write=$?"',
    'rm -rf node_modules 2>&1 | tail -1; ls node_modules/tiny-dep/index.js && echo "rm=kept"',
    'echo mine > node_modules/.cache/mine; echo "hole=$?"',
  ].join('\n');

  /** The checking task's test, for Node's runner. */
  const CHECKER_TEST = [
    "const assert = require('node:assert');",
    "const test = require('node:test');",
    "test('checker', () => assert.strictEqual(require('tiny-dep').double(2), 4));",
    '',
  ].join('\n');

  it('cannot change node_modules: an agent and a --verify script get read-only errors, and the cache is as prepared', async () => {
    const repo = await makeOfflineJsRepo(work);
    const flags = (check: string) => [
      '--repo',
      repo.dir,
      '--docker-image',
      IMAGE,
      '--setup',
      repo.setup,
      '--verify',
      check,
      '--cache-dir',
      cache,
    ];
    // An agent (the real claude in its container) attacks the environment bound over its workspace.
    script = scripted(({ cwd, taskId }) => [bash(ATTACK), ...innocent(cwd, taskId)]);
    const first = await hostileRun([task('vandal')], flags(repo.check));
    const seen = lastConversation(server, 'vandal');
    expect(seen).toMatch(/Read-only file system/);
    expect(seen).toMatch(/^write=[1-9]\d*$/m);
    expect(seen).toMatch(/^rm=kept$/m);
    expect(seen).toMatch(/^hole=0$/m); // its own tmpfs, not the cache
    expect(first.code, first.stderr).toBe(0);
    const summary = expectIntegrity(first.runDir, [KEY]);
    expect(summary.environment).toMatchObject({ cached: false, paths: ['node_modules/'] });
    const tree = path.join(cache, 'environments', summary.environment?.key ?? '', 'tree');
    expect(readFileSync(path.join(tree, 'node_modules/tiny-dep/index.js'), 'utf8')).toBe(
      'exports.double = (n) => n * 2;\n',
    );
    expect(readdirSync(path.join(tree, 'node_modules/.cache'))).toEqual([]);
    const before = treeListing(tree);

    // A check the work brings runs the same attack in every --verify container (simulated agent).
    const plan = path.join(work, `plan-${randomUUID()}.json`);
    writeFileSync(
      plan,
      JSON.stringify(
        planInput(
          [
            task('checker', [], undefined, {
              simulate: {
                files: { 'check.sh': ATTACK, 'test/checker.test.js': CHECKER_TEST },
              },
            }),
          ],
          1,
        ),
      ),
    );
    const second = await runCli(
      [
        'run',
        '--backend',
        'docker',
        '--plan',
        plan,
        '-o',
        path.join(work, 'runs'),
        '--json',
        ...flags(`if [ -f check.sh ]; then sh check.sh; fi; ${repo.check}`),
      ],
      work,
    );
    expect(second.code, second.stderr).toBe(0);
    const runDir = resultLine(second.stdout).runDir;
    expect(readSummary(runDir).environment).toMatchObject({ cached: true });
    const checked = readFileSync(path.join(runDir, 'tasks/checker/verify.log'), 'utf8');
    expect(checked).toMatch(/Read-only file system/);
    expect(checked).toMatch(/^write=[1-9]\d*$/m);
    expect(checked).toMatch(/^rm=kept$/m);
    expect(readFileSync(path.join(runDir, 'verify.log'), 'utf8')).toMatch(/^rm=kept$/m);
    expect(treeListing(tree)).toEqual(before);
  });
});
