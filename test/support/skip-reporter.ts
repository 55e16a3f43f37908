import type { Reporter, TestCase, TestModule, Vitest } from 'vitest/node';
import type { SkipReason } from './needing.js';

/** What a skip without a reason prints; `.ci/run` fails when the output holds it. */
export const NO_REASON = 'no reason given';

/** How many file names a line lists before it counts the rest. */
const FILES_SHOWN = 3;

interface Group {
  why: string;
  tests: number;
  files: Set<string>;
}

/**
 * After the run, one line per reason a test was skipped: how many, where, why, how to enable
 * them and which REQUIRE_* makes them fail instead. The reason comes from `describeNeeding` or
 * `itNeeding` (test/support/needing.ts) or `ctx.skip(note)`; a bare `it.skip` or `skipIf` has
 * none and says so.
 */
export class SkipReporter implements Reporter {
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const lines = skipLines(testModules, this.vitest?.config.testNamePattern);
    if (lines.length === 0) return;
    const log = (line: string) => (this.vitest ? this.vitest.logger.log(line) : console.log(line));
    log('');
    log('Skipped, by reason:');
    for (const line of lines) log(`  ${line}`);
  }
}

/** The reporter's lines for these modules, most tests first. */
export function skipLines(testModules: ReadonlyArray<TestModule>, namePattern?: RegExp): string[] {
  const groups = new Map<string, Group>();
  for (const module of testModules) {
    const selectedOnly = [...module.children.allTests()].some((t) => t.options.mode === 'only');
    for (const test of module.children.allTests('skipped')) {
      const why = explain(test, selectedOnly, namePattern);
      const group = groups.get(why) ?? { why, tests: 0, files: new Set<string>() };
      group.tests += 1;
      group.files.add(module.relativeModuleId);
      groups.set(why, group);
    }
  }
  return [...groups.values()]
    .sort((a, b) => b.tests - a.tests || a.why.localeCompare(b.why))
    .map((group) => `skipped ${count(group.tests, 'test')} ${where(group.files)}: ${group.why}`);
}

/** Why one skipped test was skipped, and how to run it when something can be done. */
function explain(test: TestCase, selectedOnly: boolean, namePattern?: RegExp): string {
  const need = test.meta().skipReason;
  if (need) return withHint(need);
  const result = test.result();
  const note = result.state === 'skipped' ? result.note : undefined;
  if (note) return note;
  if (test.options.mode === 'todo') return 'marked todo';
  if (selectedOnly) return 'not selected: a test in its file is marked .only';
  if (namePattern) return `not selected by -t ${namePattern}, or skipped with no reason`;
  return `${NO_REASON} (use describeNeeding or itNeeding from test/support/needing.ts)`;
}

function withHint({ reason, enable, required }: SkipReason): string {
  return `${reason}; to run: ${enable}${required ? `; ${required}=1 fails instead` : ''}`;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function where(files: Set<string>): string {
  const names = [...files].sort();
  const shown = names.slice(0, FILES_SHOWN).join(', ');
  const more = names.length > FILES_SHOWN ? ` and ${names.length - FILES_SHOWN} more` : '';
  return `in ${shown}${more}`;
}
