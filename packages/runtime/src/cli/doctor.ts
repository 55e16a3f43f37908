import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { URL } from 'node:url';
import { UsageError } from '../errors.js';
import {
  type ModelAccess,
  type ModelFlags,
  redactUrl,
  resolveModelAccess,
} from '../models/access.js';
import { claudeVersion, findClaudeBinary } from '../models/claude-binary.js';
import { probeBubblewrap } from '../sandbox/bubblewrap.js';
import { errorMessage } from '../scheduler/scheduler.js';

/** `git merge-tree --write-tree`, which merges without a checkout, came with git 2.38. */
const GIT_MINIMUM = [2, 38] as const;

/** git on PATH and recent enough, or a UsageError (exit 2) saying what to install. */
export function gitPreflight(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', ['--version'], { timeout: 10_000 }, (error, stdout) => {
      if (error) {
        reject(
          new UsageError(
            `git is not available (${(error as NodeJS.ErrnoException).code ?? error.message}): runs need git ${GIT_MINIMUM.join('.')} or newer on PATH`,
          ),
        );
        return;
      }
      const [major = 0, minor = 0] = (/(\d+)\.(\d+)/.exec(stdout) ?? []).slice(1).map(Number);
      if (major < GIT_MINIMUM[0] || (major === GIT_MINIMUM[0] && minor < GIT_MINIMUM[1])) {
        reject(
          new UsageError(
            `${stdout.trim()} is too old: runs need git ${GIT_MINIMUM.join('.')} or newer (merge-tree --write-tree)`,
          ),
        );
      } else resolve(stdout.trim());
    });
  });
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Docker's `/version` over its socket (DOCKER_HOST or the default unix socket), bounded in time. */
function dockerVersion(env: NodeJS.ProcessEnv): Promise<string> {
  const host = env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const target = host.startsWith('unix://')
    ? { socketPath: host.slice('unix://'.length), path: '/version' }
    : (() => {
        const url = new URL(host.replace(/^tcp:/, 'http:'));
        return { host: url.hostname, port: url.port, path: '/version' };
      })();
  return new Promise((resolve, reject) => {
    const req = request({ ...target, timeout: 3_000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          resolve(
            `Docker ${(JSON.parse(body) as { Version?: string }).Version ?? 'unknown'} at ${host}`,
          );
        } catch {
          reject(new Error(`unexpected answer from ${host}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', (error) => reject(new Error(`not reachable at ${host}: ${error.message}`)));
    req.end();
  });
}

function describeAccess(access: ModelAccess): string {
  const where =
    access.provider === 'bedrock'
      ? `Bedrock in ${access.region}`
      : access.baseURL
        ? `gateway ${redactUrl(access.baseURL)}`
        : 'Anthropic API';
  return `${where}; credentials: ${access.credentials.join(', ')}; planner ${access.plannerModel}, executors ${access.executorModel}`;
}

/**
 * What `--real` needs on this machine: the Claude Code binary and its version, which model
 * credentials were found (names and sources, never values), git, the sandbox for local agents,
 * and whether Docker answers.
 */
export async function doctor(
  env: NodeJS.ProcessEnv,
  flags: ModelFlags,
): Promise<{ text: string; ok: boolean }> {
  const checks: Check[] = [];
  try {
    const binary = findClaudeBinary(env);
    checks.push({
      name: 'Claude Code',
      ok: true,
      detail: `${await claudeVersion(binary)}, ${binary}`,
    });
  } catch (error) {
    checks.push({ name: 'Claude Code', ok: false, detail: errorMessage(error) });
  }
  try {
    checks.push({
      name: 'Models',
      ok: true,
      detail: describeAccess(await resolveModelAccess(env, flags)),
    });
  } catch (error) {
    checks.push({ name: 'Models', ok: false, detail: errorMessage(error) });
  }
  checks.push(
    await gitPreflight().then(
      (detail) => ({ name: 'git', ok: true, detail }),
      (error: unknown) => ({ name: 'git', ok: false, detail: errorMessage(error) }),
    ),
  );
  // Without a sandbox, local agents still run, but with no Bash.
  const sandbox = await probeBubblewrap();
  checks.push({
    name: 'Sandbox',
    ok: true,
    detail: sandbox.available
      ? 'bubblewrap: local agents run confined to their workspace, Bash included'
      : `unavailable: ${sandbox.reason}; local agents get no Bash (install bubblewrap, or use --backend docker)`,
  });
  // Docker is optional (the docker backend needs it, the local one does not).
  const docker = await dockerVersion(env).then(
    (detail) => ({ name: 'Docker', ok: true, detail }),
    (error: unknown) => ({
      name: 'Docker',
      ok: true,
      detail: `unavailable: ${errorMessage(error)}`,
    }),
  );
  checks.push(docker);
  const width = Math.max(...checks.map((c) => c.name.length));
  const text = checks
    .map((c) => `${c.ok ? 'ok     ' : 'MISSING'}  ${c.name.padEnd(width)}  ${c.detail}`)
    .join('\n');
  return { text, ok: checks.every((c) => c.ok) };
}
