import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { lchown, lstat, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import {
  ENV,
  MODEL_ENV,
  MODEL_PROXY_TOKEN_ENV,
  SECRET_ENV_NAMES,
  setupNetworkEnv,
} from '../../contracts/env.js';
import {
  ENVIRONMENT_HOLES,
  OFFLINE_ENV,
  type PreparedEnvironment,
} from '../../contracts/environment.js';
import {
  type ExecutorOutcome,
  ExecutorOutcomeSchema,
  type TaskSpec,
} from '../../contracts/executor.js';
import { IMAGE } from '../../contracts/image.js';
import { MODEL_PROXY } from '../../contracts/model-proxy.js';
import type { AgentNetwork } from '../../contracts/run-config.js';
import { TASK_FILES } from '../../contracts/run-layout.js';
import { VERIFY_LIMITS, type Verification } from '../../contracts/verify.js';
import type { EnvironmentStore } from '../../environment/environments.js';
import { HostEnvironmentCache } from '../../environment/host-cache.js';
import type { EnvironmentRequest } from '../../environment/setup.js';
import { UsageError } from '../../errors.js';
import { handOver } from '../../sandbox/agent-user.js';
import { mountSlotDisk, slotDiskFull, unmountSlotDisk } from '../../sandbox/slot-disk.js';
import { redactor } from '../../trust/secret-scanner.js';
import { readUntrusted, removeTree, UntrustedFileError } from '../../trust/untrusted-files.js';
import { formatBytes } from '../../util/bytes.js';
import { CappedLog } from '../../util/capped-log.js';
import { SHELL_FINDS } from '../../verify/command.js';
import { readTail, sizeOf } from '../../verify/process.js';
import type { Backend, ExecutionContext, VerifyRequest } from '../backend.js';
import type { DockerSettings } from './settings.js';

/** Where the image mounts things, and the files the docker executor leaves in OUTPUT_DIR. */
export const CONTAINER = {
  workspace: '/workspace',
  output: IMAGE.output,
  home: '/home/executor',
  secrets: '/run/secrets',
  executor: IMAGE.commands.dockerExecutor,
  planner: IMAGE.commands.dockerPlanner,
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
  /** The run's slots: each gets a disk of its own, the containers' disk limit. */
  slots: readonly string[];
  real: boolean;
  settings: DockerSettings;
  /** `none`: containers get no network, only the model proxy's socket (unless one is named). */
  network: AgentNetwork;
  /** The model proxy's socket directory (real mode), mounted read-only into each container. */
  modelSocketDir?: string;
  /** `--setup`: where prepared environments are kept (`<cache dir>/environments`). */
  environmentsDir?: string;
}

/** The most a container's outcome may weigh; the transcript and log have bounds of their own. */
const MAX_OUTCOME_BYTES = 2 ** 20;
const MAX_TRANSCRIPT_BYTES = 64 * 2 ** 20;
const MAX_LOG_BYTES = 32 * 2 ** 20;

/** A container's exit status when its process was killed with SIGKILL (128 + 9). */
const SIGKILL_EXIT = 137;

/** Variables that tell package managers there is no network, as a container's Env. */
const OFFLINE = Object.entries(OFFLINE_ENV).map(([name, value]) => `${name}=${value}`);

/**
 * The orchestrator's proxies, for a setup with the network, as a container reaches them. Not its
 * certificate files: paths of this machine, where the image trusts what it was built to.
 */
function setupProxyEnv(): string[] {
  return Object.entries(setupNetworkEnv())
    .filter(([name]) => /proxy/i.test(name))
    .map(([name, value]) => `${name}=${/^no_proxy$/i.test(name) ? value : containerUrl(value)}`);
}

/** A prepared environment's hole (a tool's cache): private to the container, and capped. */
const HOLE_TMPFS = 'rw,exec,size=256m,mode=1777';

/** What decides a Docker environment besides the repository: the run's image, by its id. */
export async function imageIdentity(docker: Docker, image: string): Promise<string> {
  const { Id } = await docker.getImage(image).inspect();
  return `docker:${Id}`;
}

export type EnvironmentMounts = Pick<Docker.HostConfig, 'Mounts' | 'Tmpfs'>;

/**
 * A prepared environment in a container: each of `paths` bound read-only from the environment's
 * tree over the same path of /workspace, and each hole under a bound directory a private tmpfs.
 * Mounts rather than `Binds` strings: a path is never parsed for `:`.
 */
export function environmentHostConfig(tree: string, paths: readonly string[]): EnvironmentMounts {
  if (paths.length === 0) return {};
  const holes = ENVIRONMENT_HOLES.filter((hole) => paths.includes(`${hole.split('/')[0]}/`));
  return {
    Mounts: paths.map((kept) => ({
      Type: 'bind' as const,
      Source: path.join(tree, bare(kept)),
      Target: `${CONTAINER.workspace}/${bare(kept)}`,
      ReadOnly: true,
    })),
    ...(holes.length > 0 && {
      Tmpfs: Object.fromEntries(
        holes.map((hole) => [`${CONTAINER.workspace}/${hole}`, HOLE_TMPFS]),
      ),
    }),
  };
}

/** A container's host config with a prepared environment's mounts added. */
function withEnvironment(host: Docker.HostConfig, prepared: EnvironmentMounts): Docker.HostConfig {
  return {
    ...host,
    ...(prepared.Mounts && { Mounts: [...(host.Mounts ?? []), ...prepared.Mounts] }),
    ...(prepared.Tmpfs && { Tmpfs: { ...host.Tmpfs, ...prepared.Tmpfs } }),
  };
}

/** A prepared path as it is mounted: a directory's without its trailing `/`. */
function bare(kept: string): string {
  return kept.replace(/\/+$/, '');
}

/**
 * Makes the mount point of a prepared path in a workspace (a directory, or an empty file), and
 * the directories above it that are missing, owned by `owner`. False when something other than a
 * directory is on the way, or other than the path's kind at its place: the path is not shown.
 */
async function makeMountPoint(
  workspace: string,
  kept: string,
  owner?: { uid: number; gid: number },
): Promise<boolean> {
  const parts = bare(kept).split('/');
  let at = workspace;
  for (const [i, part] of parts.entries()) {
    at = path.join(at, part);
    const directory = i < parts.length - 1 || kept.endsWith('/');
    const found = await lstat(at).catch(() => undefined);
    if (found) {
      if (directory ? !found.isDirectory() : !found.isFile()) return false;
      continue;
    }
    if (directory) await mkdir(at);
    else await writeFile(at, '', { flag: 'wx' });
    if (owner) await lchown(at, owner.uid, owner.gid);
  }
  return true;
}

/** Whether the image's shell finds `program`: a container that runs `command -v` and no more. */
export async function imageFinds(docker: Docker, image: string, program: string): Promise<boolean> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: ['/bin/sh', '-c', SHELL_FINDS, 'sh', program],
    HostConfig: { NetworkMode: 'none', CapDrop: ['ALL'], ReadonlyRootfs: true },
  });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    return StatusCode === 0;
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}

