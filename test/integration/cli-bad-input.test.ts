import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../support/cli.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-bad-');
const file = (name: string, content: string) => {
  const full = path.join(work, name);
  writeFileSync(full, content);
  return full;
};
/** A valid Batch stack output, as the Pulumi component writes it. */
const BATCH_CONFIG = {
  version: 1,
  backend: 'batch',
  region: 'us-east-1',
  jobQueueArn: 'arn:aws:batch:us-east-1:123456789012:job-queue/po',
  jobDefinitionArn: 'arn:aws:batch:us-east-1:123456789012:job-definition/po:1',
  bucketName: 'po-state',
  runsPrefix: 'runs/',
  logGroupName: '/aws/batch/po',
  imageRef: `123456789012.dkr.ecr.us-east-1.amazonaws.com/po@sha256:${'a'.repeat(64)}`,
  maxVcpus: 16,
  vcpusPerJob: 2,
  model: { provider: 'bedrock', region: 'us-east-1', model: 'us.anthropic.claude-sonnet-5-5' },
};
const notARun = path.join(work, 'not-a-run');
mkdirSync(notARun);

const cases: [string, string[], RegExp][] = [
  ['no requirements', ['run'], /no requirements/],
  ['empty requirements', ['run', ''], /requirements are empty/],
  ['whitespace requirements', ['run', '  \n\t '], /requirements are empty/],
  [
    'unreadable --file',
    ['run', '--file', path.join(work, 'missing.md')],
    /cannot read requirements file .*missing\.md: ENOENT/,
  ],
  [
    'empty --file',
    ['run', '--file', file('blank.md', '\n  \n')],
    /requirements in .*blank\.md are empty/,
  ],
  [
    'M below 1',
    ['run', 'x', '--executors', '0'],
    /--executors <M>' argument '0' is invalid.*1 to 1000/,
  ],
  ['M above 1000', ['run', 'x', '-e', '1001'], /argument '1001' is invalid/],
  ['M not a number', ['run', 'x', '-e', 'many'], /argument 'many' is invalid/],
  [
    'unknown backend',
    ['run', 'x', '--backend', 'k8s'],
    /argument 'k8s' is invalid. unknown backend; choose from: local/,
  ],
  [
    '--real without credentials',
    ['run', 'x', '--real'],
    /no model credentials: set ANTHROPIC_API_KEY/,
  ],
  [
    'bad duration',
    ['run', 'x', '--task-timeout', 'forever'],
    /--task-timeout <duration>' argument 'forever' is invalid/,
  ],
  [
    'bad simulated range',
    ['run', 'x', '--sim-task-ms', '9-1'],
    /--sim-task-ms <ms\|min-max>' argument '9-1' is invalid/,
  ],
  [
    'plan file not JSON',
    ['run', '--plan', file('bad.json', '{nope')],
    /plan file .*bad\.json is not JSON/,
  ],
  [
    'plan with a cycle',
    [
      'run',
      '--plan',
      file('cycle.json', JSON.stringify(planInput([task('a', ['b']), task('b', ['a'])]))),
    ],
    /invalid plan in .*cycle\.json: dependency cycle: (a → b → a|b → a → b)/,
  ],
  [
    'plan with an unknown dependency',
    ['run', '--plan', file('unknown.json', JSON.stringify(planInput([task('a', ['ghost'])])))],
    /task "a" depends on unknown task "ghost"/,
  ],
  [
    'plan and requirements together',
    ['run', 'x', '--plan', path.join(work, 'cycle.json')],
    /--plan replaces the requirements/,
  ],
  ['resume a missing directory', ['resume', path.join(work, 'nowhere')], /nowhere does not exist/],
  [
    'resume a directory that is not a run',
    ['resume', notARun],
    /is not a run directory \(missing run\.json, execution_plan\.json, events\.jsonl\)/,
  ],
  ['status of a directory that is not a run', ['status', notARun], /is not a run directory/],
  [
    'a backend config that is not JSON',
    ['run', 'x', '--backend-config', file('stack.json', 'pulumi: not json')],
    /backend config .*stack\.json is not JSON/,
  ],
  [
    'a backend config missing a field',
    [
      'run',
      'x',
      '--backend-config',
      file('no-network.json', JSON.stringify({ version: 1, backend: 'docker', image: 'po:dev' })),
    ],
    /invalid backend config in .*no-network\.json: network: /,
  ],
  [
    'a backend config of an unknown backend',
    [
      'run',
      'x',
      '--backend-config',
      file('k8s.json', JSON.stringify({ version: 1, backend: 'k8s' })),
    ],
    /invalid backend config in .*k8s\.json: backend: /,
  ],
  [
    'a Batch stack config with no AWS credentials',
    ['run', 'x', '--backend-config', file('batch.json', JSON.stringify(BATCH_CONFIG))],
    /no AWS credentials for the batch backend in us-east-1/,
  ],
  [
    'a Batch sandbox config whose sandbox is not running',
    [
      'run',
      'x',
      '--backend-config',
      file(
        'sandbox.json',
        JSON.stringify({
          ...BATCH_CONFIG,
          sandbox: {
            batch: 'http://127.0.0.1:9/',
            s3: 'http://127.0.0.1:9/',
            logs: 'http://127.0.0.1:9/',
            credentials: { accessKeyId: 'AKIASANDBOX', secretAccessKey: 'not-running' },
          },
        }),
      ),
    ],
    /cannot reach AWS Batch in us-east-1: .*ECONNREFUSED/,
  ],
  [
    'a Batch stack whose jobs need more vCPUs than its compute environment has',
    [
      'run',
      'x',
      '--backend-config',
      file('too-big.json', JSON.stringify({ ...BATCH_CONFIG, maxVcpus: 2, vcpusPerJob: 4 })),
    ],
    /the stack's jobs need 4 vCPUs and its compute environment has at most 2: no job could ever start/,
  ],
  [
    'the batch backend with nothing to submit to',
    ['run', 'x', '--backend', 'batch', '--batch-region', 'us-east-1'],
    /the batch backend needs --backend-config FILE .* or --batch-job-queue, --batch-job-definition, --batch-bucket, --batch-log-group/,
  ],
  [
    'a backend config that contradicts --backend',
    [
      'run',
      'x',
      '--backend',
      'local',
      '--backend-config',
      file(
        'docker.json',
        JSON.stringify({ version: 1, backend: 'docker', image: 'po:dev', network: 'n' }),
      ),
    ],
    /--backend local contradicts the backend config \(docker\)/,
  ],
  [
    'a device as the plan',
    ['run', '--plan', '/dev/zero'],
    /plan file \/dev\/zero is not a regular file or a pipe/,
  ],
  [
    'a device as the requirements',
    ['run', '--file', '/dev/urandom'],
    /requirements file \/dev\/urandom is not a regular file or a pipe/,
  ],
  ['a directory as the requirements', ['run', '--file', work], /is not a regular file or a pipe/],
  [
    'a task timeout of 0',
    ['run', 'x', '--task-timeout', '0'],
    /argument '0' is invalid. expected a duration from 100ms to 7d/,
  ],
  [
    'a task timeout past what a timer holds',
    ['run', 'x', '--task-timeout', '99999999h'],
    /argument '99999999h' is invalid. expected a duration from 100ms to 7d/,
  ],
  [
    'a retry delay over an hour',
    ['run', 'x', '--retry-delay', '2h'],
    /argument '2h' is invalid. expected a duration from 0s to 1h/,
  ],
  [
    'a file size limit of 0',
    ['run', 'x', '--max-file-size', '0'],
    /argument '0' is invalid. expected a size from 1k to 1024g/,
  ],
  [
    'an unknown agent network',
    ['run', 'x', '--agent-network', 'wide'],
    /argument 'wide' is invalid. choose from: none, open/,
  ],
  ['unknown command', ['launch'], /unknown command 'launch'/],
  ['unknown option', ['run', 'x', '--turbo'], /unknown option '--turbo'/],
];

