import dagre, { type Point } from '@dagrejs/dagre';
import type { ReportTask } from './model.js';
import type { AttemptSpan, Timeline } from './timeline.js';

/** Text as SVG and HTML take it. */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const NODE = { width: 150, height: 38 } as const;
const round = (n: number) => Math.round(n * 10) / 10;
/** Text cut to `chars` characters, its end marked. */
export const clip = (text: string, chars: number) =>
  text.length > chars ? `${text.slice(0, chars - 1)}…` : text;

/**
 * The plan's DAG, laid out by dagre left to right: one `g.node` per task, classed by its final
 * state, the critical path's nodes and edges marked. The drawing has a `viewBox` and no size of
 * its own: the page fits it to its view. Returns the layout's height with it.
 */
export function dagSvg(tasks: readonly ReportTask[]): { svg: string; height: number } {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 46, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const task of tasks) graph.setNode(task.id, { ...NODE });
  const known = new Set(tasks.map((t) => t.id));
  for (const task of tasks)
    for (const dep of task.dependsOn) if (known.has(dep)) graph.setEdge(dep, task.id);
  dagre.layout(graph);
  const critical = new Set(tasks.filter((t) => t.critical).map((t) => t.id));
  const { width = 0, height = 0 } = graph.graph();
  const edges = graph.edges().map((edge: { v: string; w: string }) => {
    const points: Point[] = graph.edge(edge).points ?? [];
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${round(p.x)},${round(p.y)}`).join(' ');
    const onPath = critical.has(edge.v) && critical.has(edge.w);
    return `<path class="edge${onPath ? ' critical' : ''}" d="${d}" marker-end="url(#arrow)"/>`;
  });
  const nodes = tasks.map((task) => {
    const { x, y } = graph.node(task.id);
    const left = round(x - NODE.width / 2);
    const top = round(y - NODE.height / 2);
    return [
      `<g class="node ${task.status}${task.critical ? ' critical' : ''}" data-task="${escapeXml(task.id)}" data-title="${escapeXml(task.title.toLowerCase())}">`,
      `<title>${escapeXml(`${task.id}: ${task.title} (${task.status}, ${task.attempts} attempt${task.attempts === 1 ? '' : 's'})`)}</title>`,
      `<rect x="${left}" y="${top}" width="${NODE.width}" height="${NODE.height}" rx="5"/>`,
      `<text x="${round(x)}" y="${round(y - 3)}" class="id">${escapeXml(clip(task.id, 22))}</text>`,
      `<text x="${round(x)}" y="${round(y + 11)}" class="title">${escapeXml(clip(task.title, 26))}</text>`,
      '</g>',
    ].join('');
  });
  const svg = [
    `<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${round(width)} ${round(height)}" role="img" aria-label="task graph">`,
    '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>',
    ...edges,
    ...nodes,
    '</svg>',
  ].join('\n');
  return { svg, height: round(height) };
}

const GANTT = { label: 86, lane: 26, bar: 16, axis: 22, width: 1100, strip: 46 } as const;
/** A bar's label: 11 px text takes up to about 7 units a character; shorter than 4 it says nothing. */
const LABEL = { char: 7, pad: 2, min: 4 } as const;

/** The task's id, cut to what a bar this wide holds, or nothing. */
function barLabel(taskId: string, x0: number, x1: number, top: number): string {
  const chars = Math.floor((x1 - x0 - 2 * LABEL.pad) / LABEL.char);
  if (chars < LABEL.min) return '';
  return `<text class="bar-label" x="${round(x0 + LABEL.pad)}" y="${round(top + GANTT.bar / 2 + 4)}">${escapeXml(clip(taskId, chars))}</text>`;
}

function segment(cls: string, x0: number, x1: number, y: number, h: number): string {
  const width = Math.max(x1 - x0, 0.5);
  return `<rect class="${cls}" x="${round(x0)}" y="${round(y)}" width="${round(width)}" height="${h}"/>`;
}

function ticks(durationMs: number, scale: (ms: number) => number, y: number): string[] {
  const step = niceStep(durationMs / 8);
  const out: string[] = [];
  for (let ms = 0; ms <= durationMs; ms += step) {
    const x = round(scale(ms));
    out.push(`<line class="tick" x1="${x}" x2="${x}" y1="${y}" y2="${y + 5}"/>`);
    out.push(`<text class="tick" x="${x}" y="${y + 16}">${formatMs(ms)}</text>`);
  }
  return out;
}

function niceStep(ms: number): number {
  const steps = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    900_000, 1_800_000, 3_600_000,
  ];
  return steps.find((s) => s >= ms) ?? 7_200_000;
}

export function formatMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000)
    return `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(ms / 3_600_000)}h${String(Math.round((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`;
}

