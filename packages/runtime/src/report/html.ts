import { createHash } from 'node:crypto';
import { DIFF_TASK_LIMIT, type ReportData, type ReportTask } from './model.js';
import { clip, dagSvg, escapeXml, formatMs, ganttSvg } from './svg.js';

const STYLE = `
:root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --muted: #757575; --info: #1565c0; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto; padding: 16px 24px; max-width: 1360px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.head p { margin: 2px 0; } .outcome { font-size: 16px; } .outcome .failed { color: var(--bad); font-weight: 600; } .outcome .blocked { color: var(--muted); font-weight: 600; } .outcome .ok { color: var(--ok); font-weight: 600; }
.muted { color: var(--muted); }
section.failures { margin: 10px 0 6px; } section.failures h2 { margin-top: 12px; }
table.failures { border-collapse: collapse; width: 100%; } table.failures td { padding: 2px 8px 2px 0; vertical-align: top; border-bottom: 1px solid #f0f0f0; }
table.failures td.id { white-space: nowrap; } table.failures td.id a { font-weight: 600; } table.failures td.id a { color: var(--bad); }
table.failures td.links { white-space: nowrap; text-align: right; } table.failures td.links a { margin-left: 10px; }
table.failures td.why { color: #333; word-break: break-word; }
ul.causes { margin: 6px 0 0; padding-left: 18px; color: #444; } ul.causes b { color: var(--muted); }
details.requirement { margin: 10px 0; } details.requirement summary { cursor: pointer; color: #444; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
details.requirement p { white-space: pre-wrap; color: #444; margin: 4px 0 0 16px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; vertical-align: middle; }
.badge.succeeded { background: var(--ok); } .badge.failed { background: var(--bad); } .badge.cancelled { background: var(--muted); }
.notice { border-left: 4px solid var(--warn); background: #fff3e0; padding: 6px 10px; margin: 8px 0; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 4px; padding: 6px; }
.dag-tools { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; margin: 6px 0; }
.dag-tools button { font: inherit; padding: 1px 10px; border: 1px solid #bbb; border-radius: 4px; background: #fff; cursor: pointer; }
.dag-tools button.chip.failed { border-color: var(--bad); color: var(--bad); } .dag-tools button.chip.blocked { border-style: dashed; color: #555; }
.dag-tools input { font: inherit; padding: 1px 6px; width: 260px; } .dag-tools .hint { color: var(--muted); font-size: 12px; }
.dag-view { border: 1px solid var(--line); border-radius: 4px; overflow: hidden; cursor: grab; touch-action: none; }
.dag-view.panning { cursor: grabbing; } .dag-view svg { display: block; width: 100%; height: 100%; }
svg.dag.searching .node:not(.match) { opacity: .25; } svg.dag .node.match rect { stroke: #1565c0; stroke-width: 4; }
svg.dag .node { cursor: pointer; }
svg.dag.far .node.failed rect { fill: var(--bad); } svg.dag.far .node.blocked rect { fill: #9e9e9e; stroke-dasharray: none; }
svg.gantt { width: 100%; height: auto; display: block; } svg.gantt text.bar-label { fill: #fff; font-size: 11px; pointer-events: none; }
tr.flash td { background: #fff59d; } table.tasks tr { scroll-margin-top: 40px; }
svg text { font: 11px system-ui, sans-serif; fill: #222; }
svg.dag .node rect { fill: #fff; stroke: #999; stroke-width: 1.2; }
svg.dag .node.succeeded rect { fill: #e8f5e9; stroke: var(--ok); } svg.dag .node.failed rect { fill: #ffebee; stroke: var(--bad); }
svg.dag .node.blocked rect { fill: #f5f5f5; stroke: var(--muted); stroke-dasharray: 4 3; }
svg.dag .node.pending rect, svg.dag .node.cancelled rect, svg.dag .node.retrying rect, svg.dag .node.running rect { fill: #fff8e1; stroke: var(--warn); }
svg.dag .node.critical rect { stroke-width: 3; }
svg.dag .node text { text-anchor: middle; } svg.dag .node text.id { font-weight: 600; } svg.dag .node text.title { fill: #555; font-size: 10px; }
svg.dag .edge { fill: none; stroke: #aaa; stroke-width: 1.2; } svg.dag .edge.critical { stroke: #6a1b9a; stroke-width: 2.4; }
svg.dag .arrowhead { fill: #999; }
svg.gantt .lane { fill: #fafafa; } svg.gantt .lane.odd { fill: #f2f2f2; }
svg.gantt .lane-label { text-anchor: end; fill: #555; } svg.gantt text.tick { text-anchor: middle; fill: #777; font-size: 10px; } svg.gantt line.tick { stroke: #aaa; }
svg.gantt .queued { fill: #bdbdbd; } svg.gantt .running { fill: var(--info); } svg.gantt .committing { fill: #00897b; } svg.gantt .merging { fill: #6a1b9a; }
svg.gantt .attempt.failed .running, svg.gantt .attempt.transient .running, svg.gantt .attempt.interrupted .running { fill: var(--bad); }
svg.gantt .attempt.conflict .running { fill: var(--warn); } svg.gantt .attempt.verify .running, svg.gantt .attempt.verify .committing { fill: #ad1457; }
svg.gantt .attempt.cancelled .running, svg.gantt .attempt.unfinished .running { fill: var(--muted); }
svg.gantt .in-flight { fill: #90caf9; stroke: var(--info); } svg.gantt .budget { stroke: #222; stroke-dasharray: 4 3; }
svg.gantt .budget-stop { stroke: var(--warn); stroke-width: 2; } svg.gantt .resumed { stroke: var(--muted); stroke-dasharray: 2 2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: #555; margin: 6px 0; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px; }
table.tasks { border-collapse: collapse; width: 100%; font-size: 13px; }
table.tasks th, table.tasks td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
table.tasks th { cursor: pointer; user-select: none; background: #f7f7f7; position: sticky; top: 0; }
table.tasks th[aria-sort="ascending"]::after { content: " ▲"; } table.tasks th[aria-sort="descending"]::after { content: " ▼"; }
table.tasks td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td.status { color: var(--bad); font-weight: 600; } tr.blocked td.status { color: var(--muted); } tr.succeeded td.status { color: var(--ok); }
td.reason { max-width: 420px; color: #555; }
details.diff { margin: 4px 0; } details.diff summary { cursor: pointer; }
details.diff pre { font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; background: #fafafa; border: 1px solid var(--line); padding: 6px; overflow-x: auto; max-height: 420px; }
.add { color: var(--ok); } .del { color: var(--bad); }
@media print { body { max-width: none; padding: 0; } .scroll { overflow: visible; border: 0; } .dag-tools { display: none; } details.diff pre { max-height: none; } table.tasks th { position: static; } }
`;

