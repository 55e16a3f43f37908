import type Anthropic from '@anthropic-ai/sdk';
import { ENV, MODEL_ENV } from '../contracts/env.js';
import type { ModelAccess } from './access.js';
import { MODEL_DEFAULTS } from './defaults.js';

/** The Messages API surface the planner uses; both clients provide it. */
export type MessagesClient = Pick<Anthropic, 'messages'>;

/**
 * A Messages API client for the resolved access. The SDK retries 408, 409, 429 and 5xx (529
 * included) with exponential backoff that honours `retry-after`; `maxRetries` bounds the count
 * and the caller's abort signal bounds the time.
 */
export async function createMessagesClient(
  access: ModelAccess,
  options: { maxRetries?: number; baseURL?: string } = {},
): Promise<MessagesClient> {
  const maxRetries = options.maxRetries ?? MODEL_DEFAULTS.plannerRetries;
  // The SDKs load on demand: simulated runs never need them.
  if (access.provider === 'bedrock') {
    const { AnthropicBedrock } = await import('@anthropic-ai/bedrock-sdk');
    const common = {
      awsRegion: access.region,
      maxRetries,
      ...(options.baseURL && { baseURL: options.baseURL }),
    };
    const accessKey = access.secrets[ENV.AWS_ACCESS_KEY_ID];
    const secretKey = access.secrets[ENV.AWS_SECRET_ACCESS_KEY];
    // Without static keys the Bedrock client resolves the AWS default chain itself.
    const client =
      accessKey && secretKey
        ? new AnthropicBedrock({
            ...common,
            awsAccessKey: accessKey,
            awsSecretKey: secretKey,
            awsSessionToken: access.secrets[ENV.AWS_SESSION_TOKEN] ?? null,
          })
        : new AnthropicBedrock(common);
    return client as unknown as MessagesClient;
  }
  const { default: Anthropic } = await import('@anthropic-ai/sdk');
  return new Anthropic({
    apiKey: access.secrets[ENV.ANTHROPIC_API_KEY] ?? null,
    authToken: access.secrets[MODEL_ENV.ANTHROPIC_AUTH_TOKEN] ?? null,
    baseURL: options.baseURL ?? access.baseURL ?? null,
    maxRetries,
  });
}
