import { createLogUpdate } from 'log-update';
import type { JournalEvent } from '../contracts/events.js';
import type { Plan, PlanTask } from '../contracts/plan.js';
import { describeEvent } from '../run/describe-event.js';
import { applyEvent, FINAL_TASK_STATUSES, initialState, type RunState } from '../run/replay.js';
import { estimateRemaining, type RemainingTask } from '../scheduler/estimate.js';
import { formatSeconds, shownPath } from './format.js';

export interface Reporter {
  /** The run's directory, said before anything else. */
  onRunDir(runDir: string): void;
  onEvent(event: JournalEvent): void;
  /** Stops any live rendering; called before the final summary is printed. */
  close(): void;
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

/** Cuts a line to the terminal's width, so that it never wraps (a wrapped frame cannot be erased). */
function fitWidth(line: string, columns: number): string {
  const room = Math.max(columns - 1, 8);
  return line.length > room ? `${line.slice(0, room - 1)}…` : line;
}

/**
 * The frame: a line per running executor and the bar, within the terminal's height (executors
 * that do not fit are counted in one line) and width.
 */
function fitFrame(
  executorLines: readonly string[],
  bar: string,
  size: { columns: number; rows: number },
): string[] {
  const room = Math.max(size.rows - 1, 1);
  let lines = [...executorLines, bar];
  if (lines.length > room) {
    const shown = Math.max(room - 2, 0);
    const hidden = executorLines.length - shown;
    lines = [
      ...executorLines.slice(0, shown),
      ...(room >= 2 ? [`  … ${hidden} more executor${hidden === 1 ? '' : 's'} running`] : []),
      bar,
    ];
  }
  return lines.map((line) => fitWidth(line, size.columns));
}

/**
 * A line per running executor and an overall bar, redrawn in place on a terminal and kept
 * within it (a frame taller or wider than the window would leave copies in the scrollback).
 * The ETA schedules the rest of the DAG, as `plan` does, rather than dividing by M.
 */
class LiveView implements Reporter {
  private readonly state: RunState;
  private readonly render = createLogUpdate(process.stdout);
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();
  private readonly tasks: ReadonlyMap<string, PlanTask>;
  private eta: { ms: number; at: number } | undefined;
  private estimating = false;
  private readonly onResize = () => {
    this.render.clear();
    this.draw();
  };

  constructor(
    plan: Plan,
    private readonly executors: number,
  ) {
    this.state = initialState(plan.tasks.map((t) => t.id));
    this.tasks = new Map(plan.tasks.map((t) => [t.id, t]));
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
    process.stdout.on('resize', this.onResize);
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
      void this.estimate();
    }
    this.draw();
  }

  /** The frame goes; its bar stays, once, above the summary. */
  close(): void {
    clearInterval(this.timer);
    process.stdout.off('resize', this.onResize);
    this.render.clear();
    process.stdout.write(`${fitWidth(this.bar(Date.now(), false), this.size().columns)}\n`);
    this.render.done();
  }

  private size() {
    return { columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 };
  }

  /** The rest of the DAG in virtual time, each task as long as finished ones took on average. */
  private async estimate(): Promise<void> {
    // A run of thousands of tasks has an event every few ms: the DAG is rescheduled once a second.
    if (this.estimating || (this.eta && Date.now() - this.eta.at < 1_000)) return;
    this.estimating = true;
    try {
      const records = [...this.state.tasks.entries()];
      const durations = records
        .filter(([, r]) => r.status === 'succeeded' && r.durationMs !== undefined)
        .map(([, r]) => r.durationMs as number);
      if (durations.length === 0) return;
      const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
      const now = Date.now();
      const remaining: RemainingTask[] = records
        .filter(([, r]) => !FINAL_TASK_STATUSES.has(r.status))
        .flatMap(([id, r]) => {
          const task = this.tasks.get(id);
          if (!task) return [];
          const elapsedMs =
            r.status === 'running' && r.startedAt ? now - Date.parse(r.startedAt) : undefined;
          return [{ task, expectedMs: mean, ...(elapsedMs !== undefined && { elapsedMs }) }];
        });
      this.eta = { ms: await estimateRemaining(remaining, this.executors), at: Date.now() };
    } finally {
      this.estimating = false;
    }
  }

  private bar(now: number, withEta = true): string {
    const records = [...this.state.tasks.values()];
    const count = (status: string) => records.filter((r) => r.status === status).length;
    const done = count('succeeded');
    const failed = count('failed');
    const blocked = count('blocked');
    const total = records.length;
    const finished = done + failed + blocked;
    const width = 24;
    const filled = total ? Math.round((finished / total) * width) : 0;
    const left = this.eta && finished < total ? Math.max(0, this.eta.ms - (now - this.eta.at)) : 0;
    const eta = withEta && left ? ` · ETA ${formatSeconds(left)}` : '';
    return `  [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${done}/${total} done · ${failed} failed · ${blocked} blocked · ${formatSeconds(now - this.started)}${eta}`;
  }

  private draw(): void {
    const now = Date.now();
    const running = [...this.state.tasks.entries()]
      .filter(([, r]) => r.status === 'running')
      .sort(([, a], [, b]) => (a.executor ?? 0) - (b.executor ?? 0))
      .map(
        ([id, r]) =>
          `  ▶ executor ${r.executor ?? '?'}  ${id.padEnd(24)} attempt ${r.attempts}  ${formatSeconds(now - Date.parse(r.startedAt ?? new Date(now).toISOString()))}${r.job ? `  ${r.job.state}` : ''}`,
      );
    this.render(fitFrame(running, this.bar(now), this.size()).join('\n'));
  }
}
