/**
 * A prepared environment (`--setup`) inside a Batch job: how a setup job makes one into an
 * archive, and how an attempt's or a check's job lays it into its workspace, read-only to the
 * agent. Runs in the job, as root; whatever reads or writes what a setup made runs as the
 * agent's user, so a crafted archive can do no more than the agent itself could.
 */
import { type SpawnOptions, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync } from 'node:fs';
import { lchown, lstat, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { JobEnvironment } from '../../contracts/batch-job.js';
import { ENVIRONMENT_HOLES } from '../../contracts/environment.js';
import { type AgentUser, unconfinedArgs } from '../../sandbox/agent-user.js';
import { removeTree } from '../../trust/untrusted-files.js';

/** A command's end: its exit code and the end of what it wrote to stderr. */
interface Ran {
  code: number | null;
  stderr: string;
}

function run(
  file: string,
  args: readonly string[],
  options: SpawnOptions & { stdinFile?: string; stdoutFile?: string; input?: string } = {},
): Promise<Ran> {
  const { stdinFile, stdoutFile, input, ...spawnOptions } = options;
  const fds: number[] = [];
  const open = (file: string, flags: string) => {
    const fd = openSync(file, flags, 0o600);
    fds.push(fd);
    return fd;
  };
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      ...spawnOptions,
      stdio: [
        stdinFile ? open(stdinFile, 'r') : input !== undefined ? 'pipe' : 'ignore',
        stdoutFile ? open(stdoutFile, 'w') : 'ignore',
        'pipe',
      ],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4096);
    });
    if (input !== undefined) child.stdin?.end(input);
    const settle = (result: Ran) => {
      for (const fd of fds.splice(0)) closeSync(fd);
      resolve(result);
    };
    child.on('error', (error) => settle({ code: null, stderr: error.message }));
    child.on('close', (code) => settle({ code, stderr }));
  });
}