/** The engine, as DOCKER_HOST (or the default socket) says. */
export function dockerClient(): Docker {
  return new Docker();
}

/**
 * Checks the engine answers and the image exists, with errors that say what to do. Called
 * before a run writes anything.
 */
export async function checkEngine(docker: Docker, image: string): Promise<void> {
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
  redact?: (text: string) => string,
  maxLogBytes = MAX_LOG_BYTES,
): Promise<ContainerRun> {
  const container = await docker.createContainer(options);
  // The container's output is the agent's to fill: the log is bounded, and its token kept out.
  const log = new CappedLog(logPath, maxLogBytes, redact);
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
    await log.close();
  }
}

/**
 * Executors as Docker containers, one per task attempt, through the Engine API. Each runs the
 * image's docker executor with the slot's workspace at /workspace and a fresh output directory at
 * /output: the only host directories it can write. Nothing it leaves there is trusted: the host
 * reads its outcome and transcript as data (no link followed, size-bounded) once the container
 * is gone. Real executors reach models through the model proxy's socket with a token file per
 * attempt, and get no network otherwise; `docker inspect` shows neither credential nor token.
 * Containers run hardened: non-root, no capabilities, no new privileges, read-only root with
 * tmpfs for /tmp and HOME, and pids, memory and CPU limits.
 */
