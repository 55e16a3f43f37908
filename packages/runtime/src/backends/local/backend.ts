import { type ChildProcess, execFile, fork } from 'node:child_process';
import { appendFileSync, mkdirSync, realpathSync } from 'node:fs';
import { chmod, lchown, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV, INHERITED_HOST_ENV, setupNetworkEnv } from '../../contracts/env.js';
import {
  CANONICAL_WORKSPACE,
  OFFLINE_ENV,
  type PreparedEnvironment,
  type SetupSettings,
} from '../../contracts/environment.js';
import type { ExecutorOutcome, TaskSpec } from '../../contracts/executor.js';
import type { AgentNetwork } from '../../contracts/run-config.js';
import type { SandboxLayout } from '../../contracts/run-layout.js';
import type { Verification } from '../../contracts/verify.js';
import type { EnvironmentStore } from '../../environment/environments.js';
import { HostEnvironmentCache } from '../../environment/host-cache.js';
import type { EnvironmentRequest } from '../../environment/setup.js';
import { findClaudeBinary } from '../../models/claude-binary.js';
import { type AgentUser, handOver } from '../../sandbox/agent-user.js';
import { bubblewrapArgs, type Confinement } from '../../sandbox/bubblewrap.js';
import { type Visibility, visibility } from '../../sandbox/visibility.js';
import { removeTree } from '../../trust/untrusted-files.js';
import { verifyProgram } from '../../verify/command.js';
import { runVerifyProcess } from '../../verify/process.js';
import type { Backend, ExecutionContext, VerifyRequest } from '../backend.js';
import type { HostReply, HostRequest } from './host.js';
import { type LimitHit, SlotLimits, type SlotLimitsRun } from './limits.js';

const HOST_PATH = fileURLToPath(new URL('./host.js', import.meta.url));

export interface LocalBackendOptions {
  /** Whether executors call models (`USE_REAL_EXECUTORS`). */
  real: boolean;
  /** The run directory: its output directory is hidden from every sandbox. */
  runRoot: string;
  /** The repository the run started from, where it is on this machine: hidden too. */
  sourceDirs?: readonly string[];
  /**
   * Set when the orchestrator is root: the unprivileged user agents and checks run as, their
   * workspace and home handed to it.
   */
  agentUser?: AgentUser;
  /** Real mode: how agents run. */
  agents?: {
    /**
     * Confined with bubblewrap (the workspace and home writable, runs, repositories and homes
     * hidden); otherwise agents run with file tools only.
     */
    confined: boolean;
    network: AgentNetwork;
    /** The model proxy's socket directory, mounted into every sandbox. */
    modelSocketDir?: string;
  };
  /** The limits of every agent and check, and the slots they run in (none: no limit to hold). */
  limits?: Omit<SlotLimitsRun, 'runRoot' | 'onDiskLow'>;
  /** How long an aborted task may take to stop before the whole host is killed. */
  killGraceMs?: number;
  /** Aborted when stopping is to wait for nothing: the host is killed without its grace. */
  force?: AbortSignal;
  /** `--setup`: where prepared environments are kept (`<cache dir>/environments`). */
  environmentsDir?: string;
}

interface Pending {
  settle: (outcome: ExecutorOutcome) => void;
  logPath: string;
}

/**
 * The executor host's environment, built from scratch: a short allow-list of the orchestrator's
 * own. No credential: agents reach models through the model proxy with a token per attempt.
 */
function hostEnv({ real }: LocalBackendOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED_HOST_ENV) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  env[ENV.USE_REAL_EXECUTORS] = real ? '1' : '0';
  return env;
}

/**
 * Executors on this machine, in one child process (the executor host) that runs up to M tasks
 * at once: a crash there fails the tasks in flight, which are retried, never the orchestrator.
 * One host rather than one process per executor because Node's start-up (70-90 ms of CPU here)
 * per executor outweighed the rest of the per-task overhead. The host leads its own process
 * group; a task that does not stop when aborted gets the whole group killed.
 */
