import { randomBytes } from 'node:crypto';
import {
  type BatchBackendConfig,
  BatchBackendConfigSchema,
  ENV,
  S3_LAYOUT,
} from '@parallel-orchestrator/runtime/contracts';
import Docker from 'dockerode';
import { z } from 'zod';
import { batchHandler } from './batch-api.js';
import {
  createNetwork,
  DOCKER_CALL_MS,
  inspectImage,
  isAlive,
  removeOrphans,
  removeSandboxContainers,
  withTimeout,
} from './docker.js';
import { type JobMatch, NextCalls, RateLimit } from './faults.js';
import { type ListeningServer, listenOn } from './http.js';
import { ALLOW_ALL, Iam, newPrincipal, type PolicyDocument, type Principal } from './iam.js';
import { queryApiHandler } from './iam-api.js';
import { JobScheduler, type ReclaimKind } from './jobs.js';
import { LogStore, logsHandler } from './logs.js';
import { parseOrFail } from './parse.js';
import { SandboxRecord } from './record.js';
import {
  defaultJobDefinition,
  defaultJobQueue,
  type JobDefinitionInput,
  type JobQueueInput,
  jobDefinitionFrom,
  jobQueueFrom,
  registerRevision,
  SANDBOX_NAME,
  sandboxArn,
} from './registry.js';
import { DockerRunner } from './runner.js';
import { type S3Server, startS3 } from './s3.js';
import { s3Front } from './s3-front.js';
import { removeStaleSecrets, SecretStaging } from './secrets.js';
import { SecretsManager } from './secrets-manager.js';
import type { SandboxStack } from './stack.js';

export const DEFAULT_IMAGE = 'parallel-orchestrator:latest';

/** What the default definition's model-key secret holds unless a key is given. */
export const PLACEHOLDER_ANTHROPIC_KEY = 'batch-sandbox-placeholder-anthropic-key';

/** The Secrets Manager ARN of the default definition's ANTHROPIC_API_KEY. */
export const modelKeySecretArn = (region: string) =>
  sandboxArn(region, 'secretsmanager', `secret:${SANDBOX_NAME}-model-key-SBOX01`);

const OptionsSchema = z.object({
  /** The local image every job runs, whatever image its definition names. */
  image: z.string().min(1).default(DEFAULT_IMAGE),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region such as us-east-1')
    .default('us-east-1'),
  bucket: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
    )
    .default(SANDBOX_NAME),
  /** The compute environment's ceiling of each queue that does not set its own. */
  maxVcpus: z.number().positive().default(4),
  /** The default definition's VCPU. */
  vcpusPerJob: z.number().positive().default(1),
  /** Seconds a RUNNABLE job may stay blocked before the default queue cancels it. */
  runnableTimeout: z.number().positive().optional(),
  /** Secrets Manager stand-in: secret ARN → value. */
  secrets: z.record(z.string(), z.string()).default({}),
  /**
   * The value of the default definition's model-key secret (`modelKeySecretArn`). A placeholder
   * by default, so that simulated runs start; real runs need the key.
   */
  anthropicApiKey: z.string().min(1).default(PLACEHOLDER_ANTHROPIC_KEY),
  /** Registered definitions; the first is the config's. Default: the Pulumi component's, built here. */
  jobDefinitions: z.array(z.custom<JobDefinitionInput>()).min(1).optional(),
  /** Registered queues; the first is the config's. */
  jobQueues: z.array(z.custom<JobQueueInput>()).min(1).optional(),
  /**
   * A stack the Pulumi component made (`sandboxStackFrom`): its queue, compute environment, job
   * definition, region and bucket, and IAM enforced with its policies. Options given beside it
   * take precedence.
   */
  stack: z.custom<SandboxStack>().optional(),
  /**
   * The identity policies IAM enforces: the submitter's (the CLI's keys) and each role's, by
   * ARN (a definition's jobRoleArn and executionRoleArn). A stack's by default; without either,
   * every principal may do everything, though signatures are still checked and decisions kept.
   */
  iam: z
    .object({
      submitter: z.array(z.custom<PolicyDocument>()),
      roles: z.record(z.string(), z.array(z.custom<PolicyDocument>())),
    })
    .optional(),
  /** SubmitJob calls per second beyond which the API answers 429. */
  submitRateLimit: z.number().positive().optional(),
  /** The least time a job spends in each of SUBMITTED, PENDING and RUNNABLE. */
  transitionMs: z.number().int().min(1).default(100),
  /** Between SIGTERM and SIGKILL when a job is terminated or times out (ECS: 30). */
  stopTimeoutSeconds: z.number().int().min(0).default(30),
  /** The default definition's attempt timeout. */
  attemptDurationSeconds: z.number().int().min(1).default(3600),
});
export type BatchSandboxOptions = z.input<typeof OptionsSchema> & { docker?: Docker };