export class DockerBackend implements Backend {
  readonly name = 'docker' as const;
  private readonly docker = dockerClient();
  private readonly user = containerUser();
  /** Per-attempt token files, in memory-backed storage, mounted one per container. */
  private tokens: string | undefined;
  /** Slots whose disk this backend mounted. */
  private readonly disks = new Set<string>();
  limits: readonly string[] = [];

  /**
   * `--setup`: environments prepared in a container of the run's image, kept on this machine
   * (the engine's: workspaces are host directories already) and keyed by the image's id.
   */
  readonly environments: EnvironmentStore | undefined;

  constructor(private readonly options: DockerBackendOptions) {
    const dir = options.environmentsDir;
    if (dir) {
      const cache = new HostEnvironmentCache(
        dir,
        (tree, home, request) => this.runSetup(tree, home, request),
        // Root hands the checkout to the container's user, and takes the result back.
        process.getuid?.() === 0 ? this.user : undefined,
      );
      this.environments = {
        identity: () => imageIdentity(this.docker, options.settings.image),
        ensure: (request) => cache.ensure(request),
      };
    }
  }

  /** Removes containers an interrupted orchestrator left for this run. */
  async warm(): Promise<void> {
    await this.removeRunContainers();
    this.limits = [
      `memory ${this.options.settings.memoryBytes ? formatBytes(this.options.settings.memoryBytes) : 'unlimited'} and ${this.options.settings.pidsLimit} processes per container: Docker`,
      await this.mountSlotDisks(),
    ];
  }

  /**
   * A disk of its own for each slot, which a container's workspace and output live on: what caps
   * its writes (its image is read-only, its /tmp and HOME are memory). Where loop mounts are not
   * possible (an orchestrator that is not root), says so instead.
   */
  private async mountSlotDisks(): Promise<string> {
    const { slots, settings } = this.options;
    if (!settings.diskBytes) return 'disk: no limit (a run from before --docker-disk)';
    const bytes = settings.diskBytes;
    for (const dir of new Set(slots.map((slot) => path.dirname(slot))))
      mkdirSync(dir, { recursive: true });
    const mounts = await Promise.all(slots.map((slot) => mountSlotDisk(slot, bytes)));
    slots.forEach((slot, i) => {
      if (mounts[i]?.mounted) this.disks.add(slot);
    });
    const failed = mounts.find((mount) => !mount.mounted);
    return failed && !failed.mounted
      ? `disk: no limit per container (${failed.reason})`
      : `disk ${formatBytes(bytes)} per container: a file system per slot`;
  }