export class LocalBackend implements Backend {
  readonly name = 'local' as const;
  private host: ChildProcess | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly killGraceMs: number;
  /** What sandboxes show of the host, by the program they run (asked of the disk once). */
  private readonly visibilities = new Map<string, Visibility>();
  /** How agents and checks are held to their limits, once warm. */
  private slotLimits: SlotLimits | undefined;
  /** Set when the run's file system nearly filled up: every attempt is stopped, for good. */
  private diskLow: string | undefined;

  /** `--setup`: environments prepared in this backend's sandbox, kept on this machine. */
  readonly environments: EnvironmentStore | undefined;

  constructor(private readonly options: LocalBackendOptions) {
    this.killGraceMs = options.killGraceMs ?? 5_000;
    options.force?.addEventListener('abort', () => this.kill(), { once: true });
    const dir = options.environmentsDir;
    if (dir) {
      const cache = new HostEnvironmentCache(
        dir,
        (tree, home, request) => this.runSetup(tree, home, request),
        options.agentUser,
      );
      this.environments = {
        identity: (setup) => localIdentity(setup),
        ensure: (request) => cache.ensure(request),
      };
    }
  }

  async warm(): Promise<void> {
    this.ensureHost();
    const limits = this.options.limits;
    if (limits && limits.slots.length > 0 && !this.slotLimits) {
      for (const dir of new Set(limits.slots.map((slot) => path.dirname(slot))))
        mkdirSync(dir, { recursive: true });
      this.slotLimits = await SlotLimits.start({
        ...limits,
        runRoot: this.options.runRoot,
        onDiskLow: (message) => this.stopAll(message),
      });
    }
  }

  get limits(): readonly string[] {
    return this.slotLimits?.enforced ?? [];
  }

  /** Stops every attempt under way, for good: the run's disk is nearly full. */
  private stopAll(message: string): void {
    this.diskLow = message;
    for (const key of this.pending.keys()) this.send({ type: 'abort', key });
  }

  /**
   * A fresh HOME for the slot's next agent or check, and, for a root orchestrator, the slot's
   * workspace and home handed to the unprivileged user.
   */
  private async readySandbox(
    sandbox: SandboxLayout,
    environment?: PreparedEnvironment,
  ): Promise<void> {
    await removeTree(sandbox.home);
    mkdirSync(sandbox.home, { recursive: true, mode: 0o700 });
    const user = this.options.agentUser;
    if (user) {
      // bubblewrap enters the workspace as root without its capabilities: the last agent may
      // have closed it to others.
      await chmod(sandbox.workspace, 0o755);
      await handOver(sandbox.workspace, user);
      await handOver(sandbox.home, user);
    }
    // The prepared paths' mount points, made by the host: ignored, so never committed.
    for (const kept of environment?.paths ?? []) {
      const point = path.join(sandbox.workspace, kept);
      await mkdir(point, { recursive: true });
      if (user) await lchown(point, user.uid, user.gid);
    }
  }

  /**
   * `--setup` on a checkout, in the same sandbox as a check but with the network the setup asks
   * for: a fresh HOME, runs and homes hidden, the unprivileged user, at the canonical path.
   */
  private async runSetup(tree: string, home: string, request: EnvironmentRequest) {
    const { setup, logPath, signal } = request;
    appendFileSync(logPath, `== ${setup.command} on ${request.commit.slice(0, 12)} ==\n`);
    const seen = this.confinement({ workspace: tree, home }, process.execPath, setup.network);
    const confinement: Confinement = {
      ...seen,
      workspaceAlias: CANONICAL_WORKSPACE,
      startAtAlias: true,
      ...(setup.network === 'open' && { exposed: [...seen.exposed, ...resolverDirs()] }),
    };
    const args = bubblewrapArgs(confinement, '/bin/sh', ['-c', setup.command]);
    return runVerifyProcess('bwrap', args, {
      cwd: tree,
      env: {
        ...hostEnv(this.options),
        HOME: home,
        TMPDIR: '/tmp',
        CI: 'true',
        ...(setup.network === 'none' ? OFFLINE_ENV : setupNetworkEnv()),
      },
      timeoutMs: setup.timeoutMs,
      logPath,
      signal,
    });
  }

