import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import YAML from 'yaml';

/**
 * Pulumi's engine and the AWS, Docker and awsx providers cannot run here, so programs run under
 * `pulumi.runtime.setMocks`: every resource registration is recorded with its inputs, and the
 * mock answers with the outputs a provider would compute (ARNs, URLs, digests).
 */
export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const AUTH_PASSWORD = 'ecr-password-from-token';

/** Provider inputs and outputs: free-form JSON, read by the tests field by field. */
// biome-ignore lint/suspicious/noExplicitAny: the shape is each provider's, not ours
export type Props = Record<string, any>;

export interface Registered {
  type: string;
  name: string;
  inputs: Props;
  state: Props;
}

const digest = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

export class RecordingMocks implements pulumi.runtime.Mocks {
  readonly resources: Registered[] = [];
  readonly calls: { token: string; inputs: Props }[] = [];
  /** What `new pulumi.StackReference(name)` reads, by the referenced stack's name. */
  readonly stacks = new Map<string, Props>();

  newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Props } {
    const state = { ...args.inputs, ...this.computed(args.type, args.name, args.inputs) };
    this.resources.push({ type: args.type, name: args.name, inputs: args.inputs, state });
    return { id: `${args.name}-id`, state };
  }

  call(args: pulumi.runtime.MockCallArgs): Props {
    this.calls.push({ token: args.token, inputs: args.inputs });
    switch (args.token) {
      case 'aws:index/getCallerIdentity:getCallerIdentity':
        return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/ci`, userId: 'AIDA' };
      case 'aws:index/getRegion:getRegion':
        return { region: REGION, name: REGION, id: REGION };
      case 'aws:index/getPartition:getPartition':
        return { partition: 'aws', dnsSuffix: 'amazonaws.com', id: 'aws' };
      case 'aws:ecr/getAuthorizationToken:getAuthorizationToken':
        return {
          userName: 'AWS',
          password: AUTH_PASSWORD,
          proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`,
          authorizationToken: 'token',
          expiresAt: '2026-11-27T00:00:00Z',
          id: args.inputs.registryId ?? ACCOUNT,
          region: REGION,
        };
      case 'aws:ec2/getSubnets:getSubnets':
        return {
          ids: ['subnet-existing-a', 'subnet-existing-b', 'subnet-existing-c'],
          id: 'subnets',
        };
      default:
        throw new Error(`no mock for the call ${args.token}`);
    }
  }

  /** The outputs a provider computes, by resource type. */
  private computed(type: string, name: string, inputs: Props): Props {
    const arn = (service: string, resource: string) =>
      `arn:aws:${service}:${REGION}:${ACCOUNT}:${resource}`;
    switch (type) {
      case 'aws:ecr/repository:Repository':
        return {
          name,
          arn: arn('ecr', `repository/${name}`),
          registryId: ACCOUNT,
          repositoryUrl: `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/${name}`,
        };
      case 'docker-build:index:Image': {
        const d = digest(name);
        return { digest: d, ref: `${inputs.tags?.[0]}@${d}` };
      }
      case 'docker-build:index:Index':
        return { ref: `${inputs.tag}@${digest(`index-${name}`)}` };
      case 'docker:index/image:Image':
        return { repoDigest: '', baseImageName: inputs.imageName };
      case 'aws:s3/bucket:Bucket':
        return { bucket: `${name}-bucket`, arn: `arn:aws:s3:::${name}-bucket` };
      case 'aws:iam/role:Role':
        return { name: `${name}-role`, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` };
      case 'aws:iam/policy:Policy':
        return { arn: `arn:aws:iam::${ACCOUNT}:policy/${name}` };
      case 'aws:iam/instanceProfile:InstanceProfile':
        return { arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${name}` };
      case 'aws:cloudwatch/logGroup:LogGroup':
        return { arn: arn('logs', `log-group:${inputs.name}`) };
      case 'aws:secretsmanager/secret:Secret':
        return { arn: arn('secretsmanager', `secret:${name}-AbCdEf`) };
      case 'aws:batch/computeEnvironment:ComputeEnvironment': {
        // Pulumi names what the program leaves unnamed: the logical name and a random suffix.
        const physical = inputs.name ?? `${name}-${digest(name).slice(7, 14)}`;
        return { name: physical, arn: arn('batch', `compute-environment/${physical}`) };
      }
      case 'aws:ec2/launchTemplate:LaunchTemplate':
        return { arn: arn('ec2', `launch-template/lt-${name}`), latestVersion: 1 };
      case 'aws:batch/jobQueue:JobQueue':
        return { arn: arn('batch', `job-queue/${name}`) };
      case 'aws:batch/jobDefinition:JobDefinition':
        return {
          arn: arn('batch', `job-definition/${name}:1`),
          arnPrefix: arn('batch', `job-definition/${name}`),
        };
      case 'aws:ec2/securityGroup:SecurityGroup':
        return { arn: arn('ec2', `security-group/${name}`) };
      case 'pulumi:pulumi:StackReference':
        return { outputs: this.stacks.get(inputs.name) ?? {}, secretOutputNames: [] };
      case 'awsx:ec2:Vpc':
        return {
          vpcId: 'vpc-created',
          privateSubnetIds: ['subnet-private-a', 'subnet-private-b'],
          publicSubnetIds: ['subnet-public-a', 'subnet-public-b'],
        };
      default:
        return {};
    }
  }

  ofType(type: string): Registered[] {
    return this.resources.filter((r) => r.type === type);
  }

  one(type: string): Registered {
    const found = this.ofType(type);
    if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
    return found[0] as Registered;
  }
}

