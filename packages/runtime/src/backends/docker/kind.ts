import path from 'node:path';
import { Option } from 'commander';
import { intIn, parseCpus, parseDiskLimit, parsedOption, parseMemory } from '../../cli/options.js';
import { UsageError } from '../../errors.js';
import { checkVerifyProgram } from '../../verify/command.js';
import { type BackendKind, slotRoots } from '../backend.js';
import type { DockerSettings } from './settings.js';

export const DOCKER_DEFAULTS = {
  image: 'parallel-orchestrator:latest',
  memory: '4g',
  cpus: '2',
  pids: 512,
  disk: '20g',
} as const;

/** The flags' values, as commander names them. */
interface DockerFlags {
  dockerImage: string;
  dockerNetwork?: string;
  dockerMemory: number;
  dockerCpus: number;
  dockerPids: number;
  dockerDisk: number;
}

/** Docker settings from flags, under a docker stack's config (its image and network). */
export function dockerSettings(
  values: Readonly<Record<string, unknown>>,
  given: (flag: string) => boolean = () => true,
  config?: { image: string; network: string },
): DockerSettings {
  const flags = values as unknown as DockerFlags;
  const network = config && !given('dockerNetwork') ? config.network : flags.dockerNetwork;
  return {
    image: config && !given('dockerImage') ? config.image : flags.dockerImage,
    ...(network && { network }),
    memoryBytes: flags.dockerMemory,
    nanoCpus: flags.dockerCpus,
    pidsLimit: flags.dockerPids,
    diskBytes: flags.dockerDisk,
  };
}

/** The engine answers and has the image: checked before anything is written. */
export async function dockerPreflight(image: string): Promise<void> {
  const { dockerClient, checkEngine } = await import('./backend.js');
  await checkEngine(dockerClient(), image);
}

/** Executors as containers of the project's image on a Docker engine, one per attempt. */
export const dockerKind: BackendKind<DockerSettings> = {
  name: 'docker',
  flags: [
    new Option('--docker-image <ref>', 'executor image (docker backend)').default(
      DOCKER_DEFAULTS.image,
    ),
    new Option('--docker-network <name>', 'network for executor containers (default: none)'),
    parsedOption(
      '--docker-memory <size>',
      'memory limit per container',
      parseMemory,
      DOCKER_DEFAULTS.memory,
    ),
    parsedOption('--docker-cpus <n>', 'CPU limit per container', parseCpus, DOCKER_DEFAULTS.cpus),
    new Option('--docker-pids <n>', 'process limit per container')
      .argParser(intIn(16, 1_000_000))
      .default(DOCKER_DEFAULTS.pids),
    parsedOption(
      '--docker-disk <size>',
      'disk limit per container (its workspace and output)',
      parseDiskLimit,
      DOCKER_DEFAULTS.disk,
    ),
  ],
  usesModelProxy: true,
  settings(flags, given, config) {
    if (config && config.backend !== 'docker')
      throw new UsageError(`the backend config is for ${config.backend}, not docker`);
    return dockerSettings(flags, given, config);
  },
  async preflight(settings, { allowedTools, verify, setup }) {
    await dockerPreflight(settings.image);
    if (setup || verify) {
      const { dockerClient, imageFinds } = await import('./backend.js');
      const docker = dockerClient();
      const finds = (program: string) => imageFinds(docker, settings.image, program);
      if (setup)
        await checkVerifyProgram(
          setup.command,
          finds,
          `in the image ${settings.image}, where --setup runs; docker/README.md's Toolchains section says how to build one with yours, then pass --docker-image`,
          '--setup',
        );
      if (verify)
        await checkVerifyProgram(
          verify.command,
          finds,
          `in the image ${settings.image}, where --verify runs; build one FROM it with your toolchain and pass --docker-image`,
        );
    }
    return { settings, allowedTools };
  },
  async doctor(settings) {
    const { dockerDoctor } = await import('./doctor.js');
    return dockerDoctor(settings);
  },
  async create(settings, { config, layout, proxy }) {
    const { DockerBackend } = await import('./backend.js');
    return new DockerBackend({
      runId: config.runId,
      slots: slotRoots(config, layout),
      real: config.mode === 'real',
      settings,
      network: config.agentNetwork,
      modelSocketDir: proxy?.socketDir,
      ...(config.setup &&
        config.cacheDir && { environmentsDir: path.join(config.cacheDir, 'environments') }),
    });
  },
};
