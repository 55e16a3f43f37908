import { createLogUpdate } from 'log-update';
import type { JournalEvent } from '../contracts/events.js';
import type { Plan, PlanTask } from '../contracts/plan.js';
import { describeEvent } from '../run/describe-event.js';
import { applyEvent, FINAL_TASK_STATUSES, initialState, type RunState } from '../run/replay.js';
import { estimateRemaining, type RemainingTask } from '../scheduler/estimate.js';
import { type Palette, PLAIN, paletteFor } from './colour.js';
import { formatSeconds, shownPath } from './format.js';
import { isOpen, out } from './output.js';

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

export function createReporter(
  mode: ProgressMode,
  plan: Plan,
  executors: number,
  history: readonly JournalEvent[] = [],
): Reporter {
  const paint = paletteFor(process.stdout);
  switch (mode) {
    case 'json':
      return {
        onRunDir: (runDir) => out(`${JSON.stringify({ type: 'run-directory', runDir })}\n`),
        onEvent: (event) => out(`${JSON.stringify(event)}\n`),
        close: () => {},
      };
    case 'plain':
      return {
        onRunDir: (runDir) => out(`Run directory: ${shownPath(runDir)}\n`),
        onEvent: (event) => {
          if (!plainLine(event)) return;
          out(`[${event.time.slice(11, 19)}] ${paintEvent(event, paint)}\n`);
        },
        close: () => {},
      };
    case 'live':
      return new LiveView(plan, executors, history, paint);
  }
}

/**
 * Whether plain progress gives `event` a line: a task's start, its remote job's states that
 * matter and its end. Its commit being merged (a moment before it succeeds) and the other job
 * states are in `orchestrator.log` and `--json`.
 */
function plainLine(event: JournalEvent): boolean {
  if (event.type === 'task-merging') return false;
  return event.type !== 'task-job' || jobStateMatters(event);
}

/**
 * The states of a remote job a person follows: it runs, it failed (and why), or its backend
 * says why it waits (Batch cannot place it). The rest (submitted, pending, starting, succeeded)
 * is said by the task's own lines, and kept in `orchestrator.log`.
 */
function jobStateMatters(event: Extract<JournalEvent, { type: 'task-job' }>): boolean {
  return (
    event.state === 'RUNNING' ||
    event.state === 'FAILED' ||
    (event.state === 'RUNNABLE' && event.reason !== undefined)
  );
}