export interface BatchSandbox {
  readonly id: string;
  /** What `--backend-config` takes: the sandbox's queue, definition, bucket and endpoints. */
  readonly config: BatchBackendConfig;
  /** The host's address on the sandbox network: where jobs reach servers on the host. */
  readonly gatewayAddress: string;
  readonly networkName: string;
  /** The same services as `config.sandbox`, at the addresses jobs use. */
  readonly jobEndpoints: { batch: string; s3: string; logs: string };
  readonly record: SandboxRecord;
  /**
   * Registers the next revision of a definition (the revision in `input.arn` is ignored), as a
   * `pulumi up` that changes it does; `deregisterPrevious` (the provider's default) retires the
   * earlier revisions, which then take no jobs. Returns the new revision's ARN.
   */
  registerJobDefinition(
    input: JobDefinitionInput,
    options?: { deregisterPrevious?: boolean },
  ): string;
  /** The next `count` calls of an operation (SubmitJob, GetLogEvents, ...) are throttled. */
  throttle(operation: string, count: number): void;
  /** Matching jobs stay RUNNABLE (blocked for capacity) until released, terminated or cancelled. */
  holdRunnable(match: JobMatch): () => void;
  /**
   * DescribeJobs and ListJobs are eventually consistent: jobs submitted from now on appear in
   * DescribeJobs only `describeMs` after submission, in ListJobs only `listMs` after (the same
   * unless given). 0 makes them consistent again.
   */
  hideAfterSubmit(describeMs: number, listMs?: number): void;
  /** The next `count` calls of an operation are carried out, but their answers are lost. */
  loseAnswers(operation: string, count: number): void;
  /** GetLogEvents reads streams in windows of `ms` of event time (0: all at once); see LogStore. */
  pageLogsByTime(ms: number): void;
  /** The capacity under a running job goes away: its container is killed, the retry strategy decides. */
  reclaim(jobId: string, kind: ReclaimKind): void;
  /** Reclaims each matching job's first running attempt `afterMs` after it starts. */
  reclaimWhenRunning(match: JobMatch, afterMs: number, kind?: ReclaimKind): () => void;
  /** Removes every container, the network, the servers and staged secrets. Idempotent. */
  close(): Promise<void>;
}