/**
 * The page's one script: sorts the task table, opens a diff a link points at, and fits, zooms,
 * pans and searches the DAG. It reads the run only from the DOM (attributes the page escaped):
 * nothing of the run is ever part of its text, so its hash holds for every report.
 */
const SCRIPT = `
for (const table of document.querySelectorAll('table.tasks')) {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, column) => th.addEventListener('click', () => {
    const ascending = th.getAttribute('aria-sort') !== 'ascending';
    headers.forEach((h) => h.removeAttribute('aria-sort'));
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    const value = (row) => {
      const cell = row.cells[column];
      const sort = cell.dataset.sort ?? cell.textContent.trim();
      return sort !== '' && !Number.isNaN(Number(sort)) ? Number(sort) : sort;
    };
    const rows = [...table.tBodies[0].rows].sort((a, b) => {
      const x = value(a), y = value(b);
      const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    table.tBodies[0].append(...rows);
  }));
}

const openTarget = (id) => {
  const target = id && document.getElementById(id);
  if (!target) return;
  if (target.tagName === 'DETAILS') target.open = true;
  if (target.tagName === 'TR') {
    target.classList.add('flash');
    setTimeout(() => target.classList.remove('flash'), 1500);
  }
};
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="#"]');
  if (link) openTarget(decodeURIComponent(link.getAttribute('href').slice(1)));
});
openTarget(decodeURIComponent(location.hash.slice(1)));

const view = document.querySelector('.dag-view');
const svg = view && view.querySelector('svg.dag');
if (svg) {
  const box = svg.viewBox.baseVal;
  const full = { x: box.x, y: box.y, w: box.width, h: box.height };
  let cam = { x: full.x, y: full.y, s: 1 };
  const apply = () => {
    svg.setAttribute('viewBox', [cam.x, cam.y, view.clientWidth / cam.s, view.clientHeight / cam.s].join(' '));
    svg.classList.toggle('far', cam.s < 0.5);
  };
  const fit = () => {
    const s = Math.min(1, view.clientWidth / full.w, view.clientHeight / full.h);
    cam = { s, x: full.x - (view.clientWidth / s - full.w) / 2, y: full.y - (view.clientHeight / s - full.h) / 2 };
    apply();
  };
  const zoom = (factor, px = view.clientWidth / 2, py = view.clientHeight / 2) => {
    const s = Math.min(4, Math.max(0.02, cam.s * factor));
    cam.x += px / cam.s - px / s;
    cam.y += py / cam.s - py / s;
    cam.s = s;
    apply();
  };
  const inView = (node) => {
    const b = node.getBoundingClientRect(), v = view.getBoundingClientRect();
    return b.left >= v.left && b.right <= v.right && b.top >= v.top && b.bottom <= v.bottom;
  };
  const centre = (node, legible) => {
    if (legible && cam.s < 1) cam.s = 1;
    const b = node.getBBox();
    cam.x = b.x + b.width / 2 - view.clientWidth / cam.s / 2;
    cam.y = b.y + b.height / 2 - view.clientHeight / cam.s / 2;
    apply();
  };
  const nodes = [...svg.querySelectorAll('g.node')];
  const count = document.querySelector('.dag-count');
  const search = document.querySelector('.dag-search');
  let matches = [];
  let current = -1;
  const show = (found) => {
    for (const node of nodes) node.classList.remove('match');
    matches = found;
    current = -1;
    svg.classList.toggle('searching', found !== null);
    if (!found) { count.textContent = ''; return; }
    for (const node of found) node.classList.add('match');
    count.textContent = found.length === 1 ? '1 match' : found.length + ' matches' + (found.length ? ' (Enter: next)' : '');
    if (found.length) { current = 0; if (!inView(found[0])) centre(found[0], false); }
  };
  const find = (text) => {
    const query = text.trim().toLowerCase();
    if (!query) return show(null);
    const exact = nodes.filter((n) => n.dataset.task === query);
    show(exact.length ? exact : nodes.filter((n) => n.dataset.task.includes(query) || n.dataset.title.includes(query)));
  };
  search.addEventListener('input', () => find(search.value));
  search.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !matches || !matches.length) return;
    current = (current + 1) % matches.length;
    centre(matches[current], true);
    count.textContent = (current + 1) + ' of ' + matches.length;
  });
  for (const chip of document.querySelectorAll('.dag-tools [data-find]')) chip.addEventListener('click', () => {
    search.value = '';
    show(nodes.filter((n) => n.classList.contains(chip.dataset.find)));
  });
  for (const button of document.querySelectorAll('.dag-tools [data-zoom]')) button.addEventListener('click', () => {
    const how = button.dataset.zoom;
    if (how === 'fit') fit(); else zoom(how === 'in' ? 1.5 : 1 / 1.5);
  });
  view.addEventListener('wheel', (event) => {
    if (!event.ctrlKey && !event.metaKey) return;
    event.preventDefault();
    const v = view.getBoundingClientRect();
    zoom(Math.exp(-event.deltaY / 300), event.clientX - v.left, event.clientY - v.top);
  }, { passive: false });
  let drag = null;
  view.addEventListener('pointerdown', (event) => {
    drag = { x: event.clientX, y: event.clientY, moved: false };
    view.setPointerCapture(event.pointerId);
  });
  view.addEventListener('pointermove', (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    view.classList.add('panning');
    cam.x -= dx / cam.s;
    cam.y -= dy / cam.s;
    drag.x = event.clientX;
    drag.y = event.clientY;
    apply();
  });
  view.addEventListener('pointerup', (event) => {
    const moved = drag && drag.moved;
    drag = null;
    view.classList.remove('panning');
    if (moved) return;
    const hit = document.elementFromPoint(event.clientX, event.clientY);
    const node = hit && hit.closest('g.node');
    const row = node && document.getElementById('task-' + node.dataset.task);
    if (row) { row.scrollIntoView({ block: 'center' }); openTarget(row.id); }
  });
  window.addEventListener('resize', apply);
  fit();
}
`;

