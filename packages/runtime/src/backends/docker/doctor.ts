import type { DoctorCheck } from '../backend.js';
import type { DockerSettings } from './settings.js';

/**
 * The Docker engine through dockerode, the image the docker backend would run and, when a stack
 * names one, the network its executors join: "ok" only when all are there. Docker is optional
 * (the local backend does not need it), so what is absent is a warning.
 */
export async function dockerDoctor(
  settings: Pick<DockerSettings, 'image' | 'network'>,
): Promise<DoctorCheck[]> {
  const { dockerClient } = await import('./backend.js');
  const docker = dockerClient();
  const where = process.env.DOCKER_HOST ?? '/var/run/docker.sock';
  const name = 'Docker';
  const answer = await Promise.race([
    docker.version().then(
      (v) => ({ version: v.Version }),
      (error: Error) => ({ error: error.message.split('\n')[0] }),
    ),
    new Promise<{ error: string }>((resolve) =>
      setTimeout(() => resolve({ error: 'no answer within 3 s' }), 3_000).unref(),
    ),
  ]);
  if ('error' in answer)
    return [
      {
        name,
        status: 'warn',
        detail: `unavailable at ${where}: ${answer.error} (only the docker backend needs it)`,
        fix: 'start the Docker engine, or set DOCKER_HOST',
      },
    ];
  const exists = (inspect: () => Promise<unknown>) =>
    inspect().then(
      () => true,
      () => false,
    );
  const checks: DoctorCheck[] = [
    (await exists(() => docker.getImage(settings.image).inspect()))
      ? {
          name,
          status: 'ok',
          detail: `Docker ${answer.version} at ${where}; image ${settings.image}`,
        }
      : {
          name,
          status: 'warn',
          detail: `Docker ${answer.version} at ${where}, but no image ${settings.image} (the docker backend needs it)`,
          fix: 'build it with docker/build.sh',
        },
  ];
  if (settings.network) {
    const network = settings.network;
    checks.push(
      (await exists(() => docker.getNetwork(network).inspect()))
        ? { name: 'Docker network', status: 'ok', detail: `${network} exists` }
        : {
            name: 'Docker network',
            status: 'warn',
            detail: `no network ${network}: executor containers could not join it`,
            fix: 'pulumi up the docker stack again, or docker network create it',
          },
    );
  }
  return checks;
}
