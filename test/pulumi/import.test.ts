import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BackendConfigSchema } from '../../packages/contracts/src/schemas.js';
import {
  INSTALL_TIMEOUT_MS,
  installedSize,
  installProject,
  type ProjectKind,
  packageDirs,
  packComponent,
} from '../support/pulumi-project.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = path.join(ROOT, 'packages/pulumi/README.md');
const TEAM = path.join(import.meta.dirname, 'fixtures/team/team.ts');

const IMAGE_REF = `123456789012.dkr.ecr.us-east-1.amazonaws.com/agents/po@sha256:${'ab'.repeat(32)}`;
const CONFIG = {
  'team:imageRef': IMAGE_REF,
  'team:imageRepositoryArn': 'arn:aws:ecr:us-east-1:123456789012:repository/agents/po',
  'team:artifactsReadPolicyArn': 'arn:aws:iam::123456789012:policy/read-artifacts',
  'team:sharedVpcId': 'vpc-shared',
};

/**
 * Runs the compiled team.ts under Pulumi's mocks, loaded as the project's own module system
 * loads it, and prints every registration and the program's exports once all are done.
 */
const runner = (kind: ProjectKind, config: Record<string, string>) => {
  const load = kind === 'esm' ? 'await import' : 'require';
  return `
(async () => {
  const pulumi = ${kind === 'esm' ? "(await import('@pulumi/pulumi')).default" : "require('@pulumi/pulumi')"};
  const registered = [];
  const arn = (name) => 'arn:aws:x:us-east-1:123456789012:' + name;
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const computed =
          args.type === 'awsx:ec2:Vpc'
            ? { vpcId: 'vpc-made', publicSubnetIds: ['subnet-a', 'subnet-b'], privateSubnetIds: [] }
            : {
                name: args.inputs.name ?? args.name + '-physical',
                bucket: args.name + '-bucket',
                arn: arn(args.name),
                arnPrefix: arn(args.name),
              };
        registered.push({
          type: args.type,
          name: args.name,
          inputs: args.inputs,
          transforms: (args.transforms ?? []).length,
        });
        return { id: args.name + '-id', state: { ...args.inputs, ...computed } };
      },
      call: (args) =>
        ({
          'aws:index/getCallerIdentity:getCallerIdentity': { accountId: '123456789012', arn: arn('ci'), userId: 'AIDA' },
          'aws:index/getRegion:getRegion': { region: 'us-east-1', name: 'us-east-1', id: 'us-east-1' },
          'aws:index/getPartition:getPartition': { partition: 'aws', dnsSuffix: 'amazonaws.com', id: 'aws' },
        })[args.token] ?? {},
    },
    'team',
    'dev',
    false,
  );
  pulumi.runtime.setAllConfig(${JSON.stringify(config)});
  const team = ${load}('./bin/team.js');
  const exports = {};
  for (const key of ['attachedRole', 'peeredVpc', 'jobRoleName', 'runtimeConfig'])
    exports[key] = await new Promise((resolve) => team[key].apply(resolve));
  await pulumi.runtime.disconnect();
  process.stdout.write(JSON.stringify({ registered, exports }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;
};

interface Run {
  registered: {
    type: string;
    name: string;
    inputs: { tags?: Record<string, string> };
    transforms: number;
  }[];
  exports: Record<string, unknown>;
}

/** The package README's TypeScript blocks, as block-N.ts. */
function readmeBlocks(): string[] {
  return [...readFileSync(README, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```/gm)].map(
    (match) => match[1] as string,
  );
}

/**
 * A project of `kind` with the packed tarballs: every README block and team.ts compile with the
 * project's own tsc (no output), and team.ts runs under mocks in a child Node.
 */
function makeProject(
  work: string,
  kind: ProjectKind,
  tarballs: string[],
  pins: Record<string, string> = {},
  config: Record<string, string> = {},
): { dir: string; run: Run } {
  const dir = path.join(work, `${kind}${Object.keys(pins).length ? '-floor' : ''}`);
  mkdirSync(dir);
  const blocks = readmeBlocks();
  const files = [...blocks.map((_, i) => `block-${i + 1}.ts`), 'team.ts'];
  for (const [i, block] of blocks.entries())
    writeFileSync(path.join(dir, files[i] as string), block);
  copyFileSync(TEAM, path.join(dir, 'team.ts'));
  installProject(dir, kind, tarballs, files, pins);
  let compiled = '';
  try {
    execFileSync(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc')], {
      cwd: dir,
      encoding: 'utf8',
    });
  } catch (error) {
    compiled = (error as { stdout?: string }).stdout ?? String(error);
  }
  expect(compiled).toBe('');
  const file = kind === 'esm' ? 'runner.mjs' : 'runner.cjs';
  writeFileSync(path.join(dir, file), runner(kind, { ...CONFIG, ...config }));
  const out = execFileSync(process.execPath, [file], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { dir, run: JSON.parse(out) as Run };
}

