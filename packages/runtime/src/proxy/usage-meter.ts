import { Transform } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { z } from 'zod';
import { type TokenCounts, ZERO_TOKENS } from '../contracts/usage.js';

/**
 * Counts a model call's tokens from the upstream's own answer as it is relayed: the `usage` of a
 * JSON answer (Anthropic's or Bedrock's `invoke`), or the usage the events of a stream report
 * (Anthropic's server-sent events; Bedrock's AWS event stream, whose `chunk` events carry the
 * same events base64-encoded). Nothing the agent sends is counted. The bytes go on as they come;
 * only an unfinished event (or a JSON answer, up to a bound) is held.
 *
 * When the answer stops before its final count, the charge is what was seen, erring high where
 * it must guess:
 * - a stream: the input of `message_start` (the request's estimate if it never came), and the
 *   larger of the last output count seen and the content relayed at `BYTES_PER_OUTPUT_TOKEN`,
 *   at most `max_tokens`;
 * - a JSON answer that did not arrive whole, or a non-streamed call abandoned before its
 *   answer: the worst case, since the provider may have generated all of it;
 * - an error answer, or a request that never reached the upstream: nothing.
 */

/** What a call is charged when its answer does not say. */
export interface CallEstimate {
  /** Input tokens estimated from the request. */
  inputTokens: number;
  /** The call's `max_tokens`: the provider generates no more. */
  maxTokens: number;
  /** Whether the answer streams (a stream cut short stops generating). */
  streamed: boolean;
}

/**
 * Bytes of streamed content (text, thinking, tool input) counted as one output token when a
 * stream ends before its count. Claude's tokens average 3 to 4 bytes of English or code, so 2
 * errs high. Thinking that is summarized reaches the agent shorter than it was billed: a stream
 * cut in the middle of it is undercounted by the difference.
 */
const BYTES_PER_OUTPUT_TOKEN = 2;

/** An event larger than this is not the Messages API's: the answer is taken as unreadable. */
const MAX_EVENT_BYTES = 2 ** 20;

/** A JSON answer of 128,000 output tokens stays under 1 MiB. */
const MAX_JSON_ANSWER_BYTES = 4 * 2 ** 20;

const Count = z.number().int().nonnegative().nullish();

/** The Messages API's usage, as answers and events report it (a count may be absent or null). */
const ReportedUsage = z.object({
  input_tokens: Count,
  output_tokens: Count,
  cache_creation_input_tokens: Count,
  cache_read_input_tokens: Count,
});

type ReportedUsage = z.infer<typeof ReportedUsage>;

const JsonAnswer = z.object({ usage: ReportedUsage });

/** The stream events that count: usage reports, content, the end. */
const StreamEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: JsonAnswer }),
  z.object({ type: z.literal('message_delta'), usage: ReportedUsage }),
  z.object({
    type: z.literal('content_block_delta'),
    delta: z.object({
      text: z.string().optional(),
      thinking: z.string().optional(),
      partial_json: z.string().optional(),
    }),
  }),
  z.object({ type: z.literal('message_stop') }),
]);

/** Bedrock wraps each event's JSON in a `chunk` event: `{"bytes": "<base64>"}`. */
const BedrockChunk = z.object({ bytes: z.string() });

type Answer = 'none' | 'error' | 'json' | 'stream';

/** Reads an answer's bytes as they pass; throws on what it cannot read. */
interface AnswerReader {
  push(chunk: Buffer): void;
  end?(): void;
}

export class UsageMeter {
  private sent = false;
  private answer: Answer = 'none';
  /** The latest count of each kind the upstream reported. */
  private reported: Partial<TokenCounts> = {};
  /** The upstream's final count arrived. */
  private finished = false;
  private unreadable = false;
  private contentBytes = 0;

  constructor(private readonly estimate: CallEstimate) {}

  /** The request is leaving for the upstream. */
  sending(): void {
    this.sent = true;
  }

  /** It never reached the upstream after all (no connection was made). */
  notDelivered(): void {
    this.sent = false;
  }

