import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const manifest = (pkg: string) =>
  JSON.parse(readFileSync(path.join(ROOT, 'packages', pkg, 'package.json'), 'utf8')) as {
    private?: boolean;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    optionalDependencies?: Record<string, string>;
  };

it('keeps the AGPL IAM evaluator to the private sandbox: no published package depends on it', () => {
  expect(manifest('batch-sandbox').private).toBe(true);
  expect(manifest('batch-sandbox').dependencies?.['@cloud-copilot/iam-simulate']).toBe('0.1.173');
  for (const published of ['runtime', 'pulumi']) {
    const {
      private: isPrivate,
      dependencies,
      peerDependencies,
      optionalDependencies,
    } = manifest(published);
    expect(isPrivate, published).toBeUndefined();
    const names = Object.keys({ ...dependencies, ...peerDependencies, ...optionalDependencies });
    expect(
      names.filter((name) =>
        /^@cloud-copilot\/|^@parallel-orchestrator\/batch-sandbox$/.test(name),
      ),
      published,
    ).toEqual([]);
  }
});
