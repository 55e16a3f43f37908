import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MODEL_DEFAULTS,
  redactUrl,
  resolveModelAccess,
} from '../../packages/runtime/src/models/access.js';
import { costOf } from '../../packages/runtime/src/models/pricing.js';
import { tempDir } from '../support/tmp.js';

const dir = tempDir('po-access-');
const secretFile = (name: string, value: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, value);
  return file;
};
// An environment with no AWS to find: no profile files, no instance metadata.
const isolated = { HOME: path.join(dir, 'home'), AWS_EC2_METADATA_DISABLED: 'true' };

describe('model access', () => {
  it('uses the Anthropic API with a key, with defaults defined once', async () => {
    const access = await resolveModelAccess({ ...isolated, ANTHROPIC_API_KEY: 'sk-ant-test' });
    expect(access).toMatchObject({
      provider: 'anthropic',
      plannerModel: MODEL_DEFAULTS.model,
      executorModel: MODEL_DEFAULTS.model,
      credentials: ['ANTHROPIC_API_KEY'],
      secrets: { ANTHROPIC_API_KEY: 'sk-ant-test' },
    });
    expect(access.baseURL).toBeUndefined();
  });

  it('reads secrets from *_FILE, trimmed', async () => {
    const access = await resolveModelAccess({
      ...isolated,
      ANTHROPIC_API_KEY_FILE: secretFile('key', 'sk-from-file\n'),
    });
    expect(access.credentials).toEqual(['ANTHROPIC_API_KEY_FILE']);
    expect(access.secrets.ANTHROPIC_API_KEY).toBe('sk-from-file');
  });

  it('names an unreadable or empty *_FILE', async () => {
    await expect(
      resolveModelAccess({ ANTHROPIC_API_KEY_FILE: path.join(dir, 'nope') }),
    ).rejects.toThrow(/cannot read ANTHROPIC_API_KEY_FILE \(.*nope\): ENOENT/);
    await expect(
      resolveModelAccess({ ANTHROPIC_API_KEY_FILE: secretFile('empty', ' \n') }),
    ).rejects.toThrow(/ANTHROPIC_API_KEY_FILE \(.*empty\) is empty/);
  });

  it('talks to a gateway with a bearer token; flags override the models', async () => {
    const access = await resolveModelAccess(
      {
        ANTHROPIC_BASE_URL: 'http://gateway.internal:8080',
        ANTHROPIC_AUTH_TOKEN: 'tok',
        ANTHROPIC_MODEL: 'claude-opus-4-5',
      },
      { executorModel: 'claude-haiku-4-5' },
    );
    expect(access).toMatchObject({
      provider: 'anthropic',
      baseURL: 'http://gateway.internal:8080',
      plannerModel: 'claude-opus-4-5',
      executorModel: 'claude-haiku-4-5',
      secrets: { ANTHROPIC_AUTH_TOKEN: 'tok' },
    });
  });

  it('says what is missing when nothing is configured', async () => {
    await expect(resolveModelAccess(isolated)).rejects.toThrow(
      /^no model credentials: set ANTHROPIC_API_KEY \(or ANTHROPIC_API_KEY_FILE\), ANTHROPIC_AUTH_TOKEN with ANTHROPIC_BASE_URL for a gateway, or USE_BEDROCK=1 with AWS credentials$/,
    );
  });

  it('uses Bedrock with static keys, the original variable names and defaults', async () => {
    const access = await resolveModelAccess({
      ...isolated,
      USE_BEDROCK: '1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY_FILE: secretFile('aws-secret', 'wJalrXUtnFEMI'),
    });
    expect(access).toMatchObject({
      provider: 'bedrock',
      region: MODEL_DEFAULTS.bedrockRegion,
      plannerModel: MODEL_DEFAULTS.bedrockModel,
      credentials: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY_FILE'],
      secrets: { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI' },
    });
  });

  it('takes BEDROCK_REGION and BEDROCK_MODEL, and flags over them', async () => {
    const env = {
      ...isolated,
      USE_BEDROCK: 'true',
      BEDROCK_REGION: 'us-east-1',
      BEDROCK_MODEL: 'eu.anthropic.x',
      AWS_ACCESS_KEY_ID: 'a',
      AWS_SECRET_ACCESS_KEY: 'b',
    };
    expect(await resolveModelAccess(env)).toMatchObject({
      region: 'us-east-1',
      executorModel: 'eu.anthropic.x',
    });
    expect(await resolveModelAccess(env, { bedrockRegion: 'ap-south-1' })).toMatchObject({
      region: 'ap-south-1',
    });
    expect(
      await resolveModelAccess(
        { ...env, USE_BEDROCK: undefined, ANTHROPIC_API_KEY: 'k' },
        { bedrock: true },
      ),
    ).toMatchObject({
      provider: 'bedrock',
    });
  });

  it('finds Bedrock credentials through the AWS chain (a profile), or says how to give them', async () => {
    const home = path.join(dir, 'profile-home');
    mkdirSync(path.join(home, '.aws'), { recursive: true });
    writeFileSync(
      path.join(home, '.aws', 'credentials'),
      '[team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s3cr3t\n',
    );
    const access = await resolveModelAccess({
      HOME: home,
      AWS_EC2_METADATA_DISABLED: 'true',
      USE_BEDROCK: '1',
      AWS_PROFILE: 'team',
    });
    // Where the chain found them, from the SDK's mark on the credentials (`$source`).
    expect(access.credentials).toEqual(['AWS profile team (~/.aws/config or ~/.aws/credentials)']);
    expect(access.secrets).toEqual({});
    // Executors get a HOME of their own, so the profile files are named explicitly.
    expect(access.awsEnv).toEqual({
      AWS_PROFILE: 'team',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, '.aws', 'credentials'),
    });
    await expect(resolveModelAccess({ ...isolated, USE_BEDROCK: '1' }, {}, 3_000)).rejects.toThrow(
      /^USE_BEDROCK: no AWS credentials found \(.*\): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
    );
  });

  it('rejects half a key pair', async () => {
    await expect(
      resolveModelAccess({ ...isolated, USE_BEDROCK: '1', AWS_ACCESS_KEY_ID: 'a' }),
    ).rejects.toThrow('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be given together');
  });
});

describe('redactUrl', () => {
  it('drops what a gateway URL may carry besides its address', () => {
    expect(redactUrl('https://user:pw@gateway.example.com:8443/v1?key=abc')).toBe(
      'https://gateway.example.com:8443/v1',
    );
    expect(redactUrl('http://127.0.0.1:9')).toBe('http://127.0.0.1:9');
    expect(redactUrl('not a url')).toBe('(an unparsable URL)');
  });
});

describe('pricing', () => {
  const usage = {
    inputTokens: 1_000_000,
    outputTokens: 100_000,
    cacheReadTokens: 0,
    cacheCreationTokens: 0,
  };
  it('prices by model, whatever the provider spells the id', () => {
    expect(costOf('claude-sonnet-5-5', usage)).toBe(3);
    expect(costOf('us.anthropic.claude-sonnet-5-5', usage)).toBe(3);
    expect(costOf('claude-sonnet-4-5', usage)).toBe(4.5);
    expect(costOf('global.anthropic.claude-sonnet-4-5-20250929-v1:0', usage)).toBe(4.5);
    expect(costOf('claude-opus-4-6', usage)).toBe(7.5);
    expect(costOf('claude-opus-4-1', usage)).toBe(22.5);
    expect(costOf('claude-haiku-4-5', usage)).toBe(1.5);
    expect(costOf('some-other-model', usage)).toBeUndefined();
  });
});
