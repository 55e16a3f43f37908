import {
  chmodSync,
  chownSync,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { lchown, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { ENV, MODEL_ENV, SECRET_ENV_NAMES } from '../contracts/env.js';
import {
  type ExecutorOutcome,
  ExecutorOutcomeSchema,
  type TaskSpec,
} from '../contracts/executor.js';
import { IMAGE } from '../contracts/image.js';
import type { DockerSettings } from '../contracts/run-config.js';
import { TASK_FILES } from '../contracts/run-layout.js';
import { UsageError } from '../errors.js';
import type { Backend, ExecutionContext } from './backend.js';

/** Where the image mounts things, and the files the docker executor leaves in OUTPUT_DIR. */
export const CONTAINER = {
  workspace: '/workspace',
  output: IMAGE.output,
  home: '/home/executor',
  secrets: '/run/secrets',
  executor: IMAGE.commands.dockerExecutor,
  planner: IMAGE.commands.dockerPlanner,
  outcome: 'outcome.json',
  /** The image's `executor` user. */
  uid: IMAGE.uid,
} as const;

export const LABELS = {
  run: 'parallel-orchestrator.run-id',
  task: 'parallel-orchestrator.task-id',
  attempt: 'parallel-orchestrator.attempt',
  role: 'parallel-orchestrator.role',
} as const;

/** AWS credential files are copied in like secrets: they hold keys. */
const AWS_FILES = ['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE'] as const;

export interface DockerBackendOptions {
  runId: string;
  real: boolean;
  settings: DockerSettings;
  /** Model credentials and settings for real executors (secrets become read-only files). */
  executorEnv?: Record<string, string>;
}

/** The engine, as DOCKER_HOST (or the default socket) says. */
export function dockerClient(): Docker {
  return new Docker();
}

/**
 * Checks the engine answers and the image exists, with errors that say what to do. Called
 * before a run writes anything.
 */
export async function dockerPreflight(docker: Docker, image: string): Promise<void> {
  try {
    await docker.ping();
  } catch (error) {
    const where = process.env.DOCKER_HOST ?? '/var/run/docker.sock';
    throw new UsageError(
      `cannot reach the Docker daemon at ${where}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  try {
    await docker.getImage(image).inspect();
  } catch {
    throw new UsageError(
      `Docker image ${image} not found: build it with docker/build.sh (or pass --docker-image)`,
    );
  }
}

/** A gateway on this machine, as a container reaches it. */
export function containerUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (['localhost', '127.0.0.1', '::1', '[::1]', '0.0.0.0'].includes(parsed.hostname)) {
      parsed.hostname = 'host.docker.internal';
      return parsed.toString().replace(/\/$/, '');
    }
  } catch {
    // Not a URL: left as given.
  }
  return url;
}

/** The user containers run as: the caller, unless that is root, then the image's own user. */
function containerUser(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? CONTAINER.uid;
  return uid === 0
    ? { uid: CONTAINER.uid, gid: CONTAINER.uid }
    : { uid, gid: process.getgid?.() ?? uid };
}

/** Hands a tree to the container user (only needed when the orchestrator runs as root). */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await lchown(full, uid, gid);
  }
}

export interface ContainerRun {
  statusCode: number;
  oomKilled: boolean;
}

/**
 * Runs one container to its end: output streamed to `logPath`, killed when `signal` aborts,
 * removed afterwards whatever happened.
 */
export async function runContainer(
  docker: Docker,
  options: Docker.ContainerCreateOptions,
  logPath: string,
  signal: AbortSignal,
): Promise<ContainerRun> {
  const container = await docker.createContainer(options);
  const log = createWriteStream(logPath, { flags: 'a' });
  const kill = () => {
    container.kill({ signal: 'SIGKILL' }).catch(() => {});
  };
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    docker.modem.demuxStream(stream, log, log);
    signal.addEventListener('abort', kill, { once: true });
    await container.start();
    if (signal.aborted) kill();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const info = await container.inspect();
    return { statusCode: StatusCode, oomKilled: Boolean(info.State.OOMKilled) };
  } finally {
    signal.removeEventListener('abort', kill);
    await container.remove({ force: true }).catch(() => {});
    await new Promise<void>((resolve) => log.end(resolve));
  }
}

/**
 * Executors as Docker containers, one per task attempt, through the Engine API. Each runs the
 * image's docker executor with the task's worktree at /workspace and its task directory at
 * /output; secrets arrive as read-only files named by `*_FILE`, so `docker inspect` shows none.
 * Containers run hardened: non-root, no capabilities, no new privileges, read-only root with
 * tmpfs for /tmp and HOME, and pids, memory and CPU limits.
 */
export class DockerBackend implements Backend {
  readonly name = 'docker' as const;
  private readonly docker = dockerClient();
  private readonly user = containerUser();
  private secrets: { dir: string; env: string[] } | undefined;

  constructor(private readonly options: DockerBackendOptions) {}

  /** Removes containers an interrupted orchestrator left for this run, and stages the secrets. */
  async warm(): Promise<void> {
    await this.removeRunContainers();
    this.secrets = this.stageSecrets();
  }

  async execute(
    spec: TaskSpec,
    { executor, signal, logPath }: ExecutionContext,
  ): Promise<ExecutorOutcome> {
    const { settings, runId } = this.options;
    const taskDir = spec.outputDir;
    const outcomeFile = path.join(taskDir, CONTAINER.outcome);
    rmSync(outcomeFile, { force: true });
    // The executor reads its spec with the paths it sees inside the container.
    const inside: TaskSpec = {
      ...spec,
      workspaceDir: CONTAINER.workspace,
      outputDir: CONTAINER.output,
      agentHome: CONTAINER.home,
    };
    writeFileSync(path.join(taskDir, TASK_FILES.spec), `${JSON.stringify(inside, null, 2)}\n`);
    if (process.getuid?.() === 0) {
      await chownTree(spec.workspaceDir, this.user.uid, this.user.gid);
      await chownTree(taskDir, this.user.uid, this.user.gid);
    }
    const secrets = this.secrets ?? this.stageSecrets();
    this.secrets = secrets;
    const binds = [
      `${spec.workspaceDir}:${CONTAINER.workspace}:rw`,
      `${taskDir}:${CONTAINER.output}:rw`,
    ];
    if (secrets.env.length) binds.push(`${secrets.dir}:${CONTAINER.secrets}:ro`);
    let run: ContainerRun;
    try {
      run = await runContainer(
        this.docker,
        {
          name: `po-${runId}-${spec.taskId}-${spec.attempt}`.slice(0, 120),
          Image: settings.image,
          Cmd: [CONTAINER.executor],
          User: `${this.user.uid}:${this.user.gid}`,
          WorkingDir: CONTAINER.workspace,
          Env: [
            `${ENV.EXECUTOR_ID}=${executor}`,
            `${ENV.TASK_ID}=${spec.taskId}`,
            `${ENV.OUTPUT_DIR}=${CONTAINER.output}`,
            `${ENV.USE_REAL_EXECUTORS}=${this.options.real ? '1' : '0'}`,
            ...secrets.env,
          ],
          Labels: {
            [LABELS.run]: runId,
            [LABELS.task]: spec.taskId,
            [LABELS.attempt]: String(spec.attempt),
            [LABELS.role]: 'executor',
          },
          // Simulated executors need no network: none is also faster to set up than a bridge.
          HostConfig: hardenedHostConfig(
            this.options.real || settings.network ? settings : { ...settings, network: 'none' },
            binds,
          ),
        },
        logPath,
        signal,
      );
    } catch (error) {
      return {
        status: 'failed',
        error: `docker: ${(error as Error).message.split('\n')[0]}`,
        retryable: true,
      };
    }
    if (signal.aborted) {
      return {
        status: 'failed',
        error: signal.reason instanceof Error ? signal.reason.message : 'cancelled',
        retryable: true,
      };
    }
    if (run.oomKilled) {
      return {
        status: 'failed',
        error: `container killed for memory (limit ${settings.memoryBytes ? `${Math.round(settings.memoryBytes / 2 ** 20)} MiB` : 'none'})`,
        retryable: true,
      };
    }
    if (!existsSync(outcomeFile)) {
      return {
        status: 'failed',
        error: `container exited with code ${run.statusCode} and no outcome`,
        retryable: true,
      };
    }
    const outcome = ExecutorOutcomeSchema.safeParse(JSON.parse(readFileSync(outcomeFile, 'utf8')));
    return outcome.success
      ? outcome.data
      : { status: 'failed', error: 'the container wrote an unreadable outcome', retryable: true };
  }

  async close(): Promise<void> {
    await this.removeRunContainers();
    if (this.secrets) removeSecrets(this.secrets.dir);
    this.secrets = undefined;
  }

  private async removeRunContainers(): Promise<void> {
    const leftovers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.run}=${this.options.runId}`] },
    });
    await Promise.all(
      leftovers.map((c) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
    );
  }

  /**
   * Writes each secret to its own file in memory-backed storage (/dev/shm where there is one),
   * readable only by the container user, and names it in the environment with `*_FILE`.
   */
  private stageSecrets(): { dir: string; env: string[] } {
    return stageSecrets(this.options.executorEnv ?? {}, this.user);
  }
}

