import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { describe, expect, it } from 'vitest';
import { type CallEstimate, UsageMeter } from '../../packages/runtime/src/proxy/usage-meter.js';

const estimate: CallEstimate = { inputTokens: 500, maxTokens: 4000, streamed: true };

/** Relays `bytes` through a meter in chunks of `size` bytes; what reached the agent. */
async function relayThrough(
  meter: UsageMeter,
  bytes: Buffer,
  contentType: string,
  options: { size?: number; status?: number; cut?: boolean } = {},
): Promise<Buffer> {
  const size = options.size ?? 7;
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  const relayed: Buffer[] = [];
  const agent = new Writable({
    write(chunk, _encoding, done) {
      relayed.push(chunk);
      done();
    },
  });
  meter.sending();
  const source = Readable.from(
    (async function* () {
      yield* chunks;
      if (options.cut) throw new Error('connection reset');
    })(),
  );
  await pipeline(source, meter.watch(options.status ?? 200, contentType), agent).catch(() => {});
  return Buffer.concat(relayed);
}

const sse = (events: object[]) =>
  Buffer.from(
    events
      .map(
        (event) => `event: ${(event as { type: string }).type}\ndata: ${JSON.stringify(event)}\n\n`,
      )
      .join(''),
  );

const start = {
  type: 'message_start',
  message: {
    id: 'msg_1',
    usage: {
      input_tokens: 12,
      cache_creation_input_tokens: 3000,
      cache_read_input_tokens: 40000,
      output_tokens: 1,
    },
  },
};
const text = (value: string) => ({
  type: 'content_block_delta',
  index: 0,
  delta: { type: 'text_delta', text: value },
});
const stream = [
  start,
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  text('héllo, '),
  { type: 'ping' },
  text('world'),
  { type: 'content_block_stop', index: 0 },
  { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 321 } },
  { type: 'message_stop' },
];

