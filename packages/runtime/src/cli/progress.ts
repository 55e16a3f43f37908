import path from 'node:path';
import { createLogUpdate } from 'log-update';
import type { JournalEvent } from '../contracts/events.js';
import type { Plan } from '../contracts/plan.js';
import { describeEvent } from '../run/describe-event.js';
import { applyEvent, initialState, type RunState } from '../run/replay.js';
import { formatSeconds } from './format.js';

export interface Reporter {
  /** The run's directory, said before anything else. */
  onRunDir(runDir: string): void;
  onEvent(event: JournalEvent): void;
  /** Stops any live rendering; called before the final summary is printed. */
  close(): void;
}

/** A path as the user would type it from here: relative when below the working directory. */
export function shownPath(dir: string): string {
  const relative = path.relative(process.cwd(), dir);
  return relative && !relative.startsWith('..') ? relative : dir;
}

export type ProgressMode = 'live' | 'plain' | 'json';

export function progressMode(
  json: boolean,
  stream: NodeJS.WriteStream = process.stdout,
): ProgressMode {
  if (json) return 'json';
  // A terminal that reports no size (some CI pseudo-terminals) cannot be redrawn in place.
  const sized = (stream.rows ?? 0) > 0 && (stream.columns ?? 0) > 0;
  return stream.isTTY && sized && process.env.TERM !== 'dumb' ? 'live' : 'plain';
}

export function createReporter(mode: ProgressMode, plan: Plan, executors: number): Reporter {
  switch (mode) {
    case 'json':
      return {
        onRunDir: (runDir) =>
          process.stdout.write(`${JSON.stringify({ type: 'run-directory', runDir })}\n`),
        onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
        close: () => {},
      };
    case 'plain':
      return {
        onRunDir: (runDir) => process.stdout.write(`Run directory: ${shownPath(runDir)}\n`),
        onEvent: (event) =>
          process.stdout.write(`[${event.time.slice(11, 19)}] ${describeEvent(event)}\n`),
        close: () => {},
      };
    case 'live':
      return new LiveView(plan, executors);
  }
}

const NOTABLE = new Set<JournalEvent['type']>([
  'task-succeeded',
  'task-failed',
  'task-retrying',
  'task-blocked',
  'run-resumed',
]);

/** A line per running executor and an overall bar, redrawn in place on a terminal. */
class LiveView implements Reporter {
  private readonly state: RunState;
  private readonly render = createLogUpdate(process.stdout);
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();

  constructor(
    plan: Plan,
    private readonly executors: number,
  ) {
    this.state = initialState(plan.tasks.map((t) => t.id));
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  onRunDir(runDir: string): void {
    this.render.clear();
    process.stdout.write(`  Run directory: ${shownPath(runDir)}\n`);
  }

  onEvent(event: JournalEvent): void {
    applyEvent(this.state, event);
    if (NOTABLE.has(event.type)) {
      this.render.clear();
      process.stdout.write(`  ${describeEvent(event)}\n`);
    }
    this.draw();
  }

  close(): void {
    clearInterval(this.timer);
    this.draw();
    this.render.done();
  }

  private draw(): void {
    const records = [...this.state.tasks.entries()];
    const count = (status: string) => records.filter(([, r]) => r.status === status).length;
    const done = count('succeeded');
    const failed = count('failed');
    const blocked = count('blocked');
    const total = records.length;
    const now = Date.now();
    const running = records
      .filter(([, r]) => r.status === 'running')
      .sort(([, a], [, b]) => (a.executor ?? 0) - (b.executor ?? 0))
      .map(
        ([id, r]) =>
          `  ▶ executor ${r.executor ?? '?'}  ${id.padEnd(24)} attempt ${r.attempts}  ${formatSeconds(now - Date.parse(r.startedAt ?? new Date(now).toISOString()))}${r.job ? `  ${r.job.state}` : ''}`,
      );
    const finished = done + failed + blocked;
    const width = 24;
    const filled = total ? Math.round((finished / total) * width) : 0;
    const durations = records
      .filter(([, r]) => r.status === 'succeeded')
      .map(([, r]) => r.durationMs ?? 0);
    const mean = durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : 0;
    const left = total - finished;
    const eta =
      mean && left ? ` · ETA ${formatSeconds(mean * Math.ceil(left / this.executors))}` : '';
    const bar = `  [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${done}/${total} done · ${failed} failed · ${blocked} blocked · ${formatSeconds(now - this.started)}${eta}`;
    this.render([...running, bar].join('\n'));
  }
}
