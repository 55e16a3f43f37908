import { execFile } from 'node:child_process';
import type { BackendKind, DoctorCheck } from '../backends/backend.js';
import { ENV, MODEL_ENV } from '../contracts/env.js';
import { UsageError } from '../errors.js';
import {
  type ModelAccess,
  type ModelFlags,
  probeModelAccess,
  resolveModelAccess,
  truthyEnv,
} from '../models/access.js';
import { claudeVersion, findClaudeBinary } from '../models/claude-binary.js';
import { type AgentUser, agentUserFor } from '../sandbox/agent-user.js';
import { probeBubblewrap } from '../sandbox/bubblewrap.js';
import { errorMessage } from '../scheduler/scheduler.js';
import { AwsCredentialsError } from '../util/aws-credentials.js';

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

/** The Node lines the runtime is tested on (CI runs the suite on one and smoke-tests the next). */
const NODE_SUPPORTED = [22, 24, 26] as const;

function nodeCheck(): DoctorCheck {
  const major = Number(process.versions.node.split('.')[0]);
  const supported = (NODE_SUPPORTED as readonly number[]).includes(major);
  return {
    name: 'Node',
    status: supported ? 'ok' : 'warn',
    detail: `${process.version}${supported ? '' : ` (tested on ${NODE_SUPPORTED.join(', ')})`}`,
    ...(!supported && { fix: `use Node ${NODE_SUPPORTED.join(', ')}` }),
  };
}

/** What `doctor` checks besides this machine: a backend and its settings (a stack's config). */
export interface DoctorBackend {
  kind: BackendKind<unknown>;
  settings: unknown;
}

/**
 * Model access for `--real`: the credentials found, then one probe that they are taken (a key
 * or a gateway that does not answer is not ok). None at all is a note: simulation needs none.
 */
async function modelsCheck(env: NodeJS.ProcessEnv, flags: ModelFlags): Promise<DoctorCheck> {
  const name = 'Models';
  const bedrock = flags.bedrock ?? truthyEnv(env[ENV.USE_BEDROCK]);
  const anyKey =
    bedrock ||
    [ENV.ANTHROPIC_API_KEY, MODEL_ENV.ANTHROPIC_AUTH_TOKEN].some(
      (n) => env[n]?.trim() || env[`${n}_FILE`],
    );
  if (!anyKey)
    return {
      name,
      status: 'note',
      detail:
        'no model credentials: real mode (--real) needs ANTHROPIC_API_KEY (or _FILE), ANTHROPIC_AUTH_TOKEN with ANTHROPIC_BASE_URL for a gateway, or USE_BEDROCK=1 with AWS credentials; simulation needs none',
    };
  let access: ModelAccess;
  try {
    access = await resolveModelAccess(env, flags);
  } catch (error) {
    return error instanceof AwsCredentialsError
      ? { name, status: 'missing', detail: error.problem, fix: error.fix }
      : { name, status: 'missing', detail: errorMessage(error) };
  }
  const probe = await probeModelAccess(access, env);
  return probe.ok
    ? {
        name,
        status: 'ok',
        detail: `${probe.detail}; planner ${access.plannerModel}, executors ${access.executorModel}`,
      }
    : { name, status: probe.status, detail: probe.detail, fix: probe.fix };
}

/**
 * What runs need on this machine: Node and git (every run), the Claude Code binary and model
 * credentials (names and sources, never values; probed) for `--real`, the sandbox for local
 * agents; then the backend's own lines: the docker backend's engine and image unless another
 * backend is given, a Batch stack's credentials, queue, definition, bucket, log group and
 * permissions. Exit status: ok unless something is `missing`.
 */
export async function doctor(
  env: NodeJS.ProcessEnv,
  flags: ModelFlags,
  backend: DoctorBackend,
): Promise<{ checks: DoctorCheck[]; ok: boolean }> {
  const checks: DoctorCheck[] = [nodeCheck()];
  checks.push(
    await gitPreflight().then(
      (detail): DoctorCheck => ({ name: 'git', status: 'ok', detail }),
      (error: unknown): DoctorCheck => ({
        name: 'git',
        status: 'missing',
        detail: errorMessage(error),
      }),
    ),
  );
  const models = await modelsCheck(env, flags);
  try {
    const binary = findClaudeBinary(env);
    checks.push({
      name: 'Claude Code',
      status: 'ok',
      detail: `${await claudeVersion(binary)}, ${binary}`,
    });
  } catch (error) {
    // Only real mode runs it: without model credentials, that is a note too.
    checks.push({
      name: 'Claude Code',
      status: models.status === 'note' ? 'note' : 'missing',
      detail: errorMessage(error),
    });
  }
  checks.push(models);
  // Without a sandbox, local agents still run, but with no Bash, and --verify is refused.
  checks.push(await sandboxCheck());
  checks.push(...((await backend.kind.doctor?.(backend.settings, env)) ?? []));
  return { checks, ok: checks.every((c) => c.status !== 'missing') };
}

/**
 * Whether local agents and checks can be confined. Without bubblewrap they still run, with no
 * Bash, and --verify is refused; as root they run as an unprivileged user or not at all.
 */
async function sandboxCheck(): Promise<DoctorCheck> {
  const name = 'Sandbox';
  let user: AgentUser | undefined;
  try {
    user = await agentUserFor();
  } catch (error) {
    const reason = `running as root, agents must run as an unprivileged user, but ${errorMessage(error)}`;
    return { name, status: 'missing', detail: reason, fix: 'install util-linux, or run as a user' };
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
        detail: `unavailable: ${sandbox.reason}; local agents get no Bash${as} and --verify is refused`,
        fix: 'install bubblewrap, or use --backend docker',
      };
}

const LABEL: Record<DoctorCheck['status'], string> = {
  ok: 'ok     ',
  warn: 'warning',
  missing: 'MISSING',
  note: 'note   ',
};

/** One line a check, its fix on a second, indented line. */
export function formatChecks(checks: readonly DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const indent = ' '.repeat(LABEL.ok.length + 2 + width + 2);
  return checks
    .map(
      (c) =>
        `${LABEL[c.status]}  ${c.name.padEnd(width)}  ${c.detail}${c.fix ? `\n${indent}fix: ${c.fix}` : ''}`,
    )
    .join('\n');
}
