import path from 'node:path';
import { Option } from 'commander';
import { intIn, parseDiskLimit, parsedOption, sizeIn } from '../../cli/options.js';
import type { RunConfig } from '../../contracts/run-config.js';
import { UsageError } from '../../errors.js';
import { type AgentUser, agentUserFor } from '../../sandbox/agent-user.js';
import { probeBubblewrap } from '../../sandbox/bubblewrap.js';
import { checkVerifyProgram, hostFinds } from '../../verify/command.js';
import { type BackendKind, slotRoots } from '../backend.js';
import type { AgentLimits } from './limits.js';
import { LOCAL_DEFAULTS, type LocalSettings } from './settings.js';

/** The run's source repository as directories of this machine (its checkout and git directory). */
function sourceDirs(config: RunConfig): string[] {
  const gitDir = config.deliver?.gitDir;
  const checkout = gitDir && path.basename(gitDir) === '.git' ? path.dirname(gitDir) : undefined;
  const dirs = [config.source?.repo, gitDir, checkout].filter(
    (dir): dir is string => dir !== undefined && path.isAbsolute(dir),
  );
  return [...new Set(dirs)];
}

/** Claude Code and Node need 1 GiB of data to start, and a process limit is per process. */
const parseAgentMemory = sizeIn('1g', '1024g');

/** What each agent or check may use: the run's settings, the defaults for an older run.json. */
function agentLimits(settings: LocalSettings): AgentLimits {
  return {
    memoryBytes: settings.memoryBytes ?? parseAgentMemory(LOCAL_DEFAULTS.memory),
    pids: settings.pids ?? LOCAL_DEFAULTS.pids,
    diskBytes: settings.diskBytes ?? parseDiskLimit(LOCAL_DEFAULTS.disk),
  };
}

/**
 * The user agents run as: none to drop to unless the orchestrator is root, and a root that
 * cannot drop runs no agent and no check.
 */
async function agentUser(what: string): Promise<AgentUser | undefined> {
  try {
    return await agentUserFor();
  } catch (error) {
    throw new UsageError(
      `running as root, ${what} must run as an unprivileged user, but ${(error as Error).message}: install util-linux, or run as a user`,
    );
  }
}

/**
 * Executors on this machine. Real agents are confined with bubblewrap; where it cannot run they
 * get no Bash: dropped from the default tools with a note, refused when asked for by name. A
 * root orchestrator runs agents and checks as an unprivileged user either way.
 */
export const localKind: BackendKind<LocalSettings> = {
  name: 'local',
  flags: [
    parsedOption(
      '--local-memory <size>',
      'memory limit per local agent or check',
      parseAgentMemory,
      LOCAL_DEFAULTS.memory,
    ),
    new Option('--local-pids <n>', 'process limit per local agent or check')
      .argParser(intIn(64, 1_000_000))
      .default(LOCAL_DEFAULTS.pids),
    parsedOption(
      '--local-disk <size>',
      'disk limit per local agent or check',
      parseDiskLimit,
      LOCAL_DEFAULTS.disk,
    ),
  ],
  usesModelProxy: true,
  settings: (flags) => ({
    memoryBytes: flags.localMemory as number,
    pids: flags.localPids as number,
    diskBytes: flags.localDisk as number,
  }),
  async preflight(settings, { real, allowedTools, toolsGiven, verify, setup }) {
    if (setup) {
      // A setup runs the repository's install scripts: never unconfined on the host either.
      const probe = await probeBubblewrap(await agentUser('--setup'));
      if (!probe.available)
        throw new UsageError(
          `--setup on the local backend runs the command in a bubblewrap sandbox, but ${probe.reason}: install bubblewrap, or use --backend docker`,
        );
      await checkVerifyProgram(setup.command, hostFinds, 'on PATH', '--setup');
    }
    if (verify) {
      // The check runs agents' work (their tests, their scripts): never unconfined on the host.
      const probe = await probeBubblewrap(await agentUser('--verify checks'));
      if (!probe.available)
        throw new UsageError(
          `--verify on the local backend runs the command in a bubblewrap sandbox, but ${probe.reason}: install bubblewrap, or use --backend docker`,
        );
      await checkVerifyProgram(verify.command, hostFinds, 'on PATH');
    }
    if (!real) return { settings, allowedTools };
    const probe = await probeBubblewrap(await agentUser('agents'));
    if (probe.available) return { settings: { ...settings, sandbox: 'bubblewrap' }, allowedTools };
    // A resumed run keeps the confinement it started with.
    if (settings.sandbox === 'bubblewrap')
      throw new UsageError(`this run confines its agents with bubblewrap, but ${probe.reason}`);
    if (allowedTools.includes('Bash')) {
      const why = `${probe.reason}, so agents' commands cannot be confined to their workspace`;
      if (toolsGiven)
        throw new UsageError(
          `--allowed-tools names Bash, but ${why}: install bubblewrap, or use --backend docker`,
        );
      process.stderr.write(
        `note: agents get no Bash: ${why} (install bubblewrap, or use --backend docker)\n`,
      );
    }
    return {
      settings: { ...settings, sandbox: 'none' },
      allowedTools: allowedTools.filter((tool) => tool !== 'Bash'),
    };
  },
  async create(settings, { config, layout, proxy, force }) {
    const { LocalBackend } = await import('./backend.js');
    const real = config.mode === 'real';
    return new LocalBackend({
      real,
      ...(force && { force }),
      runRoot: layout.root,
      sourceDirs: sourceDirs(config),
      ...((real || config.verify || config.setup) && { agentUser: await agentUserFor() }),
      ...(config.setup &&
        config.cacheDir && { environmentsDir: path.join(config.cacheDir, 'environments') }),
      limits: {
        runId: config.runId,
        // A plain simulation runs nothing of an agent's: no slot to hold to limits.
        slots: real || config.verify ? slotRoots(config, layout) : [],
        limits: agentLimits(settings),
        maxFileBytes: config.outputLimits.maxFileBytes,
      },
      ...(real && {
        agents: {
          confined: settings.sandbox === 'bubblewrap',
          network: config.agentNetwork,
          modelSocketDir: proxy?.socketDir,
        },
      }),
    });
  },
};