/** What a team's program sees of the component, under mocks. */
function expectExtended(run: Run, transforms: boolean): void {
  const role = run.registered.find(
    (r) => r.type === 'aws:iam/role:Role' && r.name === 'agents-job',
  );
  expect(role).toBeDefined();
  // The policy is attached to the job role the component made, by its name.
  expect(run.exports.jobRoleName).toBe('agents-job-physical');
  expect(run.exports.attachedRole).toBe(run.exports.jobRoleName);
  expect(run.exports.peeredVpc).toBe('vpc-made');
  // The transformation reached the children: every one that takes tags has the team's.
  for (const type of [
    'aws:iam/role:Role',
    'aws:batch/jobQueue:JobQueue',
    'aws:batch/computeEnvironment:ComputeEnvironment',
    'aws:cloudwatch/logGroup:LogGroup',
    'aws:s3/bucket:Bucket',
    'aws:ec2/securityGroup:SecurityGroup',
  ]) {
    const children = run.registered.filter((r) => r.type === type);
    expect(children.length, type).toBeGreaterThan(0);
    for (const child of children) expect(child.inputs.tags?.team, child.name).toBe('agents');
  }
  if (transforms) {
    const component = run.registered.find(
      (r) => r.type === 'parallel-orchestrator:index:BatchOrchestrator',
    );
    expect(component?.transforms).toBe(1);
  }
  expect(BackendConfigSchema.parse(run.exports.runtimeConfig)).toMatchObject({
    backend: 'batch',
    imageRef: IMAGE_REF,
  });
}

describe('the packed component in a Pulumi project outside the workspace (npm registry)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'po-import-'));
  let tarballs: string[] = [];
  beforeAll(() => {
    tarballs = packComponent(work);
  }, 120_000);
  // Three projects' node_modules: removing them takes a while on a slow disk.
  afterAll(() => rmSync(work, { recursive: true, force: true }), 300_000);

  test(
    "in Pulumi's TypeScript template (CommonJS): compiles, runs under mocks, and installs no runtime",
    () => {
      const { dir, run } = makeProject(work, 'commonjs', tarballs);
      expectExtended(run, true);
      const modules = path.join(dir, 'node_modules');
      // One copy of the SDK and of the provider: the project's own.
      for (const pkg of ['@pulumi/pulumi', '@pulumi/aws']) {
        const copies = packageDirs(modules).filter((d) => d.endsWith(`node_modules/${pkg}`));
        expect(copies.map((d) => path.relative(dir, d))).toEqual([`node_modules/${pkg}`]);
      }
      const names = packageDirs(modules).map((d) => path.relative(modules, d));
      expect(names.filter((n) => /@anthropic-ai|claude/.test(n))).toEqual([]);
      expect(existsSync(path.join(modules, '@parallel-orchestrator/runtime'))).toBe(false);
      expect(installedSize(dir).bytes).toBeLessThan(300e6);
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );

  test(
    'in an ES module project (nodenext): compiles and runs under mocks',
    () => {
      expectExtended(makeProject(work, 'esm', tarballs).run, true);
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );

  test(
    'at the floors of the peer ranges (@pulumi/pulumi 3.142.0, aws 7.2.0, awsx 3.0.0): compiles and runs',
    () => {
      const { run } = makeProject(
        work,
        'commonjs',
        tarballs,
        {
          '@pulumi/pulumi': '3.142.0',
          '@pulumi/aws': '7.2.0',
          '@pulumi/awsx': '3.0.0',
        },
        // 3.142's mock monitor refuses a resource with `transforms` (it says the CLI lacks them).
        { 'team:transforms': 'false' },
      );
      expectExtended(run, false);
    },
    INSTALL_TIMEOUT_MS + 120_000,
  );
});
