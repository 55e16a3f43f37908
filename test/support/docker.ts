import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describeNeeding } from './needing.js';

export const IMAGE = process.env.PO_TEST_IMAGE ?? 'parallel-orchestrator:latest';
/** The arm64 image, as `docker/build.sh --platform linux/arm64` tags it. */
export const ARM64_IMAGE = process.env.PO_TEST_ARM64_IMAGE ?? 'parallel-orchestrator:latest-arm64';
/** The Debian packages of the Python variant (.ci/run and docker/README.md build it so). */
export const PYTHON_PACKAGES = 'python3-venv python3-pytest python3-wheel';
/** The image with Python, as `docker/build.sh --tag ... --build-arg EXTRA_APT_PACKAGES=...` made it. */
export const PYTHON_IMAGE = process.env.PO_TEST_PYTHON_IMAGE ?? 'parallel-orchestrator:python';

export function docker(
  args: string[],
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'docker',
      args,
      { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr,
        });
      },
    );
  });
}

async function availability(): Promise<string | undefined> {
  const info = await docker(['version', '--format', '{{.Server.Version}}'], 10_000);
  if (info.code !== 0) return `no Docker engine answers: ${info.stderr.trim().split('\n')[0]}`;
  const image = await docker(['image', 'inspect', IMAGE], 10_000);
  if (image.code !== 0) return `image ${IMAGE} is missing`;
  return undefined;
}

const missing = await availability();

/** Why arm64 containers cannot run here, if they cannot: no emulation, or no arm64 image. */
async function arm64Availability(): Promise<string | undefined> {
  if (missing) return missing;
  const native = process.arch === 'arm64';
  if (!native && !existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64'))
    return 'no arm64 emulation (qemu-user-static with binfmt_misc)';
  const image = await docker(['image', 'inspect', ARM64_IMAGE], 10_000);
  if (image.code !== 0) return `image ${ARM64_IMAGE} is missing`;
  return undefined;
}

const arm64Missing = await arm64Availability();

/** Why the Python variant of the image cannot run here, if it cannot. */
async function pythonAvailability(): Promise<string | undefined> {
  if (missing) return missing;
  const image = await docker(['image', 'inspect', PYTHON_IMAGE], 10_000);
  if (image.code !== 0) return `image ${PYTHON_IMAGE} is missing`;
  return undefined;
}

const pythonMissing = await pythonAvailability();

/**
 * A suite that needs the Docker engine and the image. Without them it is skipped, unless
 * REQUIRE_DOCKER=1 (CI sets it): then it fails, saying what is missing.
 */
export function describeDocker(name: string, body: () => void): void {
  describeNeeding(name, body, {
    missing,
    enable:
      'start a Docker engine (Debian: apt-get install docker.io) and build the image: docker/build-offline-base.sh, then docker/build.sh (docker/README.md)',
    required: 'REQUIRE_DOCKER',
  });
}

/** A suite that runs the arm64 image: skipped without emulation, failing with REQUIRE_ARM64=1. */
export function describeArm64(name: string, body: () => void): void {
  describeNeeding(name, body, {
    missing: arm64Missing,
    enable:
      'with Docker as for the Docker suites, on amd64 apt-get install qemu-user-static binfmt-support and run dockerd --experimental; then docker/build-offline-base.sh --platform linux/arm64 and docker/build.sh --platform linux/arm64 (docker/README.md)',
    required: 'REQUIRE_ARM64',
  });
}

/**
 * A suite that runs the Python variant of the image: skipped without it, failing with
 * REQUIRE_DOCKER=1 (CI builds it).
 */
export function describeDockerPython(name: string, body: () => void): void {
  describeNeeding(name, body, {
    missing: pythonMissing,
    enable: `build the Python variant: docker/build.sh --tag ${PYTHON_IMAGE} --build-arg EXTRA_APT_PACKAGES="${PYTHON_PACKAGES}"`,
    required: 'REQUIRE_DOCKER',
  });
}

/** Containers of a run, running or not. */
export async function runContainers(runId: string): Promise<string[]> {
  const { stdout } = await docker([
    'ps',
    '-aq',
    '--filter',
    `label=parallel-orchestrator.run-id=${runId}`,
  ]);
  return stdout.trim().split('\n').filter(Boolean);
}

/**
 * The original image's executor test command (its README's): a simulated executor writing its
 * result, code and log into a mounted /output that the image's user can write.
 */
export function runOriginalExecutorCommand(image: string, output: string, timeoutMs?: number) {
  return docker(
    [
      'run',
      '--rm',
      '-e',
      'EXECUTOR_ID=0',
      '-e',
      'OUTPUT_DIR=/output',
      '-e',
      'USE_REAL_EXECUTORS=0',
      '-e',
      'REQUIREMENTS=Build a simple calculator',
      '-v',
      `${output}:/output`,
      image,
      'docker-executor',
    ],
    timeoutMs,
  );
}