  async execute(
    spec: TaskSpec,
    { executor, signal, logPath, sandbox, modelToken, environment }: ExecutionContext,
  ): Promise<ExecutorOutcome> {
    const { settings, runId } = this.options;
    // A fresh output directory: nothing of the slot's last container is read as this one's.
    await removeTree(sandbox.output);
    mkdirSync(sandbox.output, { recursive: true });
    // The executor reads its spec with the paths it sees inside the container.
    const inside: TaskSpec = {
      ...spec,
      workspaceDir: CONTAINER.workspace,
      outputDir: CONTAINER.output,
      agentHome: CONTAINER.home,
      ...(spec.modelProxy && {
        modelProxy: { socket: `${MODEL_PROXY.containerDir}/${MODEL_PROXY.socketName}` },
      }),
    };
    writeFileSync(
      path.join(sandbox.output, TASK_FILES.spec),
      `${JSON.stringify(inside, null, 2)}\n`,
    );
    const prepared = await this.environmentMounts(sandbox.workspace, environment);
    if (process.getuid?.() === 0) {
      await handOver(sandbox.workspace, this.user);
      await handOver(sandbox.output, this.user);
    }
    const binds = [
      `${sandbox.workspace}:${CONTAINER.workspace}:rw`,
      `${sandbox.output}:${CONTAINER.output}:rw`,
    ];
    const env = [
      `${ENV.EXECUTOR_ID}=${executor}`,
      `${ENV.TASK_ID}=${spec.taskId}`,
      `${ENV.OUTPUT_DIR}=${CONTAINER.output}`,
      `${ENV.USE_REAL_EXECUTORS}=${this.options.real ? '1' : '0'}`,
    ];
    const tokenFile = modelToken && this.stageToken(`${spec.taskId}-${spec.attempt}`, modelToken);
    const redact = redactor([modelToken]);
    if (tokenFile) {
      binds.push(`${tokenFile}:${CONTAINER.secrets}/${MODEL_PROXY_TOKEN_ENV}:ro`);
      env.push(`${MODEL_PROXY_TOKEN_ENV}_FILE=${CONTAINER.secrets}/${MODEL_PROXY_TOKEN_ENV}`);
    }
    if (this.options.modelSocketDir)
      binds.push(`${this.options.modelSocketDir}:${MODEL_PROXY.containerDir}:ro`);
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
          Env: env,
          Labels: {
            [LABELS.run]: runId,
            [LABELS.task]: spec.taskId,
            [LABELS.attempt]: String(spec.attempt),
            [LABELS.role]: 'executor',
          },
          HostConfig: withEnvironment(
            hardenedHostConfig({ ...settings, network: this.networkMode() }, binds),
            prepared,
          ),
        },
        logPath,
        signal,
        redact,
      );
    } catch (error) {
      return {
        status: 'failed',
        error: `docker: ${(error as Error).message.split('\n')[0]}`,
        retryable: true,
      };
    } finally {
      if (tokenFile) rmSync(tokenFile, { force: true });
    }
    if (signal.aborted) {
      return {
        status: 'failed',
        error: signal.reason instanceof Error ? signal.reason.message : 'cancelled',
        retryable: true,
      };
    }
    const limit = settings.memoryBytes
      ? `${Math.round(settings.memoryBytes / 2 ** 20)} MiB`
      : undefined;
    if (run.oomKilled) {
      return {
        status: 'failed',
        error: `container killed for memory (limit ${limit ?? 'none'})`,
        retryable: true,
      };
    }
    // Docker does not always record an out-of-memory kill: one while the container starts can go
    // unseen (1 in 36 here, 8 MiB containers started 12 at a time). A SIGKILL nobody here sent,
    // under a memory limit, is most likely that.
    if (run.statusCode === SIGKILL_EXIT && limit) {
      return {
        status: 'failed',
        error: `container killed (SIGKILL, no outcome), most likely at its memory limit of ${limit}`,
        retryable: true,
      };
    }
    const outcome = await this.collect(spec, sandbox.output, run.statusCode, redact);
    const full = this.disks.has(sandbox.root) && (await slotDiskFull(sandbox.root));
    return full ? { status: 'failed', error: `the agent ${full}`, retryable: false } : outcome;
  }

  /**
   * What the container left in its output directory, read as untrusted data once it is gone:
   * the outcome (validated) and the transcript (copied into the host's task directory).
   */
  private async collect(
    spec: TaskSpec,
    output: string,
    statusCode: number,
    redact: (text: string) => string,
  ): Promise<ExecutorOutcome> {
    try {
      const transcript = await readUntrusted(
        path.join(output, TASK_FILES.transcript),
        MAX_TRANSCRIPT_BYTES,
      );
      // Appended, as the local backend does: one transcript across a task's attempts.
      if (transcript) {
        const kept = redact(transcript.toString('utf8'));
        appendFileSync(path.join(spec.outputDir, TASK_FILES.transcript), kept);
      }
      const raw = await readUntrusted(path.join(output, TASK_FILES.outcome), MAX_OUTCOME_BYTES);
      if (!raw) {
        return {
          status: 'failed',
          error: `container exited with code ${statusCode} and no outcome`,
          retryable: true,
        };
      }
      const outcome = ExecutorOutcomeSchema.safeParse(JSON.parse(raw.toString('utf8')));
      if (outcome.success) return outcome.data;
    } catch (error) {
      if (error instanceof UntrustedFileError) {
        return {
          status: 'failed',
          error: `the container's output: ${error.message}`,
          retryable: false,
        };
      }
      if (!(error instanceof SyntaxError)) throw error;
    }
    return {
      status: 'failed',
      error: 'the container wrote an unreadable outcome',
      retryable: true,
    };
  }

  /**
   * The verify command in a fresh container of the executor image, hardened as executors are,
   * with the checkout at /workspace (and the prepared environment, read-only, over it) and no
   * network: no process of the agent that wrote the work is alive to answer for it.
   */
  async verify({
    settings: verify,
    sandbox,
    logPath,
    signal,
    attempt,
    environment,
  }: VerifyRequest): Promise<Verification> {
    const prepared = await this.environmentMounts(sandbox.workspace, environment);
    if (process.getuid?.() === 0) await handOver(sandbox.workspace, this.user);
    const { settings } = this.options;
    return this.runCheck({
      label: `verify-${attempt ? `${attempt.taskId}-${attempt.attempt}` : 'final'}`,
      role: 'verify',
      command: verify.command,
      env: ['CI=true', ...OFFLINE],
      hostConfig: withEnvironment(
        hardenedHostConfig({ ...settings, network: 'none' }, [
          `${sandbox.workspace}:${CONTAINER.workspace}:rw`,
        ]),
        prepared,
      ),
      timeoutMs: verify.timeoutMs,
      logPath,
      signal,
    });
  }

  /**
   * `--setup` on a checkout, in a container of the run's image hardened as a check's is, with the
   * checkout at /workspace and a fresh HOME (on disk: a package manager's cache can be large), and
   * the network the setup asks for: the default bridge (or `--docker-network`) with this machine's
   * proxies, or none.
   */
  private async runSetup(
    tree: string,
    home: string,
    { setup, commit, key, logPath, signal }: EnvironmentRequest,
  ): Promise<Verification> {
    const { settings } = this.options;
    appendFileSync(
      logPath,
      `== ${setup.command} on ${commit.slice(0, 12)} in ${settings.image} ==\n`,
    );
    const open = setup.network === 'open';
    const hostConfig = hardenedHostConfig(
      { ...settings, network: open ? settings.network : 'none' },
      [`${tree}:${CONTAINER.workspace}:rw`, `${home}:${CONTAINER.home}:rw`],
    );
    return this.runCheck({
      label: `setup-${key.slice(0, 12)}`,
      role: 'setup',
      command: setup.command,
      env: ['CI=true', `HOME=${CONTAINER.home}`, ...(open ? setupProxyEnv() : OFFLINE)],
      hostConfig: {
        ...hostConfig,
        Tmpfs: Object.fromEntries(
          Object.entries(hostConfig.Tmpfs ?? {}).filter(([dir]) => dir !== CONTAINER.home),
        ),
      },
      timeoutMs: setup.timeoutMs,
      logPath,
      signal,
    });
  }

  /**
   * `sh -c command` in a fresh container of the run's image at /workspace, as the container user,
   * labelled with the run (so that its cleanup removes it too): its output appended to `logPath`
   * (capped), killed at `timeoutMs` or when `signal` aborts.
   */
  private async runCheck(input: {
    label: string;
    role: 'verify' | 'setup';
    command: string;
    env: string[];
    hostConfig: Docker.HostConfig;
    timeoutMs: number;
    logPath: string;
    signal: AbortSignal;
  }): Promise<Verification> {
    const { settings, runId } = this.options;
    const { logPath, signal } = input;
    const timeout = AbortSignal.timeout(input.timeoutMs);
    const started = Date.now();
    const from = await sizeOf(logPath);
    try {
      const run = await runContainer(
        this.docker,
        {
          name: `po-${runId}-${input.label}`.slice(0, 120),
          Image: settings.image,
          Cmd: ['/bin/sh', '-c', input.command],
          User: `${this.user.uid}:${this.user.gid}`,
          WorkingDir: CONTAINER.workspace,
          Env: input.env,
          Labels: { [LABELS.run]: runId, [LABELS.role]: input.role },
          HostConfig: input.hostConfig,
        },
        logPath,
        AbortSignal.any([signal, timeout]),
        undefined,
        VERIFY_LIMITS.logBytes,
      );
      const timedOut = timeout.aborted && !signal.aborted;
      return {
        exitCode: timedOut || signal.aborted ? null : run.statusCode,
        timedOut,
        durationMs: Date.now() - started,
        tail: await readTail(logPath, from),
      };
    } catch (error) {
      return {
        exitCode: null,
        timedOut: false,
        durationMs: Date.now() - started,
        tail: '',
        error: `docker: ${(error as Error).message.split('\n')[0]}`,
      };
    }
  }

  /**
   * A prepared environment's mounts for a container of the slot, their mount points made by the
   * host in its workspace first (the engine would make them as root). A path that is not what its
   * record says in the tree (a link there: the engine resolves a bind's source on the host), or
   * whose place in the workspace is taken by something else, is left out.
   */
  private async environmentMounts(
    workspace: string,
    environment?: PreparedEnvironment,
  ): Promise<EnvironmentMounts> {
    const tree = environment?.tree;
    if (!tree) return {};
    const owner = process.getuid?.() === 0 ? this.user : undefined;
    const shown: string[] = [];
    for (const kept of environment.paths) {
      const source = await lstat(path.join(tree, kept)).catch(() => undefined);
      const fits = kept.endsWith('/') ? source?.isDirectory() : source?.isFile();
      if (fits && (await makeMountPoint(workspace, kept, owner))) shown.push(kept);
    }
    return environmentHostConfig(tree, shown);
  }

  /** No network for containers unless one is named, or opened for real agents. */
  private networkMode(): string | undefined {
    const { settings, network, real } = this.options;
    if (settings.network) return settings.network;
    return real && network === 'open' ? undefined : 'none';
  }

  /** One read-only file holding the attempt's token, readable by the container user only. */
  private stageToken(name: string, token: string): string {
    this.tokens ??= mkdtempSync(path.join(secretsBase(), 'parallel-orchestrator-'));
    const file = path.join(this.tokens, name);
    writeFileSync(file, token, { mode: 0o400 });
    if (process.getuid?.() === 0) chownSync(file, this.user.uid, this.user.gid);
    return file;
  }

  async close(): Promise<void> {
    await this.removeRunContainers();
    await Promise.all([...this.disks].map(unmountSlotDisk));
    this.disks.clear();
    if (this.tokens) rmSync(this.tokens, { recursive: true, force: true });
    this.tokens = undefined;
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
}

/** Memory-backed storage where there is some: staged secrets never reach a disk. */
function secretsBase(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
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

/**
 * Writes each secret to its own file in memory-backed storage, readable only by the container
 * user, and names it in the environment with `*_FILE`: how the docker planner, which calls the
 * model itself, gets its credentials.
 */
export function stageSecrets(
  executorEnv: Record<string, string>,
  user: { uid: number; gid: number } = containerUser(),
): { dir: string; env: string[] } {
  const dir = mkdtempSync(path.join(secretsBase(), 'parallel-orchestrator-'));
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
    // The host reads a container's output as it comes (attach); Docker's own copy is kept small.
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '1' } },
    PidsLimit: settings.pidsLimit,
    ...(settings.memoryBytes && { Memory: settings.memoryBytes, MemorySwap: settings.memoryBytes }),
    ...(settings.nanoCpus && { NanoCpus: settings.nanoCpus }),
    ...(settings.network && { NetworkMode: settings.network }),
    ...(settings.network !== 'none' && { ExtraHosts: ['host.docker.internal:host-gateway'] }),
  };
}
