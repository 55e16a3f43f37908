/**
 * The component as a Pulumi user installs it: its packed tarballs in a project of its own, outside
 * the workspace, installed by npm from whichever registry the machine's npm is configured with.
 * Shared by test/pulumi/import.test.ts and the `component` bench.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Pulumi's `aws-typescript` template: its dependencies, as `pulumi new` writes them. */
export const TEMPLATE_DEPENDENCIES = {
  '@pulumi/pulumi': '^3.113.0',
  '@pulumi/aws': '^7.0.0',
  '@pulumi/awsx': '^3.0.0',
} as const;
const TEMPLATE_DEV_DEPENDENCIES = { '@types/node': '^18', typescript: '^5.0.0' } as const;

/** The template's tsconfig (CommonJS, node resolution), and its ESM counterpart. */
const COMPILER_OPTIONS = {
  commonjs: {
    strict: true,
    outDir: 'bin',
    target: 'es2020',
    module: 'commonjs',
    moduleResolution: 'node',
    sourceMap: true,
    experimentalDecorators: true,
    pretty: true,
    noFallthroughCasesInSwitch: true,
    noImplicitReturns: true,
    forceConsistentCasingInFileNames: true,
  },
  esm: {
    strict: true,
    outDir: 'bin',
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    sourceMap: true,
    forceConsistentCasingInFileNames: true,
  },
} as const;

export type ProjectKind = keyof typeof COMPILER_OPTIONS;

/** npm's installs of @pulumi/aws take a minute or more on a cold cache. */
export const INSTALL_TIMEOUT_MS = 10 * 60_000;

/**
 * `pnpm pack` into `dir` of the component of the checkout at `root` and of the workspace packages
 * it depends on (the contracts; the runtime in layouts before them); their paths.
 */
export function packComponent(dir: string, root = ROOT): string[] {
  const manifest = JSON.parse(
    readFileSync(path.join(root, 'packages/pulumi/package.json'), 'utf8'),
  ) as { dependencies: Record<string, string> };
  const packages = [
    'pulumi',
    ...Object.entries(manifest.dependencies)
      .filter(([, version]) => version.startsWith('workspace:'))
      .map(([name]) => name.replace('@parallel-orchestrator/', '')),
  ];
  for (const pkg of packages)
    execFileSync('pnpm', ['pack', '--pack-destination', dir], {
      cwd: path.join(root, 'packages', pkg),
      stdio: 'ignore',
    });
  const tarballs = readdirSync(dir)
    .filter((file) => file.endsWith('.tgz'))
    .sort();
  if (tarballs.length !== packages.length)
    throw new Error(`pnpm pack wrote ${tarballs.join(', ') || 'nothing'} into ${dir}`);
  return tarballs.map((file) => path.join(dir, file));
}

/**
 * A Pulumi TypeScript project in `dir` (made beforehand) with the tarballs and the template's
 * dependencies (`pins` in their place when given), installed with `npm install --ignore-scripts`
 * (the providers' install scripts download their plugins: not needed to compile or run under
 * mocks). `files` are compiled by `tsc`.
 */
export function installProject(
  dir: string,
  kind: ProjectKind,
  tarballs: string[],
  files: string[],
  pins: Record<string, string> = {},
): void {
  const local = Object.fromEntries(
    tarballs.map((tarball) => {
      const name = JSON.parse(
        execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
      ).name as string;
      return [name, `file:${tarball}`];
    }),
  );
  const manifest = {
    name: `team-${kind}`,
    main: 'index.ts',
    ...(kind === 'esm' && { type: 'module' }),
    devDependencies: TEMPLATE_DEV_DEPENDENCIES,
    dependencies: { ...TEMPLATE_DEPENDENCIES, ...pins, ...local },
  };
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    `${JSON.stringify({ compilerOptions: COMPILER_OPTIONS[kind], files }, null, 2)}\n`,
  );
  execFileSync(
    'npm',
    ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: INSTALL_TIMEOUT_MS },
  );
}

/** What `node_modules` of a project holds: bytes on disk, packages, the largest ten. */
export interface InstalledSize {
  bytes: number;
  packages: number;
  top10: { name: string; mb: number }[];
}

export function installedSize(dir: string): InstalledSize {
  const modules = path.join(dir, 'node_modules');
  const du = (paths: string[]) =>
    execFileSync('du', ['-sb', ...paths], { encoding: 'utf8', maxBuffer: 16 * 2 ** 20 })
      .trim()
      .split('\n')
      .map((line) => {
        const [bytes, file] = line.split('\t') as [string, string];
        return { file, bytes: Number(bytes) };
      });
  const [total] = du([modules]);
  const top = du(topLevelPackages(modules))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 10)
    .map(({ file, bytes }) => ({
      name: path.relative(modules, file),
      mb: Math.round(bytes / 1e5) / 10,
    }));
  return { bytes: total?.bytes ?? 0, packages: packageDirs(modules).length, top10: top };
}

/** `node_modules/x` and `node_modules/@scope/x`. */
function topLevelPackages(modules: string): string[] {
  return readdirSync(modules)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) =>
      name.startsWith('@')
        ? readdirSync(path.join(modules, name)).map((sub) => path.join(modules, name, sub))
        : [path.join(modules, name)],
    );
}

/** Every installed package, nested copies included. */
export function packageDirs(modules: string): string[] {
  return topLevelPackages(modules).flatMap((dir) => {
    const nested = path.join(dir, 'node_modules');
    return [
      ...(existsSync(path.join(dir, 'package.json')) ? [dir] : []),
      ...(existsSync(nested) ? packageDirs(nested) : []),
    ];
  });
}
