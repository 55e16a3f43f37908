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
      [
        { executor: 3 },
        {},
        /^error: parallel-orchestrator\.config\.json: no option executor; did you mean executors\?$/,
      ],
      [
        { config: 'other.json' },
        {},
        /^error: parallel-orchestrator\.config\.json: no option config/,
      ],
      [
        {},
        { PO_EXECUTOR: '3' },
        /^error: PO_EXECUTOR is not a known variable; did you mean PO_EXECUTORS\?$/,
      ],
      [
        {},
        { PO_DOCKER_IMAGES: 'x' },
        /^error: PO_DOCKER_IMAGES is not a known variable; did you mean PO_DOCKER_IMAGE\?$/,
      ],
      [
        {},
        { PO_FOO: '1' },
        /^error: PO_FOO is not a known variable: PO_ and a run option in capitals, such as PO_EXECUTORS$/,
      ],
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

  it("refuses a PO_ typo in every command, and takes the suites' PO_TEST_ and PO_BENCH_ names", async () => {
    const cwd = project();
    for (const args of [['runs'], ['status', 'latest'], ['config'], ['plan', 'x']]) {
      const refused = await runCli(args, cwd, { PO_EXECUTOR: '3' });
      expect(refused.code, args.join(' ')).toBe(2);
      // One line, no stack trace.
      expect(refused.stderr).toBe(
        'error: PO_EXECUTOR is not a known variable; did you mean PO_EXECUTORS?\n',
      );
    }
    // The suites' names, and the container contract's, which have no PO_.
    const reserved = {
      PO_TEST_CLI: 'x',
      PO_TEST_IMAGE: 'x',
      PO_BENCH_USAGE_FILE: 'x',
      TASK_ID: 'x',
      EXECUTOR_ID: '1',
      S3_PREFIX: 'x',
    };
    const run = await runCli(['run', 'x', '--sim-task-ms', '5'], cwd, reserved);
    expect(run.code, run.stderr).toBe(0);
  });

  it('expands a leading ~ of paths from the file and the environment to HOME', async () => {
    const home = path.join(work, `home-${n++}`);
    mkdirSync(home);
    writeFileSync(path.join(home, 'team.json'), JSON.stringify({ output: '~/x', seed: 3 }));
    const cwd = project({ output: '~/x' });
    const fromFile = await runCli(['run', 'x', '--sim-task-ms', '5', '--json'], cwd, {
      HOME: home,
    });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(path.dirname(resultLine(fromFile.stdout).runDir)).toBe(path.join(home, 'x'));
    // latest looks where the runs went.
    expect((await runCli(['status', 'latest'], cwd, { HOME: home })).stdout).toContain(
      path.basename(resultLine(fromFile.stdout).runDir),
    );
    // PO_CONFIG names the file, itself under ~; PO_OUTPUT wins over the file's.
    const env = { HOME: home, PO_CONFIG: '~/team.json', PO_OUTPUT: '~/y' };
    const fromEnv = await runCli(['run', 'x', '--sim-task-ms', '5', '--json'], project(), env);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(path.dirname(resultLine(fromEnv.stdout).runDir)).toBe(path.join(home, 'y'));
    const stored = JSON.parse(
      readFileSync(path.join(resultLine(fromEnv.stdout).runDir, 'run.json'), 'utf8'),
    );
    expect(stored.seed).toBe(3);
    const plan = await runCli(['run'], project(), { HOME: home, PO_PLAN: '~/none.json' });
    expect(plan.stderr.trim()).toBe(`error: cannot read plan file ${home}/none.json: ENOENT`);
  });

  it('config shows values as flags take them, grouped as --help groups them, the chosen backend only', async () => {
    const cwd = project({ localMemory: '2147483648' });
    const shown = await runCli(['config'], cwd, { PO_TASK_TIMEOUT: '1800', PO_RETRY_DELAY: '90' });
    expect(shown.code, shown.stderr).toBe(0);
    const lines = shown.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^OPTION +VALUE +FROM +ENVIRONMENT$/);
    const headings = lines.filter((line) => /^\S.*:$/.test(line));
    expect(headings).toEqual([
      'Planning:',
      'Starting from a repository:',
      'Real mode (with --real):',
      'Running:',
      'Simulation (without --real):',
      'local backend (with --backend local):',
    ]);
    const row = (option: string) => lines.find((line) => line.startsWith(`  ${option} `));
    expect(row('--task-timeout')).toMatch(/^ {2}--task-timeout +30m +env +PO_TASK_TIMEOUT$/);
    expect(row('--retry-delay')).toMatch(/ 90s +env /);
    expect(row('--local-memory')).toMatch(/ 2g +file +PO_LOCAL_MEMORY$/);
    expect(row('--max-task-size')).toMatch(/ 512m +default /);
    expect(row('--sim-task-ms')).toMatch(/ 250-1000 +default /);
    // Each option under its own group's heading.
    expect(lines.indexOf(row('--task-timeout') as string)).toBeGreaterThan(
      lines.indexOf('Running:'),
    );
    expect(row('--docker-image')).toBeUndefined();
    expect(lines.at(-1)).toBe(
      'The docker and batch backend options are left out (the backend is local): --all shows them.',
    );

    const docker = await runCli(['config'], cwd, { PO_BACKEND: 'docker', PO_DOCKER_CPUS: '1.5' });
    expect(docker.stdout).toMatch(/^ {2}--docker-cpus +1\.5 +env /m);
    expect(docker.stdout).toMatch(/^ {2}--docker-memory +4g +default /m);
    // Another backend's option shows only where it is set (here by the file).
    expect(docker.stdout).not.toContain('--local-pids');
    expect(docker.stdout).toMatch(/^ {2}--local-memory +2g +file /m);
    const all = await runCli(['config', '--all'], cwd);
    expect(all.stdout).toMatch(/^batch backend \(with --backend batch\):\n {2}--batch-region/m);

    // --json: every option, the value as the run takes it and as the flag does.
    const json = await runCli(['config', '--json'], cwd, { PO_TASK_TIMEOUT: '30m' });
    const options = JSON.parse(json.stdout) as { option: string }[];
    expect(options.find((o) => o.option === '--task-timeout')).toEqual({
      option: '--task-timeout',
      env: 'PO_TASK_TIMEOUT',
      value: 1_800_000,
      shown: '30m',
      source: 'env',
      group: 'Running:',
    });
    expect(options.some((o) => o.option === '--batch-region')).toBe(true);
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
