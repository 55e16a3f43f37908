import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyProgram } from '../../packages/runtime/src/verify/command.js';
import { readTail } from '../../packages/runtime/src/verify/process.js';
import { tempDir } from '../support/tmp.js';

describe('the verify command', () => {
  it.each([
    ['npm test', 'npm'],
    ['CI=1 FORCE_COLOR=0 pnpm -s test', 'pnpm'],
    ['  make check ', 'make'],
    ['./scripts/check.sh', undefined],
    ['"$TOOL" run', undefined],
    ['(cd app && npm test)', undefined],
    ['~/bin/check', undefined],
  ])('%s starts %s, as far as can be told without a shell', (command, program) => {
    expect(verifyProgram(command)).toBe(program);
  });

  it("keeps the end of this run's output only, from a whole line", async () => {
    const file = path.join(tempDir('po-tail-'), 'verify.log');
    writeFileSync(file, 'earlier attempt\n');
    const from = 'earlier attempt\n'.length;
    writeFileSync(file, `earlier attempt\nshort\n`);
    expect(await readTail(file, from)).toBe('short\n');
    const long = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    writeFileSync(file, `earlier attempt\n${long}\n`);
    const tail = await readTail(file, from);
    expect(tail.length).toBeLessThanOrEqual(4096);
    expect(tail.startsWith('line ')).toBe(true);
    expect(tail.endsWith('line 1999\n')).toBe(true);
  });
});
