import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as pulumi from '@pulumi/pulumi';
import { expect, test } from 'vitest';
import { loadBackendConfig } from '../../packages/runtime/src/cli/options.js';
import { BackendConfigSchema } from '../../packages/runtime/src/contracts/index.js';
import { tempDir } from '../support/tmp.js';
import { RecordingMocks, resolved, secretValue, stackConfig, underMocks } from './mocks.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const EXAMPLE = path.join(ROOT, 'examples/stack-reference');

/** A stack program run under mocks, imported afresh (a program runs when it is imported). */
async function program(
  file: string,
  stack: string,
  project: string,
  config: Record<string, string>,
  mocks?: RecordingMocks,
) {
  const { mocks: used, result } = await underMocks(
    stack,
    () => import(/* @vite-ignore */ `${pathToFileURL(file).href}?stack=${stack}`),
    project,
    config,
    mocks,
  );
  return { mocks: used, outputs: result as Record<string, pulumi.Output<unknown> | undefined> };
}

test("a second stack reads the platform stack's runtimeConfig through a StackReference and hands it on in the runtime's format", async () => {
  // The platform stack, as `pulumi up` runs it for dev.
  const platform = await program(
    path.join(ROOT, 'infra/index.ts'),
    'dev',
    'parallel-orchestrator',
    stackConfig(readFileSync(path.join(ROOT, 'Pulumi.dev.yaml'), 'utf8')),
  );
  const runtimeConfig = await resolved(platform.outputs.runtimeConfig as pulumi.Output<unknown>);
  const submitterPolicyArn = await resolved(
    platform.outputs.submitterPolicyArn as pulumi.Output<string>,
  );

  // The CI stack, reading it by name.
  const config = stackConfig(readFileSync(path.join(EXAMPLE, 'Pulumi.ci.yaml'), 'utf8'));
  const mocks = new RecordingMocks();
  mocks.stacks.set(config['ci-runners:platformStack'] as string, {
    runtimeConfig,
    submitterPolicyArn,
  });
  const ci = await program(path.join(EXAMPLE, 'index.ts'), 'ci', 'ci-runners', config, mocks);
  expect(mocks.one('pulumi:pulumi:StackReference').inputs.name).toBe(
    'acme/parallel-orchestrator/prod',
  );
  const parameter = mocks.one('aws:ssm/parameter:Parameter').inputs;
  expect(parameter.name).toBe('/ci/parallel-orchestrator/backend-config');
  expect(await resolved(ci.outputs.backend as pulumi.Output<string>)).toBe('batch');

  // What CI reads back is what the CLI takes: every field name, end to end.
  // The provider keeps a parameter's value secret in the state.
  const value = secretValue(parameter.value) as string;
  const handedOn = JSON.parse(value);
  expect(handedOn).toEqual(runtimeConfig);
  const file = path.join(tempDir('po-stackref-'), 'backend.json');
  writeFileSync(file, value);
  expect(loadBackendConfig(file)).toEqual(BackendConfigSchema.parse(runtimeConfig));
  expect(mocks.one('aws:iam/rolePolicyAttachment:RolePolicyAttachment').inputs).toEqual({
    role: 'ci-runner',
    policyArn: submitterPolicyArn,
  });
});
