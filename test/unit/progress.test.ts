import { describe, expect, it } from 'vitest';
import { paletteFor, visibleLength } from '../../packages/runtime/src/cli/colour.js';
import { formatBar } from '../../packages/runtime/src/cli/progress.js';

const ELAPSED = 754_000; // 12m34s
const ETA = 3_725_000; // 1h02m

describe('the progress bar', () => {
  const counts = { succeeded: 123, failed: 4, blocked: 17, total: 300 };

  for (const columns of [40, 60, 80, 200]) {
    it(`fits ${columns} columns and keeps the time and the ETA`, () => {
      const line = formatBar(counts, ELAPSED, ETA, columns);
      expect([...line].length, line).toBeLessThanOrEqual(columns - 1);
      expect(line).toMatch(/ · 12m34s · ETA 1h02m$/);
      expect(line).toContain('123/300');
    });
  }

  it('gives up zero counts, then bar cells, then words, in that order', () => {
    const none = { succeeded: 5, failed: 0, blocked: 0, total: 30 };
    expect(formatBar(none, 2_000, 9_000, 200)).toBe(
      `  [${'█'.repeat(4)}${'░'.repeat(20)}] 5/30 done · 0 failed · 0 blocked · 2.0s · ETA 9.0s`,
    );
    expect(formatBar(none, 2_000, 9_000, 60)).toBe(
      `  [${'█'.repeat(4)}${'░'.repeat(20)}] 5/30 done · 2.0s · ETA 9.0s`,
    );
    expect(formatBar(counts, ELAPSED, ETA, 80)).toBe(
      `  [${'█'.repeat(6)}${'░'.repeat(6)}] 123/300 done · 4 failed · 17 blocked · 12m34s · ETA 1h02m`,
    );
    expect(formatBar(counts, ELAPSED, ETA, 60)).toBe(
      `  [${'█'.repeat(3)}${'░'.repeat(3)}] 123/300 ✓ 4 ✗ 17 ⊘ · 12m34s · ETA 1h02m`,
    );
    expect(formatBar(counts, ELAPSED, ETA, 40)).toBe('123/300 ✓ 4 ✗ 17 ⊘ · 12m34s · ETA 1h02m');
  });

  it('says the time alone once everything is done', () => {
    const all = { succeeded: 30, failed: 0, blocked: 0, total: 30 };
    expect(formatBar(all, 31_000, undefined, 60)).toBe(`  [${'█'.repeat(24)}] 30/30 done · 31.0s`);
  });

  it('colours the counts without changing what fits', () => {
    const coloured = paletteFor({
      isTTY: true,
      hasColors: () => true,
    } as unknown as NodeJS.WritableStream);
    for (const columns of [40, 60, 80]) {
      const line = formatBar(counts, ELAPSED, ETA, columns, coloured);
      expect(line).toContain('\u001b[31m');
      expect(visibleLength(line)).toBe([...formatBar(counts, ELAPSED, ETA, columns)].length);
    }
  });
});

describe('colour', () => {
  it('is off for anything but a terminal that has colours', () => {
    expect(paletteFor({ isTTY: false } as unknown as NodeJS.WritableStream).enabled).toBe(false);
    expect(
      paletteFor({ isTTY: true, hasColors: () => false } as unknown as NodeJS.WritableStream)
        .enabled,
    ).toBe(false);
    expect(
      paletteFor({ isTTY: true, hasColors: () => true } as unknown as NodeJS.WritableStream).ok(
        'done',
      ),
    ).toBe('\u001b[32mdone\u001b[39m');
  });
});
