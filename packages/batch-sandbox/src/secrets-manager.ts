import { type Iam, notAuthorized, type Principal } from './iam.js';
import { type SecretRead, STATUS_REASONS } from './jobs.js';

/** What Secrets Manager appends to a secret's name in its ARN: a hyphen and six characters. */
const ARN_SUFFIX = /-[A-Za-z0-9]{6}$/;

/**
 * The Secrets Manager stand-in: secrets by full ARN. ECS reads a definition's secrets as its
 * execution role when it starts the container; a `valueFrom` may be the full ARN or the ARN
 * without its random suffix (Secrets Manager finds the secret), but IAM authorizes the read on
 * the secret's full ARN, so a policy naming the partial ARN allows nothing.
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
 * https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html
 */
export class SecretsManager {
  constructor(
    private readonly secrets: Record<string, string>,
    private readonly iam: Iam,
  ) {}

  /** The full ARN of the secret `valueFrom` names, if it is stored. */
  private resolve(valueFrom: string): string | undefined {
    if (valueFrom in this.secrets) return valueFrom;
    return Object.keys(this.secrets).find((arn) => arn.replace(ARN_SUFFIX, '') === valueFrom);
  }

  /** GetSecretValue as `reader`: the value, or the status reason ECS gives the failed start. */
  async read(valueFrom: string, reader: Principal): Promise<SecretRead> {
    const arn = this.resolve(valueFrom);
    const resource = arn ?? valueFrom;
    if (!(await this.iam.allows(reader, 'secretsmanager:GetSecretValue', resource)))
      return {
        failure: STATUS_REASONS.secretDenied(
          valueFrom,
          notAuthorized(reader.arn, 'secretsmanager:GetSecretValue', resource),
        ),
      };
    if (arn === undefined) return { failure: STATUS_REASONS.secretMissing(valueFrom) };
    return { value: this.secrets[arn] as string };
  }
}
