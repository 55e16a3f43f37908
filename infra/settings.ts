import type {
  BatchNetworkArgs,
  BatchOrchestratorArgs,
  ComputeType,
  ModelAccessArgs,
  Platform,
} from '@parallel-orchestrator/pulumi';
import type * as pulumi from '@pulumi/pulumi';

/** Stacks named `preview-<name>` are one developer's, short-lived and small. */
export const PREVIEW_PREFIX = 'preview-';

/** What a preview stack is held to, whatever its config says. */
export const PREVIEW_LIMITS = {
  maxVcpus: 8,
  logRetentionDays: 3,
  expireRunsAfterDays: 3,
} as const;

/**
 * The stack's kind and its component's arguments from the stack's config (`pulumi config set KEY
 * VALUE`; every key is optional). The component is named after the stack, so a preview stack's
 * resources carry its name. A Docker stack's component takes only `claudeCodeVersion` of them.
 */
export function stackSettings(
  config: pulumi.Config,
  stack: string,
): { name: string; backend: 'batch' | 'docker'; args: BatchOrchestratorArgs } {
  const preview = stack.startsWith(PREVIEW_PREFIX);
  const maxVcpus = config.getNumber('maxVcpus', preview ? { max: PREVIEW_LIMITS.maxVcpus } : {});
  const subnetIds = config.getObject<string[]>('subnetIds');

  const network: BatchNetworkArgs | undefined = subnetIds && {
    subnetIds,
    securityGroupIds: config.requireObject<string[]>('securityGroupIds'),
    assignPublicIp: config.getBoolean('assignPublicIp') ?? false,
  };
  const backend = config.get('backend', { allowedValues: ['batch', 'docker'] }) ?? 'batch';
  const args: BatchOrchestratorArgs = {
    platforms: config.getObject<Platform[]>('platforms'),
    claudeCodeVersion: config.get('claudeCodeVersion'),
    forceDestroy: preview || (config.getBoolean('forceDestroy') ?? false),
    protectState: config.getBoolean('protectState') ?? false,
    expireRunsAfterDays: preview
      ? PREVIEW_LIMITS.expireRunsAfterDays
      : config.getNumber('expireRunsAfterDays'),
    logRetentionDays: preview
      ? PREVIEW_LIMITS.logRetentionDays
      : config.getNumber('logRetentionDays'),
    batch: {
      computeType: config.get('computeType') as ComputeType | undefined,
      platform: config.get('batchPlatform') as Platform | undefined,
      maxVcpus: maxVcpus ?? (preview ? PREVIEW_LIMITS.maxVcpus : undefined),
      vcpus: config.getNumber('vcpus'),
      memoryMib: config.getNumber('memoryMib'),
      network,
      natGateway: config.getBoolean('natGateway'),
    },
    model: modelAccess(config),
    tags: { 'parallel-orchestrator:stack': stack },
  };
  return { name: stack, backend: backend as 'batch' | 'docker', args };
}

function modelAccess(config: pulumi.Config): ModelAccessArgs {
  const provider = config.get('modelProvider', { allowedValues: ['bedrock', 'anthropic'] });
  if (provider === 'anthropic') {
    const apiKeySecretArn = config.get('anthropicApiKeySecretArn');
    return apiKeySecretArn
      ? { provider, apiKeySecretArn }
      : { provider, apiKey: config.requireSecret('anthropicApiKey') };
  }
  return {
    provider: 'bedrock',
    region: config.get('bedrockRegion'),
    modelId: config.get('bedrockModel'),
    extraModelIds: config.getObject<string[]>('bedrockExtraModels'),
  };
}
