import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeDocker, docker } from '../support/docker.js';
import { tempDir } from '../support/tmp.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TAG = 'parallel-orchestrator:packaged-test';

/**
 * A program as another team writes it, run under Pulumi's mocks with the installed SDK: it makes
 * a LocalDockerOrchestrator with no context and prints what it registered.
 */
const PROGRAM = `
import * as pulumi from '@pulumi/pulumi';
const registered = [];
await pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      registered.push({ type: args.type, name: args.name, inputs: args.inputs });
      return { id: args.name + '-id', state: args.inputs };
    },
    call: () => ({}),
  },
  'team',
  'dev',
  false,
);
const { LocalDockerOrchestrator } = await import('@parallel-orchestrator/pulumi');
const agents = new LocalDockerOrchestrator('agents');
const runtimeConfig = await new Promise((resolve) => agents.runtimeConfig.apply(resolve));
process.stdout.write(JSON.stringify({ registered, runtimeConfig }));
`;

describeDocker('the published packages, installed alone', () => {
  it(
    'packs both, installs them outside the workspace, runs the component from there, and builds the image from the installed context',
    async () => {
      const work = tempDir('po-pack-');
      for (const pkg of ['contracts', 'pulumi'])
        execFileSync('pnpm', ['pack', '--pack-destination', work], {
          cwd: path.join(ROOT, 'packages', pkg),
          stdio: 'ignore',
        });
      const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'));
      expect(tarballs.sort()).toEqual([
        'parallel-orchestrator-contracts-0.1.0.tgz',
        'parallel-orchestrator-pulumi-0.1.0.tgz',
      ]);
      const app = path.join(work, 'app');
      mkdirSync(app);
      writeFileSync(
        path.join(app, 'package.json'),
        '{"name":"team","private":true,"type":"module"}',
      );
      execFileSync(
        'npm',
        [
          'install',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          ...tarballs.map((t) => `../${t}`),
        ],
        { cwd: app, stdio: 'ignore' },
      );
      writeFileSync(path.join(app, 'program.mjs'), PROGRAM);
      const out = execFileSync(process.execPath, ['program.mjs'], { cwd: app, encoding: 'utf8' });
      const { registered, runtimeConfig } = JSON.parse(out) as {
        registered: { type: string; inputs: { build?: { context: string; dockerfile: string } } }[];
        runtimeConfig: unknown;
      };
      const image = registered.find((r) => r.type === 'docker:index/image:Image');
      const installed = realpathSync(path.join(app, 'node_modules/@parallel-orchestrator/pulumi'));
      // The context is the one the installed package carries, not this checkout.
      expect(realpathSync(image?.inputs.build?.context as string)).toBe(
        path.join(installed, 'context'),
      );
      expect(runtimeConfig).toEqual({
        version: 1,
        backend: 'docker',
        image: 'parallel-orchestrator:dev',
        network: 'team-dev-executors',
      });

      // The real engine builds the image from that context, and what it built runs.
      const context = path.join(installed, 'context');
      execFileSync(
        'docker',
        ['build', '--file', path.join(context, 'docker/Dockerfile'), '--tag', TAG, context],
        { env: { ...process.env, DOCKER_BUILDKIT: '0' }, stdio: 'ignore', timeout: 15 * 60_000 },
      );
      try {
        const { stdout } = await docker([
          'run',
          '--rm',
          TAG,
          '/app/parallel-orchestrator',
          '--version',
        ]);
        expect(stdout.trim()).toBe('0.1.0');
      } finally {
        await docker(['rmi', '-f', TAG]).catch(() => {});
      }
    },
    20 * 60_000,
  );
});
