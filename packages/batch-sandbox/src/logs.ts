import type http from 'node:http';
import { z } from 'zod';
import type { NextCalls } from './faults.js';
import { AwsError, authenticate, readBody, sendError, sendJson } from './http.js';
import { type Iam, notAuthorized } from './iam.js';
import { parseOrFail } from './parse.js';
import type { SandboxRecord } from './record.js';

export interface LogEvent {
  timestamp: number;
  message: string;
  ingestionTime: number;
}

/** Log groups and their streams, in memory. */
export class LogStore {
  private readonly groups = new Map<string, Map<string, LogEvent[]>>();
  /** When each stream was made (group, newline, stream): where a read in windows starts. */
  private readonly created = new Map<string, number>();
  /**
   * When set, GetLogEvents reads a stream forward in windows of this much event time, and a
   * window without events is an empty page whose token still moves on (CloudWatch Logs may
   * answer so: only a token that comes back unchanged marks the end of a stream).
   */
  pageWindowMs = 0;

  /** A log group with no streams yet, as the stack makes it. */
  createGroup(group: string): void {
    if (!this.groups.has(group)) this.groups.set(group, new Map());
  }

  hasGroup(group: string): boolean {
    return this.groups.has(group);
  }

  createStream(group: string, stream: string): void {
    const streams = this.groups.get(group) ?? new Map<string, LogEvent[]>();
    this.groups.set(group, streams);
    if (!streams.has(stream)) {
      streams.set(stream, []);
      this.created.set(`${group}\n${stream}`, Date.now());
    }
  }

  createdAt(group: string, stream: string): number {
    return this.created.get(`${group}\n${stream}`) ?? 0;
  }

  append(group: string, stream: string, timestamp: number, message: string): void {
    this.createStream(group, stream);
    this.groups.get(group)?.get(stream)?.push({ timestamp, message, ingestionTime: Date.now() });
  }

  events(group: string, stream: string): LogEvent[] | undefined {
    return this.groups.get(group)?.get(stream);
  }
}

const LOGS_JSON = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'Logs_20140328.';
/** GetLogEvents returns at most this many events a call, as CloudWatch Logs does. */
const MAX_EVENTS = 10_000;

const invalidParameter = (message: string) =>
  new AwsError('InvalidParameterException', 400, message);

const GetLogEventsSchema = z
  .object({
    logGroupName: z.string().min(1).optional(),
    logGroupIdentifier: z.string().min(1).optional(),
    logStreamName: z.string().min(1),
    startTime: z.number().int().optional(),
    endTime: z.number().int().optional(),
    nextToken: z
      .string()
      .regex(/^[fb]\/\d+\/\d+\/s$/, 'not a token of this log stream')
      .optional(),
    limit: z.number().int().min(1).max(MAX_EVENTS).optional(),
    startFromHead: z.boolean().optional(),
    unmask: z.boolean().optional(),
  })
  .refine((r) => r.logGroupName || r.logGroupIdentifier, 'logGroupName is required');

/**
 * Opaque to clients; here a position in the stream, zero-padded like CloudWatch's tokens, and
 * the event time a forward read in windows has scanned up to.
 */
const token = (direction: 'f' | 'b', position: number, scannedTo = 0) =>
  `${direction}/${String(position).padStart(56, '0')}/${scannedTo}/s`;

/**
 * GetLogEvents as CloudWatch Logs answers it. A forward token names the position after the last
 * event returned; at the end of the stream it comes back unchanged with no events, which is how
 * a follower knows to wait. Read in windows (`LogStore.pageWindowMs`), a page holds only the
 * events of one window of time, so a gap in the stream reads as empty pages with moving tokens.
 */
