import { z } from 'zod';

/**
 * `--setup`: the command that prepares a repository to run (installs its dependencies), once
 * per base, in the backend's sandbox, with the network open for that step alone unless told.
 */
export const SetupSettingsSchema = z.object({
  /** Run by `sh -c` at the top of a checkout of the base. */
  command: z.string().trim().min(1).max(4_000),
  network: z.enum(['open', 'none']),
  timeoutMs: z.number().int().min(100),
});
export type SetupSettings = z.infer<typeof SetupSettingsSchema>;

export const SETUP_DEFAULT_TIMEOUT_MS = 30 * 60_000;

/**
 * What a setup left in the ignored paths of a checkout: every agent and check of the key's bases
 * starts from it, read-only. One copy per key, wherever the backend keeps it.
 */
export const PreparedEnvironmentSchema = z.object({
  key: z.string().regex(/^[0-9a-f]{32}$/),
  /** The commit it was prepared on (any commit of the same key would do). */
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  command: z.string(),
  /** Ignored paths the setup made, relative to the top; a directory's ends in `/`. */
  paths: z.array(z.string().min(1)).max(256),
  bytes: z.number().int().min(0),
  /** How long the setup took when it ran. */
  preparedMs: z.number().min(0),
  createdAt: z.string(),
  /** Local and Docker: the directory holding the prepared tree (its `paths`, nothing else). */
  tree: z.string().optional(),
  /** Batch: the archive in the state bucket (a gzipped tar of `paths`), its digest and size. */
  archive: z
    .object({
      key: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      bytes: z.number().int().min(0),
    })
    .optional(),
});
export type PreparedEnvironment = z.infer<typeof PreparedEnvironmentSchema>;

/**
 * Files whose content decides what a setup installs, by base name at any depth: manifests,
 * lockfiles and toolchain pins. A tree whose files of these names are unchanged gets the same
 * environment.
 */
export const KEY_FILE_NAMES: ReadonlySet<string> = new Set([
  // JavaScript
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'pnpm-lock.yaml',
  'pnpm-workspace.yaml',
  '.pnpmfile.cjs',
  'yarn.lock',
  '.yarnrc.yml',
  '.npmrc',
  'bun.lock',
  'bun.lockb',
  '.nvmrc',
  '.node-version',
  // Python
  'pyproject.toml',
  'uv.lock',
  'poetry.lock',
  'Pipfile',
  'Pipfile.lock',
  'setup.py',
  'setup.cfg',
  '.python-version',
  // Rust, Go, Ruby, PHP
  'Cargo.toml',
  'Cargo.lock',
  'rust-toolchain',
  'rust-toolchain.toml',
  'go.mod',
  'go.sum',
  'go.work',
  'go.work.sum',
  'Gemfile',
  'Gemfile.lock',
  'composer.json',
  'composer.lock',
]);

/** `requirements*.txt` and `constraints*.txt`, Python's pinned lists, at any depth. */
export const KEY_FILE_PATTERN = /^(requirements|constraints)[\w.-]*\.txt$/;

/** Directories made writable inside a prepared tree, per sandbox: tools keep caches there. */
export const ENVIRONMENT_HOLES = ['node_modules/.cache', 'node_modules/.vite'] as const;

/**
 * Where a local sandbox shows the tree a setup or a check runs in: one fixed path, so that what a
 * setup records (a venv's scripts name their interpreter by absolute path) holds wherever the
 * tree is checked. Inside the sandbox's private /run. Docker's is `/workspace`.
 */
export const CANONICAL_WORKSPACE = '/run/po/workspace';

/**
 * Variables that tell package managers there is no network, so that a check or an agent without
 * one fails at once with the reason instead of retrying until its timeout (npx waited 70 s).
 */
export const OFFLINE_ENV: Readonly<Record<string, string>> = {
  npm_config_offline: 'true',
  npm_config_fetch_retries: '0',
  npm_config_update_notifier: 'false',
  YARN_ENABLE_OFFLINE_MODE: '1',
  PIP_NO_INDEX: '1',
  UV_OFFLINE: '1',
  CARGO_NET_OFFLINE: 'true',
  GOPROXY: 'off',
};

/** What a tool prints when it wanted the network it does not have. */
const NO_NETWORK =
  /ENOTCACHED|EAI_AGAIN|ENETUNREACH|ECONNREFUSED.*registry|getaddrinfo|Could not resolve host|name resolution|No matching distribution|offline mode|--offline/i;

/** A hint for a failed check whose output says it wanted the network. */
export function networkHint(tail: string): string | undefined {
  return NO_NETWORK.test(tail)
    ? 'the check has no network: put what it downloads in the manifest, so that --setup installs it'
    : undefined;
}
