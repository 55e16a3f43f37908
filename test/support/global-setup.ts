import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * CLI suites run the built CLI and the Pulumi component imports the runtime's built contracts, so
 * build both (incrementally) before any suite starts.
 */
export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  execFileSync(
    process.execPath,
    [
      path.join(root, 'node_modules/typescript/bin/tsc'),
      '-b',
      'packages/runtime',
      'packages/pulumi',
    ],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}
