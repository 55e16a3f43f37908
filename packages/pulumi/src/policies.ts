import { BATCH_SUBMITTER_ACTIONS, S3_LAYOUT } from '@parallel-orchestrator/contracts';

/**
 * The IAM policy documents of the component, as pure functions of resolved ARNs so that tests
 * can read them. No statement has a `*` action; a `*` resource appears only for the actions in
 * ACTIONS_WITHOUT_RESOURCE_SCOPE, which AWS authorises on no narrower resource.
 */
export interface Statement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Statement[];
}

/**
 * Actions the Service Authorization Reference lists with no resource type: `*` is the only scope
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsbatch.html,
 * list_amazonelasticcontainerregistry.html).
 */
export const ACTIONS_WITHOUT_RESOURCE_SCOPE = [
  'ecr:GetAuthorizationToken',
  ...BATCH_SUBMITTER_ACTIONS.unscoped,
] as const;

function document(...statements: Statement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement: statements };
}

export function assumedBy(service: string): object {
  return {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }],
  };
}

/** Where the account's ARNs are: partition, region, account. */
export interface Scope {
  partition: string;
  region: string;
  accountId: string;
}

/** Execution role: what ECS needs to start the container (pull, logs, the model key). */
export function executionPolicy(p: {
  repositoryArn: string;
  logGroupArn: string;
  apiKeySecretArn?: string;
}): PolicyDocument {
  return document(
    { Sid: 'EcrLogin', Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: ['*'] },
    {
      Sid: 'PullImage',
      Effect: 'Allow',
      Action: [
        'ecr:BatchGetImage',
        'ecr:GetDownloadUrlForLayer',
        'ecr:BatchCheckLayerAvailability',
      ],
      Resource: [p.repositoryArn],
    },
    {
      Sid: 'WriteLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: [`${p.logGroupArn}:log-stream:*`],
    },
    ...(p.apiKeySecretArn
      ? [
          {
            Sid: 'ReadModelKey',
            Effect: 'Allow' as const,
            Action: ['secretsmanager:GetSecretValue'],
            Resource: [secretResource(p.apiKeySecretArn)],
          },
        ]
      : []),
  );
}

/** A Secrets Manager secret's ARN: `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`. */
export const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$/;

/**
 * The ARN a policy names for a secret. Secrets Manager ends every secret's ARN with `-` and six
 * random characters, and IAM compares a request with that full ARN; an ARN given without them
 * (a partial ARN, which GetSecretValue accepts) matches through `-??????`, exactly six characters
 * (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html,
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/permissions_grant-limited-resources.html).
 * An ARN that ends in a hyphen and six characters is taken as complete, as Secrets Manager takes
 * it (https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen).
 */
export function secretResource(arn: string): string {
  return /-[A-Za-z0-9]{6}$/.test(arn) ? arn : `${arn}-??????`;
}

/** A Bedrock model id: `provider.model`, or an inference profile's `<geography>.provider.model`. */
export const BEDROCK_MODEL_ID = /^[a-z0-9-]+\.[A-Za-z0-9.:-]+$/;

/** The geographies of Bedrock's cross-region inference profiles, as their ids begin. */
const INFERENCE_PROFILE = /^(us|eu|apac|jp|au|ca|us-gov|global)\.(.+)$/;

/**
 * What the job may invoke on Bedrock in `region`: each foundation model id in that region; each
 * inference profile, and its foundation model in every region the profile routes to, only through
 * one of these profiles (Bedrock User Guide, "Prerequisites for inference profiles":
 * https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html; a global
 * profile's model ARN has no region, which `*` matches too).
 */