describe('bad input', () => {
  it.each(cases)('%s: one line, exit 2, nothing written', async (_, args, message) => {
    const output = path.join(work, `out-${Math.random().toString(36).slice(2)}`);
    const { code, stdout, stderr } = await runCli(
      args[0] === 'run' ? [...args, '--output', output] : args,
      work,
    );
    expect(code).toBe(2);
    const lines = stderr.trimEnd().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe('');
    expect(readdirSync(work).filter((name) => name.startsWith('out-'))).toEqual([]);
  });
});

/** Expects one `error:` line matching `message`, exit `code`, and no stack trace. */
function expectOneLine(
  result: { code: number | null; stderr: string },
  message: RegExp,
  code = 2,
): void {
  expect(result.code, result.stderr).toBe(code);
  expect(result.stderr).toMatch(/^error: [^\n]*\n$/);
  expect(result.stderr).toMatch(message);
}

describe('bad output directories and environments', () => {
  const aFile = file('a-file', 'not a directory');

  it.each([
    ['/proc/x', /cannot write runs to \/proc\/x: \/proc is on proc/],
    ['/sys/kernel/x', /cannot write runs to \/sys\/kernel\/x: \/sys\/kernel is on sysfs/],
    ['/dev/shm/runs', /cannot write runs to \/dev\/shm\/runs: it is under \/dev/],
    [aFile, /a-file is not a directory/],
    [path.join(aFile, 'sub'), /a-file is not a directory/],
  ])('refuses --output %s before touching it', async (output, message) => {
    const result = await runCli(['run', 'x', '--output', output], work);
    expectOneLine(result, message);
  });

  /** The CLI in a mount namespace of its own, with a small tmpfs at `dir` (unprivileged too). */
  const inTmpfs = (options: string, dir: string, args: string[], before = 'true') =>
    runCli(
      [
        '-c',
        `mkdir -p ${dir} && mount -t tmpfs -o ${options} tmpfs ${dir} && ${before} && exec "$0" "$@"`,
        process.execPath,
        CLI,
        ...args,
      ],
      work,
      {},
      'unshare',
      ['--user', '--map-root-user', '--mount', 'sh'],
    );

  it('says in one line that the output is read-only or the disk full, and exits 2', async () => {
    const readOnly = path.join(work, 'ro');
    expectOneLine(
      await inTmpfs('ro,size=1m', readOnly, ['run', 'x', '-o', path.join(readOnly, 'runs')]),
      /cannot write runs to .*ro\/runs: the file system is read-only/,
    );
    const full = path.join(work, 'full');
    expectOneLine(
      await inTmpfs(
        'size=64k',
        full,
        ['run', 'Build a thing', '-o', path.join(full, 'runs')],
        `head -c 60k /dev/zero > ${full}/fill 2>/dev/null; true`,
      ),
      /^error: cannot (set up a run in|write runs to) .*full\/runs: no space left on the device/,
    );
  });

  it('says git is missing before doing anything', async () => {
    const bin = path.join(work, 'bin-node-only');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const result = await runCli(['run', 'x', '-o', path.join(work, 'no-git')], work, { PATH: bin });
    expectOneLine(result, /git is not available \(ENOENT\): runs need git 2\.38 or newer on PATH/);
    expect(readdirSync(work)).not.toContain('no-git');
  });

  it('refuses a key given both as a variable and as a file', async () => {
    const result = await runCli(['run', 'x', '--real', '-o', path.join(work, 'both')], work, {
      ANTHROPIC_API_KEY: 'sk-ant-one',
      ANTHROPIC_API_KEY_FILE: file('key', 'sk-ant-two'),
    });
    expectOneLine(
      result,
      /both ANTHROPIC_API_KEY and ANTHROPIC_API_KEY_FILE are set: unset the one not to use/,
    );
  });

  it("refuses, before any job, an executor model a Bedrock stack's job role may not invoke", async () => {
    // Endpoints where nothing listens: a run that gets past the model check stops at the queue.
    const stack = file(
      'bedrock-stack.json',
      JSON.stringify({
        ...BATCH_CONFIG,
        bedrockModels: ['us.anthropic.claude-sonnet-5-5', 'us.anthropic.claude-haiku-5-5'],
        sandbox: {
          batch: 'http://127.0.0.1:9/',
          s3: 'http://127.0.0.1:9/',
          logs: 'http://127.0.0.1:9/',
          credentials: { accessKeyId: 'AKIASANDBOX', secretAccessKey: 'sandbox-secret' },
        },
      }),
    );
    const bedrock = {
      USE_BEDROCK: '1',
      AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEEXAMPLE01',
      AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
      // Any file stands in for Claude Code: nothing runs it before the check.
      CLAUDE_CODE_PATH: process.execPath,
    };
    const run = (model: string) =>
      runCli(
        ['run', 'x', '--real', '--executor-model', model, '--backend-config', stack],
        work,
        bedrock,
      );
    expectOneLine(
      await run('anthropic.claude-opus-9-9'),
      /executor model anthropic\.claude-opus-9-9 is not one the stack's job role may invoke on Bedrock: use us\.anthropic\.claude-sonnet-5-5, us\.anthropic\.claude-haiku-5-5/,
    );
    expectOneLine(await run('us.anthropic.claude-haiku-5-5'), /cannot reach AWS Batch/);
  });

  it('reads a pipe only up to the limit', async () => {
    const result = await runCli(
      [
        '-c',
        `head -c 900000 /dev/zero | tr '\\0' a | exec "$0" "$@"`,
        process.execPath,
        CLI,
        'plan',
        '--file',
        '/dev/stdin',
      ],
      work,
      {},
      'sh',
      [],
    );
    expectOneLine(result, /requirements file \/dev\/stdin is larger than 781\.3 KiB/);
  });
});
