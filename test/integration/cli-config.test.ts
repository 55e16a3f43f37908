import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSummary, resultLine, runCli } from '../support/cli.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-config-');
let n = 0;

/** A directory of its own, with a config file in it when given one. */
function project(config?: Record<string, unknown>): string {
  const dir = path.join(work, `project-${n++}`);
  mkdirSync(dir);
  if (config)
    writeFileSync(path.join(dir, 'parallel-orchestrator.config.json'), JSON.stringify(config));
  return dir;
}

describe('options from the environment and a config file', () => {
  it('takes flags over PO_* over the file over defaults, and shows where each came from', async () => {
    const cwd = project({ executors: 2, retries: 4, simTaskMs: '10', seed: 9 });
    const env = { PO_RETRIES: '1', PO_SEED: '11' };
    const shown = await runCli(['config', '--json'], cwd, env);
    expect(shown.code, shown.stderr).toBe(0);
    const options = Object.fromEntries(
      JSON.parse(shown.stdout).map((o: { option: string }) => [o.option, o]),
    );
    expect(options['--executors']).toMatchObject({ value: 2, source: 'file', env: 'PO_EXECUTORS' });
    expect(options['--retries']).toMatchObject({ value: 1, source: 'env' });
    expect(options['--task-timeout']).toMatchObject({ source: 'default' });
    expect(options['--docker-image']).toMatchObject({ env: 'PO_DOCKER_IMAGE' });

    const run = await runCli(['run', 'Build a todo app', '--seed', '12', '--json'], cwd, env);
    expect(run.code, run.stderr).toBe(0);
    const config = readSummary(resultLine(run.stdout).runDir);
    expect(config.executorBudget).toBe(2);
    const stored = JSON.parse(
      readFileSync(path.join(resultLine(run.stdout).runDir, 'run.json'), 'utf8'),
    );
    expect(stored).toMatchObject({ executors: 2, retries: 1, seed: 12 });
  });

  it('reads --config FILE, and refuses what it cannot use in one line', async () => {
    const cwd = project();
    const file = path.join(cwd, 'team.json');
    writeFileSync(file, JSON.stringify({ executors: 3 }));
    const named = await runCli(
      ['run', 'Build it', '--config', file, '--json', '--sim-task-ms', '5'],
      cwd,
    );
    expect(named.code, named.stderr).toBe(0);
    expect(readSummary(resultLine(named.stdout).runDir).executorBudget).toBe(3);

    const cases: [Record<string, unknown> | string, NodeJS.ProcessEnv, RegExp][] = [
      [
        { executors: 0 },
        {},
        /^error: parallel-orchestrator\.config\.json: executors: expected an integer from 1 to 1000/,
      ],
      [{ nonsense: 1 }, {}, /^error: parallel-orchestrator\.config\.json: no option nonsense$/],
      ['{not json', {}, /^error: --config parallel-orchestrator\.config\.json: not JSON$/],
      [{}, { PO_TASK_TIMEOUT: 'forever' }, /^error: PO_TASK_TIMEOUT: /],
      [{}, { PO_REAL: 'maybe' }, /^error: PO_REAL: expected true or false, not "maybe"$/],
    ];
    for (const [config, env, message] of cases) {
      const dir = project();
      writeFileSync(
        path.join(dir, 'parallel-orchestrator.config.json'),
        typeof config === 'string' ? config : JSON.stringify(config),
      );
      const refused = await runCli(['run', 'x'], dir, env);
      expect(refused.code, JSON.stringify(config)).toBe(2);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr.trim()).toMatch(message);
    }
    const missing = await runCli(['run', 'x', '--config', path.join(cwd, 'none.json')], cwd);
    expect(missing.stderr.trim()).toMatch(/^error: --config .*none\.json: no such file$/);
  });
});

/** A docker stack's runtimeConfig: its backend is docker whatever --backend defaults to. */
const DOCKER_STACK = path.join(work, 'docker-stack.json');
writeFileSync(
  DOCKER_STACK,
  JSON.stringify({ version: 1, backend: 'docker', image: 'po:test', network: 'po-net' }),
);

describe('flags that do nothing in the chosen mode, help and version', () => {
  it.each([
    [['--bedrock'], 'error: --bedrock is for real runs: add --real, or leave it out'],
    [
      ['--max-budget-usd', '5'],
      'error: --max-budget-usd is for real runs: add --real, or leave it out',
    ],
    [
      ['--docker-image', 'x'],
      'error: --docker-image is for the docker backend: add --backend docker, or leave it out',
    ],
    [
      ['--batch-poll', '2s-20s', '--backend', 'docker'],
      'error: --batch-poll is for the batch backend: add --backend batch, or leave it out',
    ],
    [
      ['--backend-config', DOCKER_STACK, '--batch-poll', '2s-20s'],
      'error: --batch-poll is for the batch backend: add --backend batch, or leave it out',
    ],
  ])('run %j: exit 2, saying which mode it needs', async (flags, message) => {
    const result = await runCli(['run', 'x', ...flags], project());
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(message);
  });

  it('plan --help shows planning options only, grouped; --version prints the version', async () => {
    const help = await runCli(['plan', '--help'], work);
    expect(help.stdout).toMatch(/^Planning:$/m);
    expect(help.stdout).toMatch(/^Real mode \(with --real\):$/m);
    for (const flag of [
      '--executor-model',
      '--max-turns',
      '--backend',
      '--docker-image',
      '--verify',
    ])
      expect(help.stdout).not.toContain(flag);
    const runHelp = await runCli(['run', '--help'], work);
    expect(runHelp.stdout).toMatch(
      /^docker backend \(with --backend docker\):\n {2}--docker-image/m,
    );
    const version = await runCli(['--version'], work);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