/** The one script the page may run: a script planted in the page by a task's text would not. */
const SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;

/** dagre lays out 500 tasks in about 2 s here, 1,000 in 8 and 2,000 in 44: drawn up to 500. */
const DAG_TASK_LIMIT = 500;

/** Dollars: cents, and under a dollar up to four places (`$0.0123`, `$0.40`). */
const money = (usd: number) =>
  `$${usd >= 1 ? usd.toFixed(2) : usd.toFixed(4).replace(/0{1,2}$/, '')}`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The first screen's lines: how the run ended, its time against its bounds, its cost against its limits. */
function head(data: ReportData): string {
  const { totals, bounds } = data;
  const counts = [
    totals.failed && `<span class="failed">${totals.failed} failed</span>`,
    totals.blocked && `<span class="blocked">${totals.blocked} blocked</span>`,
    totals.unfinished && `<span class="blocked">${totals.unfinished} unfinished</span>`,
    `<span class="ok">${totals.succeeded} succeeded</span>`,
  ].filter(Boolean);
  const cost = [
    data.budget.maxBudgetUsd !== undefined
      ? `cost <b>${money(data.usage.costUsd)}</b> of ${money(data.budget.maxBudgetUsd)} budget (${Math.round((data.usage.costUsd / data.budget.maxBudgetUsd) * 100)}%)`
      : `cost <b>${money(data.usage.costUsd)}</b>, no budget set`,
    data.budget.maxTaskUsd !== undefined && `at most ${money(data.budget.maxTaskUsd)} a task`,
    data.quote && `quoted ${money(data.quote.usd)}`,
  ].filter(Boolean);
  return [
    '<header class="head">',
    `<h1>Run ${escapeXml(data.runId)} <span class="badge ${data.status}">${data.status}</span></h1>`,
    `<p class="outcome">${counts.join(' · ')} <span class="muted">of ${plural(totals.tasks, 'task')}</span></p>`,
    `<p class="facts">Wall time <b>${formatMs(data.durationMs)}</b> against a critical path of ${formatMs(bounds.criticalPathMs)} (lower bound ${formatMs(bounds.lowerBoundMs)} with M = ${data.executors}) · ${cost.join(', ')}</p>`,
    '</header>',
  ].join('\n');
}

