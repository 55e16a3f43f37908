import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal, JournalError, readJournal } from '../../packages/runtime/src/run/journal.js';
import { replay } from '../../packages/runtime/src/run/replay.js';
import { tempDir } from '../support/tmp.js';

const dir = tempDir();
let n = 0;
const fresh = () => path.join(dir, `events-${n++}.jsonl`);

describe('journal', () => {
  it('appends numbered events, one line each, readable back', () => {
    const file = fresh();
    const journal = Journal.create(file, () => 0);
    journal.append({ type: 'task-started', taskId: 'a', attempt: 1, executor: 0 });
    journal.append({ type: 'task-cancelled', taskId: 'a', attempt: 1, durationMs: 5 });
    journal.close();
    const { events } = readJournal(file);
    expect(events.map((e) => [e.seq, e.type, e.time])).toEqual([
      [1, 'task-started', '1970-01-01T00:00:00.000Z'],
      [2, 'task-cancelled', '1970-01-01T00:00:00.000Z'],
    ]);
  });

  it('refuses to create over an existing journal', () => {
    const file = fresh();
    Journal.create(file).close();
    expect(() => Journal.create(file)).toThrow(/EEXIST/);
  });

  it('drops a torn last line on reopen and continues the sequence', () => {
    const file = fresh();
    const journal = Journal.create(file);
    journal.append({ type: 'task-started', taskId: 'a', attempt: 1, executor: 0 });
    journal.close();
    appendFileSync(file, '{"seq":2,"time":"2026-');
    const { journal: reopened, events } = Journal.reopen(file);
    expect(events).toHaveLength(1);
    reopened.append({ type: 'task-started', taskId: 'b', attempt: 1, executor: 1 });
    reopened.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1] as string)).toMatchObject({ seq: 2, taskId: 'b' });
  });

  it('rejects a journal damaged in the middle', () => {
    const file = fresh();
    writeFileSync(file, 'not json\n{"seq":1}\n');
    expect(() => readJournal(file)).toThrow(JournalError);
  });

  it('replays to task states', () => {
    const file = fresh();
    const journal = Journal.create(file);
    journal.append({ type: 'task-started', taskId: 'a', attempt: 1, executor: 0 });
    journal.append({
      type: 'task-retrying',
      taskId: 'a',
      attempt: 1,
      reason: 'transient',
      error: 'x',
      durationMs: 10,
      delayMs: 5,
    });
    journal.append({ type: 'task-started', taskId: 'a', attempt: 2, executor: 1 });
    journal.append({ type: 'task-merging', taskId: 'a', attempt: 2, commit: 'c0ffee' });
    journal.append({ type: 'task-started', taskId: 'b', attempt: 1, executor: 0 });
    journal.append({
      type: 'task-succeeded',
      taskId: 'b',
      attempt: 1,
      durationMs: 20,
      result: {
        files: ['f'],
        usage: {
          inputTokens: 1,
          outputTokens: 2,
          cacheReadTokens: 0,
          cacheCreationTokens: 0,
          costUsd: 0.5,
        },
      },
    });
    journal.close();
    const state = replay(['a', 'b', 'c'], readJournal(file).events);
    expect(state.tasks.get('a')).toMatchObject({
      status: 'running',
      attempts: 2,
      transientFailures: 1,
      merging: { attempt: 2, commit: 'c0ffee' },
      totalDurationMs: 10,
    });
    expect(state.tasks.get('b')).toMatchObject({ status: 'succeeded', usage: { costUsd: 0.5 } });
    expect(state.tasks.get('c')?.status).toBe('pending');
  });
});