  /**
   * What a sandbox around the slot shows, for a program found at `binary`; with an environment,
   * its prepared paths read-only over the workspace, which is shown at the canonical path too.
   */
  private confinement(
    sandbox: Pick<SandboxLayout, 'workspace' | 'home'>,
    binary: string,
    network: AgentNetwork,
    environment?: PreparedEnvironment,
  ): Confinement {
    let seen = this.visibilities.get(binary);
    if (!seen) {
      const { runRoot, sourceDirs, environmentsDir } = this.options;
      seen = visibility(runRoot, [binary, process.execPath], undefined, sourceDirs);
      // Prepared environments are shown only as the sandbox's own paths, never as the cache.
      if (environmentsDir) seen = { ...seen, hidden: [...seen.hidden, environmentsDir] };
      this.visibilities.set(binary, seen);
    }
    const memoryBytes = this.options.limits?.limits.memoryBytes;
    return {
      workspace: sandbox.workspace,
      home: sandbox.home,
      network,
      ...seen,
      ...(environment?.tree && {
        environment: { tree: environment.tree, paths: environment.paths },
        workspaceAlias: CANONICAL_WORKSPACE,
      }),
      ...(this.options.agentUser && { runAs: this.options.agentUser }),
      // The private /tmp is memory: no more of it than the agent may use.
      ...(memoryBytes && { tmpBytes: memoryBytes }),
    };
  }

  async execute(
    spec: TaskSpec,
    { signal, logPath, sandbox, modelToken, environment }: ExecutionContext,
  ): Promise<ExecutorOutcome> {
    if (signal.aborted) return aborted(signal);
    const { agents } = this.options;
    if (agents) {
      await this.readySandbox(sandbox, environment);
      await this.slotLimits?.prepare(sandbox.root);
    }
    const confinement =
      agents?.confined === true
        ? {
            ...this.confinement(sandbox, findClaudeBinary(), agents.network, environment),
            modelSocketDir: agents.modelSocketDir,
          }
        : undefined;
    const outcome = await this.inHost(spec, { signal, logPath, modelToken }, confinement, sandbox);
    const hit = agents && (await this.slotLimits?.afterwards(sandbox.root));
    return hit ? limitHit(outcome, hit) : outcome;
  }