export function bedrockModelStatements(
  scope: Scope,
  region: string,
  modelIds: readonly string[],
): Statement[] {
  const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
  const bedrock = `arn:${scope.partition}:bedrock`;
  const models = modelIds.filter((id) => !INFERENCE_PROFILE.test(id));
  const profiles = modelIds.flatMap((id) => {
    const match = INFERENCE_PROFILE.exec(id);
    return match ? [{ id, model: match[2] as string }] : [];
  });
  const profileArns = profiles.map(
    (p) => `${bedrock}:${region}:${scope.accountId}:inference-profile/${p.id}`,
  );
  return [
    ...(models.length > 0
      ? [
          {
            Sid: 'InvokeModel',
            Effect: 'Allow' as const,
            Action: actions,
            Resource: models.map((id) => `${bedrock}:${region}::foundation-model/${id}`),
          },
        ]
      : []),
    ...(profiles.length > 0
      ? [
          {
            Sid: 'InvokeInferenceProfile',
            Effect: 'Allow' as const,
            Action: [...actions, 'bedrock:GetInferenceProfile'],
            Resource: profileArns,
          },
          {
            // Each profile sends a request to its own model in one of the profile's regions.
            Sid: 'InvokeModelThroughProfile',
            Effect: 'Allow' as const,
            Action: actions,
            Resource: profiles.map((p) => `${bedrock}:*::foundation-model/${p.model}`),
            Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profileArns } },
          },
        ]
      : []),
  ];
}

/**
 * Job role, for Bedrock: the models the job's model proxy invokes. A job needs nothing else of
 * AWS: it moves its objects by URLs the orchestrator presigns, and with the Anthropic API its
 * role holds no policy at all.
 */
export function jobPolicy(bedrock: Statement[]): PolicyDocument {
  return document(...bedrock);
}

/**
 * AWS's policy for the ECS agent on a container instance, which Batch's instance role takes
 * (AWS Batch User Guide, "Amazon ECS instance role":
 * https://docs.aws.amazon.com/batch/latest/userguide/instance_IAM_role.html; its actions:
 * https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonEC2ContainerServiceforEC2Role.html).
 */
export function ecsInstancePolicyArn(partition: string): string {
  return `arn:${partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role`;
}

/**
 * For whoever runs the orchestrator with `--backend batch`: exactly the calls the CLI makes
 * (BATCH_SUBMITTER_ACTIONS, which `doctor` checks one by one), each on this stack's resources. Resource types per the
 * Service Authorization Reference (Batch: list_awsbatch.html; S3: list_amazons3.html; Logs:
 * list_amazoncloudwatchlogs.html, all under
 * https://docs.aws.amazon.com/service-authorization/latest/reference/).
 */
export function submitterPolicy(
  scope: Scope,
  p: {
    jobQueueArn: string;
    jobDefinitionArnPrefix: string;
    bucketArn: string;
    logGroupArn: string;
  },
): PolicyDocument {
  const jobs = `arn:${scope.partition}:batch:${scope.region}:${scope.accountId}:job/*`;
  return document(
    {
      // Preflight's DescribeJobQueues, the poll's DescribeJobs and ListJobs, and doctor's
      // DescribeJobDefinitions take no resource.
      Sid: 'DescribeQueueAndJobs',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.unscoped],
      Resource: ['*'],
    },
    {
      // SubmitJob is authorised on the job, the queue and the definition: any revision (a CLI
      // started before an update keeps submitting to its own), or the definition by name.
      Sid: 'SubmitToQueue',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.submit],
      Resource: [p.jobQueueArn, p.jobDefinitionArnPrefix, `${p.jobDefinitionArnPrefix}:*`, jobs],
    },
    {
      // TagResource: SubmitJob with tags is also authorised as tagging the new job
      // (https://docs.aws.amazon.com/batch/latest/userguide/tag-resources.html).
      Sid: 'TagAndStopJobs',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.jobs],
      Resource: [jobs],
    },
    {
      // HeadBucket (preflight) is authorised as s3:ListBucket on the bucket with no prefix
      // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html); with it, S3 also
      // answers 404 rather than 403 for a missing object
      // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions).
      Sid: 'FindBucket',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.bucket],
      Resource: [p.bucketArn],
    },
    {
      // Staging inputs (PutObject; a multipart upload is authorised as PutObject, and aborting
      // one as AbortMultipartUpload) and collecting results (GetObject), or presigning them.
      Sid: 'StageRuns',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.runObjects],
      Resource: [`${p.bucketArn}/${S3_LAYOUT.runsRoot}*`],
    },
    {
      Sid: 'ReadJobLogs',
      Effect: 'Allow',
      Action: [...BATCH_SUBMITTER_ACTIONS.logStreams],
      Resource: [`${p.logGroupArn}:log-stream:*`],
    },
  );
}

/** Deny anything over plain HTTP. */
export function tlsOnlyBucketPolicy(bucketArn: string): object {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DenyInsecureTransport',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ],
  };
}
