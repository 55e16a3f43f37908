import { git } from '../workspace/git.js';

/** A setup the repository's files suggest, and the file that says so. */
export interface DetectedSetup {
  command: string;
  because: string;
  /** What the command writes that the repository's ignore rules do not cover. */
  unignored?: string;
  /** Why its result is not shared yet (a cache outside the tree). */
  caveat?: string;
}

interface Rule {
  files: readonly string[];
  command: (names: ReadonlySet<string>) => string;
  /** What the command leaves in the tree, for the ignore check. */
  writes?: string;
  caveat?: string;
}

/** In order of precedence: a lockfile says which package manager the project uses. */
const RULES: readonly Rule[] = [
  {
    files: ['pnpm-lock.yaml'],
    command: () => 'pnpm install --frozen-lockfile',
    writes: 'node_modules',
  },
  {
    files: ['yarn.lock'],
    command: (names) =>
      names.has('.yarnrc.yml') ? 'yarn install --immutable' : 'yarn install --frozen-lockfile',
    writes: 'node_modules',
  },
  {
    files: ['bun.lock', 'bun.lockb'],
    command: () => 'bun install --frozen-lockfile',
    writes: 'node_modules',
  },
  {
    files: ['package-lock.json', 'npm-shrinkwrap.json'],
    command: () => 'npm ci',
    writes: 'node_modules',
  },
  { files: ['uv.lock'], command: () => 'uv sync --frozen', writes: '.venv' },
  {
    files: ['requirements.txt'],
    command: () => 'python3 -m venv .venv && .venv/bin/pip install -r requirements.txt',
    writes: '.venv',
  },
  {
    files: ['Cargo.lock'],
    command: () => 'cargo fetch --locked',
    caveat: 'cargo keeps what it fetches in its home, outside the tree: it is not shared yet',
  },
  {
    files: ['go.sum'],
    command: () => 'go mod download',
    caveat:
      'go keeps what it downloads in its module cache, outside the tree: it is not shared yet',
  },
];

/**
 * The setup a repository's top-level files suggest (`--setup auto`, or the note a run without
 * `--setup` prints). `ignored` says whether a path is covered by the repository's ignore rules.
 */
export function detectSetup(
  topLevel: readonly string[],
  ignored: (name: string) => boolean,
): DetectedSetup | undefined {
  const names = new Set(topLevel);
  for (const rule of RULES) {
    const because = rule.files.find((file) => names.has(file));
    if (!because) continue;
    return {
      command: rule.command(names),
      because,
      ...(rule.writes && !ignored(rule.writes) && { unignored: `${rule.writes}/` }),
      ...(rule.caveat && { caveat: rule.caveat }),
    };
  }
  return undefined;
}

/** The note a run without `--setup` prints when the repository says what would prepare it. */
export function describeDetected(found: DetectedSetup): string {
  return [
    `no --setup: ${found.because} says "${found.command}" would prepare this repository; give --setup "${found.command}", or --setup auto`,
    ...(found.unignored
      ? [
          `its ${found.unignored} is not in the repository's ignore rules: add it to .gitignore first`,
        ]
      : []),
    ...(found.caveat ? [found.caveat] : []),
  ].join('; ');
}

/**
 * The setup a commit's top-level files suggest, its ignore check made against the top-level
 * `.gitignore` (a note needs no more).
 */
export async function detectSetupAt(
  gitDir: string,
  commit: string,
): Promise<DetectedSetup | undefined> {
  const names = await git({ gitDir }, ['ls-tree', '--name-only', commit]);
  const ignoreFile = await git({ gitDir }, ['cat-file', '-p', `${commit}:.gitignore`], [0, 128]);
  const patterns = new Set(
    (ignoreFile.exitCode === 0 ? ignoreFile.stdout : '')
      .split('\n')
      .map((line) => line.trim().replace(/^\//, '').replace(/\/$/, '')),
  );
  return detectSetup(names.stdout.split('\n').filter(Boolean), (name) => patterns.has(name));
}
