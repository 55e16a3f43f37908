import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
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
    'a Batch stack config, which this version cannot run',
    ['run', 'x', '--backend-config', file('batch.json', JSON.stringify(BATCH_CONFIG))],
    /the backend config is for AWS Batch, which this version cannot run yet/,
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