  /** One attempt in the executor host, settled when it reports or the host dies. */
  private inHost(
    spec: TaskSpec,
    { signal, logPath, modelToken }: Pick<ExecutionContext, 'signal' | 'logPath' | 'modelToken'>,
    confinement: Confinement | undefined,
    sandbox: SandboxLayout,
  ): Promise<ExecutorOutcome> {
    const { agents, agentUser } = this.options;
    const host = this.ensureHost();
    const key = `${spec.taskId}#${spec.attempt}`;
    return new Promise<ExecutorOutcome>((resolve) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.send({ type: 'abort', key });
        killTimer = setTimeout(() => this.kill(), this.killGraceMs);
      };
      this.pending.set(key, {
        logPath,
        settle: (outcome) => {
          clearTimeout(killTimer);
          signal.removeEventListener('abort', onAbort);
          this.pending.delete(key);
          if (this.diskLow)
            resolve({ status: 'failed', error: `stopped: ${this.diskLow}`, retryable: false });
          else resolve(signal.aborted && outcome.status === 'failed' ? aborted(signal) : outcome);
        },
      });
      signal.addEventListener('abort', onAbort, { once: true });
      host.send({
        type: 'run',
        key,
        spec,
        logPath,
        modelToken,
        confinement,
        ...(agents && agentUser && { runAs: agentUser }),
        ...(agents && this.slotLimits && { launcher: this.slotLimits.launcher(sandbox.root) }),
      } satisfies HostRequest);
    });
  }

  /**
   * The verify command in a bubblewrap sandbox: the checkout writable, a fresh HOME, runs,
   * repositories and homes hidden, no network, every process gone when it ends, and for a root
   * orchestrator the unprivileged user.
   */
  async verify({
    settings,
    sandbox,
    logPath,
    signal,
    environment,
  }: VerifyRequest): Promise<Verification> {
    await this.readySandbox(sandbox, environment);
    await this.slotLimits?.prepare(sandbox.root);
    const confinement = this.confinement(sandbox, process.execPath, 'none', environment);
    const [file, ...args] = [
      ...(this.slotLimits?.launcher(sandbox.root) ?? []),
      'bwrap',
      ...bubblewrapArgs({ ...confinement, startAtAlias: true }, '/bin/sh', [
        '-c',
        settings.command,
      ]),
    ] as [string, ...string[]];
    const verification = await runVerifyProcess(file, args, {
      cwd: sandbox.workspace,
      env: {
        ...hostEnv(this.options),
        HOME: sandbox.home,
        TMPDIR: '/tmp',
        CI: 'true',
        ...OFFLINE_ENV,
      },
      timeoutMs: settings.timeoutMs,
      logPath,
      signal,
    });
    const hit = await this.slotLimits?.afterwards(sandbox.root);
    return hit ? { ...verification, error: `the check ${hit.error}` } : verification;
  }

  async close(): Promise<void> {
    const host = this.host;
    if (host)
      await new Promise<void>((resolve) => {
        host.once('exit', () => resolve());
        this.kill();
      });
    await this.slotLimits?.close();
    this.slotLimits = undefined;
  }

  private ensureHost(): ChildProcess {
    if (this.host) return this.host;
    const host = fork(HOST_PATH, [], {
      env: hostEnv(this.options),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      serialization: 'advanced',
    });
    // Output outside any task's own log (a crash trace) goes to the logs of the tasks in flight.
    const toLogs = (chunk: Buffer) => {
      for (const { logPath } of this.pending.values()) appendFileSync(logPath, chunk);
    };
    host.stdout?.on('data', toLogs);
    host.stderr?.on('data', toLogs);
    host.on('message', (reply: HostReply) => this.pending.get(reply.key)?.settle(reply.outcome));
    // A failed send (the host just died) surfaces as its exit, which settles the tasks.
    host.on('error', () => {});
    host.on('exit', (code, exitSignal) => {
      if (this.host === host) this.host = undefined;
      const error = `executor host ${exitSignal ? `killed by ${exitSignal}` : `exited with code ${code}`}`;
      for (const { settle } of [...this.pending.values()])
        settle({ status: 'failed', error, retryable: true });
    });
    this.host = host;
    return host;
  }

  private send(request: HostRequest): void {
    this.host?.send(request);
  }

  /** Kills the host and everything it started (its process group). */
  private kill(): void {
    const pid = this.host?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** An attempt a limit stopped, told as such whatever the agent made of it. */
function limitHit(outcome: ExecutorOutcome, hit: LimitHit): ExecutorOutcome {
  return { status: 'failed', error: hit.error, retryable: hit.retryable, usage: outcome.usage };
}

/**
 * Where a setup's name lookups are answered from, when /etc/resolv.conf points into /run (a
 * systemd-resolved host): the sandbox's /run is its own, so that directory is shown again.
 */
function resolverDirs(): string[] {
  try {
    const resolved = realpathSync('/etc/resolv.conf');
    return resolved.startsWith('/run/') ? [path.dirname(resolved)] : [];
  } catch {
    return [];
  }
}

/**
 * What decides a local environment besides the repository: this machine's architecture and the
 * setup's program (`npm` of one Node installation, `python3` of one Python), by where it is and
 * its size and time: another install of it prepares another environment.
 */
async function localIdentity(setup: SetupSettings): Promise<string> {
  const program = verifyProgram(setup.command) ?? 'sh';
  const found = await new Promise<string>((resolve) =>
    execFile('/bin/sh', ['-c', 'command -v "$1"', 'sh', program], (error, stdout) =>
      resolve(error ? program : stdout.trim()),
    ),
  );
  const real = path.isAbsolute(found) ? realpathSync(found) : found;
  const stats = await stat(real).catch(() => undefined);
  return `local:${process.arch}:${real}:${stats?.size ?? 0}:${stats?.mtimeMs ?? 0}`;
}

function aborted(signal: AbortSignal): ExecutorOutcome {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'cancelled';
  return { status: 'failed', error: reason, retryable: true };
}
