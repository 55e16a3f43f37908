import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { readSummary, resultLine, runCli } from '../support/cli.js';
import {
  ARM64_IMAGE,
  describeArm64,
  docker,
  runOriginalExecutorCommand,
} from '../support/docker.js';
import { planInput, task } from '../support/plans.js';
import { tempDir } from '../support/tmp.js';

/**
 * The arm64 image (the `prod` stack runs on Graviton), run under emulation on this machine: built
 * by `docker/build.sh --platform linux/arm64` from the same Dockerfile, with that platform's Node
 * and Claude Code.
 */

const work = tempDir('po-arm64-');
/** Emulated containers start slowly: Node and Claude Code run through qemu. */
const SLOW = 180_000;

describeArm64('the arm64 image', () => {
  it('is an arm64 image whose binaries run as arm64', { timeout: SLOW }, async () => {
    const label = await docker([
      'image',
      'inspect',
      '--format',
      '{{.Os}}/{{.Architecture}}',
      ARM64_IMAGE,
    ]);
    expect(label.stdout.trim()).toBe('linux/arm64');
    const run = await docker([
      'run',
      '--rm',
      ARM64_IMAGE,
      'sh',
      '-c',
      'uname -m; node -p process.arch; whoami',
    ]);
    expect(run.stdout.trim().split('\n')).toEqual(['aarch64', 'arm64', 'executor']);
    const claude = await docker(['run', '--rm', ARM64_IMAGE, 'claude', '--version'], SLOW);
    expect(claude.stdout.trim()).toMatch(/^2\.1\.\d+ \(Claude Code\)$/);
  });

  it("runs the original image's simulated executor command into /output", {
    timeout: SLOW,
  }, async () => {
    const output = mkdtempSync(path.join(work, 'output-'));
    chmodSync(output, 0o777);
    const run = await runOriginalExecutorCommand(ARM64_IMAGE, output, SLOW);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(path.join(output, 'result.json'), 'utf8'));
    expect(result).toMatchObject({ status: 'succeeded' });
    expect(result.files.length).toBeGreaterThan(0);
  });

  it('runs a task through --backend docker', { timeout: SLOW }, async () => {
    const plan = path.join(work, 'plan.json');
    writeFileSync(plan, JSON.stringify(planInput([task('calculator', [], 0)], 1)));
    const { code, stdout, stderr } = await runCli(
      [
        'run',
        '--plan',
        plan,
        '--backend',
        'docker',
        '--docker-image',
        ARM64_IMAGE,
        '-o',
        path.join(work, 'runs'),
        '--json',
      ],
      work,
    );
    expect(code, stderr).toBe(0);
    const summary = readSummary(resultLine(stdout).runDir);
    expect(summary).toMatchObject({ status: 'succeeded', backend: 'docker' });
    expect(summary.totals.succeeded).toBe(summary.totals.tasks);
  });
});