const LISTED = 8;

/** Names, the first few of them: `a, b, c … (+6)`. */
const some = (ids: readonly string[]) =>
  escapeXml(
    ids.slice(0, LISTED).join(', ') + (ids.length > LISTED ? ` … (+${ids.length - LISTED})` : ''),
  );

const UNFINISHED = new Set(['pending', 'running', 'retrying', 'cancelled']);

/** What failed and why, each with its log and change; what that blocked; what did not finish. */
function failures(data: ReportData): string {
  const failed = data.tasks.filter((t) => t.status === 'failed');
  const unfinished = data.tasks.filter((t) => UNFINISHED.has(t.status)).map((t) => t.id);
  if (!failed.length && !data.blockedCauses.length && !unfinished.length) return '';
  const rows = failed.map((t) => {
    const links = [
      t.logPath && `<a class="log" href="${escapeXml(t.logPath)}">log</a>`,
      t.diff !== undefined &&
        `<a class="diff" href="#diff-${escapeXml(t.id)}">diff</a> <span class="muted">(${plural(t.files, 'file')})</span>`,
      t.verifyLogPath && `<a href="${escapeXml(t.verifyLogPath)}">verify log</a>`,
    ].filter(Boolean);
    return `<tr data-task="${escapeXml(t.id)}"><td class="id"><a href="#task-${escapeXml(t.id)}">${escapeXml(t.id)}</a> <span class="muted">${escapeXml(clip(t.title, 40))}</span></td><td class="why">${escapeXml(t.reasonShort ?? 'failed')} <span class="muted">(${plural(t.attempts, 'attempt')}${t.conflicts ? `, ${plural(t.conflicts, 'merge conflict')}` : ''}${t.verifyFailures ? `, ${plural(t.verifyFailures, 'failed check')}` : ''})</span></td><td class="links">${links.join(' ')}</td></tr>`;
  });
  const causes = data.blockedCauses.map(
    (c) =>
      `<li><b>${c.tasks.length} blocked</b> by ${escapeXml(c.by.join(', ') || 'an unfinished task')}: ${some(c.tasks)}</li>`,
  );
  if (unfinished.length)
    causes.push(
      `<li><b>${unfinished.length} unfinished</b> (<code>resume</code> continues them): ${some(unfinished)}</li>`,
    );
  return [
    '<section class="failures">',
    failed.length ? `<h2>${plural(failed.length, 'task')} failed</h2>` : '<h2>Not finished</h2>',
    failed.length ? `<table class="failures"><tbody>${rows.join('')}</tbody></table>` : '',
    causes.length ? `<ul class="causes">${causes.join('')}</ul>` : '',
    '</section>',
  ].join('\n');
}

