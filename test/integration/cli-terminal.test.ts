import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, readSummary, runCli, startRunIn, waitFor } from '../support/cli.js';
import { independent, planInput, task } from '../support/plans.js';
import { runInPty } from '../support/pty.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-term-');
const ROOT = path.resolve(path.dirname(CLI), '../../../..');
let count = 0;

/** Cursor moves, erasures and colours: what the text of a terminal line does not hold. */
const CONTROLS = new RegExp(`${'\u001b'}\\[[0-9;?]*[A-Za-z]`, 'g');
const COLOUR = new RegExp(`${'\u001b'}\\[(?:3[0-9]|2|22)m`);

function writePlan(tasks: ReturnType<typeof independent>, executors: number): string {
  const file = path.join(work, `plan-${count++}.json`);
  writeFileSync(file, JSON.stringify(planInput(tasks, executors)));
  return file;
}

/** The run directory under `output` (one run per output directory here). */
function runDirIn(output: string): string {
  const [entry] = readdirSync(output).filter((e) => !e.startsWith('.'));
  return path.join(output, entry as string);
}

/** Every line drawn, controls removed (a redraw starts a line with \r or cursor moves). */
const linesOf = (output: string) => output.replace(CONTROLS, '').split(/\r?\n|\r/);

/** The executor host of the CLI whose arguments name `output`. */
function hostOf(output: string): number {
  const processes = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .flatMap((m) => (m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] as string }] : []));
  const parent = (pid: number) => processes.find((p) => p.pid === pid)?.args ?? '';
  const host = processes.find((p) => p.args.includes('host.js') && parent(p.ppid).includes(output));
  if (!host) throw new Error(`no executor host for ${output}`);
  return host.pid;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Types Ctrl-C `presses` times, a second apart, once the tasks run; with `stuck`, the executor
 * host is stopped first (SIGSTOP): executors that do not stop when asked. Returns the run's exit
 * code, the text shown and its run directory.
 */
async function interrupt(command: string, output: string, presses: number, stuck: boolean) {
  let pressed = false;
  const run = await runInPty(command, {
    cwd: work,
    react: (shown, type) => {
      if (pressed || !shown.includes('▶ executor')) return;
      pressed = true;
      void (async () => {
        // Its workspace readied, each attempt is in the host.
        await sleep(1_500);
        if (stuck) process.kill(hostOf(output), 'SIGSTOP');
        for (let i = 0; i < presses; i++) {
          type('\u0003');
          await sleep(1_000);
        }
      })();
    },
  });
  return { ...run, text: linesOf(run.output).join('\n'), runDir: runDirIn(output) };
}

describe('Ctrl-C on a terminal', () => {
  const plan = writePlan(independent(12, 30_000), 3);
  const under = {
    node: (output: string) => `${process.execPath} ${CLI} run --plan ${plan} -o ${output}`,
    // pnpm forwards a Ctrl-C to the CLI, which the terminal signals too; a second press also
    // comes as pnpm's SIGTERM.
    pnpm: (output: string) => `pnpm -s -C ${ROOT} start -- run --plan ${plan} -o ${output}`,
  };
  for (const [name, command] of Object.entries(under)) {
    for (const presses of [1, 2]) {
      it(`under ${name}, pressed ${presses === 1 ? 'once' : 'twice (executors stuck)'}: the summary and report are written, exit 130`, async () => {
        const output = path.join(work, `cancel-${count++}`);
        const run = await interrupt(command(output), output, presses, presses === 2);
        expect(run.code, run.text).toBe(130);
        // Under pnpm too, each press is one: pnpm sends it again, and the second as SIGTERM,
        // which may reach the CLI before the terminal's SIGINT does.
        if (presses === 2) expect(run.text).toMatch(/SIG(INT|TERM): killing executors/);
        else expect(run.text).not.toContain('killing');
        expect(run.text).toMatch(/Run cancelled: \d+\/12 tasks succeeded/);
        expect(run.text).toContain('SIGINT: stopping executors');
        expect(readSummary(run.runDir).status).toBe('cancelled');
        expect(existsSync(path.join(run.runDir, 'report.html'))).toBe(true);
      });
    }
  }
});

describe('a second Ctrl-C', () => {
  /** The executor host, stopped (SIGSTOP): an executor that does not stop when asked. */
  async function stuckRun() {
    const output = path.join(work, `stuck-${count++}`);
    const plan = writePlan(independent(6, 30_000), 3);
    const run = await startRunIn(['run', '--plan', plan], work, output);
    await waitFor(
      () =>
        readFileSync(path.join(run.runDir, 'events.jsonl'), 'utf8').includes('task-started')
          ? true
          : undefined,
      20_000,
      'a task to start',
    );
    // Its workspace readied, each attempt is in the host.
    await sleep(1_500);
    process.kill(hostOf(output), 'SIGSTOP');
    let exited = false;
    void run.done.then(() => {
      exited = true;
    });
    return { ...run, exited: () => exited };
  }

  it('does not wait out executors that do not stop: it kills them, then writes the summary and report (exit 130)', async () => {
    const run = await stuckRun();
    run.child.kill('SIGINT');
    // The first press waits for the executors (5 s, then the host is killed).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(run.exited()).toBe(false);
    const forced = Date.now();
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(Date.now() - forced).toBeLessThan(3_000);
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('SIGINT: killing executors; writing the summary and report');
    expect(readSummary(run.runDir).status).toBe('cancelled');
    expect(existsSync(path.join(run.runDir, 'report.html'))).toBe(true);
  });

  it('counts signals 300 ms apart as one press (pnpm forwards the one the terminal sent)', async () => {
    const run = await stuckRun();
    run.child.kill('SIGINT');
    run.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(run.exited()).toBe(false);
    expect(run.child.kill('SIGINT')).toBe(true);
    expect((await run.done).code).toBe(130);
  });
});

