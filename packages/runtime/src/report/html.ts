import { createHash } from 'node:crypto';
import { DIFF_TASK_LIMIT, type ReportData, type ReportTask } from './model.js';
import { dagSvg, escapeXml, formatMs, ganttSvg } from './svg.js';

const STYLE = `
:root { --ok: #2e7d32; --bad: #c62828; --warn: #ef6c00; --muted: #757575; --info: #1565c0; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.requirement { color: #444; white-space: pre-wrap; margin: 0 0 12px; max-height: 7.5em; overflow: hidden; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; vertical-align: middle; }
.badge.succeeded { background: var(--ok); } .badge.failed { background: var(--bad); } .badge.cancelled { background: var(--muted); }
.notice { border-left: 4px solid var(--warn); background: #fff3e0; padding: 6px 10px; margin: 8px 0; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.summary dt { color: #555; } dl.summary dd { margin: 0; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 4px; padding: 6px; }
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
@media print { body { max-width: none; padding: 0; } .scroll { overflow: visible; border: 0; } details.diff pre { max-height: none; } table.tasks th { position: static; } }
`;

/** Sorts the task table by a header's column; numbers as numbers. No other script runs. */
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
`;

/** The one script the page may run: a script planted in the page by a task's text would not. */
const SCRIPT_HASH = `sha256-${createHash('sha256').update(SCRIPT).digest('base64')}`;

/** dagre lays out 500 tasks in about 2 s here, 1,000 in 8 and 2,000 in 44: drawn up to 500. */
const DAG_TASK_LIMIT = 500;

const money = (usd: number) => `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function summaryList(data: ReportData): string {
  const { totals, bounds } = data;
  const states = [
    `${totals.succeeded} succeeded`,
    totals.failed && `${totals.failed} failed`,
    totals.blocked && `${totals.blocked} blocked`,
    totals.unfinished && `${totals.unfinished} unfinished`,
  ].filter(Boolean);
  const rows: [string, string][] = [
    ['Status', `<span class="badge ${data.status}">${data.status}</span>`],
    ['Tasks', `${totals.tasks}: ${states.join(', ')}`],
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

function reason(task: ReportTask): string {
  const parts: string[] = [];
  if (task.blockedBy?.length) parts.push(`blocked by ${task.blockedBy.join(', ')}`);
  else if (task.error) parts.push(task.error);
  if (task.conflicts) parts.push(plural(task.conflicts, 'merge conflict'));
  if (task.verifyFailures) parts.push(plural(task.verifyFailures, 'failed check'));
  return escapeXml(parts.join('; '));
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
  ];
  const rows = tasks.map((t) =>
    [
      `<tr class="${t.status}" data-task="${escapeXml(t.id)}">`,
      `<td><b>${escapeXml(t.id)}</b>${t.critical ? ' <span title="on the critical path">★</span>' : ''}<br>${escapeXml(t.title)}</td>`,
      `<td class="status">${t.status}</td>`,
      `<td class="num">${t.attempts}</td>`,
      `<td class="num" data-sort="${t.durationMs}">${formatMs(t.durationMs)}</td>`,
      `<td class="num">${t.files}</td>`,
      `<td class="num add">+${t.added}</td>`,
      `<td class="num del" data-sort="${t.removed}">−${t.removed}</td>`,
      `<td class="num">${t.tokens}</td>`,
      `<td class="num" data-sort="${t.costUsd}">${money(t.costUsd)}</td>`,
      `<td class="reason">${reason(t)}</td>`,
      '</tr>',
    ].join(''),
  );
  return `<table class="tasks"><thead><tr>${header.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
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
        `<details class="diff" data-task="${escapeXml(t.id)}"><summary>${escapeXml(t.id)}: ${plural(t.files, 'file')}, <span class="add">+${t.added}</span> <span class="del">−${t.removed}</span>${t.status === 'succeeded' ? '' : ` (${t.status}, not merged)`}</summary><pre>${diffLines(t.diff ?? '')}${t.diffCut ? `\n[cut: see \`diff <runDir> ${escapeXml(t.id)}\`]` : ''}</pre></details>`,
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
<h1>Run ${escapeXml(data.runId)} <span class="badge ${data.status}">${data.status}</span></h1>
<p class="requirement">${escapeXml(data.requirements)}</p>
${notices.join('\n')}
<h2>Summary</h2>
${summaryList(data)}
<h2>Plan</h2>
${legend(LEGEND.dag)}
${data.tasks.length <= DAG_TASK_LIMIT ? `<div class="scroll">${dagSvg(data.tasks)}</div>` : `<p class="note">${data.tasks.length} tasks are more than a drawing shows (and than its layout takes seconds for): the graph is in execution_plan.json.</p>`}
<h2>Timeline</h2>
${legend(LEGEND.gantt)}
<div class="scroll">${ganttSvg(data.timeline, data.executors)}</div>
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
