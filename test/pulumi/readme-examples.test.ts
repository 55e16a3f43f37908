import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = path.join(ROOT, 'packages/pulumi/README.md');
/** Inside the package, so that its dependencies resolve as a user's program's would. */
const CHECK = path.join(ROOT, 'packages/pulumi/.readme-check');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

describe("the package README's examples", () => {
  test('every TypeScript block compiles as written, against the built package', () => {
    const blocks = [...readFileSync(README, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```/gm)].map(
      (match) => match[1] as string,
    );
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    rmSync(CHECK, { recursive: true, force: true });
    mkdirSync(CHECK);
    try {
      for (const [i, block] of blocks.entries())
        writeFileSync(path.join(CHECK, `block-${i + 1}.ts`), block);
      writeFileSync(
        path.join(CHECK, 'tsconfig.json'),
        JSON.stringify({
          extends: '../../../tsconfig.base.json',
          compilerOptions: { noEmit: true },
          include: ['*.ts'],
        }),
      );
      let output = '';
      try {
        execFileSync(process.execPath, [TSC, '-p', CHECK], { encoding: 'utf8' });
      } catch (error) {
        output = (error as { stdout?: string }).stdout ?? String(error);
      }
      expect(output).toBe('');
    } finally {
      rmSync(CHECK, { recursive: true, force: true });
    }
  });
});
