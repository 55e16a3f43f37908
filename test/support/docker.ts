import { execFile } from 'node:child_process';
import { describe, it } from 'vitest';

export const IMAGE = process.env.PO_TEST_IMAGE ?? 'parallel-orchestrator:latest';

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
  if (image.code !== 0) return `image ${IMAGE} is missing: build it with docker/build.sh`;
  return undefined;
}

const missing = await availability();

/**
 * A suite that needs the Docker engine and the image. Without them it is skipped, unless
 * REQUIRE_DOCKER=1 (CI sets it): then it fails, saying what is missing.
 */
export function describeDocker(name: string, body: () => void): void {
  if (missing && process.env.REQUIRE_DOCKER === '1') {
    describe(name, () => {
      it('needs Docker', () => {
        throw new Error(`REQUIRE_DOCKER=1 but ${missing}`);
      });
    });
    return;
  }
  describe.skipIf(Boolean(missing))(name, body);
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
