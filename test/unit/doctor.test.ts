import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorCheck } from '../../packages/runtime/src/backends/backend.js';
import { runCli } from '../support/cli.js';
import { describeDocker, IMAGE } from '../support/docker.js';
import { type ModelServer, startModelServer, text } from '../support/model-server.js';
import { tempDir } from '../support/tmp.js';

const work = tempDir('po-doctor-');
/** A HOME with no AWS files: the only credentials are the ones a test gives. */
const home = path.join(work, 'home');
mkdirSync(home);
const clean = { HOME: home, AWS_EC2_METADATA_DISABLED: 'true' };

async function doctor(args: string[], env: NodeJS.ProcessEnv) {
  const result = await runCli(['doctor', '--json', ...args], work, { ...clean, ...env });
  expect(result.stderr).toBe('');
  const checks = (JSON.parse(result.stdout) as { checks: DoctorCheck[] }).checks;
  return { code: result.code, checks, stdout: result.stdout };
}

const line = (checks: DoctorCheck[], name: string) => checks.find((c) => c.name === name);

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('doctor on this machine', () => {
  let server: ModelServer;
  const KEY = 'sk-ant-doctor-right-key';
  beforeAll(async () => {
    server = await startModelServer(() => ({ content: [text('unused')] }), '127.0.0.1', {
      apiKeys: [KEY],
    });
  });
  afterAll(() => server.close());

  it('a simulation-only user with no credentials: exit 0, one note on what real mode needs', async () => {
    const { code, checks } = await doctor([], {});
    expect(code).toBe(0);
    expect(checks.filter((c) => c.status === 'note').map((c) => c.name)).toEqual(['Models']);
    expect(line(checks, 'Models')?.detail).toMatch(
      /^no model credentials: real mode \(--real\) needs ANTHROPIC_API_KEY.*simulation needs none$/,
    );
  });

  it('probes the key: the right one is ok, a wrong one is refused (401), and neither is printed', async () => {
    const right = await doctor([], { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: server.url });
    expect(line(right.checks, 'Models')).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(`^gateway ${server.url} takes ANTHROPIC_API_KEY; planner `),
    });
    expect(right.code).toBe(0);
    // The SDK sends the key as x-api-key or as a bearer token (1.14: the latter).
    const probe = server.requests.at(-1);
    expect([probe?.method, probe?.path]).toEqual(['GET', '/v1/models?limit=1']);
    expect([probe?.headers['x-api-key'], probe?.headers.authorization]).toContainEqual(
      expect.stringContaining(KEY),
    );

    const wrong = await doctor([], {
      ANTHROPIC_API_KEY: 'sk-ant-not-this-one',
      ANTHROPIC_BASE_URL: server.url,
    });
    expect(wrong.code).toBe(1);
    expect(line(wrong.checks, 'Models')).toMatchObject({
      status: 'missing',
      detail: `gateway ${server.url} refused ANTHROPIC_API_KEY (401)`,
      fix: expect.stringMatching(/^check ANTHROPIC_API_KEY/),
    });
    for (const output of [right.stdout, wrong.stdout]) {
      expect(output).not.toContain(KEY);
      expect(output).not.toContain('sk-ant-not-this-one');
    }
  });

  it('a gateway that does not answer is missing, ECONNREFUSED named, its URL credentials never shown', async () => {
    const port = await closedPort();
    const { code, checks, stdout } = await doctor([], {
      ANTHROPIC_AUTH_TOKEN: 'gateway-token',
      ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}/gw?key=url-secret`,
    });
    expect(code).toBe(1);
    expect(line(checks, 'Models')).toMatchObject({
      status: 'missing',
      detail: `gateway http://127.0.0.1:${port}/gw does not answer (ECONNREFUSED)`,
      fix: 'check ANTHROPIC_BASE_URL and that the gateway is running',
    });
    expect(stdout).not.toMatch(/url-secret|gateway-token/);
  });

  it('a broken AWS_PROFILE is named as such, with the profiles there are (Bedrock and Batch)', async () => {
    const config = path.join(work, 'aws-config');
    writeFileSync(
      config,
      '[profile dev]\nregion = us-east-1\n[profile prod]\nregion = eu-west-1\n',
    );
    const env = { AWS_CONFIG_FILE: config, AWS_PROFILE: 'nope' };
    const said =
      /^AWS_PROFILE=nope names no profile in .*aws-config or ~\/\.aws\/credentials \(they have: dev, prod\)$/;

    const bedrock = await doctor([], { ...env, USE_BEDROCK: '1' });
    expect(bedrock.code).toBe(1);
    expect(line(bedrock.checks, 'Models')).toMatchObject({
      status: 'missing',
      detail: expect.stringMatching(said.source.replace('^', '^USE_BEDROCK: ')),
      fix: 'fix the name, or unset AWS_PROFILE',
    });

    const stack = path.join(work, 'batch.json');
    writeFileSync(
      stack,
      JSON.stringify({
        version: 1,
        backend: 'batch',
        region: 'us-east-1',
        jobQueueArn: 'arn:aws:batch:us-east-1:123456789012:job-queue/q',
        jobDefinitionArn: 'arn:aws:batch:us-east-1:123456789012:job-definition/d:1',
        bucketName: 'state-bucket',
        runsPrefix: 'runs/',
        logGroupName: '/aws/batch/po',
        imageRef: `123456789012.dkr.ecr.us-east-1.amazonaws.com/po@sha256:${'0'.repeat(64)}`,
        maxVcpus: 4,
        vcpusPerJob: 1,
        model: {
          provider: 'anthropic',
          apiKeySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:k',
        },
      }),
    );
    const batch = await doctor(['--backend-config', stack], env);
    expect(batch.code).toBe(1);
    expect(batch.checks.at(-1)).toMatchObject({
      name: 'AWS credentials',
      status: 'missing',
      detail: expect.stringMatching(said),
    });
  });
});

describeDocker('doctor for a docker stack', () => {
  it("warns when the stack's network is not there (the image is)", async () => {
    const config = path.join(work, 'docker.json');
    writeFileSync(
      config,
      JSON.stringify({
        version: 1,
        backend: 'docker',
        image: IMAGE,
        network: 'po-doctor-no-such-net',
      }),
    );
    const { code, checks } = await doctor(['--backend-config', config], {});
    expect(code).toBe(0);
    expect(line(checks, 'Docker')?.status).toBe('ok');
    expect(line(checks, 'Docker network')).toMatchObject({
      status: 'warn',
      detail: 'no network po-doctor-no-such-net: executor containers could not join it',
    });
  });
});
