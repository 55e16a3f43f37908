/**
 * `--only component`: what a stack installs with the component. The packed tarballs go into a
 * project shaped like Pulumi's TypeScript template (`pulumi new aws-typescript`: its
 * dependencies, typescript and @types/node), installed by npm; the whole `node_modules` is
 * measured, so the template's own packages count too. `--baseline DIR` measures the component of
 * another checkout the same way (e.g. the layout before the contracts package).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  installedSize,
  installProject,
  packageDirs,
  packComponent,
} from '../test/support/pulumi-project.js';
import type { Result } from './common.js';

const TARGET_MB = 300;

export function componentSize(root?: string): Result {
  const work = mkdtempSync(path.join(os.tmpdir(), 'po-bench-component-'));
  try {
    const tarballs = packComponent(work, root);
    const dir = path.join(work, 'project');
    mkdirSync(dir);
    installProject(dir, 'commonjs', tarballs, []);
    const size = installedSize(dir);
    const modules = path.join(dir, 'node_modules');
    const mb = Math.round(size.bytes / 1e5) / 10;
    return {
      name: root ? 'component-installed-size-baseline' : 'component-installed-size',
      value: mb,
      unit: 'MB',
      // A baseline is another checkout's, measured beside this one's, not held to the target.
      target: root ? 'measured' : `< ${TARGET_MB} MB`,
      pass: root ? true : mb < TARGET_MB,
      ...(root && { checkout: root }),
      packages: size.packages,
      top10: size.top10,
      claudeCode: packageDirs(modules).some((d) => /@anthropic-ai[\\/]claude-/.test(d)),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
