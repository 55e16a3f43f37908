/**
 * Run before `pnpm pack` (prepack, and with --remove after it): copies into `context/` exactly what the image's build reads
 * (the repository's .dockerignore lists it), with the Dockerfile, so that the published package
 * builds the image without a checkout of this repository.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(pkg, '../..');
const context = path.join(pkg, 'context');

const allowed = readFileSync(path.join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .filter((line) => line.startsWith('!'))
  .map((line) => line.slice(1).replace(/\/\*\*$/, ''));

rmSync(context, { recursive: true, force: true });
// postpack: the workspace goes back to building from the repository itself.
if (process.argv.includes('--remove')) process.exit(0);
for (const entry of [...allowed, '.dockerignore', 'docker/Dockerfile']) {
  const from = path.join(root, entry);
  if (!existsSync(from)) throw new Error(`the image's build reads ${entry}, which is missing`);
  const to = path.join(context, entry);
  mkdirSync(path.dirname(to), { recursive: true });
  cpSync(from, to, { recursive: statSync(from).isDirectory() });
}