  /** A pass-through for the upstream's answer on its way to the agent, counting as it goes. */
  watch(status: number, contentType: string | null): Transform {
    const reader = this.readerFor(status, contentType ?? '');
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.read(reader, (answer) => answer.push(chunk));
        done(null, chunk);
      },
      flush: (done) => {
        this.read(reader, (answer) => answer.end?.());
        done();
      },
    });
  }

  /** What to charge for the call, from what was seen so far. */
  tokens(): TokenCounts {
    if (!this.sent) return ZERO_TOKENS;
    if (this.finished) return this.reportedTokens();
    switch (this.answer) {
      case 'error':
        return ZERO_TOKENS;
      case 'none':
        return this.estimate.streamed ? this.partialStream() : this.worstCase();
      case 'json':
        return this.worstCase();
      case 'stream':
        return this.unreadable ? this.worstCase() : this.partialStream();
    }
  }

  /** A reading that fails leaves the answer unreadable; the bytes go on regardless. */
  private read(reader: AnswerReader | undefined, step: (reader: AnswerReader) => void): void {
    if (!reader || this.unreadable) return;
    try {
      step(reader);
    } catch {
      this.unreadable = true;
    }
  }

  private readerFor(status: number, contentType: string): AnswerReader | undefined {
    if (status >= 400) {
      // The provider charges no failed call; an error body carries no usage.
      this.answer = 'error';
      return undefined;
    }
    if (contentType.startsWith('text/event-stream')) {
      this.answer = 'stream';
      return sseReader((data) => this.onEvent(data));
    }
    if (contentType.startsWith('application/vnd.amazon.eventstream')) {
      this.answer = 'stream';
      return bedrockEventReader((data) => this.onEvent(data));
    }
    this.answer = 'json';
    return jsonReader((json) => {
      this.report(JsonAnswer.parse(JSON.parse(json)).usage);
      this.finished = true;
    });
  }

  private onEvent(json: string): void {
    const event = StreamEvent.safeParse(JSON.parse(json));
    if (!event.success) return;
    const data = event.data;
    if (data.type === 'message_start') this.report(data.message.usage);
    else if (data.type === 'message_delta') this.report(data.usage);
    else if (data.type === 'message_stop') this.finished = true;
    else {
      const { text, thinking, partial_json } = data.delta;
      for (const part of [text, thinking, partial_json])
        if (part) this.contentBytes += Buffer.byteLength(part);
    }
  }

  /** Counts are cumulative: a later report replaces an earlier one, field by field. */
  private report(usage: ReportedUsage): void {
    const counts: Partial<TokenCounts> = {
      inputTokens: usage.input_tokens ?? undefined,
      outputTokens: usage.output_tokens ?? undefined,
      cacheCreationTokens: usage.cache_creation_input_tokens ?? undefined,
      cacheReadTokens: usage.cache_read_input_tokens ?? undefined,
    };
    for (const [kind, count] of Object.entries(counts) as [keyof TokenCounts, number?][])
      if (count !== undefined) this.reported[kind] = count;
  }

  private reportedTokens(): TokenCounts {
    return { ...ZERO_TOKENS, ...this.reported };
  }

  private partialStream(): TokenCounts {
    const written = Math.ceil(this.contentBytes / BYTES_PER_OUTPUT_TOKEN);
    return {
      ...this.reportedTokens(),
      inputTokens: this.reported.inputTokens ?? this.estimate.inputTokens,
      outputTokens: Math.min(
        this.estimate.maxTokens,
        Math.max(this.reported.outputTokens ?? 0, written),
      ),
    };
  }

  private worstCase(): TokenCounts {
    return {
      ...ZERO_TOKENS,
      inputTokens: this.estimate.inputTokens,
      outputTokens: this.estimate.maxTokens,
    };
  }
}

/** A JSON answer, read whole at its end. */
function jsonReader(onAnswer: (json: string) => void): AnswerReader {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    push(chunk) {
      size += chunk.length;
      if (size > MAX_JSON_ANSWER_BYTES) throw new Error('answer too large to count');
      chunks.push(chunk);
    },
    end: () => onAnswer(Buffer.concat(chunks).toString('utf8')),
  };
}

/** Server-sent events: `data:` lines, an event ending at a blank line. */
function sseReader(onEvent: (data: string) => void): AnswerReader {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let data: string[] = [];
  const line = (raw: string) => {
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text === '') {
      if (data.length > 0) onEvent(data.join('\n'));
      data = [];
    } else if (text.startsWith('data:')) data.push(text.slice(text.startsWith('data: ') ? 6 : 5));
  };
  return {
    push(chunk) {
      const lines = (pending + decoder.write(chunk)).split('\n');
      pending = lines.pop() ?? '';
      if (pending.length > MAX_EVENT_BYTES) throw new Error('event too large');
      for (const text of lines) line(text);
    },
    end() {
      line(pending + decoder.end());
      line('');
    },
  };
}

const eventStream = new EventStreamCodec(
  (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
  (text) => Buffer.from(text, 'utf8'),
);

/** AWS event stream: messages that each start with their total length (4 bytes, big-endian). */
function bedrockEventReader(onEvent: (data: string) => void): AnswerReader {
  let pending: Buffer = Buffer.alloc(0);
  const message = (bytes: Buffer) => {
    const { headers, body } = eventStream.decode(bytes);
    // Exceptions end the stream; they carry no usage.
    if (headers[':message-type']?.value !== 'event' || headers[':event-type']?.value !== 'chunk')
      return;
    const chunk = BedrockChunk.parse(JSON.parse(Buffer.from(body).toString('utf8')));
    onEvent(Buffer.from(chunk.bytes, 'base64').toString('utf8'));
  };
  return {
    push(chunk) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUInt32BE(0);
        if (length > MAX_EVENT_BYTES) throw new Error('event too large');
        if (pending.length < length) break;
        message(pending.subarray(0, length));
        pending = pending.subarray(length);
      }
    },
  };
}
