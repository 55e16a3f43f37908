import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import {
  ENVIRONMENT_HOLES,
  type PreparedEnvironment,
  PreparedEnvironmentSchema,
} from '../contracts/environment.js';
import { type Verification, verificationPassed } from '../contracts/verify.js';
import { type AgentUser, handOver } from '../sandbox/agent-user.js';
import { removeTree } from '../trust/untrusted-files.js';
import { gitScript } from '../workspace/git.js';
import {
  logLeftOut,
  MAX_PREPARED_PATHS,
  setupChanges,
  straysReason,
  tooManyPathsReason,
} from './prepared-paths.js';
import { npmRegistrySettings } from './registry-config.js';
import { type EnvironmentRequest, type EnvironmentResult, SetupFailedError } from './setup.js';

const ENVIRONMENT_FILE = 'environment.json';

/** Runs the setup in the backend's sandbox, on a checkout at `tree` with `home` as its HOME. */
export type RunSetup = (
  tree: string,
  home: string,
  request: EnvironmentRequest,
) => Promise<Verification>;

/**
 * Prepared environments kept on this machine, by key, for the backends whose workspaces are on
 * it (local, Docker): `<dir>/<key>/tree` holds the prepared ignored paths and nothing else,
 * shown read-only in every sandbox; `<dir>/<key>/environment.json` is written last, so an
 * environment without it was never finished. Shared by every run on the machine.
 */
export class HostEnvironmentCache {
  constructor(
    /** `<cache dir>/environments`. */
    readonly dir: string,
    private readonly runSetup: RunSetup,
    /** A root orchestrator's unprivileged user (a container's, on Docker), who runs the setup. */
    private readonly agentUser?: Pick<AgentUser, 'uid' | 'gid'>,
  ) {}

  /** The key's environment, from the cache when it is there whole, else prepared. */
  async ensure(request: EnvironmentRequest): Promise<EnvironmentResult> {
    const found = await this.lookup(request.key);
    if ('environment' in found) return { environment: found.environment, cached: true };
    // What setups killed mid-way left, long enough ago that none of them is still at work.
    await this.sweep(2 * request.setup.timeoutMs);
    const environment = await this.prepare(request);
    return { environment, cached: false, ...(found.note && { note: found.note }) };
  }

  private async lookup(
    key: string,
  ): Promise<{ environment: PreparedEnvironment } | { note?: string }> {
    const home = path.join(this.dir, key);
    let text: string;
    try {
      text = await readFile(path.join(home, ENVIRONMENT_FILE), 'utf8');
    } catch {
      return existsSync(home) ? { note: await this.discard(key, 'it was never finished') } : {};
    }
    const parsed = PreparedEnvironmentSchema.safeParse(JSON.parse(text) as unknown);
    if (!parsed.success || parsed.data.tree !== path.join(home, 'tree'))
      return { note: await this.discard(key, 'its record is not valid') };
    const tree = parsed.data.tree;
    for (const kept of parsed.data.paths) {
      const stats = await lstat(path.join(tree, kept)).catch(() => undefined);
      if (!stats || stats.isDirectory() !== kept.endsWith('/'))
        return { note: await this.discard(key, `${kept} is missing`) };
    }
    return { environment: parsed.data };
  }

  /** Moves a broken environment out of the way; says why it is prepared again. */
  private async discard(key: string, why: string): Promise<string> {
    const stale = path.join(this.dir, `.stale-${key}-${randomBytes(4).toString('hex')}`);
    await rename(path.join(this.dir, key), stale).catch(() => undefined);
    await removeTree(stale);
    return `environment ${key.slice(0, 12)} in the cache is incomplete (${why}): preparing it again`;
  }

