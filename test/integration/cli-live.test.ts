import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import xterm from '@xterm/headless';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-tty-');
/** Window titles (OSC ... BEL) and CSI sequences: what a terminal draws nothing for. */
const [ESC, BEL] = ['\u001b', '\u0007'];
const TERMINAL_CONTROLS = new RegExp(`${ESC}\\][^${BEL}]*${BEL}|${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');

describe('live progress on a terminal', () => {
  it('shows a line per running executor and an overall bar', () => {
    // `script` (util-linux) gives the CLI a real pseudo-terminal of a known size.
    const command = `stty rows 40 cols 120; ${process.execPath} ${CLI} run 'Build a todo list app with add, delete and complete' -e 3 --sim-task-ms 300 -o ${path.join(work, 'runs')}`;
    const output = execFileSync('script', ['-qec', command, '/dev/null'], {
      cwd: work,
      encoding: 'utf8',
      // Colour (tested in cli-terminal) would split the words matched here.
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(output).toMatch(/▶ executor 0 {2}scaffold +attempt 1 {2}\d+\.\ds/);
    expect(output).toMatch(/▶ executor 2 {2}feature-[a-z]+ +attempt 1/);
    expect(output).toMatch(/\[█+░+\] 2\/8 done · 0 failed · 0 blocked · \d+\.\ds · ETA \d+\.\ds/);
    expect(output).toMatch(/\[█{24}\] 8\/8 done · 0 failed · 0 blocked/);
    expect(output).toContain('task integration succeeded');
    expect(output).toMatch(/Run succeeded: 8\/8 tasks succeeded/);
    // NO_COLOR: no colour code anywhere (cursor moves remain).
    expect(output).not.toMatch(new RegExp(`${ESC}\\[(3[0-9]|2|22)m`));
  });

  it('keeps to a terminal that shrinks: cut lines, executors summarised, no frame copies, one bar after Ctrl-C', async () => {
    const plan = path.join(work, 'twelve.json');
    writeFileSync(
      plan,
      JSON.stringify(
        planInput(
          Array.from({ length: 24 }, (_, i) =>
            task(`a-task-with-a-rather-long-name-${i}`, [], 1_500),
          ),
          12,
        ),
      ),
    );
    // The size changes mid-run; an invisible mark (a window title) says where in the output.
    const MARK = '\u001b]0;resized\u0007';
    const command = [
      'stty rows 40 cols 120',
      `${process.execPath} ${CLI} run --plan ${plan} -o ${path.join(work, 'shrunk')} & pid=$!`,
      'sleep 1.2',
      'stty rows 12 cols 60',
      'kill -WINCH $pid',
      // Marked once the CLI has had the signal: frames before it may still be 120 wide.
      'sleep 0.3',
      "printf '\\033]0;resized\\007'",
      'sleep 1.2',
      'kill -INT $pid',
      'wait $pid',
      'echo "exit=$?"',
    ].join('; ');
    const output = execFileSync('script', ['-qec', command, '/dev/null'], {
      cwd: work,
      encoding: 'utf8',
    });
    const at = output.indexOf(MARK);
    expect(at).toBeGreaterThan(0);
    // A terminal emulator replays what the CLI wrote, resized where the real one was.
    const terminal = new xterm.Terminal({
      cols: 120,
      rows: 40,
      scrollback: 10_000,
      allowProposedApi: true,
    });
    const write = (data: string) => new Promise<void>((resolve) => terminal.write(data, resolve));
    await write(output.slice(0, at).replace(/\n/g, '\r\n'));
    terminal.resize(60, 12);
    await write(output.slice(at).replace(/\n/g, '\r\n'));
    const buffer = terminal.buffer.active;
    const lines = Array.from({ length: buffer.length }, (_, i) => buffer.getLine(i));
    const texts = lines.map((line) => line?.translateToString(true) ?? '');
    // Frames were redrawn in place: no executor line was left behind twice (a frame taller than
    // the window leaves a copy at every redraw), and the last frame went with Ctrl-C, its bar once.
    const executorLines = texts.filter((t) => t.includes('▶ executor'));
    expect(executorLines.length).toBeLessThan(24);
    expect(new Set(executorLines).size).toBe(executorLines.length);
    const bars = texts.flatMap((t, i) => (/\] \d+\/24 done/.test(t) ? [i] : []));
    expect(bars).toHaveLength(1);
    const cancelled = texts.findIndex((t) => t.startsWith('Run cancelled'));
    expect(texts.slice((bars[0] as number) + 1, cancelled).every((t) => t.trim() === '')).toBe(
      true,
    );
    expect(output).toContain('exit=130');
    // Every frame line drawn after the resize fits the new width: cut, never wrapped.
    const drawn = output
      .slice(at)
      .replace(TERMINAL_CONTROLS, '')
      .split('\n')
      .filter(
        (line) =>
          line.includes('▶ executor') ||
          line.includes(' more executor') ||
          /\] \d+\/24 done/.test(line),
      );
    expect(drawn.length).toBeGreaterThan(10);
    for (const line of drawn) expect([...line.trim()].length, line).toBeLessThanOrEqual(59);
    expect(drawn.map((line) => line.trim())).toContain('… 3 more executors running');
  });
});
