import { execFile } from 'node:child_process';
import { UsageError } from '../errors.js';
import {
  type ModelAccess,
  type ModelFlags,
  redactUrl,
  resolveModelAccess,
} from '../models/access.js';
import { claudeVersion, findClaudeBinary } from '../models/claude-binary.js';
import { type AgentUser, agentUserFor } from '../sandbox/agent-user.js';
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

type CheckStatus = 'ok' | 'warn' | 'missing';

export interface Check {
  name: string;
  /** `missing`: real runs cannot work; `warn`: one backend or feature cannot. */
  status: CheckStatus;
  detail: string;
}

/** The Node lines the runtime is tested on (CI runs the suite on one and smoke-tests the next). */
const NODE_SUPPORTED = [22, 24, 26] as const;

function nodeCheck(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  const supported = (NODE_SUPPORTED as readonly number[]).includes(major);
  return {
    name: 'Node',
    status: supported ? 'ok' : 'warn',
    detail: `${process.version}${supported ? '' : ` (tested on ${NODE_SUPPORTED.join(', ')})`}`,
  };
}

/**
 * The Docker engine through dockerode, and the image the docker backend would run: "ok" only
 * when both are there. Docker is optional (the local backend does not need it).
 */
async function dockerCheck(image: string): Promise<Check> {
  const { dockerClient } = await import('../backends/docker/backend.js');
  const docker = dockerClient();
  const where = process.env.DOCKER_HOST ?? '/var/run/docker.sock';
  const answer = await Promise.race([
    docker.version().then(
      (v) => ({ version: v.Version }),
      (error: Error) => ({ error: error.message.split('\n')[0] }),
    ),
    new Promise<{ error: string }>((resolve) =>
      setTimeout(() => resolve({ error: 'no answer within 3 s' }), 3_000).unref(),
    ),
  ]);
  if ('error' in answer)
    return {
      name: 'Docker',
      status: 'warn',
      detail: `unavailable at ${where}: ${answer.error} (only the docker backend needs it)`,
    };
  const found = await docker
    .getImage(image)
    .inspect()
    .then(
      () => true,
      () => false,
    );
  return found
    ? {
        name: 'Docker',
        status: 'ok',
        detail: `Docker ${answer.version} at ${where}; image ${image}`,
      }
    : {
        name: 'Docker',
        status: 'warn',
        detail: `Docker ${answer.version} at ${where}, but no image ${image}: build it with docker/build.sh (the docker backend needs it)`,
      };
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
 * What runs need on this machine: Node and git (every run), the Claude Code binary and model
 * credentials (names and sources, never values) for `--real`, the sandbox for local agents, and
 * the Docker engine with the executor image for the docker backend.
 */
export async function doctor(
  env: NodeJS.ProcessEnv,
  flags: ModelFlags,
  image: string,
): Promise<{ checks: Check[]; ok: boolean }> {
  const checks: Check[] = [nodeCheck()];
  checks.push(
    await gitPreflight().then(
      (detail): Check => ({ name: 'git', status: 'ok', detail }),
      (error: unknown): Check => ({ name: 'git', status: 'missing', detail: errorMessage(error) }),
    ),
  );
  try {
    const binary = findClaudeBinary(env);
    checks.push({
      name: 'Claude Code',
      status: 'ok',
      detail: `${await claudeVersion(binary)}, ${binary}`,
    });
  } catch (error) {
    checks.push({ name: 'Claude Code', status: 'missing', detail: errorMessage(error) });
  }
  try {
    checks.push({
      name: 'Models',
      status: 'ok',
      detail: describeAccess(await resolveModelAccess(env, flags)),
    });
  } catch (error) {
    checks.push({ name: 'Models', status: 'missing', detail: errorMessage(error) });
  }
  // Without a sandbox, local agents still run, but with no Bash, and --verify is refused.
  checks.push(await sandboxCheck());
  checks.push(await dockerCheck(image));
  return { checks, ok: checks.every((c) => c.status !== 'missing') };
}

/**
 * Whether local agents and checks can be confined. Without bubblewrap they still run, with no
 * Bash, and --verify is refused; as root they run as an unprivileged user or not at all.
 */
async function sandboxCheck(): Promise<Check> {
  const name = 'Sandbox';
  let user: AgentUser | undefined;
  try {
    user = await agentUserFor();
  } catch (error) {
    const reason = `running as root, agents must run as an unprivileged user, but ${errorMessage(error)}`;
    return { name, status: 'missing', detail: `${reason}: install util-linux, or run as a user` };
  }
  const as = user ? `, as uid ${user.uid} (not root)` : '';
  const sandbox = await probeBubblewrap(user);
  return sandbox.available
    ? {
        name,
        status: 'ok',
        detail: `bubblewrap: local agents and --verify run confined to their workspace${as}`,
      }
    : {
        name,
        status: 'warn',
        detail: `unavailable: ${sandbox.reason}; local agents get no Bash${as} and --verify is refused (install bubblewrap, or use --backend docker)`,
      };
}

const LABEL: Record<CheckStatus, string> = { ok: 'ok     ', warn: 'warning', missing: 'MISSING' };

export function formatChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks.map((c) => `${LABEL[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`).join('\n');
}