/** Deletes staged secret files (their directory is read-only once staged). */
export function removeSecrets(dir: string): void {
  try {
    chmodSync(dir, 0o700);
  } catch {
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/** The secret files and the environment that names them; also used by the docker planner. */
export function stageSecrets(
  executorEnv: Record<string, string>,
  user: { uid: number; gid: number } = containerUser(),
): { dir: string; env: string[] } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = mkdtempSync(path.join(base, 'parallel-orchestrator-'));
  const env: string[] = [];
  const stage = (name: string, value: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, value, { mode: 0o400 });
    if (process.getuid?.() === 0) chownSync(file, user.uid, user.gid);
    env.push(`${name}_FILE=${CONTAINER.secrets}/${name}`);
  };
  for (const [name, value] of Object.entries(executorEnv)) {
    if ((SECRET_ENV_NAMES as readonly string[]).includes(name)) stage(name, value);
    else if ((AWS_FILES as readonly string[]).includes(name)) {
      const copy = `aws-${path.basename(value)}`;
      writeFileSync(path.join(dir, copy), readFileSync(value), { mode: 0o400 });
      if (process.getuid?.() === 0) chownSync(path.join(dir, copy), user.uid, user.gid);
      env.push(`${name}=${CONTAINER.secrets}/${copy}`);
    } else if (name === MODEL_ENV.ANTHROPIC_BASE_URL) env.push(`${name}=${containerUrl(value)}`);
    else env.push(`${name}=${value}`);
  }
  if (process.getuid?.() === 0) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o500);
  return { dir, env };
}

export function hardenedHostConfig(settings: DockerSettings, binds: string[]): Docker.HostConfig {
  return {
    Binds: binds,
    ReadonlyRootfs: true,
    Tmpfs: { '/tmp': 'rw,exec,size=1g,mode=1777', [CONTAINER.home]: 'rw,exec,size=1g,mode=1777' },
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    PidsLimit: settings.pidsLimit,
    ...(settings.memoryBytes && { Memory: settings.memoryBytes, MemorySwap: settings.memoryBytes }),
    ...(settings.nanoCpus && { NanoCpus: settings.nanoCpus }),
    ...(settings.network && { NetworkMode: settings.network }),
    ...(settings.network !== 'none' && { ExtraHosts: ['host.docker.internal:host-gateway'] }),
  };
}
