import type { PreparedEnvironment, SetupSettings } from '../contracts/environment.js';
import { environmentKey, keyFiles } from './key.js';
import type { EnvironmentRequest, EnvironmentResult } from './setup.js';

/** Where a backend keeps prepared environments, and how it prepares one in its sandbox. */
export interface EnvironmentStore {
  /** What decides an environment besides the repository: the image, or this machine's toolchain. */
  identity(setup: SetupSettings): Promise<string>;
  /** The key's environment, kept or prepared; throws SetupFailedError when the setup fails. */
  ensure(request: EnvironmentRequest): Promise<EnvironmentResult>;
}

/** An environment as a run asked for it: `first` when no earlier request of the run had its key. */
export interface RunEnvironment extends EnvironmentResult {
  first: boolean;
}

/**
 * A run's environments: each base's key computed from its manifests, each key prepared (or
 * found) once per run however many attempts ask for it at once.
 */
export class Environments {
  private readonly byKey = new Map<string, Promise<EnvironmentResult>>();
  private identity: Promise<string> | undefined;

  constructor(
    private readonly store: EnvironmentStore,
    readonly setup: SetupSettings,
    private readonly gitDir: string,
  ) {}

  async keyOf(commit: string): Promise<string> {
    this.identity ??= this.store.identity(this.setup);
    const [identity, files] = await Promise.all([
      this.identity,
      keyFiles(this.gitDir, commit, this.setup.command),
    ]);
    return environmentKey({ setup: this.setup, identity, files });
  }

  async forCommit(
    commit: string,
    request: Pick<EnvironmentRequest, 'logPath' | 'signal' | 'attempt'>,
  ): Promise<RunEnvironment> {
    const key = await this.keyOf(commit);
    const known = this.byKey.get(key);
    if (known) return { ...(await known), first: false };
    const ensured = this.store.ensure({
      ...request,
      key,
      commit,
      setup: this.setup,
      gitDir: this.gitDir,
    });
    this.byKey.set(key, ensured);
    // A failed setup is not kept: the next base with this key (a retry's) tries again.
    ensured.catch(() => this.byKey.delete(key));
    return { ...(await ensured), first: true };
  }
}

/** The environment's event fields, for the journal. */
export function preparedFields(result: EnvironmentResult) {
  const { environment, cached, note } = result;
  return {
    command: environment.command,
    key: environment.key,
    commit: environment.commit,
    cached,
    preparedMs: environment.preparedMs,
    paths: environment.paths,
    bytes: environment.bytes,
    ...(note && { note }),
  };
}

export type { PreparedEnvironment };
