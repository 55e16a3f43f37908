import type { Option } from 'commander';
import type { BackendConfig } from '../contracts/backend-config.js';
import type { PreparedEnvironment, SetupSettings } from '../contracts/environment.js';
import type { RemoteJob } from '../contracts/events.js';
import type { AgentSettings, ExecutorOutcome, TaskSpec } from '../contracts/executor.js';
import type { BackendName, RunConfig } from '../contracts/run-config.js';
import type { RunLayout, SandboxLayout } from '../contracts/run-layout.js';
import type { Verification, VerifySettings } from '../contracts/verify.js';
import type { EnvironmentStore } from '../environment/environments.js';
import type { ModelProxy } from '../proxy/model-proxy.js';

export interface ExecutionContext {
  /** Executor slot 0..M-1 (the contract's EXECUTOR_ID). */
  executor: number;
  /** Aborts on timeout or cancellation; the backend must stop the executor and settle. */
  signal: AbortSignal;
  /** Where the executor's output goes. */
  logPath: string;
  /**
   * The slot's sandbox: its workspace is ready for the task; its home and output are the
   * backend's to make afresh for the attempt if its executors need them.
   */
  sandbox: SandboxLayout;
  /** This attempt's model proxy token (real mode): handed to the executor, never written. */
  modelToken?: string;
  /** The integration commit the workspace was prepared at: the attempt's base. */
  base: string;
  /**
   * Backends that run an attempt as a remote job journal it through this: its name before it is
   * submitted, its id and states after. Written before the backend acts on it.
   */
  recordJob?: (job: RemoteJob, state: string, reason?: string) => void;
  /**
   * Set when a resumed run continues this attempt: the job the interrupted orchestrator left,
   * to be waited for (or collected) instead of submitting another.
   */
  adopt?: RemoteJob;
  /** `--setup`: the environment of the attempt's base, shown read-only in its workspace. */
  environment?: PreparedEnvironment;
}

/** One run of `--verify` on a tree the host checked out. */
export interface VerifyRequest {
  settings: VerifySettings;
  /** The tree to check is in its workspace; its home is the backend's to make afresh. */
  sandbox: SandboxLayout;
  /** The commit checked out there (what a backend running elsewhere starts from). */
  commit: string;
  /** Where the command's output goes: appended to, capped. */
  logPath: string;
  signal: AbortSignal;
  /** The attempt whose work is checked; absent for the integration branch at the end. */
  attempt?: { taskId: string; attempt: number };
  /** `--setup`: the environment of the tree checked, shown read-only in its workspace. */
  environment?: PreparedEnvironment;
}

/**
 * Where executors run. Every backend takes the same task spec and settles with the same
 * outcome; an executor that crashes or is killed settles as a retryable failure, never a throw.
 * At most M `execute` calls are in flight; the scheduler sees to that. When `execute` settles,
 * no process of the attempt may be left: the host then reads and resets the sandbox. A succeeded
 * attempt's work is in the slot's workspace by then (a backend whose executors run elsewhere
 * writes it there from what the job returned), and the host commits it from there.
 */
export interface Backend {
  readonly name: BackendName;
  execute(spec: TaskSpec, context: ExecutionContext): Promise<ExecutorOutcome>;
  /**
   * Runs the verify command with the same isolation as an executor (never on the host as the
   * user: what it runs is agents' work), no network, and the request's timeout. A backend whose
   * jobs check their own work answers an attempt's request with the job's verification.
   */
  verify(request: VerifyRequest): Promise<Verification>;
  /**
   * Gets ready before the first task: starts what executors need, and clears what an
   * interrupted orchestrator left behind for this run.
   */
  warm(): Promise<void>;
  /** Stops every executor the backend started. */
  close(): Promise<void>;
  /** `--setup`: where this backend keeps prepared environments, and prepares them. */
  readonly environments?: EnvironmentStore;
  /** Once warm: what each agent may use and how this host holds it there, a line each. */
  readonly limits?: readonly string[];
}

/** Every slot of a run where executors or checks run: its executors', and the final check's. */
export function slotRoots(config: RunConfig, layout: RunLayout): string[] {
  const executors = Array.from({ length: config.executors }, (_, i) => layout.sandbox(i).root);
  return config.verify ? [...executors, layout.finalVerifySandbox.root] : executors;
}

/** What a backend is built from, besides its own settings. */
export interface BackendContext {
  config: RunConfig;
  layout: RunLayout;
  /** Real runs of a backend whose agents use it: the host's model proxy. */
  proxy?: ModelProxy;
  /** Values that must never reach a log or transcript the backend writes (model credentials). */
  secrets: readonly string[];
  /**
   * Aborted when stopping is to wait for nothing (a second Ctrl-C): executors still running are
   * killed at once, and closing waits for no graceful end.
   */
  force?: AbortSignal;
}

/** What `run` and `resume` ask of a backend before any work starts. */
export interface PreflightRequest {
  real: boolean;
  /** The tools real agents get, and whether the user named them. */
  allowedTools: readonly string[];
  toolsGiven: boolean;
  /** `--verify`: the backend checks it can run the command, and says why not in one line. */
  verify?: VerifySettings;
  /** `--setup`: the backend checks it can run the command, and says why not in one line. */
  setup?: SetupSettings;
  /** A real run: the provider and model its executors are to use. */
  agent?: Pick<AgentSettings, 'provider' | 'model'>;
}

/** One line of `doctor`: what was checked, how it stands, and what to do when it is not ok. */
export interface DoctorCheck {
  name: string;
  /**
   * `missing`: real runs (on this backend) cannot work; `warn`: one feature cannot, or it was not
   * checked; `note`: nothing to do for what was asked (simulation needs no credentials).
   */
  status: 'ok' | 'warn' | 'missing' | 'note';
  detail: string;
  /** What to do, when the status is not `ok`. */
  fix?: string;
}

export interface Preflight<Settings> {
  settings: Settings;
  /** The tools agents get on this backend (fewer than asked where they cannot be confined). */
  allowedTools: readonly string[];
}

/**
 * One backend's home: its settings (stored in run.json under its name), the flags `run` takes
 * for it, the checks made before a run writes anything, and its construction. The CLI and the
 * orchestrator know backends only through this, so adding one touches neither.
 */
export interface BackendKind<Settings = unknown> {
  readonly name: BackendName;
  /** Options of `run` for this backend; their values reach `settings` by attribute name. */
  readonly flags: readonly Option[];
  /**
   * Whether real agents reach models through this machine's model proxy (their credentials stay
   * here); a backend whose executors run elsewhere gets credentials from its own stack.
   */
  readonly usesModelProxy: boolean;
  /**
   * Settings from the flags and, when given, a stack's backend config for this backend; `given`
   * tells a flag typed on the command line (which wins over the config) from a default.
   */
  settings(
    flags: Readonly<Record<string, unknown>>,
    given: (flag: string) => boolean,
    config?: BackendConfig,
  ): Settings;
  /** Checks made before a run starts and again before it resumes; says what agents may use. */
  preflight(settings: Settings, request: PreflightRequest): Promise<Preflight<Settings>>;
  /** `doctor`'s lines for this backend: each thing a run on it needs, checked without a run. */
  doctor?(settings: Settings, env: NodeJS.ProcessEnv): Promise<DoctorCheck[]>;
  create(settings: Settings, context: BackendContext): Promise<Backend>;
}