function getLogEvents(store: LogStore, body: unknown) {
  const request = parseOrFail(GetLogEventsSchema, body, invalidParameter);
  const group = (request.logGroupName ?? request.logGroupIdentifier) as string;
  const events = store.events(group, request.logStreamName);
  if (!store.hasGroup(group))
    throw new AwsError('ResourceNotFoundException', 400, 'The specified log group does not exist.');
  if (!events)
    throw new AwsError(
      'ResourceNotFoundException',
      400,
      'The specified log stream does not exist.',
    );
  const limit = request.limit ?? MAX_EVENTS;
  const inWindow = (event: LogEvent) =>
    (request.startTime === undefined || event.timestamp >= request.startTime) &&
    (request.endTime === undefined || event.timestamp < request.endTime);

  const [direction, position, scannedFrom] = request.nextToken
    ? (() => {
        const [d, p, t] = request.nextToken.split('/');
        return [d as 'f' | 'b', Number(p), Number(t)] as const;
      })()
    : request.startFromHead
      ? (['f', 0, store.createdAt(group, request.logStreamName)] as const)
      : (['b', events.length, 0] as const);
  const window = store.pageWindowMs;
  const scanEnd = window > 0 ? scannedFrom + window : Number.POSITIVE_INFINITY;
  const selected: LogEvent[] = [];
  let start = Math.min(position, events.length);
  let end = start;
  if (direction === 'f') {
    while (end < events.length && selected.length < limit) {
      const event = events[end] as LogEvent;
      if (event.timestamp >= scanEnd) break;
      end += 1;
      if (inWindow(event)) selected.push(event);
    }
  } else {
    while (start > 0 && selected.length < limit) {
      const event = events[--start] as LogEvent;
      if (inWindow(event)) selected.unshift(event);
    }
  }
  // Events left beyond a window that was read to its end: the next page scans the next window.
  const scannedTo =
    direction === 'f' && end < events.length && selected.length < limit && window > 0
      ? scanEnd
      : scannedFrom;
  return {
    events: selected,
    nextForwardToken: token('f', end, scannedTo),
    nextBackwardToken: token('b', start, scannedTo),
  };
}

/**
 * The CloudWatch Logs endpoint (awsJson1_1): GetLogEvents, the call log followers make,
 * authorized on the log stream's ARN.
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
 */
export function logsHandler(
  store: LogStore,
  record: SandboxRecord,
  throttles: NextCalls,
  auth: { region: string; accountId: string; iam: Iam },
): http.RequestListener {
  return async (req, res) => {
    const at = Date.now();
    const { body, bytes } = await readBody(req, 1 << 20);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(TARGET_PREFIX)
      ? target.slice(TARGET_PREFIX.length)
      : target;
    const throttled = throttles.take(operation);
    let status = 200;
    try {
      const principal = await authenticate(req, body, 'logs', auth.region, auth.iam);
      if (throttled) throw new AwsError('ThrottlingException', 400, 'Rate exceeded');
      if (req.method !== 'POST' || operation !== 'GetLogEvents')
        throw new AwsError(
          'UnknownOperationException',
          400,
          `${target || 'no target'} is not served`,
        );
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8') || '{}');
      } catch {
        throw new AwsError('SerializationException', 400, 'the body is not JSON');
      }
      const { logGroupName, logGroupIdentifier, logStreamName } = parsed as Record<string, unknown>;
      const group = logGroupName ?? logGroupIdentifier;
      const stream = `arn:aws:logs:${auth.region}:${auth.accountId}:log-group:${group}:log-stream:${logStreamName}`;
      // CloudWatch Logs answers AccessDeniedException with status 400 (a request without the
      // names fails validation in getLogEvents instead).
      // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html
      if (
        typeof group === 'string' &&
        typeof logStreamName === 'string' &&
        !(await auth.iam.allows(principal, 'logs:GetLogEvents', stream))
      )
        throw new AwsError(
          'AccessDeniedException',
          400,
          notAuthorized(principal.arn, 'logs:GetLogEvents', stream),
        );
      sendJson(res, 200, getLogEvents(store, parsed), LOGS_JSON);
    } catch (error) {
      const aws =
        error instanceof AwsError
          ? error
          : new AwsError('ServiceUnavailableException', 500, String(error));
      status = aws.status;
      sendError(res, aws, LOGS_JSON);
    }
    record.calls.push({
      service: 'logs',
      operation,
      at,
      requestBytes: bytes,
      body: body.toString('utf8'),
      throttled,
      status,
    });
  };
}
