import { type SandboxStack, sandboxStackFrom } from '../../packages/batch-sandbox/src/index.js';
import type { BatchOrchestratorArgs } from '../../packages/pulumi/src/index.js';
import type { BatchBackendConfig } from '../../packages/runtime/src/contracts/index.js';
import { ACCOUNT, REGION, type RecordingMocks, resolved, underMocks } from '../pulumi/mocks.js';

/** The image the stack's definition names (the sandbox runs its own local image for every job). */
export const STACK_IMAGE = {
  ref: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/parallel-orchestrator@sha256:${'0'.repeat(64)}`,
  repositoryArn: `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/parallel-orchestrator`,
};

export interface StackUnderMocks {
  /** What the sandbox takes (`startBatchSandbox({ stack })`). */
  stack: SandboxStack;
  /** The stack's runtimeConfig output, as `pulumi stack output runtimeConfig` gives it. */
  runtimeConfig: BatchBackendConfig;
  /** The stack's model-key secret (Anthropic provider): what `secrets` must hold a value for. */
  apiKeySecretArn?: string;
  mocks: RecordingMocks;
}

/** Pulumi's mocks are process-wide: one program at a time. */
let turn: Promise<unknown> = Promise.resolve();

/**
 * The Pulumi component, run under Pulumi's mocks (the engine and the AWS provider are the only
 * stand-ins), read back as the sandbox runs it: the policies, job definition, queue and compute
 * environment are the ones the component registers, not a copy.
 */
export async function stackUnderMocks(
  batch: BatchOrchestratorArgs['batch'] = {},
  model: BatchOrchestratorArgs['model'] = { provider: 'anthropic', apiKey: 'sk-stack-under-mocks' },
): Promise<StackUnderMocks> {
  const mine = turn.then(() => underMocksOnce(batch, model));
  turn = mine.catch(() => {});
  return mine;
}

async function underMocksOnce(
  batch: BatchOrchestratorArgs['batch'],
  model: BatchOrchestratorArgs['model'],
): Promise<StackUnderMocks> {
  const component = await import('../../packages/pulumi/src/index.js');
  const { mocks, result } = await underMocks(
    'sandbox',
    (opts) => new component.BatchOrchestrator('po', { image: STACK_IMAGE, batch, model }, opts),
  );
  const runtimeConfig = await resolved(result.runtimeConfig);
  const stack = sandboxStackFrom(mocks.resources, {
    region: runtimeConfig.region,
    bucketName: runtimeConfig.bucketName,
    jobQueueArn: runtimeConfig.jobQueueArn,
    jobDefinitionArn: runtimeConfig.jobDefinitionArn,
    submitterPolicyArn: await resolved(result.submitterPolicyArn),
  });
  return {
    stack,
    runtimeConfig,
    ...(runtimeConfig.model.provider === 'anthropic' && {
      apiKeySecretArn: runtimeConfig.model.apiKeySecretArn,
    }),
    mocks,
  };
}
