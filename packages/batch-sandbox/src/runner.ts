import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { DOCKER_CALL_MS, LABELS, ownerLabel, withTimeout } from './docker.js';
import type { SecretStaging } from './secrets.js';

/** One attempt's container, resolved from the job definition and the submission. */
export interface AttemptSpec {
  jobId: string;
  attempt: number;
  /** The local image (every image reference of a definition maps to it). */
  image: string;
  /** Undefined: the image's own command. */
  command: string[] | undefined;
  env: string[];
  secrets: { name: string; value: string }[];
  user: string | undefined;
  vcpus: number;
  memoryMib: number | undefined;
  readonlyRootfs: boolean;
  /** Where volumes without a host path are mounted: each a new Docker volume of its own. */
  hostlessVolumes: string[];
  /** On a Fargate compute environment: those volumes start empty unless the image declares them. */
  fargate: boolean;
  /** Volumes with a host path, `host:container[:ro]`. */
  binds: string[];
  init: boolean;
  /** Each line the container prints, with the time Docker read it. */
  log: (timestamp: number, message: string) => void;
}

export interface ContainerExit {
  exitCode: number;
  oomKilled: boolean;
}

export interface StartedContainer {
  /** Settles once the container has ended, its logs read and the container removed. */
  exited: Promise<ContainerExit>;
  /** SIGTERM, then SIGKILL after the grace period (a stopped ECS task). */
  stop(graceSeconds: number): Promise<void>;
  /** SIGKILL now (the host went away). */
  kill(): Promise<void>;
}

/** A container that could not start; the message is the attempt's statusReason. */
export class StartError extends Error {}

/** How long an ended container's log stream may take to drain. */
const LOG_DRAIN_MS = 5_000;

export class DockerRunner {
  private readonly users = new Map<string, Promise<{ uid: number; gid: number }>>();
  private readonly declaredVolumes = new Map<string, Promise<Set<string>>>();

  constructor(
    private readonly docker: Docker,
    private readonly sandboxId: string,
    private readonly network: { name: string; gateway: string },
    private readonly secrets: SecretStaging,
  ) {}

  private labels(jobId: string, attempt: number): Record<string, string> {
    return {
      [LABELS.sandbox]: this.sandboxId,
      [LABELS.owner]: ownerLabel(),
      [LABELS.jobId]: jobId,
      [LABELS.attempt]: String(attempt),
    };
  }

  /** Creates and starts the attempt's container; a Docker Engine that hangs fails the attempt. */
  start(spec: AttemptSpec): Promise<StartedContainer> {
    const starting = this.createAndStart(spec);
    return withTimeout(starting, DOCKER_CALL_MS, () => {
      // Should Docker answer after all, the late container does not run unwatched.
      starting.then(
        (late) => late.kill(),
        () => {},
      );
      return new StartError(
        `DockerTimeoutError: the container did not start within ${DOCKER_CALL_MS / 1000} s`,
      );
    });
  }

  private async createAndStart(spec: AttemptSpec): Promise<StartedContainer> {
    let staged: { dir: string; binds: string[]; env: string[] } | undefined;
    let container: Docker.Container | undefined;
    try {
      const owner = await this.userIds(spec.image, spec.user);
      if (spec.secrets.length > 0)
        staged = this.secrets.stage(`${spec.jobId}-${spec.attempt}`, spec.secrets, owner);
      const declared = await this.imageVolumes(spec.image);
      const memory = spec.memoryMib ? spec.memoryMib * 1024 * 1024 : undefined;
      container = await this.docker.createContainer({
        name: `batch-sandbox-${this.sandboxId}-${spec.jobId}-${spec.attempt}`,
        Image: spec.image,
        ...(spec.command && { Cmd: spec.command }),
        Env: [...spec.env, ...(staged?.env ?? [])],
        ...(spec.user && { User: spec.user }),
        Labels: this.labels(spec.jobId, spec.attempt),
        HostConfig: {
          NetworkMode: this.network.name,
          // As in the runtime's Docker backend; here the host's address on the job's network.
          ExtraHosts: [`host.docker.internal:${this.network.gateway}`],
          Init: spec.init,
          ReadonlyRootfs: spec.readonlyRootfs,
          Mounts: spec.hostlessVolumes.map((target) => ({
            Type: 'volume' as const,
            // No source: an anonymous volume, removed with the container.
            Source: '',
            Target: target,
            // ECS bind mounts without a host: on EC2 a Docker volume, which starts as a copy of
            // the image's directory (owner and mode too); on Fargate an empty directory owned by
            // root, mode 0755, unless the image declares a VOLUME at exactly that path.
            // https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html
            VolumeOptions: {
              NoCopy: spec.fargate && !declared.has(target),
              Labels: {},
              DriverConfig: { Name: 'local', Options: {} },
            },
          })),
          Binds: [...spec.binds, ...(staged?.binds ?? [])],
          // Docker's default capabilities and no no-new-privileges, as on Batch: a job
          // definition's linuxParameters cannot change either
          // (https://docs.aws.amazon.com/batch/latest/APIReference/API_LinuxParameters.html).
          NanoCpus: Math.round(spec.vcpus * 1e9),
          ...(memory && { Memory: memory, MemorySwap: memory }),
          // The logs are read back through the Engine API, which needs a local driver.
          LogConfig: { Type: 'json-file', Config: {} },
        },
      });
      await container.start();
    } catch (error) {
      await container?.remove({ force: true, v: true }).catch(() => {});
      if (staged) this.secrets.release(staged.dir);
      if (error instanceof StartError) throw error;
      throw new StartError(`CannotStartContainerError: ${dockerMessage(error)}`);
    }
    const started = container;
    const release = () => {
      if (staged) this.secrets.release(staged.dir);
    };
    const exited = (async (): Promise<ContainerExit> => {
      try {
        // A log stream that fails ends the reading, never the attempt.
        const logsRead = this.followLogs(started, spec.log).catch(() => {});
        const { StatusCode } = (await started.wait()) as { StatusCode: number };
        await Promise.race([logsRead, new Promise((resolve) => setTimeout(resolve, LOG_DRAIN_MS))]);
        return { exitCode: StatusCode, oomKilled: await oomKilled(started, StatusCode) };
      } finally {
        await started.remove({ force: true, v: true }).catch(() => {});
        release();
      }
    })();
    return {
      exited,
      stop: (graceSeconds) =>
        started.stop({ t: graceSeconds }).then(
          () => {},
          () => {},
        ),
      kill: () =>
        started.kill().then(
          () => {},
          () => {},
        ),
    };
  }