function summaryList(data: ReportData): string {
  const { totals, bounds } = data;
  const rows: [string, string][] = [
    [
      'Wall time',
      `${formatMs(data.durationMs)} (critical path ${formatMs(bounds.criticalPathMs)}; lower bound max(critical path, work / M) ${formatMs(bounds.lowerBoundMs)})`,
    ],
    [
      'Executors',
      `M = ${data.executors}, utilisation ${(bounds.utilisation * 100).toFixed(0)}% (${formatMs(bounds.workMs)} of slot time)`,
    ],
    [
      'Attempts',
      `${totals.attempts}, ${plural(totals.conflicts, 'merge conflict')}${totals.verifyFailures ? `, ${plural(totals.verifyFailures, 'failed check')}` : ''}`,
    ],
    [
      'Tokens and cost',
      `${(data.usage.inputTokens + data.usage.outputTokens).toLocaleString('en')} tokens, ${money(data.usage.costUsd)}`,
    ],
    [
      'Models',
      [
        data.models.planner && `planner ${data.models.planner}`,
        data.models.executor && `executors ${data.models.executor}`,
      ]
        .filter(Boolean)
        .join(', ') || 'none (simulated)',
    ],
    ['Backend', `${escapeXml(data.backend)}, ${escapeXml(data.mode)}`],
    ['Started', escapeXml(data.startedAt)],
  ];
  if (data.verify)
    rows.push([
      'Verify',
      `<code>${escapeXml(data.verify.command)}</code>: ${data.verify.final ? (data.verify.final.passed ? 'passed on main' : `<b>failed on main</b> (exit ${data.verify.final.exitCode ?? 'none'})`) : 'not run on main'}`,
    ]);
  return `<dl class="summary">${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/** The requirement, its first line shown and the rest a click away. */
function requirement(text: string): string {
  const first = text.trim().split('\n', 1)[0] ?? '';
  return `<details class="requirement"><summary>Requirement: ${escapeXml(first)}</summary><p>${escapeXml(text)}</p></details>`;
}

function reason(task: ReportTask): string {
  const parts: string[] = [];
  if (task.blockedBy?.length) parts.push(`blocked by ${task.blockedBy.join(', ')}`);
  else if (task.error) parts.push(task.error);
  if (task.conflicts) parts.push(plural(task.conflicts, 'merge conflict'));
  if (task.verifyFailures) parts.push(plural(task.verifyFailures, 'failed check'));
  return escapeXml(parts.join('; '));
}

/** Failed first, then blocked, then unfinished, then succeeded: the order the Status column sorts in. */
const statusRank = (status: ReportTask['status']) =>
  status === 'failed' ? 0 : status === 'blocked' ? 1 : UNFINISHED.has(status) ? 2 : 3;

function logLinks(task: ReportTask): string {
  return [
    task.logPath && `<a href="${escapeXml(task.logPath)}">log</a>`,
    task.verifyLogPath && `<a href="${escapeXml(task.verifyLogPath)}">verify</a>`,
  ]
    .filter(Boolean)
    .join(' ');
}

function taskTable(tasks: readonly ReportTask[]): string {
  const header = [
    'Task',
    'Status',
    'Attempts',
    'Time',
    'Files',
    'Added',
    'Removed',
    'Tokens',
    'Cost',
    'Reason',
    'Logs',
  ];
  // A stable sort: plan order within each status.
  const sorted = [...tasks].sort((a, b) => statusRank(a.status) - statusRank(b.status));
  const rows = sorted.map((t) =>
    [
      `<tr class="${t.status}" id="task-${escapeXml(t.id)}" data-task="${escapeXml(t.id)}">`,
      `<td><b>${escapeXml(t.id)}</b>${t.critical ? ' <span title="on the critical path">★</span>' : ''}<br>${escapeXml(t.title)}</td>`,
      `<td class="status" data-sort="${statusRank(t.status)}">${t.status}</td>`,
      `<td class="num">${t.attempts}</td>`,
      `<td class="num" data-sort="${t.durationMs}">${formatMs(t.durationMs)}</td>`,
      `<td class="num">${t.files}</td>`,
      `<td class="num add">+${t.added}</td>`,
      `<td class="num del" data-sort="${t.removed}">−${t.removed}</td>`,
      `<td class="num">${t.tokens}</td>`,
      `<td class="num" data-sort="${t.costUsd}">${money(t.costUsd)}</td>`,
      `<td class="reason">${reason(t)}</td>`,
      `<td>${logLinks(t)}</td>`,
      '</tr>',
    ].join(''),
  );
  return `<table class="tasks"><thead><tr>${header.map((h) => `<th${h === 'Status' ? ' aria-sort="ascending"' : ''}>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function diffLines(diff: string): string {
  return diff
    .split('\n')
    .map((line) => {
      const text = escapeXml(line);
      if (line.startsWith('+') && !line.startsWith('+++'))
        return `<span class="add">${text}</span>`;
      if (line.startsWith('-') && !line.startsWith('---'))
        return `<span class="del">${text}</span>`;
      return text;
    })
    .join('\n');
}

function changes(tasks: readonly ReportTask[]): string {
  return tasks
    .filter((t) => t.diff !== undefined)
    .map(
      (t) =>
        `<details class="diff" id="diff-${escapeXml(t.id)}" data-task="${escapeXml(t.id)}"><summary>${escapeXml(t.id)}: ${plural(t.files, 'file')}, <span class="add">+${t.added}</span> <span class="del">−${t.removed}</span>${t.status === 'succeeded' ? '' : ` (${t.status}, not merged)`}</summary><pre>${diffLines(t.diff ?? '')}${t.diffCut ? `\n[cut: see \`diff <runDir> ${escapeXml(t.id)}\`]` : ''}</pre></details>`,
    )
    .join('\n');
}

const LEGEND = {
  dag: [
    ['#e8f5e9', 'succeeded'],
    ['#ffebee', 'failed'],
    ['#f5f5f5', 'blocked'],
    ['#fff8e1', 'not finished'],
    ['#6a1b9a', 'critical path (thick)'],
  ],
  gantt: [
    ['#bdbdbd', 'queued (ready, waiting for a slot)'],
    ['#1565c0', 'running'],
    ['#00897b', 'committing and checking'],
    ['#6a1b9a', 'merging (slot already free)'],
    ['#c62828', 'failed or retried attempt'],
    ['#ef6c00', 'merge conflict (retried)'],
    ['#ad1457', 'failed --verify'],
    ['#90caf9', 'attempts in flight (dashed: M)'],
  ],
} as const;

/** The DAG in a view the script fits it to, with its zoom, search and the failed and blocked chips. */
function dagView(data: ReportData): string {
  const { svg, height } = dagSvg(data.tasks);
  const chips = (['failed', 'blocked'] as const)
    .map((status) => [status, data.tasks.filter((t) => t.status === status).length] as const)
    .filter(([, n]) => n > 0)
    .map(
      ([status, n]) =>
        `<button type="button" class="chip ${status}" data-find="${status}">${status} (${n})</button>`,
    );
  return [
    '<div class="dag-tools">',
    '<button type="button" data-zoom="fit">Fit</button><button type="button" data-zoom="in" aria-label="zoom in">+</button><button type="button" data-zoom="out" aria-label="zoom out">−</button>',
    '<input type="search" class="dag-search" placeholder="Find a task by id or title" aria-label="find a task">',
    ...chips,
    '<span class="dag-count" aria-live="polite"></span>',
    '<span class="hint">drag to pan, Ctrl+wheel to zoom, click a task for its row</span>',
    '</div>',
    `<div class="dag-view" style="height: min(70vh, ${Math.ceil(height) + 2}px)">${svg}</div>`,
  ].join('\n');
}

const legend = (items: readonly (readonly [string, string])[]) =>
  `<div class="legend">${items.map(([color, label]) => `<span><i style="background:${color}"></i>${label}</span>`).join('')}</div>`;

/** The report: one self-contained page, no request leaves it (its CSP forbids any). */
export function reportHtml(data: ReportData): string {
  const { tasks: withDiffs, ...rest } = data;
  const embedded = {
    ...rest,
    tasks: withDiffs.map(({ diff: _diff, ...task }) => task),
  };
  // Task titles and errors come from planners and agents: nothing they say can close the tag.
  const json = JSON.stringify(embedded).replace(/</g, '\\u003c');
  const notices: string[] = [];
  if (data.stoppedBy === 'budget')
    notices.push(
      '<p class="notice budget">Stopped by the spending limit (--max-budget-usd): tasks not started are left for <code>resume</code>.</p>',
    );
  if (data.verify?.final && !data.verify.final.passed)
    notices.push('<p class="notice verify">main failed the final --verify check.</p>');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '${SCRIPT_HASH}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Run ${escapeXml(data.runId)}: ${data.status}</title>
<style>${STYLE}</style>
</head>
<body>
${head(data)}
${notices.join('\n')}
${failures(data)}
${requirement(data.requirements)}
<h2>Summary</h2>
${summaryList(data)}
<h2>Plan</h2>
${legend(LEGEND.dag)}
${data.tasks.length <= DAG_TASK_LIMIT ? dagView(data) : `<p class="note">${data.tasks.length} tasks are more than a drawing shows (and than its layout takes seconds for): the graph is in execution_plan.json.</p>`}
<h2>Timeline</h2>
${legend(LEGEND.gantt)}
${ganttSvg(data.timeline, data.executors)}
<h2>Tasks</h2>
${taskTable(data.tasks)}
<h2>Changes</h2>
${data.tasks.length <= DIFF_TASK_LIMIT ? changes(data.tasks) : `<p class="note">Each task's change: <code>parallel-orchestrator diff &lt;runDir&gt; &lt;task&gt;</code> (not embedded for ${data.tasks.length} tasks).</p>`}
<script type="application/json" id="report-data">${json}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