/** An event's line, its outcome in colour where the palette has any. */
function paintEvent(event: JournalEvent, paint: Palette): string {
  const line = describeEvent(event);
  switch (event.type) {
    case 'task-failed':
      return paint.fail(line);
    case 'task-retrying':
    case 'task-blocked':
      return paint.warn(line);
    default:
      return line;
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
 * The frame: a line per running executor and the bar (already fitted to the width), within the
 * terminal's height (executors that do not fit are counted in one line) and width.
 */
function fitFrame(
  executorLines: readonly string[],
  bar: string,
  size: { columns: number; rows: number },
): string[] {
  const room = Math.max(size.rows - 1, 1);
  let lines = executorLines;
  if (lines.length + 1 > room) {
    const shown = Math.max(room - 2, 0);
    const hidden = executorLines.length - shown;
    lines = [
      ...executorLines.slice(0, shown),
      ...(room >= 2 ? [`  … ${hidden} more executor${hidden === 1 ? '' : 's'} running`] : []),
    ];
  }
  return [...lines.map((line) => fitWidth(line, size.columns)), bar];
}

export interface BarCounts {
  succeeded: number;
  failed: number;
  blocked: number;
  total: number;
}

type Segment = readonly [text: string, style?: (text: string) => string];
const INDENT: Segment = ['  '];

/**
 * The progress bar in `columns - 1` characters (a line as wide as the terminal wraps on some):
 * zero counts go first, then the bar shrinks, then the words become signs, then the bar and the
 * indent go. The time and the ETA are never cut.
 */
export function formatBar(
  counts: BarCounts,
  elapsedMs: number,
  etaMs: number | undefined,
  columns: number,
  paint: Palette = PLAIN,
): string {
  const { succeeded, failed, blocked, total } = counts;
  const finished = succeeded + failed + blocked;
  const time: Segment[] = [
    [` · ${formatSeconds(elapsedMs)}`],
    ...(etaMs !== undefined ? [[` · ETA ${formatSeconds(etaMs)}`] as const] : []),
  ];
  const bar = (cells: number): Segment[] => {
    const filled = total ? Math.round((finished / total) * cells) : 0;
    return [['['], ['█'.repeat(filled), paint.ok], ['░'.repeat(cells - filled)], ['] ']];
  };
  const words = (short: boolean, zeros: boolean): Segment[] => {
    const done = `${succeeded}/${total}`;
    const count = (n: number, word: string, sign: string, style: (text: string) => string) =>
      n || zeros
        ? [[short ? ` ${n} ${sign}` : ` · ${n} ${word}`, n ? style : undefined] as const]
        : [];
    return [
      [short ? `${done} ✓` : `${done} done`, succeeded ? paint.ok : undefined],
      ...count(failed, 'failed', '✗', paint.fail),
      ...count(blocked, 'blocked', '⊘', paint.warn),
    ];
  };
  const layouts: Segment[][] = [
    [INDENT, ...bar(24), ...words(false, true)],
    [INDENT, ...bar(24), ...words(false, false)],
    [INDENT, ...bar(12), ...words(false, false)],
    [INDENT, ...bar(6), ...words(false, false)],
    [INDENT, ...bar(6), ...words(true, false)],
    [INDENT, ...words(true, false)],
    words(true, false),
  ].map((layout) => [...layout, ...time]);
  const room = columns - 1;
  const width = (layout: Segment[]) => layout.reduce((n, [text]) => n + [...text].length, 0);
  const chosen = layouts.find((layout) => width(layout) <= room) ?? (layouts.at(-1) as Segment[]);
  return chosen.map(([text, style]) => (style ? style(text) : text)).join('');
}

/**
 * A line per running executor and an overall bar, redrawn in place on a terminal and kept
 * within it (a frame taller or wider than the window would leave copies in the scrollback).
 * The ETA schedules the rest of the DAG, as `plan` does, rather than dividing by M. A resumed
 * run's view starts from its journal: the counts, the time and the ETA are the whole run's.
 */
class LiveView implements Reporter {
  private readonly state: RunState;
  private readonly render = createLogUpdate(process.stdout);
  private readonly timer: NodeJS.Timeout;
  private readonly created = Date.now();
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
    history: readonly JournalEvent[],
    private readonly paint: Palette,
  ) {
    this.state = initialState(plan.tasks.map((t) => t.id));
    for (const event of history) applyEvent(this.state, event);
    this.tasks = new Map(plan.tasks.map((t) => [t.id, t]));
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
    process.stdout.on('resize', this.onResize);
    void this.estimate();
  }

  /** When the run started, as its summary counts: its first session's start, once known. */
  private get started(): number {
    return this.state.startedAt ? Date.parse(this.state.startedAt) : this.created;
  }

  onRunDir(runDir: string): void {
    this.render.clear();
    out(`  Run directory: ${shownPath(runDir)}\n`);
  }

  onEvent(event: JournalEvent): void {
    applyEvent(this.state, event);
    if (NOTABLE.has(event.type)) {
      this.render.clear();
      out(`  ${paintEvent(event, this.paint)}\n`);
      void this.estimate();
    }
    this.draw();
  }

  /** The frame goes; its bar stays, once, above the summary. */
  close(): void {
    clearInterval(this.timer);
    process.stdout.off('resize', this.onResize);
    this.render.clear();
    out(`${this.bar(Date.now(), false)}\n`);
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
    const counts = {
      succeeded: count('succeeded'),
      failed: count('failed'),
      blocked: count('blocked'),
      total: records.length,
    };
    const finished = counts.succeeded + counts.failed + counts.blocked;
    const left =
      withEta && this.eta && finished < counts.total
        ? Math.max(0, this.eta.ms - (now - this.eta.at))
        : 0;
    return formatBar(
      counts,
      now - this.started,
      left ? left : undefined,
      this.size().columns,
      this.paint,
    );
  }

  private draw(): void {
    if (!isOpen(process.stdout)) return;
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
