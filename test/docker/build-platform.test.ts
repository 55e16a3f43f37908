import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeDocker, docker } from '../support/docker.js';

/**
 * The Pulumi component builds each platform with BuildKit, which runs a stage on the target's
 * platform unless its FROM names another: a Linux runner without binfmt cannot build arm64 at all
 * when the install and compile run under emulation, and a preview waits for them. So the build
 * stage runs on BUILDPLATFORM and installs the target's (TARGETARCH) Claude Code, and only the
 * runtime stage is the target's. BuildKit cannot run here (no buildx), and the classic builder
 * refuses an image whose stages differ in platform; it builds the build stage with the argument
 * BuildKit gives it for another target (TARGETARCH), and the stages' platforms are read from the
 * Dockerfile, as BuildKit reads them
 * (https://docs.docker.com/reference/dockerfile/#automatic-platform-args-in-the-global-scope).
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const TAG = 'parallel-orchestrator-build:build-platform-test';
const NATIVE = process.arch === 'arm64' ? 'arm64' : 'amd64';
const TARGET = NATIVE === 'arm64' ? 'amd64' : 'arm64';
/** ELF e_machine of each architecture's binaries. */
const ELF_MACHINE = { amd64: 62, arm64: 183 } as const;

afterAll(async () => {
  await docker(['image', 'rm', TAG]);
});

it('the stages that install and compile run on the build platform; only the runtime stage on the target', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'docker/Dockerfile'), 'utf8');
  const stages = dockerfile
    .split(/^(?=FROM )/m)
    .slice(1)
    .map((stage) => ({ from: stage.split('\n')[0] as string, body: stage }));
  const building = stages.filter((s) => /pnpm install|tsc -b|pnpm .*deploy/.test(s.body));
  expect(building.length).toBeGreaterThan(0);
  for (const stage of building) expect(stage.from).toMatch(/^FROM --platform=\$\{?BUILDPLATFORM/);
  const runtime = stages.find((s) => s.from.endsWith(' AS runtime'));
  // The target's own platform: FROM names none.
  expect(runtime?.from).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime$/);
});

describeDocker('the image build stage', () => {
  it('installs the target platform’s Claude Code while it runs on this machine’s', {
    timeout: 20 * 60_000,
  }, async () => {
    await promisify(execFile)(
      'docker',
      [
        'build',
        '--file',
        path.join(ROOT, 'docker/Dockerfile'),
        '--target',
        'build',
        '--build-arg',
        `TARGETARCH=${TARGET}`,
        '--tag',
        TAG,
        ROOT,
      ],
      {
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
        maxBuffer: 64 << 20,
        timeout: 20 * 60_000,
      },
    );
    // Node runs natively in the stage: it was built from this machine's platform, not emulated.
    const node = await docker(['run', '--rm', TAG, 'node', '-p', 'process.arch']);
    expect(node.stdout.trim(), node.stderr).toBe(NATIVE === 'arm64' ? 'arm64' : 'x64');
    // The Claude Code binary it laid out in /app is the target's.
    const machine = await docker([
      'run',
      '--rm',
      TAG,
      'node',
      '-e',
      "const fs=require('fs');const b=Buffer.alloc(20);fs.readSync(fs.openSync(fs.realpathSync('/app/claude'),'r'),b,0,20,0);console.log(b.readUInt16LE(18))",
    ]);
    expect(Number(machine.stdout.trim()), machine.stderr).toBe(ELF_MACHINE[TARGET]);
  });
});
