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
