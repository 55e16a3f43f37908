import os from 'node:os';
import type Docker from 'dockerode';

/** Labels on every container and network a sandbox makes. */
export const LABELS = {
  sandbox: 'parallel-orchestrator.batch-sandbox',
  /** `<hostname>:<pid>` of the process that made it, to find what a crashed sandbox left. */
  owner: 'parallel-orchestrator.batch-sandbox.owner',
  jobId: 'parallel-orchestrator.batch-sandbox.job-id',
  attempt: 'parallel-orchestrator.batch-sandbox.attempt',
} as const;

export const ownerLabel = () => `${os.hostname()}:${process.pid}`;

/** How long one Docker Engine call may take before the sandbox gives up on it. */
export const DOCKER_CALL_MS = 60_000;

/** The work, or a rejection with `timedOut()` once `ms` have passed. */
export function withTimeout<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a resource belongs to a sandbox process of this machine that no longer runs. */
function orphaned(labels: Record<string, string> | undefined): boolean {
  const [host, pid] = (labels?.[LABELS.owner] ?? '').split(':');
  return host === os.hostname() && Number.isInteger(Number(pid)) && !isAlive(Number(pid));
}

/** Removes the containers and networks of sandboxes whose process died without closing. */
export async function removeOrphans(docker: Docker): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [LABELS.owner] } });
  await Promise.all(
    containers
      .filter((c) => orphaned(c.Labels))
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => {}),
      ),
  );
  const networks = await docker.listNetworks({ filters: { label: [LABELS.owner] } });
  await Promise.all(
    networks
      .filter((n) => orphaned(n.Labels))
      .map((n) =>
        docker
          .getNetwork(n.Id)
          .remove()
          .catch(() => {}),
      ),
  );
}

/** Every container of one sandbox, running or not, removed. */
export async function removeSandboxContainers(docker: Docker, sandboxId: string): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.sandbox}=${sandboxId}`] },
  });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {}),
    ),
  );
}

/** The sandbox's own bridge network; its gateway is the host's address on it. */
export async function createNetwork(
  docker: Docker,
  sandboxId: string,
): Promise<{ name: string; gateway: string; remove: () => Promise<void> }> {
  const name = `batch-sandbox-${sandboxId}`;
  const network = await docker.createNetwork({
    Name: name,
    Driver: 'bridge',
    CheckDuplicate: true,
    Labels: { [LABELS.sandbox]: sandboxId, [LABELS.owner]: ownerLabel() },
  });
  const info = await network.inspect();
  const gateway = info.IPAM?.Config?.find((c: { Gateway?: string }) => c.Gateway)?.Gateway;
  if (!gateway) {
    await network.remove().catch(() => {});
    throw new Error(`Docker gave network ${name} no gateway address`);
  }
  return { name, gateway, remove: () => network.remove() };
}

/** The local image a sandbox runs for every job, and a digest-pinned reference naming it. */
export async function inspectImage(
  docker: Docker,
  image: string,
): Promise<{ id: string; imageRef: string; user: string | undefined }> {
  let info: Docker.ImageInspectInfo;
  try {
    info = await docker.getImage(image).inspect();
  } catch {
    throw new Error(`image ${image} is not on this Docker host: build it with docker/build.sh`);
  }
  const repository = image.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
  return {
    id: info.Id,
    imageRef: `${repository}@${info.Id}`,
    user: info.Config?.User || undefined,
  };
}