describe('a pipe that closes', () => {
  it("ends the output, not the run: | head -1 exits with the run's code and its summary", () => {
    const output = path.join(work, `pipe-${count++}`);
    const plan = writePlan(independent(6, 50), 3);
    const shown = execFileSync(
      'bash',
      [
        '-c',
        `${process.execPath} ${CLI} run --plan ${plan} -o ${output} | head -1; echo "exit=\${PIPESTATUS[0]}"`,
      ],
      { cwd: work, encoding: 'utf8' },
    );
    expect(shown).toMatch(/^Run directory: .*\nexit=0\n$/);
    expect(readSummary(runDirIn(output)).status).toBe('succeeded');
  });
});

describe('progress after resume', () => {
  it('counts, times and estimates the whole run, in 60 columns, in colour unless NO_COLOR', async () => {
    const output = path.join(work, `resume-${count++}`);
    const plan = writePlan(independent(30, 500), 2);
    const first = await startRunIn(['run', '--plan', plan], work, output);
    await waitFor(
      () =>
        readFileSync(path.join(first.runDir, 'events.jsonl'), 'utf8').split('task-succeeded')
          .length > 10
          ? true
          : undefined,
      30_000,
      'ten tasks done',
    );
    first.child.kill('SIGTERM');
    expect((await first.done).code).toBe(130);
    const before = readSummary(first.runDir);
    const done = before.totals.succeeded;
    expect(done).toBeGreaterThanOrEqual(10);

    const resumed = await runInPty(`${process.execPath} ${CLI} resume ${first.runDir}`, {
      cols: 60,
      cwd: work,
    });
    expect(resumed.code).toBe(0);
    expect(resumed.output).toMatch(COLOUR);
    const bars = linesOf(resumed.output)
      .map((line) => line.trim())
      .filter((line) => /^(\[[█░]+\] )?\d+\/30 (done|✓)/.test(line));
    expect(bars.length).toBeGreaterThan(5);
    // The first frame counts what the interrupted session did; the last is the summary's.
    expect(bars[0]).toMatch(new RegExp(`^\\[[█░]+\\] ${done}/30 done`));
    expect(bars.at(-1)).toMatch(/^\[█+\] 30\/30 done/);
    const after = readSummary(first.runDir);
    expect(after.totals.succeeded).toBe(30);
    expect(linesOf(resumed.output).join('\n')).toMatch(/Run succeeded: 30\/30 tasks succeeded/);
    // Within 60 columns, with the time (from the run's start) and, while work remains, the ETA.
    for (const bar of bars) {
      expect([...bar].length + 2, bar).toBeLessThanOrEqual(59);
      expect(bar).toMatch(/ · [\dhms.]+( · ETA [\dhms.]+)?$/);
    }
    const elapsed = (bar: string) => {
      const [, time] = / · ([\dhms.]+)(?: · ETA|$)/.exec(bar) ?? [];
      return Number.parseFloat(time ?? 'NaN');
    };
    expect(elapsed(bars[0] as string) * 1000).toBeGreaterThanOrEqual(before.durationMs - 100);
    // The first ETA, from the tasks done before the stop, against the time the rest took
    // (measured: 7.5 s for 8.8 s; from this session's tasks alone there was none to give).
    const withEta = bars.find((bar) => bar.includes('ETA')) as string;
    expect(withEta).toMatch(new RegExp(`^\\[[█░]+\\] ${done}/30 done`));
    const eta = Number.parseFloat(/ · ETA ([\d.]+)s$/.exec(withEta)?.[1] ?? 'NaN');
    const rest = elapsed(bars.at(-1) as string) - elapsed(withEta);
    expect(Math.abs(eta - rest) / rest, `ETA ${eta}s, took ${rest}s`).toBeLessThan(0.25);

    // The same, told NO_COLOR, has no colour.
    const plain = await runInPty(`${process.execPath} ${CLI} status ${first.runDir}`, {
      cwd: work,
      env: { NO_COLOR: '1' },
    });
    expect(plain.output).toContain('succeeded');
    expect(plain.output).not.toMatch(COLOUR);
    const coloured = await runInPty(`${process.execPath} ${CLI} status ${first.runDir}`, {
      cwd: work,
    });
    expect(coloured.output).toMatch(COLOUR);
  });
});

describe('the summary', () => {
  it('says each failed task in a line, and the tasks it blocked in one line per cause', async () => {
    const fail = { simulate: { durationMs: 0, failAttempts: 9, failure: 'permanent' as const } };
    const plan = path.join(work, `blocked-${count++}.json`);
    writeFileSync(
      plan,
      JSON.stringify(
        planInput(
          [
            { ...task('api-auth', []), ...fail },
            ...Array.from({ length: 9 }, (_, i) => task(`b${i}`, ['api-auth'], 0)),
            { ...task('db', []), ...fail },
            task('c0', ['db'], 0),
            task('free', [], 0),
          ],
          3,
        ),
      ),
    );
    const output = path.join(work, `blocked-${count++}`);
    const run = await runCli(['run', '--plan', plan, '--retries', '0', '-o', output], work);
    expect(run.code).toBe(1);
    const lines = run.stdout.slice(run.stdout.indexOf('Run failed')).split('\n');
    expect(lines.filter((line) => line.includes('blocked by'))).toEqual([
      '  9 blocked by api-auth: b0, b1, b2, b3, b4 … (+4)',
      '  1 blocked by db: c0',
    ]);
    expect(lines.filter((line) => /^ {2}\S+: failed: /.test(line))).toHaveLength(2);
  });
});
