import { createHash, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { readBody } from './http.js';
import { type Iam, notAuthorized, type Principal } from './iam.js';
import type { SandboxRecord } from './record.js';
import { checkSignature, type SignatureFailure } from './sigv4.js';

/**
 * STS GetCallerIdentity and IAM SimulatePrincipalPolicy, the calls `doctor` makes, in the AWS
 * query protocol both services speak: a form-encoded POST naming its Action, an XML answer.
 * https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
 * https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
 * https://docs.aws.amazon.com/IAM/latest/APIReference/API_EvaluationResult.html
 */

/** Each action, the service that signs and serves it, and its XML namespace. */
const ACTIONS: Record<string, { service: 'sts' | 'iam'; namespace: string }> = {
  GetCallerIdentity: { service: 'sts', namespace: 'https://sts.amazonaws.com/doc/2011-06-15/' },
  SimulatePrincipalPolicy: {
    service: 'iam',
    namespace: 'https://iam.amazonaws.com/doc/2010-05-08/',
  },
};

class QueryError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** How STS and IAM answer a request they cannot authenticate (the query protocol's codes). */
const SIGNATURE_ERRORS: Record<SignatureFailure, string> = {
  MissingAuthenticationToken: 'MissingAuthenticationToken',
  InvalidAccessKeyId: 'InvalidClientTokenId',
  SignatureDoesNotMatch: 'SignatureDoesNotMatch',
  RequestTimeTooSkewed: 'SignatureDoesNotMatch',
  RequestExpired: 'RequestExpired',
  AuthorizationQueryParametersError: 'IncompleteSignature',
  HeadersNotSigned: 'SignatureDoesNotMatch',
};

const xml = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string,
  );

function send(res: http.ServerResponse, status: number, body: string, requestId: string): void {
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}

/** `Name.member.1`, `Name.member.2`, ...: a list in a query request. */
function members(form: URLSearchParams, name: string): string[] {
  const out: string[] = [];
  for (let i = 1; form.has(`${name}.member.${i}`); i++)
    out.push(form.get(`${name}.member.${i}`) as string);
  return out;
}

/** A stable unique id in IAM's shape (AIDA... for users, AROA... for roles), from the ARN. */
function uniqueId(arn: string): string {
  const prefix = arn.includes(':role/') ? 'AROA' : 'AIDA';
  return `${prefix}${createHash('sha256').update(arn).digest('hex').slice(0, 17).toUpperCase()}`;
}

/** The role ARN an `assumed-role` session ARN stands for; any other ARN unchanged. */
const identityArn = (arn: string) =>
  arn.replace(/^arn:([^:]+):sts::(\d+):assumed-role\/([^/]+)\/.*$/, 'arn:$1:iam::$2:role/$3');

export interface QueryApiSettings {
  region: string;
  accountId: string;
  iam: Iam;
}

/** One endpoint for both services: the Action says which, and which signature scope it needs. */
export function queryApiHandler(
  record: SandboxRecord,
  settings: QueryApiSettings,
): http.RequestListener {
  const getCallerIdentity = (principal: Principal) => {
    // A role's callers are sessions of it, as STS names them.
    const arn = principal.arn.replace(
      /^arn:([^:]+):iam::(\d+):role\/(?:.*\/)?([^/]+)$/,
      `arn:$1:sts::$2:assumed-role/$3/${principal.accessKeyId}`,
    );
    return `<GetCallerIdentityResult><Arn>${xml(arn)}</Arn><UserId>${uniqueId(principal.arn)}${arn === principal.arn ? '' : `:${principal.accessKeyId}`}</UserId><Account>${settings.accountId}</Account></GetCallerIdentityResult>`;
  };

  /**
   * Each action on each resource, as the principal named by PolicySourceArn holds its policies:
   * one result per action, its decision the most restrictive over the resources, each
   * resource's own in ResourceSpecificResults. The call itself is authorized as
   * iam:SimulatePrincipalPolicy on that principal.
   */
  const simulate = async (caller: Principal, form: URLSearchParams) => {
    const source = form.get('PolicySourceArn') ?? '';
    const actions = members(form, 'ActionNames');
    if (!source || actions.length === 0)
      throw new QueryError(
        'ValidationError',
        400,
        'PolicySourceArn and at least one ActionNames member are required',
      );
    if (!(await settings.iam.allows(caller, 'iam:SimulatePrincipalPolicy', source)))
      throw new QueryError(
        'AccessDenied',
        403,
        notAuthorized(caller.arn, 'iam:SimulatePrincipalPolicy', source),
      );
    const subject = settings.iam.principalByArn(source);
    if (!subject || identityArn(source) !== source)
      throw new QueryError(
        'NoSuchEntity',
        404,
        `The ${source.includes(':role/') ? 'role' : 'user'} with name ${source.split('/').pop()} cannot be found.`,
      );
    const resources = members(form, 'ResourceArns');
    const results: string[] = [];
    for (const action of actions) {
      const perResource: [string, boolean][] = [];
      for (const resource of resources.length > 0 ? resources : ['*'])
        perResource.push([resource, await settings.iam.allows(subject, action, resource)]);
      const decision = (allowed: boolean) => (allowed ? 'allowed' : 'implicitDeny');
      const all = perResource.every(([, allowed]) => allowed);
      const specific = perResource
        .map(
          ([resource, allowed]) =>
            `<member><EvalResourceName>${xml(resource)}</EvalResourceName><EvalResourceDecision>${decision(allowed)}</EvalResourceDecision><MatchedStatements/><MissingContextValues/></member>`,
        )
        .join('');
      results.push(
        `<member><EvalActionName>${xml(action)}</EvalActionName><EvalResourceName>${xml(perResource[0]?.[0] ?? '*')}</EvalResourceName><EvalDecision>${decision(all)}</EvalDecision><MatchedStatements/><MissingContextValues/><ResourceSpecificResults>${specific}</ResourceSpecificResults></member>`,
      );
    }
    return `<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>${results.join('')}</EvaluationResults></SimulatePrincipalPolicyResult>`;
  };

  return async (req, res) => {
    const at = Date.now();
    const requestId = randomUUID();
    const { body, bytes } = await readBody(req, 1 << 20);
    const form = new URLSearchParams(body.toString('utf8'));
    const operation = form.get('Action') ?? '';
    const served = ACTIONS[operation];
    let status = 200;
    try {
      if (req.method !== 'POST' || !served)
        throw new QueryError(
          'InvalidAction',
          400,
          `Could not find operation ${operation || '(none)'}`,
        );
      const signature = await checkSignature(
        { method: req.method, url: req.url ?? '/', headers: req.headers, body },
        { service: served.service, region: settings.region },
        (accessKeyId) => settings.iam.principalOf(accessKeyId)?.secretAccessKey,
      );
      if (!signature.ok)
        throw new QueryError(
          SIGNATURE_ERRORS[signature.failure],
          403,
          signature.failure === 'InvalidAccessKeyId'
            ? 'The security token included in the request is invalid.'
            : signature.message,
        );
      const principal = settings.iam.principalOf(signature.accessKeyId) as Principal;
      // GetCallerIdentity needs no permission: STS answers it even under an explicit deny.
      const result =
        operation === 'GetCallerIdentity'
          ? getCallerIdentity(principal)
          : await simulate(principal, form);
      send(
        res,
        200,
        `<${operation}Response xmlns="${served.namespace}">${result}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${operation}Response>`,
        requestId,
      );
    } catch (error) {
      const query =
        error instanceof QueryError ? error : new QueryError('InternalFailure', 500, String(error));
      status = query.status;
      const namespace = (served ?? ACTIONS.SimulatePrincipalPolicy)?.namespace;
      send(
        res,
        status,
        `<ErrorResponse xmlns="${namespace}"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${query.code}</Code><Message>${xml(query.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        requestId,
      );
    }
    record.calls.push({
      service: served?.service ?? 'iam',
      operation,
      at,
      requestBytes: bytes,
      body: body.toString('utf8'),
      throttled: false,
      status,
    });
  };
}
