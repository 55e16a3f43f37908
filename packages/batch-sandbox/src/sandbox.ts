import { randomBytes } from 'node:crypto';
import {
  BATCH_SANDBOX_CREDENTIALS,
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
  SANDBOX_NAME,
  sandboxArn,
} from './registry.js';
import { DockerRunner } from './runner.js';
import { type S3Server, startS3 } from './s3.js';
import { removeStaleSecrets, SecretStaging } from './secrets.js';

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
  /** S3 refuses reads of matching keys with 403 AccessDenied until the returned undo is called. */
  denyS3Reads(keys: RegExp): () => void;
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

    const s3: S3Server = await startS3(hosts, settings.bucket, settings.region);
    cleanups.push(s3.close);
    const [s3Host, s3Job] = s3.ports.map((port, i) => `http://${hosts[i]}:${port}`) as [
      string,
      string,
    ];

    const apiKeySecretArn = modelKeySecretArn(settings.region);
    const logGroupName = `/aws/batch/${SANDBOX_NAME}`;
    const definitions = (
      settings.jobDefinitions ?? [
        defaultJobDefinition({
          region: settings.region,
          imageRef: image.imageRef,
          bucket: settings.bucket,
          logGroupName,
          apiKeySecretArn,
          vcpus: settings.vcpusPerJob,
          memoryMib: 2048,
          attemptDurationSeconds: settings.attemptDurationSeconds,
        }),
      ]
    ).map(jobDefinitionFrom);
    const queues = (
      settings.jobQueues ?? [defaultJobQueue(settings.region, settings.runnableTimeout)]
    ).map((queue) => jobQueueFrom(queue, settings.maxVcpus));

    const record = new SandboxRecord();
    const logs = new LogStore();
    const throttles = new NextCalls();
    const lostAnswers = new NextCalls();
    const scheduler = new JobScheduler({
      region: settings.region,
      image: settings.image,
      queues,
      definitions,
      secrets: { [apiKeySecretArn]: settings.anthropicApiKey, ...settings.secrets },
      jobEnvironment: {
        AWS_ENDPOINT_URL_S3: s3Job,
        [ENV.AWS_REGION]: settings.region,
        // Stand-ins for the job role's temporary credentials.
        [ENV.AWS_ACCESS_KEY_ID]: BATCH_SANDBOX_CREDENTIALS.accessKeyId,
        [ENV.AWS_SECRET_ACCESS_KEY]: BATCH_SANDBOX_CREDENTIALS.secretAccessKey,
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
      batchHandler(scheduler, record, {
        throttles,
        lostAnswers,
        ...(settings.submitRateLimit && {
          submitRateLimit: new RateLimit(settings.submitRateLimit),
        }),
      }),
    );
    cleanups.push(batch.close);
    const logsServer: ListeningServer = await listenOn(hosts, logsHandler(logs, record, throttles));
    cleanups.push(logsServer.close);
    const urls = (server: { ports: number[] }) =>
      server.ports.map((port, i) => `http://${hosts[i]}:${port}`) as [string, string];
    const [batchHost, batchJob] = urls(batch);
    const [logsHost, logsJob] = urls(logsServer);

    const definition = definitions[0] as (typeof definitions)[number];
    const queue = queues[0] as (typeof queues)[number];
    const config = BatchBackendConfigSchema.parse({
      version: 1,
      backend: 'batch',
      region: settings.region,
      jobQueueArn: queue.arn,
      jobDefinitionArn: definition.arn,
      bucketName: settings.bucket,
      runsPrefix: S3_LAYOUT.runsRoot,
      logGroupName:
        definition.containerProperties.logConfiguration?.options?.['awslogs-group'] ??
        '/aws/batch/job',
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
      sandbox: { batch: batchHost, s3: s3Host, logs: logsHost },
    });

    let closing: Promise<void> | undefined;
    return {
      id,
      config,
      gatewayAddress: network.gateway,
      networkName: network.name,
      jobEndpoints: { batch: batchJob, s3: s3Job, logs: logsJob },
      record,
      throttle: (operation, count) => throttles.add(operation, count),
      holdRunnable: (match) => scheduler.holdRunnable(match),
      hideAfterSubmit: (describeMs, listMs) => scheduler.hideAfterSubmit(describeMs, listMs),
      loseAnswers: (operation, count) => lostAnswers.add(operation, count),
      pageLogsByTime: (ms) => {
        logs.pageWindowMs = ms;
      },
      denyS3Reads: (keys) => s3.denyReads(keys),
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