/** Starts a local AWS Batch: Batch, S3 and CloudWatch Logs endpoints, jobs as Docker containers. */
export async function startBatchSandbox(options: BatchSandboxOptions = {}): Promise<BatchSandbox> {
  const { docker = new Docker(), ...rest } = options;
  const settings = parseOrFail(
    OptionsSchema,
    rest,
    (message) => new Error(`invalid option ${message}`),
  );
  const dockerTimeout = () =>
    new Error(`the Docker Engine did not answer within ${DOCKER_CALL_MS / 1000} s`);
  const image = await withTimeout(
    inspectImage(docker, settings.image),
    DOCKER_CALL_MS,
    dockerTimeout,
  );
  await withTimeout(removeOrphans(docker), DOCKER_CALL_MS, dockerTimeout);
  removeStaleSecrets(isAlive);

  const id = randomBytes(4).toString('hex');
  const cleanups: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    cleanups.length = 0;
  };
  try {
    const secretStaging = new SecretStaging();
    cleanups.push(() => secretStaging.close());
    const network = await withTimeout(createNetwork(docker, id), DOCKER_CALL_MS, dockerTimeout);
    cleanups.push(network.remove);
    cleanups.push(() => removeSandboxContainers(docker, id));
    const hosts = ['127.0.0.1', network.gateway];

    const { stack } = settings;
    const region = stack?.region ?? settings.region;
    const bucket = stack?.bucketName ?? settings.bucket;
    const apiKeySecretArn = modelKeySecretArn(region);
    const logGroupName = `/aws/batch/${SANDBOX_NAME}`;
    const definitions = (
      settings.jobDefinitions ??
      (stack && [stack.jobDefinition]) ?? [
        defaultJobDefinition({
          region,
          imageRef: image.imageRef,
          bucket,
          logGroupName,
          apiKeySecretArn,
          vcpus: settings.vcpusPerJob,
          memoryMib: 2048,
          attemptDurationSeconds: settings.attemptDurationSeconds,
        }),
      ]
    ).map(jobDefinitionFrom);
    const queues = (
      settings.jobQueues ??
      (stack && [stack.jobQueue]) ?? [defaultJobQueue(region, settings.runnableTimeout)]
    ).map((queue) => jobQueueFrom(queue, settings.maxVcpus));
    const queue = queues[0] as (typeof queues)[number];
    const [arnPrefix] = queue.arn.split(':job-queue/') as [string];
    const accountId = arnPrefix.split(':')[4] as string;

    const record = new SandboxRecord();
    // Each principal gets its own key pair; its requests are authorized as its policies allow.
    const policies =
      settings.iam ?? (stack && { submitter: [stack.submitterPolicy], roles: stack.rolePolicies });
    const iam = new Iam(accountId, record);
    const submitter = iam.add(
      newPrincipal(
        `arn:aws:iam::${accountId}:user/${SANDBOX_NAME}-submitter`,
        policies?.submitter ?? [ALLOW_ALL],
        'AKIA',
      ),
    );
    const roles = new Map<string, Principal>();
    /** The principal of a definition's role; a definition naming none gets a role of its own. */
    const roleOf = (arn: unknown): Principal => {
      const roleArn =
        typeof arn === 'string' ? arn : `arn:aws:iam::${accountId}:role/${SANDBOX_NAME}-no-role`;
      let role = roles.get(roleArn);
      if (!role) {
        role = iam.add(
          newPrincipal(roleArn, policies ? (policies.roles[roleArn] ?? []) : [ALLOW_ALL], 'ASIA'),
        );
        roles.set(roleArn, role);
      }
      return role;
    };
    const secretsManager = new SecretsManager(
      { [apiKeySecretArn]: settings.anthropicApiKey, ...settings.secrets },
      iam,
    );

    const s3: S3Server = await startS3(hosts, bucket, region, (app) =>
      s3Front({ app, region, iam, record }),
    );
    cleanups.push(s3.close);
    // Host and jobs use the same S3 endpoint, as on AWS: a URL the host presigns works in a job.
    const s3Url = `http://${network.gateway}:${s3.ports[1]}`;

    const logs = new LogStore();
    // The stack made each definition's log group (the awslogs driver's default is Batch's own).
    const logGroupOf = (definition: (typeof definitions)[number]) =>
      definition.containerProperties.logConfiguration?.options?.['awslogs-group'] ??
      '/aws/batch/job';
    for (const definition of definitions) logs.createGroup(logGroupOf(definition));
    const throttles = new NextCalls();
    const lostAnswers = new NextCalls();
    const scheduler = new JobScheduler({
      region,
      image: settings.image,
      queues,
      definitions,
      readSecret: (valueFrom, definition) =>
        secretsManager.read(valueFrom, roleOf(definition.containerProperties.executionRoleArn)),
      jobEnvironment: (definition) => {
        // Stand-ins for the job role's temporary credentials.
        const role = roleOf(definition.containerProperties.jobRoleArn);
        return {
          AWS_ENDPOINT_URL_S3: s3Url,
          [ENV.AWS_REGION]: region,
          [ENV.AWS_ACCESS_KEY_ID]: role.accessKeyId,
          [ENV.AWS_SECRET_ACCESS_KEY]: role.secretAccessKey,
        };
      },
      transitionMs: settings.transitionMs,
      stopTimeoutSeconds: settings.stopTimeoutSeconds,
      runner: new DockerRunner(docker, id, network, secretStaging),
      logs,
      record,
    });
    cleanups.push(() => scheduler.close());

    const batch: ListeningServer = await listenOn(
      hosts,
      batchHandler(
        scheduler,
        record,
        {
          throttles,
          lostAnswers,
          ...(settings.submitRateLimit && {
            submitRateLimit: new RateLimit(settings.submitRateLimit),
          }),
        },
        { region, arnPrefix, iam },
      ),
    );
    cleanups.push(batch.close);
    const logsServer: ListeningServer = await listenOn(
      hosts,
      logsHandler(logs, record, throttles, { region, accountId, iam }),
    );
    cleanups.push(logsServer.close);
    // STS and IAM: for doctor, on the host only (jobs never call them).
    const queryApi: ListeningServer = await listenOn(
      ['127.0.0.1'],
      queryApiHandler(record, { region, accountId, iam }),
    );
    cleanups.push(queryApi.close);
    const queryUrl = `http://127.0.0.1:${queryApi.ports[0]}`;
    const urls = (server: { ports: number[] }) =>
      server.ports.map((port, i) => `http://${hosts[i]}:${port}`) as [string, string];
    const [batchHost, batchJob] = urls(batch);
    const [logsHost, logsJob] = urls(logsServer);

    const definition = definitions[0] as (typeof definitions)[number];
    const config = BatchBackendConfigSchema.parse({
      version: 1,
      backend: 'batch',
      region,
      jobQueueArn: queue.arn,
      jobDefinitionArn: definition.arn,
      bucketName: bucket,
      runsPrefix: S3_LAYOUT.runsRoot,
      logGroupName: logGroupOf(definition),
      imageRef: image.imageRef,
      maxVcpus: queue.maxVcpus,
      vcpusPerJob: Number(
        definition.containerProperties.resourceRequirements?.find((r) => r.type === 'VCPU')
          ?.value ??
          definition.containerProperties.vcpus ??
          1,
      ),
      model: {
        provider: 'anthropic',
        apiKeySecretArn:
          definition.containerProperties.secrets?.find((s) => s.name === ENV.ANTHROPIC_API_KEY)
            ?.valueFrom ?? apiKeySecretArn,
      },
      sandbox: {
        batch: batchHost,
        s3: s3Url,
        logs: logsHost,
        sts: queryUrl,
        iam: queryUrl,
        credentials: {
          accessKeyId: submitter.accessKeyId,
          secretAccessKey: submitter.secretAccessKey,
        },
      },
    });

    let closing: Promise<void> | undefined;
    return {
      id,
      config,
      gatewayAddress: network.gateway,
      networkName: network.name,
      jobEndpoints: { batch: batchJob, s3: s3Url, logs: logsJob },
      record,
      registerJobDefinition: (input, options) => {
        const revision = registerRevision(definitions, input, options?.deregisterPrevious ?? true);
        logs.createGroup(logGroupOf(revision));
        return revision.arn;
      },
      throttle: (operation, count) => throttles.add(operation, count),
      holdRunnable: (match) => scheduler.holdRunnable(match),
      hideAfterSubmit: (describeMs, listMs) => scheduler.hideAfterSubmit(describeMs, listMs),
      loseAnswers: (operation, count) => lostAnswers.add(operation, count),
      pageLogsByTime: (ms) => {
        logs.pageWindowMs = ms;
      },
      reclaim: (jobId, kind) => scheduler.reclaim(jobId, kind),
      reclaimWhenRunning: (match, afterMs, kind = 'ec2') =>
        scheduler.reclaimWhenRunning(match, afterMs, kind),
      close: () => {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