describe('the usage meter', () => {
  it('counts a JSON answer from its usage and relays it byte for byte', async () => {
    const meter = new UsageMeter({ ...estimate, streamed: false });
    const answer = Buffer.from(
      JSON.stringify({
        content: [{ type: 'tool_use', input: { usage: { output_tokens: 1 } } }],
        usage: {
          input_tokens: 7,
          output_tokens: 99,
          cache_read_input_tokens: 5,
          cache_creation_input_tokens: null,
        },
      }),
    );
    expect(await relayThrough(meter, answer, 'application/json')).toEqual(answer);
    expect(meter.tokens()).toEqual({
      inputTokens: 7,
      outputTokens: 99,
      cacheReadTokens: 5,
      cacheCreationTokens: 0,
    });
  });

  it.each([1, 5, 64, 100_000])(
    'counts a server-sent event stream read in chunks of %i bytes',
    async (size) => {
      const meter = new UsageMeter(estimate);
      const bytes = sse(stream);
      expect(await relayThrough(meter, bytes, 'text/event-stream', { size })).toEqual(bytes);
      expect(meter.tokens()).toEqual({
        inputTokens: 12,
        outputTokens: 321,
        cacheCreationTokens: 3000,
        cacheReadTokens: 40000,
      });
    },
  );

  it('takes the counts of message_delta as final, input included, and reads CRLF lines', async () => {
    const meter = new UsageMeter(estimate);
    const delta = {
      type: 'message_delta',
      delta: {},
      usage: { input_tokens: 20, cache_read_input_tokens: 41000, output_tokens: 50 },
    };
    const bytes = Buffer.from(
      sse([start, delta, { type: 'message_stop' }])
        .toString()
        .replaceAll('\n', '\r\n'),
    );
    await relayThrough(meter, bytes, 'text/event-stream; charset=utf-8');
    expect(meter.tokens()).toEqual({
      inputTokens: 20,
      outputTokens: 50,
      cacheCreationTokens: 3000,
      cacheReadTokens: 41000,
    });
  });

  it('charges a stream cut short its input and the content it relayed, at 2 bytes a token', async () => {
    const meter = new UsageMeter(estimate);
    const long = 'x'.repeat(1001);
    await relayThrough(meter, sse([start, text(long), text('héllo')]), 'text/event-stream', {
      cut: true,
    });
    expect(meter.tokens()).toEqual({
      inputTokens: 12,
      outputTokens: Math.ceil((1001 + 6) / 2),
      cacheCreationTokens: 3000,
      cacheReadTokens: 40000,
    });
  });

  it("charges a cut stream's output at most max_tokens, and at least the last count seen", async () => {
    const capped = new UsageMeter({ ...estimate, maxTokens: 100 });
    await relayThrough(capped, sse([start, text('y'.repeat(10_000))]), 'text/event-stream', {
      cut: true,
    });
    expect(capped.tokens().outputTokens).toBe(100);
    const counted = new UsageMeter(estimate);
    const progress = { type: 'message_delta', delta: {}, usage: { output_tokens: 900 } };
    await relayThrough(counted, sse([start, text('z'), progress]), 'text/event-stream', {
      cut: true,
    });
    expect(counted.tokens().outputTokens).toBe(900);
  });

  it('charges a stream cut before message_start the estimated input', async () => {
    const meter = new UsageMeter(estimate);
    await relayThrough(
      meter,
      Buffer.from('event: message_start\ndata: {"ty'),
      'text/event-stream',
      {
        cut: true,
      },
    );
    expect(meter.tokens()).toEqual({
      inputTokens: 500,
      outputTokens: 0,
      cacheCreationTokens: 0,
      cacheReadTokens: 0,
    });
  });

  it('charges the worst case for a JSON answer that did not arrive whole', async () => {
    const meter = new UsageMeter({ ...estimate, streamed: false });
    await relayThrough(meter, Buffer.from('{"content":[{"type":"text","te'), 'application/json', {
      cut: true,
    });
    expect(meter.tokens()).toMatchObject({ inputTokens: 500, outputTokens: 4000 });
  });

  it('charges the worst case for a non-streamed call abandoned before its answer', () => {
    const meter = new UsageMeter({ ...estimate, streamed: false });
    meter.sending();
    expect(meter.tokens()).toMatchObject({ inputTokens: 500, outputTokens: 4000 });
    const streamed = new UsageMeter(estimate);
    streamed.sending();
    expect(streamed.tokens()).toMatchObject({ inputTokens: 500, outputTokens: 0 });
  });

  it('charges nothing for an error answer or a request that never reached the upstream', async () => {
    const failed = new UsageMeter(estimate);
    const error = Buffer.from('{"type":"error","error":{"type":"overloaded_error","message":"x"}}');
    await relayThrough(failed, error, 'application/json', { status: 529 });
    expect(failed.tokens()).toMatchObject({ inputTokens: 0, outputTokens: 0 });
    const unsent = new UsageMeter(estimate);
    expect(unsent.tokens()).toMatchObject({ inputTokens: 0, outputTokens: 0 });
    unsent.sending();
    unsent.notDelivered();
    expect(unsent.tokens()).toMatchObject({ inputTokens: 0, outputTokens: 0 });
  });

  it('charges the worst case for a stream it cannot read', async () => {
    const meter = new UsageMeter(estimate);
    await relayThrough(
      meter,
      Buffer.from(`data: ${'x'.repeat(2 * 2 ** 20)}`),
      'text/event-stream',
      {
        size: 65536,
      },
    );
    expect(meter.tokens()).toMatchObject({ inputTokens: 500, outputTokens: 4000 });
  });

  describe('on Bedrock', () => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const frame = (event: object, type = 'chunk', messageType = 'event') =>
      codec.encode({
        headers: {
          ':event-type': { type: 'string', value: type },
          ':content-type': { type: 'string', value: 'application/json' },
          ':message-type': { type: 'string', value: messageType },
        },
        body: fromUtf8(
          JSON.stringify({ bytes: Buffer.from(JSON.stringify(event)).toString('base64') }),
        ),
      });
    const eventStream = (events: object[]) => Buffer.concat(events.map((event) => frame(event)));

    it.each([1, 13, 4096])(
      'counts an AWS event stream read in chunks of %i bytes',
      async (size) => {
        const meter = new UsageMeter(estimate);
        const bytes = eventStream(stream);
        const relayed = await relayThrough(meter, bytes, 'application/vnd.amazon.eventstream', {
          size,
        });
        expect(relayed).toEqual(bytes);
        expect(meter.tokens()).toEqual({
          inputTokens: 12,
          outputTokens: 321,
          cacheCreationTokens: 3000,
          cacheReadTokens: 40000,
        });
      },
    );

    it('skips exceptions and charges a stream they end as cut short', async () => {
      const meter = new UsageMeter(estimate);
      const bytes = Buffer.concat([
        eventStream([start, text('abcd')]),
        frame({ message: 'throttled' }, 'throttlingException', 'exception'),
      ]);
      await relayThrough(meter, bytes, 'application/vnd.amazon.eventstream');
      expect(meter.tokens()).toMatchObject({ inputTokens: 12, outputTokens: 2 });
    });
  });
});