/** Pulumi's wire form of a secret: the value is kept out of plain state and logs. */
const SPECIAL_SIG = '4dabf18193072939515e22adb298388d';
const SECRET_SIG = '1b47061264138c4ac30d75fd1eb44270';

/** The value inside an input Pulumi marked secret; fails if it was not marked. */
export function secretValue(input: unknown): unknown {
  const wire = input as Record<string, unknown>;
  if (wire?.[SPECIAL_SIG] !== SECRET_SIG) throw new Error(`not a secret: ${JSON.stringify(input)}`);
  return wire.value;
}

/** The value of an output, once the mocks have answered. */
export function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/** Resource options as the component passed them, by `type name`. */
export type RecordedOptions = Map<string, pulumi.CustomResourceOptions>;

/**
 * Runs `program` under fresh mocks on `stack` and waits until every registration is done. The
 * program gets resource options whose transformation records every child's options.
 */
export async function underMocks<T>(
  stack: string,
  program: (opts: pulumi.ComponentResourceOptions) => T | Promise<T>,
  project = 'parallel-orchestrator',
  config: Record<string, string> = {},
  mocks = new RecordingMocks(),
): Promise<{ mocks: RecordingMocks; options: RecordedOptions; result: T }> {
  const options: RecordedOptions = new Map();
  await pulumi.runtime.setMocks(mocks, project, stack, false);
  pulumi.runtime.setAllConfig(config);
  const record: pulumi.ResourceTransformation = ({ type, name, opts }) => {
    options.set(`${type} ${name}`, opts);
    return undefined;
  };
  const result = await program({ transformations: [record] });
  await pulumi.runtime.disconnect();
  return { mocks, options, result };
}

/** The URNs of the resources `opts.dependsOn` names. */
export async function dependsOnUrns(opts: pulumi.ResourceOptions | undefined): Promise<string[]> {
  const deps = opts?.dependsOn;
  const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
  return Promise.all(list.map((resource) => resolved(resource.urn)));
}

/** A `Pulumi.<stack>.yaml` as the engine hands it to a program: every value a string. */
export function stackConfig(yamlText: string): Record<string, string> {
  const parsed = (YAML.parse(yamlText) as { config?: Record<string, unknown> }).config ?? {};
  return Object.fromEntries(
    Object.entries(parsed).map(([key, value]) => [
      key,
      typeof value === 'string' ? value : JSON.stringify(value),
    ]),
  );
}
