import type { TaskInput } from './plans.js';

/** A check as repositories have them: Node's own test runner over the tests the tasks write. */
export const NODE_TEST = 'node --test test/*.test.mjs';

/** A test of `name` from src/<name>.mjs, for Node's test runner. */
export function nodeTest(name: string, call: string, expected: number): string {
  return [
    "import { test } from 'node:test';",
    "import assert from 'node:assert';",
    `import { ${name} } from '../src/${name}.mjs';`,
    `test('${name}', () => assert.equal(${call}, ${expected}));`,
    '',
  ].join('\n');
}

/**
 * A task adding the operation `name` (its body on `a` and `b`) with a test that `name(2, 3)` is
 * `expected`; `broken` is the body its first attempt writes instead, to fail that test.
 */
export function operation(
  name: string,
  body: string,
  expected: number,
  broken?: string,
): TaskInput {
  return {
    id: name,
    title: `add ${name}`,
    description: `export ${name} from src/${name}.mjs`,
    simulate: {
      files: {
        [`src/${name}.mjs`]: `export const ${name} = (a, b) => ${body};\n`,
        [`test/${name}.test.mjs`]: nodeTest(name, `${name}(2, 3)`, expected),
      },
      ...(broken && {
        broken: {
          attempts: 1,
          files: { [`src/${name}.mjs`]: `export const ${name} = (a, b) => ${broken};\n` },
        },
      }),
    },
  };
}
