import { S3_LAYOUT } from '@parallel-orchestrator/runtime/contracts';

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

/** Actions the Service Authorization Reference lists with no resource type: `*` is the only scope. */
export const ACTIONS_WITHOUT_RESOURCE_SCOPE = [
  'ecr:GetAuthorizationToken',
  'batch:DescribeJobs',
  'batch:ListJobs',
  'ecs:DiscoverPollEndpoint',
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

/** The run objects of the state bucket: the only keys jobs and submitters touch. */
function runObjects(bucketArn: string): Statement[] {
  return [
    {
      Sid: 'ListRuns',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [bucketArn],
      Condition: { StringLike: { 's3:prefix': [`${S3_LAYOUT.runsRoot}*`] } },
    },
    {
      Sid: 'ReadWriteRuns',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
      Resource: [`${bucketArn}/${S3_LAYOUT.runsRoot}*`],
    },
  ];
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
            Resource: [p.apiKeySecretArn],
          },
        ]
      : []),
  );
}

/** The ARNs a Bedrock model id is invoked through: an inference profile routes to its model in several regions. */
export function bedrockModelStatements(scope: Scope, region: string, modelId: string): Statement[] {
  const actions = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];
  const profile = /^(us|eu|apac|jp|au|ca|us-gov|global)\.(.+)$/.exec(modelId);
  if (!profile) {
    return [
      {
        Sid: 'InvokeModel',
        Effect: 'Allow',
        Action: actions,
        Resource: [`arn:${scope.partition}:bedrock:${region}::foundation-model/${modelId}`],
      },
    ];
  }
  const profileArn = `arn:${scope.partition}:bedrock:${region}:${scope.accountId}:inference-profile/${modelId}`;
  return [
    {
      Sid: 'InvokeInferenceProfile',
      Effect: 'Allow',
      Action: [...actions, 'bedrock:GetInferenceProfile'],
      Resource: [profileArn],
    },
    {
      // The profile sends each request to its model in one of its regions.
      Sid: 'InvokeModelThroughProfile',
      Effect: 'Allow',
      Action: actions,
      Resource: [`arn:${scope.partition}:bedrock:*::foundation-model/${profile[2]}`],
      Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    },
  ];
}

/** Job role: the credentials of the executor itself. */
export function jobPolicy(p: { bucketArn: string; bedrock?: Statement[] }): PolicyDocument {
  return document(...runObjects(p.bucketArn), ...(p.bedrock ?? []));
}

/** EC2 instances of the compute environment: the ECS agent, on this stack's Batch clusters only. */
export function instancePolicy(scope: Scope, computeEnvironmentName: string): PolicyDocument {
  const ecs = `arn:${scope.partition}:ecs:${scope.region}:${scope.accountId}`;
  // Batch names the ECS cluster of a compute environment `<name>_Batch_<uuid>`.
  const cluster = `${computeEnvironmentName}_Batch_*`;
  return document(
    {
      Sid: 'FindEcs',
      Effect: 'Allow',
      Action: ['ecs:DiscoverPollEndpoint'],
      Resource: ['*'],
    },
    {
      Sid: 'RunEcsAgent',
      Effect: 'Allow',
      Action: [
        'ecs:RegisterContainerInstance',
        'ecs:DeregisterContainerInstance',
        'ecs:SubmitContainerStateChange',
        'ecs:SubmitTaskStateChange',
        'ecs:SubmitAttachmentStateChanges',
        'ecs:UpdateContainerInstancesState',
        'ecs:Poll',
        'ecs:StartTelemetrySession',
        'ecs:PutSystemLogEvents',
      ],
      Resource: [`${ecs}:cluster/${cluster}`, `${ecs}:container-instance/${cluster}/*`],
    },
  );
}

/** For whoever runs the orchestrator with `--backend batch`. */
export function submitterPolicy(
  scope: Scope,
  p: {
    jobQueueArn: string;
    jobDefinitionArnPrefix: string;
    bucketArn: string;
    logGroupArn: string;
  },
): PolicyDocument {
  return document(
    {
      // Any revision of this definition, so a CLI started before an update keeps working.
      Sid: 'SubmitToQueue',
      Effect: 'Allow',
      Action: ['batch:SubmitJob'],
      Resource: [p.jobQueueArn, `${p.jobDefinitionArnPrefix}:*`],
    },
    {
      Sid: 'ControlJobs',
      Effect: 'Allow',
      Action: ['batch:TerminateJob', 'batch:CancelJob', 'batch:TagResource'],
      Resource: [`arn:${scope.partition}:batch:${scope.region}:${scope.accountId}:job/*`],
    },
    {
      Sid: 'WatchJobs',
      Effect: 'Allow',
      Action: ['batch:DescribeJobs', 'batch:ListJobs'],
      Resource: ['*'],
    },
    ...runObjects(p.bucketArn),
    {
      Sid: 'ReadJobLogs',
      Effect: 'Allow',
      Action: ['logs:GetLogEvents', 'logs:FilterLogEvents', 'logs:DescribeLogStreams'],
      Resource: [`${p.logGroupArn}:*`, `${p.logGroupArn}:log-stream:*`],
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