async function mustRun(
  what: string,
  file: string,
  args: readonly string[],
  options?: Parameters<typeof run>[2],
): Promise<void> {
  const { code, stderr } = await run(file, args, options);
  if (code !== 0)
    throw new Error(
      `${what} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' / ')}`,
    );
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What a prepared path is in the workspace: `p` without its directory's final `/`. */
const bare = (p: string) => p.replace(/\/+$/, '');

/**
 * The archive of what a setup made: a gzipped tar of `paths` (relative to `workspace`), written
 * by `tar` running as the agent's user (it reads only what the setup's own user can), to
 * `archive`, which root opened. Symbolic links are kept as links, never followed.
 */
export async function archivePaths(
  workspace: string,
  paths: readonly string[],
  archive: string,
  agentUser: AgentUser | undefined,
): Promise<{ sha256: string; bytes: number; diskBytes: number }> {
  const [file, args] = unconfinedArgs(agentUser, 'tar', [
    '--create',
    '--gzip',
    '--file=-',
    '--sort=name',
    `--directory=${workspace}`,
    '--null',
    '--files-from=-',
  ]);
  await mustRun('tar of the prepared paths', file, args, {
    cwd: workspace,
    stdoutFile: archive,
    input: paths.map((p) => `${bare(p)}\0`).join(''),
  });
  const [sha256, { size }, diskBytes] = await Promise.all([
    fileSha256(archive),
    stat(archive),
    duBytes(workspace, paths),
  ]);
  return { sha256, bytes: size, diskBytes };
}

/** What `paths` take on disk, by `du` (hard links counted once). */
async function duBytes(workspace: string, paths: readonly string[]): Promise<number> {
  if (paths.length === 0) return 0;
  let out = '';
  await new Promise<void>((resolve) => {
    const child = spawn('du', ['-s', '-c', '-B1', '--', ...paths.map(bare)], {
      cwd: workspace,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('close', () => resolve());
    child.on('error', () => resolve());
  });
  const total = out.trim().split('\n').at(-1) ?? '';
  return Number(total.split(/\s/)[0]) || 0;
}

/**
 * The environment of one job, once its archive is downloaded: laid into the workspace after each
 * checkout (the first extracts it, a later one finds it kept by the checkout), always owned by
 * root with no write permission, but for its holes (tools' caches), which start empty and are
 * the agent's.
 */
export class WorkspaceEnvironment {
  /** Absolute paths in the workspace that the checkout hands over to nobody. */
  readonly skip: ReadonlySet<string>;

  constructor(
    readonly spec: JobEnvironment,
    private readonly workspace: string,
    /** Where the downloaded archive is kept for the job's life. */
    readonly archive: string,
    private readonly agentUser: AgentUser | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.skip = new Set(spec.paths.map((p) => path.join(workspace, bare(p))));
  }

  /** The prepared paths, relative to the top, as the checkout keeps them. */
  get paths(): readonly string[] {
    return this.spec.paths;
  }

  /**
   * Lays the environment into the freshly checked-out workspace (extracting it when a path is
   * missing), locks it, and empties its holes. Returns how long extracting took (0 when kept).
   */
  async install(): Promise<number> {
    let extractedMs = 0;
    if (!(await this.present())) {
      const started = Date.now();
      await this.extract();
      await this.lock();
      extractedMs = Date.now() - started;
      this.log(
        `environment: ${this.spec.paths.length} prepared path(s) extracted and locked in ${(extractedMs / 1000).toFixed(2)} s`,
      );
    }
    await this.openHoles();
    return extractedMs;
  }

  /**
   * Whether every prepared path is in the workspace as this job locked it: a directory where the
   * path says so, root's and unwritable. An agent cannot change what is inside one, but it can
   * rename one away in the directory it owns and leave its own in its place: that one is not the
   * environment, and the check must not start from it.
   */
  private async present(): Promise<boolean> {
    for (const p of this.spec.paths) {
      const found = await lstat(path.join(this.workspace, bare(p))).catch(() => undefined);
      if (!found || found.isDirectory() !== p.endsWith('/')) return false;
      const writable = !found.isSymbolicLink() && (found.mode & 0o222) !== 0;
      if (this.agentUser && (found.uid !== 0 || writable)) return false;
    }
    return true;
  }

  /**
   * Extracts the archive as the agent's user, into the workspace it owns: a member that would
   * leave it, or follow a link out of it, can write nothing the agent could not.
   */
  private async extract(): Promise<void> {
    for (const p of this.spec.paths) await removeTree(path.join(this.workspace, bare(p)));
    const [file, args] = unconfinedArgs(this.agentUser, 'tar', [
      '--extract',
      '--gzip',
      '--file=-',
      `--directory=${this.workspace}`,
      '--no-same-owner',
      '--delay-directory-restore',
    ]);
    await mustRun('extracting the environment', file, args, {
      cwd: this.workspace,
      stdinFile: this.archive,
    });
  }

  /**
   * Root's, with no write permission for anyone: the agent (its own uid) gets EACCES on any
   * write, and no link is followed (`chown -h`; `find -P` never enters or changes a link).
   */
  private async lock(): Promise<void> {
    const targets = this.spec.paths.map(bare);
    await mustRun('chown of the environment', 'chown', ['-R', '-h', '0:0', '--', ...targets], {
      cwd: this.workspace,
    });
    await mustRun(
      'chmod of the environment',
      'find',
      [
        '-P',
        ...targets.map((t) => `./${t}`),
        '!',
        '-type',
        'l',
        '-exec',
        'chmod',
        'a-w',
        '{}',
        '+',
      ],
      { cwd: this.workspace },
    );
  }

  /** The holes (`node_modules/.cache`, ...) of a prepared top directory: empty, the agent's. */
  private async openHoles(): Promise<void> {
    for (const hole of ENVIRONMENT_HOLES) {
      if (!this.spec.paths.includes(`${hole.split('/')[0]}/`)) continue;
      const dir = path.join(this.workspace, hole);
      await removeTree(dir);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      if (this.agentUser) await lchown(dir, this.agentUser.uid, this.agentUser.gid);
    }
  }
}