function attemptTitle(a: AttemptSpan): string {
  const parts = [
    `${a.taskId} attempt ${a.attempt} on executor ${a.executor}: ${a.end}`,
    `queued ${formatMs(a.startMs - a.readyMs)}`,
    `ran ${formatMs((a.executedMs ?? a.slotEndMs) - a.startMs)}`,
  ];
  if (a.executedMs !== undefined && a.mergingMs !== undefined)
    parts.push(
      `committed${a.verify ? ' and verified' : ''} ${formatMs(a.mergingMs - a.executedMs)}`,
    );
  if (a.mergingMs !== undefined) parts.push(`merged ${formatMs(a.endMs - a.mergingMs)}`);
  if (a.error) parts.push(a.error);
  return parts.join('; ');
}

/**
 * A lane per executor slot: each attempt is one `g.attempt` with its queued time (from ready to
 * start, thin), its run, its commit (and check) and its merge (after the slot was freed, thin),
 * classed by how it ended. Below, the attempts holding a slot over time against M.
 */
export function ganttSvg(timeline: Timeline, executors: number): string {
  const slots = Math.max(executors, ...timeline.attempts.map((a) => a.executor + 1));
  const duration = Math.max(timeline.durationMs, 1);
  const plot = GANTT.width - GANTT.label - 10;
  const x = (ms: number) => GANTT.label + (ms / duration) * plot;
  const lanesHeight = slots * GANTT.lane;
  const stripTop = lanesHeight + GANTT.axis + 8;
  const height = stripTop + GANTT.strip + GANTT.axis;
  const out: string[] = [
    `<svg class="gantt" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${GANTT.width} ${height}" role="img" aria-label="executor timeline">`,
  ];
  for (let slot = 0; slot < slots; slot++) {
    const y = slot * GANTT.lane;
    out.push(
      `<rect class="lane${slot % 2 ? ' odd' : ''}" x="${GANTT.label}" y="${y}" width="${plot}" height="${GANTT.lane}"/>`,
    );
    out.push(
      `<text class="lane-label" x="${GANTT.label - 6}" y="${y + GANTT.lane / 2 + 4}">executor ${slot}</text>`,
    );
  }
  for (const a of timeline.attempts) {
    const top = a.executor * GANTT.lane + (GANTT.lane - GANTT.bar) / 2;
    const thin = top + GANTT.bar / 2 - 2;
    const parts = [`<title>${escapeXml(attemptTitle(a))}</title>`];
    // Waiting for a slot is drawn under the lane's bars, where no other attempt's bar is.
    const waiting = a.executor * GANTT.lane + GANTT.lane - 3;
    if (a.startMs > a.readyMs)
      parts.push(segment('queued', x(a.readyMs), x(a.startMs), waiting, 3));
    const executed = a.executedMs ?? a.slotEndMs;
    parts.push(segment('running', x(a.startMs), x(executed), top, GANTT.bar));
    if (a.executedMs !== undefined && a.mergingMs !== undefined)
      parts.push(segment('committing', x(a.executedMs), x(a.mergingMs), top, GANTT.bar));
    if (a.mergingMs !== undefined)
      parts.push(segment('merging', x(a.mergingMs), x(a.endMs), thin, 4));
    parts.push(barLabel(a.taskId, x(a.startMs), x(a.mergingMs ?? executed), top));
    out.push(
      `<g class="attempt ${a.end}" data-task="${escapeXml(a.taskId)}" data-attempt="${a.attempt}">${parts.join('')}</g>`,
    );
  }
  if (timeline.budgetStopMs !== undefined) {
    const bx = round(x(timeline.budgetStopMs));
    out.push(
      `<line class="budget-stop" x1="${bx}" x2="${bx}" y1="0" y2="${lanesHeight}"><title>spending limit reached: no new task started</title></line>`,
    );
  }
  for (const resumed of timeline.resumedMs) {
    const rx = round(x(resumed));
    out.push(
      `<line class="resumed" x1="${rx}" x2="${rx}" y1="0" y2="${lanesHeight}"><title>resumed</title></line>`,
    );
  }
  out.push(...ticks(duration, x, lanesHeight));
  // The strip: attempts holding a slot, against the budget M.
  const scaleY = (n: number) => stripTop + GANTT.strip - (n / Math.max(slots, 1)) * GANTT.strip;
  let d = `M${x(0)},${scaleY(0)}`;
  let count = 0;
  for (const step of timeline.inFlight) {
    d += ` L${round(x(step.atMs))},${round(scaleY(count))} L${round(x(step.atMs))},${round(scaleY(step.count))}`;
    count = step.count;
  }
  d += ` L${round(x(duration))},${round(scaleY(count))} L${round(x(duration))},${round(scaleY(0))} Z`;
  out.push(
    `<text class="lane-label" x="${GANTT.label - 6}" y="${stripTop + GANTT.strip / 2 + 4}">in flight</text>`,
  );
  out.push(
    `<line class="budget" x1="${GANTT.label}" x2="${GANTT.width - 10}" y1="${round(scaleY(executors))}" y2="${round(scaleY(executors))}"><title>M = ${executors}</title></line>`,
  );
  out.push(`<path class="in-flight" d="${d}"/>`);
  out.push(...ticks(duration, x, stripTop + GANTT.strip));
  out.push('</svg>');
  return out.join('\n');
}