  /** Streams the container's output, line by line, until the container ends. */
  private async followLogs(container: Docker.Container, log: AttemptSpec['log']): Promise<void> {
    const stream = await container.logs({
      follow: true,
      stdout: true,
      stderr: true,
      timestamps: true,
    });
    const stdout = lineWriter(log);
    const stderr = lineWriter(log);
    await new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
      this.docker.modem.demuxStream(stream, stdout, stderr);
    });
    stdout.end();
    stderr.end();
  }

  /** The paths the image declares as VOLUMEs (`docker image inspect`: Config.Volumes). */
  private imageVolumes(image: string): Promise<Set<string>> {
    let volumes = this.declaredVolumes.get(image);
    if (!volumes) {
      volumes = this.docker
        .getImage(image)
        .inspect()
        .then((info) => new Set(Object.keys(info.Config?.Volumes ?? {})));
      this.declaredVolumes.set(image, volumes);
      volumes.catch(() => this.declaredVolumes.delete(image));
    }
    return volumes;
  }

  /**
   * The job user's numeric ids, for staged secrets and volumes: from `uid[:gid]`, or the name
   * looked up in the image's /etc/passwd (read from a created, never started, container).
   */
  private userIds(image: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
    const key = `${image}\n${user ?? ''}`;
    let ids = this.users.get(key);
    if (!ids) {
      ids = this.lookUpUser(image, user);
      this.users.set(key, ids);
      ids.catch(() => this.users.delete(key));
    }
    return ids;
  }

  private async lookUpUser(
    image: string,
    user: string | undefined,
  ): Promise<{ uid: number; gid: number }> {
    const name = (user ?? (await this.docker.getImage(image).inspect()).Config?.User) || 'root';
    const [owner = 'root', group] = name.split(':');
    if (/^\d+$/.test(owner)) {
      const uid = Number(owner);
      return { uid, gid: group && /^\d+$/.test(group) ? Number(group) : uid };
    }
    const probe = await this.docker.createContainer({
      Image: image,
      Labels: this.labels('user-lookup', 0),
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      const passwd = firstTarEntry(await collect(await probe.getArchive({ path: '/etc/passwd' })));
      for (const line of passwd.toString('utf8').split('\n')) {
        const [entryName, , uid, gid] = line.split(':');
        if (entryName === owner && uid && gid) return { uid: Number(uid), gid: Number(gid) };
      }
      throw new StartError(
        `CannotStartContainerError: unable to find user ${owner}: no matching entries in passwd file`,
      );
    } finally {
      await probe.remove({ force: true, v: true }).catch(() => {});
    }
  }
}

/** Splits a stream of `<RFC 3339 time> <text>` lines, as Docker writes them with timestamps. */
function lineWriter(log: AttemptSpec['log']): Writable {
  let pending = '';
  const emit = (line: string) => {
    const space = line.indexOf(' ');
    const timestamp = Date.parse(line.slice(0, space));
    if (space > 0 && Number.isFinite(timestamp))
      log(timestamp, line.slice(space + 1).replace(/\r$/, ''));
    else log(Date.now(), line);
  };
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
      done();
    },
    final(done) {
      if (pending) emit(pending);
      done();
    },
  });
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The content of a tar archive's first file (a 512-byte header, then the data). */
function firstTarEntry(tar: Buffer): Buffer {
  const size = Number.parseInt(
    tar.subarray(124, 136).toString('latin1').replace(/\0/g, '').trim(),
    8,
  );
  return tar.subarray(512, 512 + (Number.isFinite(size) ? size : 0));
}

function dockerMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } }).json;
  return (json?.message ?? (error instanceof Error ? error.message : String(error))).trim();
}

/** How long dockerd may take to record an OOM kill after the container's exit is reported. */
const OOM_EVENT_MS = 2_000;

/**
 * Whether the kernel killed the container for memory. dockerd sets OOMKilled from the cgroup's
 * OOM event, which can reach it after the exit it reports to `wait`: a SIGKILL exit (137) is
 * looked at again for a moment before it is taken as not an OOM kill.
 */
async function oomKilled(container: Docker.Container, exitCode: number): Promise<boolean> {
  const deadline = Date.now() + (exitCode === 137 ? OOM_EVENT_MS : 0);
  for (;;) {
    if ((await container.inspect()).State.OOMKilled === true) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