  /**
   * Checks the commit out into a scratch directory, runs the setup there, checks that it changed
   * no tracked file and wrote nothing the repository's ignore rules do not cover, keeps only the
   * ignored paths it made, and renames the result into place: a concurrent run preparing the
   * same key loses the rename and uses the winner's.
   */
  private async prepare(request: EnvironmentRequest): Promise<PreparedEnvironment> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const scratch = path.join(
      this.dir,
      `.partial-${request.key}-${randomBytes(4).toString('hex')}`,
    );
    const checkout = path.join(scratch, 'checkout');
    const home = path.join(scratch, 'home');
    const kept = path.join(scratch, 'tree');
    try {
      await mkdir(checkout, { recursive: true });
      await mkdir(home, { mode: 0o700 });
      const npmrc = npmRegistrySettings();
      if (npmrc) await writeFile(path.join(home, '.npmrc'), npmrc);
      const target = {
        gitDir: request.gitDir,
        workTree: checkout,
        indexFile: path.join(scratch, 'index'),
      };
      await gitScript(target, 'checkout-for-setup', 'git read-tree --reset -u "$1"', [
        request.commit,
      ]);
      if (this.agentUser) {
        await chmod(checkout, 0o755);
        await handOver(checkout, this.agentUser);
        await handOver(home, this.agentUser);
      }
      const started = Date.now();
      const verification = await this.runSetup(checkout, home, request);
      const preparedMs = Date.now() - started;
      if (!verificationPassed(verification))
        throw new SetupFailedError(request.setup, verification, request.logPath);
      const { strays, paths, leftOut } = await setupChanges(target);
      if (strays.length > 0)
        throw new SetupFailedError(request.setup, verification, request.logPath, {
          reason: straysReason(strays),
        });
      logLeftOut(request.logPath, leftOut);
      if (paths.length > MAX_PREPARED_PATHS)
        throw new SetupFailedError(request.setup, verification, request.logPath, {
          reason: tooManyPathsReason(paths.length),
        });
      // Only the prepared paths stay: the tracked files come from each base's own checkout.
      await mkdir(kept);
      for (const kept_ of paths) {
        const from = path.join(checkout, kept_);
        const to = path.join(kept, kept_);
        await mkdir(path.dirname(to), { recursive: true });
        await rename(from, to);
      }
      for (const hole of ENVIRONMENT_HOLES) {
        const top = `${hole.split('/')[0]}/`;
        if (!paths.includes(top)) continue;
        const dir = path.join(kept, hole);
        // A link the setup left there would be followed here, on this machine: a hole is each
        // sandbox's own, so whatever is not a directory gives way to an empty one.
        const found = await lstat(dir).catch(() => undefined);
        if (found && !found.isDirectory()) await rm(dir, { force: true });
        await mkdir(dir, { recursive: true });
        // Docker's tmpfs over a hole takes the mode of the directory it covers (runc keeps it), and
        // the tree is root's: open, so that the container's user can write its private copy.
        await chmod(dir, 0o1777);
      }
      await removeTree(checkout);
      await removeTree(home);
      await rm(target.indexFile, { force: true });
      // The setup's user gives its files back: no agent's id owns anything of the cache.
      if (this.agentUser) await run('chown', ['-R', '-h', '0:0', kept]);
      const final = path.join(this.dir, request.key);
      const environment: PreparedEnvironment = {
        key: request.key,
        commit: request.commit,
        command: request.setup.command,
        paths,
        bytes: await diskBytes(kept),
        preparedMs,
        createdAt: new Date().toISOString(),
        tree: path.join(final, 'tree'),
      };
      await writeFile(
        path.join(scratch, ENVIRONMENT_FILE),
        `${JSON.stringify(environment, null, 2)}\n`,
      );
      try {
        await rename(scratch, final);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
        // Another run prepared the same key meanwhile: its copy is as good.
        await removeTree(scratch);
        const found = await this.lookup(request.key);
        if ('environment' in found) return found.environment;
        throw error;
      }
      return environment;
    } catch (error) {
      await removeTree(scratch).catch(() => undefined);
      throw error;
    }
  }

  /** Removes scratch directories an interrupted setup left, older than `olderThanMs`. */
  async sweep(olderThanMs: number): Promise<void> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of entries) {
      if (!name.startsWith('.partial-') && !name.startsWith('.stale-')) continue;
      const full = path.join(this.dir, name);
      const stats = await stat(full).catch(() => undefined);
      if (stats && Date.now() - stats.mtimeMs > olderThanMs) await removeTree(full);
    }
  }
}

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** What the tree takes on disk, by `du` (hard links counted once). */
async function diskBytes(dir: string): Promise<number> {
  const out = await run('du', ['-s', '-B1', dir]);
  return Number(out.split(/\s/)[0]) || 0;
}
